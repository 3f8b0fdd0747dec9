"""The effect writer: a decision's effects become rows, once, in the decision's transaction.

Seams 1, 3 and 4 of the shell redesign: `Record` -> a timeline row; `ScheduleTimer` and
`CancelTimers` -> timer rows (the key stored as given, cancelled by prefix); `Notify`,
`CallWebhook` and `Notice` -> outbox rows with their final payload. When this process's
dispatcher takes new rows (`lease` gives the instant its claim runs out), they are inserted
already claimed and returned, to be handed over once the transaction commits; when it says
nothing will be sent (a policy without channels: `lease` gives the reason), `skipped`; else
they are inserted `pending` and, on PostgreSQL, one `NOTIFY` per transaction wakes remote
dispatchers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from rungs.core.facts import terms_for
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
from rungs.policy.model import Policy
from rungs.store.facts import keep_facts
from rungs.store.jsonbytes import dumps_text
from rungs.store.outbox import NewRow, Row, new_row, wake_dispatchers, write_new
from rungs.store.sql import Sql, run, write_many

__all__ = ["Written", "write_effects"]

# the instant a claim taken now runs out; None: do not claim (pending); text: write them
# skipped, for that reason (nothing will be sent)
Lease = Callable[[], int | str | None]


@dataclass(slots=True)
class Written:
    earliest: int = 0  # the earliest timer this decision set (0: none)
    claimed: list[Row] = field(default_factory=list)


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


def write_effects(
    conn: Connection,
    effects: Sequence[Effect],
    version: int,
    now: int,
    *,
    fresh: bool = False,
    lease: Lease | None = None,
    case: Case | None = None,
    policy: Policy | None = None,
) -> Written:
    """Timeline rows, timer changes and outbox rows, in effect order.

    Timer changes keep effect order (a later one replaces or cancels an earlier one), yet go
    to the database as few statements: cancellations at once (they concern rows from before
    this decision, and drop the timers it set so far), then one multi-row delete of the rows
    the new timers replace (a replaced timer queues anew) and one multi-row insert. A `fresh`
    case, just opened, has nothing to replace. Timeline and pending outbox rows: one
    statement each; claimed rows one each (their ids are handed over). With the `policy`
    (and the `case`), the case's `case_facts` row is kept in step with its timeline.
    """
    entries: list[dict[str, Any]] = []
    outs: list[NewRow] = []
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
            case Notify() | CallWebhook() | Notice():
                outs.append(new_row(eff))
    if replaced:
        write_many(conn, _DELETE_TIMER, replaced)
    if timers:
        write_many(conn, _INSERT_TIMER, list(timers.values()))
    if entries:
        write_many(conn, _INSERT_ENTRY, entries)
        if policy is not None and case is not None:  # reports read facts, kept here
            records = [e.entry for e in effects if isinstance(e, Record)]
            keep_facts(
                conn,
                case.id,
                case.opened_at,
                records,
                terms_for(policy, case.customer),
                fresh=fresh,
            )
    if outs:
        until = lease() if lease is not None else None
        snapshot = None
        if isinstance(until, int) and opened and case is not None:
            # the decision opened the case: its whole timeline is here, nothing to read back
            snapshot = (case, version, [e.entry for e in effects if isinstance(e, Record)])
        written.claimed = write_new(conn, outs, now, until, snapshot)
        if until is None:
            wake_dispatchers(conn)
    return written
