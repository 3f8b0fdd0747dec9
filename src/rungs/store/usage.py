"""What is in use, for a policy change that would remove it: the customers, matrices and
people of open cases, and the integrations that received events lately.

A person is in use when an open case is assigned to them (`person:ID`) or paged them in its
current round.
An integration received events when a case it opened or fed was updated since `since`, or
it beat (heartbeats) since then. Only the ids asked about are looked up: the state of a case is
read just for the rows whose JSON names one of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import ColumnElement, Connection, or_, select

from rungs.core.model import ENDED
from rungs.store.changes import changes
from rungs.store.jsonbytes import loads
from rungs.store.tables import cases, heartbeats

__all__ = ["in_use"]


def _naming(ids: Iterable[str]) -> list[ColumnElement[bool]]:
    """Row filters: the case's JSON state holds one of these ids as a string."""
    return [cases.c.state.contains(f'"{i}"', autoescape=True) for i in ids]


def _open_states(conn: Connection, ids: set[str]) -> list[tuple[str | None, dict[str, Any]]]:
    if not ids:
        return []
    assigned = [f"person:{i}" for i in ids]
    rows = conn.execute(
        select(cases.c.assignee, cases.c.state).where(
            cases.c.status.not_in(ENDED), or_(*_naming(ids), cases.c.assignee.in_(assigned))
        )
    ).all()
    return [(r.assignee, loads(r.state)) for r in rows]


def in_use(
    conn: Connection, removed: Mapping[str, Iterable[str]], since: int
) -> dict[str, list[str]]:
    """Of the ids in `removed` (by section: customers, matrices, people, integrations), those
    in use, by section (sections with none left out); sorted."""
    customers = set(removed.get("customers", ()))
    matrices = set(removed.get("matrices", ()))
    people = set(removed.get("people", ()))
    integrations = set(removed.get("integrations", ()))
    used: dict[str, set[str]] = {}
    if customers:
        rows = conn.execute(
            select(cases.c.customer)
            .where(cases.c.status.not_in(ENDED), cases.c.customer.in_(customers))
            .distinct()
        ).all()
        used["customers"] = {r.customer for r in rows}
    for assignee, state in _open_states(conn, matrices | people):
        if state.get("matrix") in matrices:
            used.setdefault("matrices", set()).add(state["matrix"])
        on_case = {*(state.get("paged") or {})}
        on_case.update(
            a.removeprefix("person:")
            for a in (assignee, state.get("assignee"))
            if isinstance(a, str) and a.startswith("person:")
        )
        used.setdefault("people", set()).update(people & on_case)
    if integrations:
        rows = conn.execute(
            select(cases.c.state).where(cases.c.updated_at >= since, or_(*_naming(integrations)))
        ).all()
        for r in rows:
            source = (loads(r.state).get("fields") or {}).get("integration")
            if source in integrations:
                used.setdefault("integrations", set()).add(source)
        beats = conn.execute(
            select(heartbeats.c.integration).where(
                heartbeats.c.integration.in_(integrations), heartbeats.c.last_beat >= since
            )
        ).all()
        used.setdefault("integrations", set()).update(r.integration for r in beats)
        sent = conn.execute(
            select(changes.c.integration).where(
                changes.c.integration.in_(integrations), changes.c.received_at >= since
            )
        ).all()
        used["integrations"].update(r.integration for r in sent)
    return {k: sorted(v) for k, v in used.items() if v}
