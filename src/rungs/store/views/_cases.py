"""Cases, timelines and handoffs as the API (and later the console) shows them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Connection, func, select

from rungs.core import sla
from rungs.core.handoff import CHANGE_WINDOW, handoff
from rungs.core.model import STATUSES, Case, Refused
from rungs.core.timeline import decode_entry, entry_json
from rungs.policy import Policy
from rungs.store.cases import load_case
from rungs.store.changes import changes_between
from rungs.store.jsonbytes import loads
from rungs.store.tables import cases, timeline
from rungs.time.instant import format_utc

__all__ = [
    "FILTERS",
    "case_json",
    "case_page",
    "entries",
    "filter_error",
    "handoff_of",
    "paged",
    "timeline_rows",
    "timeline_tail",
]

FILTERS = ("status", "customer", "priority", "level", "assignee")  # columns a list filters on


def case_json(case: Case, version: int, policy: Policy, now: int) -> dict[str, Any]:
    """A case with its SLA clocks (`core.sla.clocks`, the one SLA clock view)."""
    return {
        "id": case.id,
        "status": case.status,
        "customer": case.customer,
        "category": case.category,
        "priority": case.priority,
        "title": case.title,
        "description": case.description,
        "level": case.level,
        "matrix": case.matrix,
        "assignee": case.assignee,
        "acknowledged": case.acknowledged,
        "dedup_key": case.dedup_key,
        "fields": dict(case.fields),
        "tags": list(case.tags),
        "opened_at": format_utc(case.opened_at),
        "updated_at": format_utc(case.updated_at),
        "policy_version": version,
        "sla": sla.clocks(case, policy, now),
    }


def case_page(
    conn: Connection, filters: Mapping[str, object], limit: int, offset: int
) -> tuple[list[tuple[Case, int]], int]:
    """One page of cases in opening order, with the count of all that match `filters`."""
    q = select(cases.c.id, cases.c.state, cases.c.policy_version)
    for col in FILTERS:
        value = filters.get(col)
        if value is not None:
            q = q.where(cases.c[col] == value)
    total_q = select(func.count()).select_from(q.subquery())
    q = q.order_by(cases.c.opened_at, cases.c.id).limit(limit).offset(offset)
    rows = conn.execute(q).all()
    total = conn.execute(total_q).scalar_one()
    return [(Case.from_dict(loads(r.state)), r.policy_version) for r in rows], int(total)


def filter_error(
    conn: Connection, filters: Mapping[str, object], policy: Policy
) -> tuple[str, str] | None:
    """(filter, why) for the first filter value that can match no case, else None.

    A status must be one of the statuses; a customer or an assignee one the policy names, or
    one a stored case has (a customer since removed from the policy still lists its cases).
    """
    status = filters.get("status")
    if status is not None and status not in STATUSES:
        return "status", f"unknown status '{status}' (use {', '.join(STATUSES)})"
    for col, known, what in (
        ("customer", policy.customers, "customer"),
        ("assignee", policy.people, "person"),
    ):
        value = filters.get(col)
        if value is None or value in known:
            continue
        stored = conn.execute(select(cases.c.id).where(cases.c[col] == value).limit(1)).first()
        if stored is None:
            return col, f"unknown {what} '{value}': neither the policy nor any case names it"
    return None


def entries(conn: Connection, case_id: str, kinds: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The case's stored timeline entries, decoded, in order (only `kinds` when given)."""
    q = select(timeline.c.entry).where(timeline.c.case_id == case_id)
    if kinds:
        q = q.where(timeline.c.kind.in_(kinds))
    return [decode_entry(raw) for (raw,) in conn.execute(q.order_by(timeline.c.id))]


def timeline_rows(conn: Connection, case_id: str) -> list[dict[str, Any]]:
    """The timeline as the API shows it: the scenario JSON plus each entry's policy version."""
    rows = conn.execute(
        select(timeline.c.entry, timeline.c.policy_version)
        .where(timeline.c.case_id == case_id)
        .order_by(timeline.c.id)
    ).all()
    out = []
    for raw, version in rows:
        formatted = entry_json(decode_entry(raw))
        formatted["policy_version"] = version
        out.append(formatted)
    return out


def timeline_tail(
    conn: Connection, case_id: str, kinds: list[str], limit: int, before: int | None
) -> tuple[list[dict[str, Any]], int | None, list[str]]:
    """The newest `limit` entries (of `kinds`, all when empty) older than entry id `before`,
    oldest first; the id to pass as `before` for the page older than these (None: no older
    one); and every kind the case's timeline has. A long-lived case's page reads only these."""
    q = select(timeline.c.id, timeline.c.entry, timeline.c.policy_version).where(
        timeline.c.case_id == case_id
    )
    if kinds:
        q = q.where(timeline.c.kind.in_(kinds))
    if before is not None:
        q = q.where(timeline.c.id < before)
    rows = conn.execute(q.order_by(timeline.c.id.desc()).limit(limit + 1)).all()
    older = rows[limit - 1].id if len(rows) > limit else None
    out = []
    for row in reversed(rows[:limit]):
        formatted = entry_json(decode_entry(row.entry))
        formatted["policy_version"] = row.policy_version
        out.append(formatted)
    every = conn.execute(
        select(timeline.c.kind).where(timeline.c.case_id == case_id).distinct()
    ).scalars()
    return out, older, sorted(every)


def handoff_of(
    conn: Connection,
    case_id: str,
    policy_of: Callable[[int], Policy],
    now: int,
    level: int | None,
) -> dict[str, Any] | None:
    """The handoff context of a case (`core.handoff`), None when there is no such case;
    Refused (422 naming `level`) for a level the case's matrix does not have."""
    found = load_case(conn, case_id, lock=False)
    if found is None:
        return None
    case, version = found
    policy = policy_of(version)
    m = next((x for x in policy.matrices if x.id == case.matrix), None)
    if level is not None and m is not None and not 1 <= level <= len(m.levels):
        raise Refused(
            f"level {level} is not a level of matrix '{m.id}' (1..{len(m.levels)})", 422, "level"
        )
    changes = changes_between(conn, case.opened_at - CHANGE_WINDOW, case.opened_at, case.customer)
    return handoff(case, policy, now, entries(conn, case_id), level, changes)


def paged(conn: Connection, case_id: str) -> set[str]:
    """Everyone a case has paged, over its whole life."""
    return {e.get("to") for e in entries(conn, case_id, ("notified",))}
