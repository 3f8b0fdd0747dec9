"""Heartbeat integrations: a beat sets the next due instant; a missed one opens a case.

State is one row per integration in `heartbeats`, with an indexed `due` column: the engine
loop takes the due rows (`FOR UPDATE SKIP LOCKED` on PostgreSQL) each tick, like timers, and
in virtual-clock mode `Service.advance` takes them in due order among the timers. A missed
heartbeat opens a case with the dedup key `INTEGRATION:heartbeat` and clears `due`; the next
beat resolves that case and sets `due` again. Monitoring starts with the first beat.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, func, insert, select, update

from rungs.core.model import Event, Refused
from rungs.engine.integrations import heartbeat_case, heartbeat_key
from rungs.policy.model import HeartbeatOptions, Integration
from rungs.store import repo
from rungs.store.tables import heartbeats
from rungs.time.clock import VirtualClock

if TYPE_CHECKING:
    from rungs.engine.service import Service

__all__ = ["beat", "fire_due", "next_due", "states"]

log = logging.getLogger("rungs.engine")


def next_due(service: Service, until: int | None = None) -> int | None:
    """The earliest due heartbeat (at or before `until` when given), or None."""
    with service.db.connect() as conn:
        first = conn.execute(select(func.min(heartbeats.c.due))).scalar()
    if first is None or (until is not None and first > until):
        return None
    return int(first)


def beat(service: Service, integ: Integration) -> dict[str, Any]:
    """Record a beat now: the next one is due an interval later; an open missed-heartbeat
    case is resolved in the same transaction."""
    if not isinstance(integ.options, HeartbeatOptions):
        raise TypeError(f"integration '{integ.id}' is not a heartbeat")
    interval = integ.options.interval

    def run(conn: Connection) -> dict[str, Any]:
        now = service.clock.now()
        due = now + interval
        q = select(heartbeats.c.integration).where(heartbeats.c.integration == integ.id)
        if conn.dialect.name == "postgresql":
            q = q.with_for_update()
        values = {"interval": interval, "last_beat": now, "due": due, "missed_at": None}
        if conn.execute(q).first() is None:
            conn.execute(insert(heartbeats).values(integration=integ.id, **values))
        else:
            conn.execute(
                update(heartbeats).where(heartbeats.c.integration == integ.id).values(**values)
            )
        resolved = None
        case_id = repo.find_open(conn, heartbeat_key(integ))
        if case_id is not None:
            event = Event("resolve", by=f"heartbeat:{integ.id}")
            try:
                service.decide_in(conn, case_id, event, now)
                resolved = case_id
            except Refused:
                pass
        service._after_write(conn, due)  # wake the engine: this may be the next thing due
        return {"last_beat": now, "next_due": due, "resolved": resolved}

    return service.writer.call(run)


def fire_due(service: Service, until: int, *, virtual: bool = False) -> int:
    """Open a case for each heartbeat due at or before `until` (one batch); returns how many."""
    if next_due(service, until) is None:
        return 0
    version = service.current_version()
    policy = service.policy(version)

    def run(conn: Connection) -> int:
        q = (
            select(heartbeats)
            .where(heartbeats.c.due.is_not(None), heartbeats.c.due <= until)
            .order_by(heartbeats.c.due, heartbeats.c.integration)
            .limit(service.batch)
        )
        if conn.dialect.name == "postgresql":
            q = q.with_for_update(skip_locked=True)
        fired = 0
        for row in conn.execute(q).all():
            conn.execute(
                update(heartbeats)
                .where(heartbeats.c.integration == row.integration)
                .values(due=None, missed_at=row.due)
            )
            integ = policy.integrations.get(row.integration)
            if integ is None or integ.format != "heartbeat":
                continue  # no longer in the policy: forget it until it beats again
            clock = service.clock
            if virtual and isinstance(clock, VirtualClock):
                clock.set(max(clock.now(), row.due))
            now = max(clock.now(), row.due)
            data = heartbeat_case(integ, row.last_beat, row.interval)
            repeat = {"source": f"heartbeat:{integ.id}", "summary": data["title"]}
            try:
                service.open_in(conn, data, version, policy, now, repeat=repeat)
            except Refused as exc:
                log.error("missed heartbeat '%s' could not open a case: %s", integ.id, exc)
                continue
            fired += 1
        return fired

    return service.writer.call(run)


def states(service: Service) -> list[dict[str, Any]]:
    """Every heartbeat's state: up (a beat is expected by `next_due`) or missed."""
    with service.db.connect() as conn:
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
