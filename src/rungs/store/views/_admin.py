"""What the console's Admin and People pages read besides tokens and heartbeats: each
integration's last event and health, the cases a person holds."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, func, or_, select

from rungs.core.model import ENDED
from rungs.policy import Policy
from rungs.store.changes import changes
from rungs.store.jsonbytes import loads
from rungs.store.tables import cases, heartbeats
from rungs.time.instant import format_utc

__all__ = ["held_cases", "integration_states"]

_SCAN = 50  # newest cases naming an integration read to find the one it opened last


def _naming(field: str, value: str) -> Any:
    """Rows whose compact JSON state holds `"field":"value"` (a pre-filter, checked after)."""
    return cases.c.state.contains(
        f'"{field}":{json.dumps(value, ensure_ascii=False)}', autoescape=True
    )


def _last_case(conn: Connection, integration: str) -> tuple[str, int] | None:
    rows = conn.execute(
        select(cases.c.id, cases.c.opened_at, cases.c.state)
        .where(_naming("integration", integration))
        .order_by(cases.c.opened_at.desc())
        .limit(_SCAN)
    ).all()
    for r in rows:
        if (loads(r.state).get("fields") or {}).get("integration") == integration:
            return r.id, r.opened_at
    return None


def integration_states(
    conn: Connection, policy: Policy, unset: list[dict[str, str]]
) -> list[dict[str, Any]]:
    """Per integration of the policy: its format, the last case it opened, its last beat or
    change event, the last of these (`last_event`), and its health: `no key` (its `key_env`
    is unset: it takes nothing), `missed` (a heartbeat overdue), `ok`, or `no events`."""
    no_key = {u["integration"] for u in unset}
    beats = {r.integration: r for r in conn.execute(select(heartbeats)).all()}
    last_change = dict(
        conn.execute(
            select(changes.c.integration, func.max(changes.c.received_at)).group_by(
                changes.c.integration
            )
        ).all()
    )
    out = []
    for integ in policy.integrations.values():
        case = _last_case(conn, integ.id)
        beat = beats.get(integ.id)
        times = [
            t
            for t in (
                case[1] if case else None,
                beat.last_beat if beat else None,
                last_change.get(integ.id),
            )
            if t is not None
        ]
        last = max(times) if times else None
        if integ.id in no_key:
            health = "no key"
        elif beat is not None and beat.due is None:
            health = "missed"
        elif last is None:
            health = "no events"
        else:
            health = "ok"
        out.append(
            {
                "id": integ.id,
                "format": integ.format,
                "key_env": integ.key_env,
                "health": health,
                "last_case": case[0] if case else None,
                "last_case_at": format_utc(case[1]) if case else None,
                "last_beat": format_utc(beat.last_beat) if beat else None,
                "last_change": format_utc(last_change[integ.id])
                if integ.id in last_change
                else None,
                "last_event": format_utc(last) if last is not None else None,
            }
        )
    return out


def held_cases(conn: Connection, person: str, limit: int = 200) -> list[dict[str, Any]]:
    """The cases not resolved or closed that `person` holds: assigned to them, or paged to
    them in the current round; oldest first."""
    assigned = f"person:{person}"
    rows = conn.execute(
        select(cases.c.id, cases.c.assignee, cases.c.state)
        .where(
            cases.c.status.not_in(ENDED),
            or_(
                cases.c.assignee == assigned,
                cases.c.state.contains(json.dumps(person, ensure_ascii=False), autoescape=True),
            ),
        )
        .order_by(cases.c.opened_at, cases.c.id)
    ).all()
    out = []
    for r in rows:
        state = loads(r.state)
        if r.assignee != assigned and person not in (state.get("paged") or {}):
            continue
        out.append(
            {
                "id": r.id,
                "title": state.get("title"),
                "status": state.get("status"),
                "priority": state.get("priority"),
                "level": state.get("level"),
                "customer": state.get("customer"),
                "assigned": r.assignee == assigned,
            }
        )
        if len(out) >= limit:
            break
    return out
