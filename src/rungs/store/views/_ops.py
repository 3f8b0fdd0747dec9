"""What operators read: health, counts for metrics, API tokens, heartbeat states."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select

from rungs.store.tables import cases, heartbeats, timers
from rungs.store.tokens import list_tokens

__all__ = ["counts", "heartbeat_states", "ping", "token_list"]


def ping(conn: Connection) -> None:
    """Raises when the database does not answer."""
    conn.execute(select(1))


def counts(conn: Connection) -> tuple[list[tuple[str, int]], int]:
    """(cases by status, timers waiting to come due), for `/metrics`."""
    by_status = conn.execute(select(cases.c.status, func.count()).group_by(cases.c.status)).all()
    pending = conn.execute(select(func.count()).select_from(timers)).scalar_one()
    return [(s, int(n)) for s, n in by_status], int(pending)


def token_list(conn: Connection) -> list[dict[str, Any]]:
    return [t.as_dict() for t in list_tokens(conn)]


def heartbeat_states(conn: Connection) -> list[dict[str, Any]]:
    """Every heartbeat's state: up (a beat is expected by `next_due`) or missed."""
    rows = conn.execute(select(heartbeats).order_by(heartbeats.c.integration)).all()
    return [
        {
            "integration": r.integration,
            "status": "up" if r.due is not None else "missed",
            "interval_us": r.interval,
            "last_beat": r.last_beat,
            "next_due": r.due,
            "missed_at": r.missed_at,
        }
        for r in rows
    ]
