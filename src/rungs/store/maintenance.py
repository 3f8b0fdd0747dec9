"""Maintenance windows as rows: added, listed, cancelled, and released at their end."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from rungs.core.maintenance import Window
from rungs.store.sql import no_nul
from rungs.store.tables import maintenance
from rungs.time.instant import format_utc

__all__ = ["add_window", "cancel_window", "mark_ended", "open_windows", "window_json", "windows"]


def add_window(
    conn: Connection,
    *,
    integrations: list[str],
    customers: list[str],
    start: int,
    end: int,
    reason: str,
    by: str,
    now: int,
) -> int:
    r = conn.execute(
        insert(maintenance)
        .values(integrations=json.dumps(integrations), customers=json.dumps(customers),
                starts_at=start, ends_at=end, reason=no_nul(reason),
                created_by=by, created_at=now)
        .returning(maintenance.c.id)
    )  # fmt: skip
    return int(r.scalar_one())


def window_of(r: Row[Any]) -> Window:
    return Window(r.id, frozenset(json.loads(r.integrations)), frozenset(json.loads(r.customers)),
                  r.starts_at, r.ends_at, r.reason)  # fmt: skip


def open_windows(conn: Connection) -> list[Window]:
    """Every window not yet released: under way, to come, or just over."""
    q = select(maintenance).where(maintenance.c.ended_at.is_(None)).order_by(maintenance.c.id)
    return [window_of(r) for r in conn.execute(q)]


def window_json(r: Row[Any], now: int) -> dict[str, Any]:
    state = (
        "cancelled" if r.cancelled_at is not None
        else "ended" if r.ends_at <= now
        else "active" if r.starts_at <= now
        else "scheduled"
    )  # fmt: skip
    return {
        "id": r.id,
        "integrations": json.loads(r.integrations),
        "customers": json.loads(r.customers),
        "from": format_utc(r.starts_at),
        "to": format_utc(r.ends_at),
        "reason": r.reason,
        "created_by": r.created_by,
        "created_at": format_utc(r.created_at),
        "state": state,
    }


def windows(conn: Connection, now: int, limit: int) -> list[dict[str, Any]]:
    """The latest windows first, as the API shows them."""
    q = select(maintenance).order_by(maintenance.c.id.desc()).limit(limit)
    return [window_json(r, now) for r in conn.execute(q)]


def cancel_window(conn: Connection, window: int, now: int) -> bool:
    """End a window now (one to come is dropped: it ends before it starts); False when there
    is no such window or it is already over."""
    r = conn.execute(
        select(maintenance).where(maintenance.c.id == window, maintenance.c.cancelled_at.is_(None))
    ).first()
    if r is None or r.ends_at <= now:
        return False
    conn.execute(
        update(maintenance)
        .where(maintenance.c.id == window)
        .values(cancelled_at=now, ends_at=now, starts_at=min(r.starts_at, now))
    )
    return True


def mark_ended(conn: Connection, window: int, now: int) -> None:
    conn.execute(update(maintenance).where(maintenance.c.id == window).values(ended_at=now))
