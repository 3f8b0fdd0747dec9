"""Reading and writing cases with their consequences inside one transaction.

These statements run on every command and every due timer, so they go straight to the
driver's cursor inside the SQLAlchemy transaction: SQLAlchemy's per-statement work (compile
cache look-up, parameter processing, result set-up) cost more than SQLite itself. Each
statement is written once with `:name` parameters and kept in the driver's own style too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection

from rungs.core.model import (
    CallWebhook,
    CancelTimers,
    Case,
    Effect,
    Notify,
    Record,
    ScheduleTimer,
)
from rungs.store.jsonbytes import dumps_text, loads

__all__ = [
    "Sql",
    "apply_effects",
    "find_open",
    "insert_case",
    "load_case",
    "new_case_id",
    "run",
    "run_many",
    "save_case",
]

_dumps = dumps_text


class Sql:
    """One statement: `:name` parameters for sqlite3, `%(name)s` for psycopg."""

    __slots__ = ("named", "pyformat")

    def __init__(self, sql: str) -> None:
        self.named = sql
        self.pyformat = re.sub(r"(?<!:):([a-z_]+)", r"%(\1)s", sql)


def _cursor(conn: Connection) -> tuple[Any, bool]:
    """The driver's cursor on this transaction's connection, and whether it is psycopg."""
    return conn.connection.dbapi_connection.cursor(), conn.dialect.name == "postgresql"  # type: ignore[union-attr]


def run(conn: Connection, stmt: Sql, params: dict[str, Any]) -> Any:
    """Execute; the first row when the statement returns rows (else None)."""
    cur, pg = _cursor(conn)
    try:
        cur.execute(stmt.pyformat if pg else stmt.named, params)
        return cur.fetchone() if cur.description is not None else None
    finally:
        cur.close()


def run_many(conn: Connection, stmt: Sql, rows: list[dict[str, Any]]) -> int:
    """Execute once per row (one round trip on psycopg's pipeline); the rows it changed."""
    cur, pg = _cursor(conn)
    try:
        cur.executemany(stmt.pyformat if pg else stmt.named, rows)
        return int(cur.rowcount)
    finally:
        cur.close()


_NEW_NUMBER = Sql("INSERT INTO case_numbers DEFAULT VALUES RETURNING n")
_LOAD = Sql("SELECT state, policy_version FROM cases WHERE id = :id")
_LOAD_LOCKED = Sql("SELECT state, policy_version FROM cases WHERE id = :id FOR UPDATE")
_FIND_OPEN = Sql("SELECT id FROM cases WHERE open_key = :key")
_COLUMNS = (
    "status",
    "customer",
    "priority",
    "level",
    "assignee",
    "open_key",
    "policy_version",
    "state",
    "updated_at",
)
_INSERT_CASE = Sql(
    "INSERT INTO cases (id, opened_at, " + ", ".join(_COLUMNS) + ") "
    "VALUES (:id, :opened_at, " + ", ".join(f":{c}" for c in _COLUMNS) + ")"
)
_SAVE_CASE = Sql(
    "UPDATE cases SET " + ", ".join(f"{c} = :{c}" for c in _COLUMNS) + " WHERE id = :id"
)
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


def new_case_id(conn: Connection) -> str:
    return f"C{run(conn, _NEW_NUMBER, {})[0]}"


def load_case(conn: Connection, case_id: str, *, lock: bool) -> tuple[Case, int] | None:
    locked = lock and conn.dialect.name == "postgresql"
    row = run(conn, _LOAD_LOCKED if locked else _LOAD, {"id": case_id})
    if row is None:
        return None
    return Case.from_dict(loads(row[0])), row[1]


def find_open(conn: Connection, dedup_key: str) -> str | None:
    row = run(conn, _FIND_OPEN, {"key": dedup_key})
    return None if row is None else row[0]


def _row(case: Case, version: int) -> dict[str, Any]:
    active = case.status not in ("resolved", "closed")
    return {
        "id": case.id,
        "status": case.status,
        "customer": case.customer,
        "priority": case.priority,
        "level": case.level,
        "assignee": case.assignee,
        "open_key": case.dedup_key if active and case.dedup_key else None,
        "policy_version": version,
        "state": _dumps(case.to_dict()),
        "updated_at": case.updated_at,
    }


def insert_case(conn: Connection, case: Case, version: int) -> None:
    run(conn, _INSERT_CASE, {**_row(case, version), "opened_at": case.opened_at})


def save_case(conn: Connection, case: Case, version: int) -> None:
    run(conn, _SAVE_CASE, _row(case, version))


def apply_effects(
    conn: Connection, effects: Iterable[Effect], version: int, now: int, *, fresh: bool = False
) -> int:
    """Timeline rows, timer changes and outbox rows; returns the earliest new timer due (or 0).

    Timer changes keep effect order (a later one replaces or cancels an earlier one), yet go
    to the database as few statements: cancellations at once (they concern rows from before
    this decision, and drop the timers it set so far), then one multi-row delete of the rows
    the new timers replace (a replaced timer queues anew) and one multi-row insert. A `fresh`
    case, just opened, has nothing to replace. Timeline and outbox rows: one statement each.
    """
    entries, outs = [], []
    timers: dict[tuple[str, str], dict[str, Any]] = {}  # in the order they were last set
    replaced: list[dict[str, str]] = []
    earliest = 0
    for eff in effects:
        kind = type(eff)
        if kind is Record:
            e = eff.entry  # type: ignore[union-attr]
            entries.append(
                {
                    "case_id": e["case"],
                    "at": e["at"],
                    "kind": e["kind"],
                    "policy_version": version,
                    "entry": _dumps(e),
                }
            )
        elif kind is ScheduleTimer:
            t: ScheduleTimer = eff  # type: ignore[assignment]
            k = (t.case, t.key)
            if not fresh:
                replaced.append({"case_id": t.case, "key": t.key})
            timers.pop(k, None)
            timers[k] = {
                "case_id": t.case,
                "key": t.key,
                "due": t.due,
                "payload": _dumps(list(t.payload)),
            }
            earliest = t.due if not earliest else min(earliest, t.due)
        elif kind is CancelTimers:
            c: CancelTimers = eff  # type: ignore[assignment]
            if not fresh:
                if c.prefix:
                    params = {"case_id": c.case, "n": len(c.prefix), "prefix": c.prefix}
                    run(conn, _CANCEL_PREFIX, params)
                else:
                    run(conn, _CANCEL_ALL, {"case_id": c.case})
            for k in [k for k in timers if k[0] == c.case and k[1].startswith(c.prefix or "")]:
                del timers[k]
        elif kind is Notify:
            n: Notify = eff  # type: ignore[assignment]
            body = {"person": n.person, "channel": n.channel, "level": n.level, "reason": n.reason}
            outs.append(
                {
                    "case_id": n.case,
                    "kind": "notify",
                    "key": n.key,
                    "payload": _dumps(body),
                    "next_attempt": now,
                    "created_at": now,
                }
            )
        elif kind is CallWebhook:
            w: CallWebhook = eff  # type: ignore[assignment]
            outs.append(
                {
                    "case_id": w.case,
                    "kind": "webhook",
                    "key": w.key,
                    "payload": _dumps({"url": w.url, "body": w.body}),
                    "next_attempt": now,
                    "created_at": now,
                }
            )
    if replaced:
        run_many(conn, _DELETE_TIMER, replaced)
    if timers:
        run_many(conn, _INSERT_TIMER, list(timers.values()))
    if entries:
        run_many(conn, _INSERT_ENTRY, entries)
    if outs:
        run_many(conn, _INSERT_OUTBOX, outs)
    return earliest
