"""The effect writer: a decision's effects become rows, once, in the decision's transaction.

Seams 1, 3 and 4 of the shell redesign: `Record` -> a timeline row; `ScheduleTimer` and
`CancelTimers` -> timer rows (the key stored as given, cancelled by prefix); `Notify`,
`CallWebhook` and `Notice` -> outbox rows with their final payload. When this process's
dispatcher takes new rows (`lease` gives the instant its claim runs out), they are inserted
already claimed and returned, to be handed over once the transaction commits; else they are
inserted `pending` and, on PostgreSQL, one `NOTIFY` per transaction wakes remote dispatchers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, text

from rungs.core.model import (
    CallWebhook,
    CancelTimers,
    Case,
    Effect,
    Notice,
    Notify,
    Record,
    ScheduleTimer,
)
from rungs.store.jsonbytes import dumps_text
from rungs.store.listen import OUTBOX_CHANNEL
from rungs.store.sql import Sql, run, run_many

__all__ = ["NewRow", "Written", "notify_once", "write_effects"]

Snapshot = tuple[Case, int, list[dict[str, Any]]]  # case, policy version, its whole timeline
Lease = Callable[[], int | None]  # the instant a claim taken now runs out; None: do not claim


@dataclass(slots=True)
class NewRow:
    """An outbox row inserted already claimed (`attempts` counts this one), for the local
    dispatcher: the fields of the dispatcher's `Row`. `snapshot` when the decision opened the
    case (its whole timeline is in the decision: nothing to read back)."""

    id: int
    case_id: str
    kind: str  # notify | webhook | notice
    key: str
    payload: dict[str, Any]
    attempts: int
    created_at: int
    snapshot: Snapshot | None = None


@dataclass(slots=True)
class Written:
    earliest: int = 0  # the earliest timer this decision set (0: none)
    claimed: list[NewRow] = field(default_factory=list)


_INSERT_ENTRY = Sql(
    "INSERT INTO timeline (case_id, at, kind, policy_version, entry) "
    "VALUES (:case_id, :at, :kind, :policy_version, :entry)"
)
_DELETE_TIMER = Sql("DELETE FROM timers WHERE case_id = :case_id AND key = :key")
_INSERT_TIMER = Sql(
    "INSERT INTO timers (case_id, key, due, payload) VALUES (:case_id, :key, :due, :payload)"
)
_CANCEL_ALL = Sql("DELETE FROM timers WHERE case_id = :case_id")
_CANCEL_PREFIX = Sql("DELETE FROM timers WHERE case_id = :case_id AND substr(key, 1, :n) = :prefix")
_INSERT_OUTBOX = Sql(
    "INSERT INTO outbox (case_id, kind, key, payload, status, attempts, next_attempt, created_at) "
    "VALUES (:case_id, :kind, :key, :payload, 'pending', 0, :next_attempt, :created_at)"
)
_INSERT_CLAIMED = Sql(
    "INSERT INTO outbox (case_id, kind, key, payload, status, attempts, next_attempt, created_at) "
    "VALUES (:case_id, :kind, :key, :payload, 'sending', 1, :next_attempt, :created_at) "
    "RETURNING id"
)


def notify_once(conn: Connection, channel: str) -> None:
    """`NOTIFY channel` once per transaction (PostgreSQL delivers it at commit)."""
    tx = conn.get_transaction()  # held by the connection, so its identity is not reused
    if conn.info.get(channel) is not tx:
        conn.execute(text(f"NOTIFY {channel}"))
        conn.info[channel] = tx


def _outbox_row(eff: Effect) -> tuple[str, str, str, dict[str, Any]] | None:
    """(case, kind, key, payload) of an effect that is delivered, else None."""
    match eff:
        case Notify(case=c, person=p, channel=ch, level=lv, reason=why, key=k):
            return c, "notify", k, {"person": p, "channel": ch, "level": lv, "reason": why}
        case CallWebhook(case=c, url=url, body=body, key=k):
            return c, "webhook", k, {"url": url, "body": body}
        case Notice(case=c, person=p, channel=ch, about=about, by=by, level=lv, title=t, key=k):
            payload = {
                "person": p,
                "channel": ch,
                "action": about,
                "by": by,
                "level": lv,
                "title": t,
            }
            return c, "notice", k, payload
    return None


def write_effects(
    conn: Connection,
    effects: Sequence[Effect],
    version: int,
    now: int,
    *,
    fresh: bool = False,
    lease: Lease | None = None,
    case: Case | None = None,
) -> Written:
    """Timeline rows, timer changes and outbox rows, in effect order.

    Timer changes keep effect order (a later one replaces or cancels an earlier one), yet go
    to the database as few statements: cancellations at once (they concern rows from before
    this decision, and drop the timers it set so far), then one multi-row delete of the rows
    the new timers replace (a replaced timer queues anew) and one multi-row insert. A `fresh`
    case, just opened, has nothing to replace. Timeline and pending outbox rows: one
    statement each; claimed rows one each (their ids are handed over).
    """
    entries: list[dict[str, Any]] = []
    outs: list[tuple[str, str, str, dict[str, Any]]] = []
    timers: dict[tuple[str, str], dict[str, Any]] = {}  # in the order they were last set
    replaced: list[dict[str, str]] = []
    opened = False
    written = Written()
    for eff in effects:
        match eff:
            case Record(entry=e):
                opened = opened or e["kind"] == "opened"
                entries.append(
                    {
                        "case_id": e["case"],
                        "at": e["at"],
                        "kind": e["kind"],
                        "policy_version": version,
                        "entry": dumps_text(e),
                    }
                )
            case ScheduleTimer(case=c, key=key, due=due, payload=payload):
                if not fresh:
                    replaced.append({"case_id": c, "key": key})
                timers.pop((c, key), None)
                timers[(c, key)] = {
                    "case_id": c,
                    "key": key,
                    "due": due,
                    "payload": dumps_text(list(payload)),
                }
                written.earliest = min(written.earliest or due, due)
            case CancelTimers(case=c, prefix=prefix):
                if not fresh:
                    if prefix:
                        run(
                            conn, _CANCEL_PREFIX, {"case_id": c, "n": len(prefix), "prefix": prefix}
                        )
                    else:
                        run(conn, _CANCEL_ALL, {"case_id": c})
                for k in [k for k in timers if k[0] == c and k[1].startswith(prefix or "")]:
                    del timers[k]
            case _:
                out = _outbox_row(eff)
                if out is not None:
                    outs.append(out)
    if replaced:
        run_many(conn, _DELETE_TIMER, replaced)
    if timers:
        run_many(conn, _INSERT_TIMER, list(timers.values()))
    if entries:
        run_many(conn, _INSERT_ENTRY, entries)
    if outs:
        until = lease() if lease is not None else None
        if until is None:
            _pending(conn, outs, now)
        else:
            snapshot = None
            if opened and case is not None:
                snapshot = (case, version, [e.entry for e in effects if isinstance(e, Record)])
            written.claimed = _claimed(conn, outs, now, until, snapshot)
    return written


def _pending(conn: Connection, outs: list[tuple[str, str, str, dict[str, Any]]], now: int) -> None:
    rows = [
        {
            "case_id": c,
            "kind": kind,
            "key": key,
            "payload": dumps_text(p),
            "next_attempt": now,
            "created_at": now,
        }
        for c, kind, key, p in outs
    ]
    run_many(conn, _INSERT_OUTBOX, rows)
    if conn.dialect.name == "postgresql":
        notify_once(conn, OUTBOX_CHANNEL)


def _claimed(
    conn: Connection,
    outs: list[tuple[str, str, str, dict[str, Any]]],
    now: int,
    until: int,
    snapshot: Snapshot | None,
) -> list[NewRow]:
    rows = []
    for c, kind, key, payload in outs:
        params = {
            "case_id": c,
            "kind": kind,
            "key": key,
            "payload": dumps_text(payload),
            "next_attempt": until,
            "created_at": now,
        }
        (row_id,) = run(conn, _INSERT_CLAIMED, params)
        rows.append(NewRow(row_id, c, kind, key, payload, 1, now, snapshot))
    return rows
