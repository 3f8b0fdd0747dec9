"""Heartbeat integrations: a beat sets the next due instant; a missed one opens a case.

State is one row per integration in `heartbeats`, with an indexed `due` column: the engine
loop claims the due rows like timers (`rungs.store.claims`), and under the virtual clock
`advance` takes them in due order among the timers. A missed heartbeat opens a case with the
dedup key `INTEGRATION:heartbeat` and clears `due`; the next beat resolves that case and sets
`due` again. Monitoring starts with the first beat.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, insert, select, update

from rungs.core.model import Event, Refused
from rungs.engine.integrations import heartbeat_case, heartbeat_key
from rungs.engine.policies import PolicyStore
from rungs.engine.wake import Wake
from rungs.policy.model import HeartbeatOptions, Integration
from rungs.store.cases import find_open
from rungs.store.claims import claim_due, first_due
from rungs.store.tables import heartbeats
from rungs.time.clock import Clock, VirtualClock

if TYPE_CHECKING:  # for annotations only: commands.py imports this module (`beat_in`)
    from rungs.engine.commands import Commands

__all__ = ["Heartbeats", "beat_in"]

log = logging.getLogger("rungs.engine")


def beat_in(
    conn: Connection, decisions: Commands, wake: Wake, integ: Integration, now: int
) -> dict[str, Any]:
    """Record a beat at `now`: the next one is due an interval later; an open
    missed-heartbeat case is resolved in the same transaction."""
    if not isinstance(integ.options, HeartbeatOptions):
        raise TypeError(f"integration '{integ.id}' is not a heartbeat")
    interval = integ.options.interval
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
    case_id = find_open(conn, heartbeat_key(integ))
    if case_id is not None:
        try:
            decisions.decide_in(conn, case_id, Event("resolve", by=f"heartbeat:{integ.id}"), now)
            resolved = case_id
        except Refused:
            pass
    wake.timer_set(conn, due)  # this may be the next thing due
    return {"last_beat": now, "next_due": due, "resolved": resolved}


class Heartbeats:
    """The engine manager of missed heartbeats: `next_due(conn)`, `fire_due(conn, until)`."""

    name = "heartbeats"

    def __init__(
        self, decisions: Commands, policies: PolicyStore, clock: Clock, *, batch: int = 500
    ) -> None:
        self.decisions = decisions
        self.policies = policies
        self.clock = clock
        self.batch = batch

    def next_due(self, conn: Connection) -> int | None:
        return first_due(conn, heartbeats, "due")

    def fire_due(self, conn: Connection, until: int) -> int:
        """Open a case for each heartbeat due at or before `until` (one batch)."""
        version = self.policies.current_version()
        policy = self.policies.policy(version)
        rows = claim_due(conn, heartbeats, "due", until, limit=self.batch, order=("integration",))
        fired = 0
        for row in rows:
            conn.execute(
                update(heartbeats)
                .where(heartbeats.c.integration == row.integration)
                .values(due=None, missed_at=row.due)
            )
            integ = policy.integrations.get(row.integration)
            if integ is None or integ.format != "heartbeat":
                continue  # no longer in the policy: forget it until it beats again
            if isinstance(self.clock, VirtualClock):
                self.clock.set(max(self.clock.now(), row.due))
            now = max(self.clock.now(), row.due)
            data = heartbeat_case(integ, row.last_beat, row.interval)
            repeat = {"source": f"heartbeat:{integ.id}", "summary": data["title"]}
            try:
                self.decisions.open_in(conn, data, version, policy, now, repeat=repeat)
            except Refused as exc:
                log.error("missed heartbeat '%s' could not open a case: %s", integ.id, exc)
                continue
            fired += 1
        return fired
