"""Reads for issue 17: a case's alerts (grouped cases), and maintenance windows."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select

from rungs.store.alerts import alert_count, case_alerts
from rungs.store.maintenance import window_json
from rungs.store.tables import maintenance

__all__ = ["alerts_of", "open_count", "window_by_id"]


def alerts_of(conn: Connection, case_id: str) -> dict[str, Any]:
    """`alert_count` and `alerts` (each with its own status) of a case. A case no router
    decided (an ungrouped integration's) counts its one alert and lists none."""
    count = alert_count(conn, case_id)
    return {"alert_count": count or 1, "alerts": case_alerts(conn, case_id) if count else []}


def window_by_id(conn: Connection, window: int, now: int) -> dict[str, Any] | None:
    r = conn.execute(select(maintenance).where(maintenance.c.id == window)).first()
    return None if r is None else window_json(r, now)


def open_count(conn: Connection, now: int) -> int:
    """Windows under way or to come."""
    q = select(func.count()).where(
        maintenance.c.ends_at > now, maintenance.c.cancelled_at.is_(None)
    )
    return int(conn.execute(q).scalar_one())
