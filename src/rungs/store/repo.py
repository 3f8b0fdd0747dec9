"""Reading and writing cases with their consequences inside one transaction."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, select, update

from rungs.core.model import (
    CallWebhook,
    CancelTimers,
    Case,
    Effect,
    Notify,
    Record,
    ScheduleTimer,
)
from rungs.store.tables import case_numbers, cases, outbox, timeline, timers

__all__ = ["load_case", "insert_case", "save_case", "apply_effects", "new_case_id", "find_open"]

_dumps = json.JSONEncoder(separators=(",", ":")).encode


def new_case_id(conn: Connection) -> str:
    n = conn.execute(insert(case_numbers).returning(case_numbers.c.n)).scalar_one()
    return f"C{n}"


def load_case(conn: Connection, case_id: str, *, lock: bool) -> tuple[Case, int] | None:
    q = select(cases.c.state, cases.c.policy_version).where(cases.c.id == case_id)
    if lock and conn.dialect.name == "postgresql":
        q = q.with_for_update()
    row = conn.execute(q).first()
    if row is None:
        return None
    return Case.from_dict(json.loads(row.state)), row.policy_version


def find_open(conn: Connection, dedup_key: str) -> str | None:
    return conn.execute(select(cases.c.id).where(cases.c.open_key == dedup_key)).scalar()


def _row(case: Case, version: int) -> dict[str, Any]:
    active = case.status not in ("resolved", "closed")
    return {
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
    conn.execute(insert(cases).values(id=case.id, opened_at=case.opened_at, **_row(case, version)))


def save_case(conn: Connection, case: Case, version: int) -> None:
    conn.execute(update(cases).where(cases.c.id == case.id).values(**_row(case, version)))


def apply_effects(conn: Connection, effects: Iterable[Effect], version: int, now: int) -> int:
    """Timeline rows, timer changes and outbox rows; returns the earliest new timer due (or 0)."""
    entries, outs = [], []
    earliest = 0
    for eff in effects:
        if type(eff) is Record:
            e = eff.entry
            entries.append(
                {
                    "case_id": e["case"],
                    "at": e["at"],
                    "kind": e["kind"],
                    "policy_version": version,
                    "entry": _dumps(e),
                }
            )
        elif type(eff) is ScheduleTimer:
            if entries:
                conn.execute(insert(timeline), entries)
                entries = []
            conn.execute(
                delete(timers).where(and_(timers.c.case_id == eff.case, timers.c.key == eff.key))
            )
            conn.execute(
                insert(timers).values(
                    case_id=eff.case, key=eff.key, due=eff.due, payload=_dumps(list(eff.payload))
                )
            )
            earliest = eff.due if not earliest else min(earliest, eff.due)
        elif type(eff) is CancelTimers:
            cond = timers.c.case_id == eff.case
            if eff.prefix:
                cond = and_(cond, func.substr(timers.c.key, 1, len(eff.prefix)) == eff.prefix)
            conn.execute(delete(timers).where(cond))
        elif type(eff) is Notify:
            body = {
                "person": eff.person,
                "channel": eff.channel,
                "level": eff.level,
                "reason": eff.reason,
            }
            outs.append(
                {
                    "case_id": eff.case,
                    "kind": "notify",
                    "key": eff.key,
                    "payload": _dumps(body),
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt": now,
                    "created_at": now,
                }
            )
        elif type(eff) is CallWebhook:
            body = {"url": eff.url, "body": eff.body}
            outs.append(
                {
                    "case_id": eff.case,
                    "kind": "webhook",
                    "key": eff.key,
                    "payload": _dumps(body),
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt": now,
                    "created_at": now,
                }
            )
    if entries:
        conn.execute(insert(timeline), entries)
    if outs:
        conn.execute(insert(outbox), outs)
    return earliest
