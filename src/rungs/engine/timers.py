"""The timer manager: due timer rows into the core as `timer` events, in due order.

Timers are rows taken by due time in batches (`rungs.store.claims`: `FOR UPDATE SKIP
LOCKED` on PostgreSQL), so the work per tick follows what is due. Each timer's decision runs
in a savepoint: one that fails leaves nothing of itself behind (never half a decision) and
is kept and tried again a minute later, so one bad case cannot stop the others. A failure
of the database itself (`unavailable`) is not the timer's: it fails the whole batch, which
the loop tries again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, delete, insert

from rungs.core.model import Event, Refused
from rungs.core.timers import due_timer
from rungs.engine.commands import Commands
from rungs.engine.writer import unavailable
from rungs.store.claims import claim_due, first_due
from rungs.store.sql import savepoint
from rungs.store.tables import timers
from rungs.time.clock import Clock, VirtualClock

__all__ = ["RETRY_US", "Stats", "Timers"]

log = logging.getLogger("rungs.engine")
RETRY_US = 60_000_000  # a timer whose decision failed is tried again after a minute


@dataclass
class Stats:
    fired: int = 0
    last_lateness_us: int = 0
    lateness_sum_us: int = 0


class Timers:
    """The engine manager of case timers: `next_due(conn)`, `fire_due(conn, until)`."""

    name = "timers"

    def __init__(self, decisions: Commands, clock: Clock, *, batch: int = 500) -> None:
        self.decisions = decisions
        self.clock = clock
        self.batch = batch
        self.stats = Stats()
        self.on_fired: Callable[[int], None] | None = None  # lateness observer (metrics)

    def next_due(self, conn: Connection) -> int | None:
        return first_due(conn, timers, "due")

    def fire_due(self, conn: Connection, until: int) -> int:
        """Fire up to one batch of timers due at or before `until`; returns how many fired."""
        rows = claim_due(conn, timers, "due", until, limit=self.batch, order=("id",))
        fired = 0
        set_before = 0
        for i, row in enumerate(rows):
            if i and set_before and set_before < row.due:
                break  # a timer set by this batch comes first: re-select, keep the order
            gone = conn.execute(delete(timers).where(timers.c.id == row.id)).rowcount
            if not gone:
                continue  # replaced or cancelled by an earlier timer of this batch
            if isinstance(self.clock, VirtualClock):
                self.clock.set(max(self.clock.now(), row.due))
            now = max(self.clock.now(), row.due)
            try:  # a row that does not read back (corrupt payload) is retried like a failure
                timer = due_timer(row.key, row.due, json.loads(row.payload))
                with savepoint(conn, "rungs_timer"):
                    _, earliest = self.decisions.decide_in(
                        conn, row.case_id, Event("timer", timer=timer), now
                    )
            except Refused:
                earliest = 0  # the case is gone: nothing to do
            except Exception as exc:
                if unavailable(exc) is not None:
                    raise  # the database's trouble, not this timer's
                # its writes are rolled back: keep the timer, retry it a minute later
                log.exception("timer %s of case %s failed; retrying", row.key, row.case_id)
                conn.execute(
                    insert(timers).values(
                        case_id=row.case_id, key=row.key, due=now + RETRY_US, payload=row.payload
                    )
                )
                continue
            if earliest:
                set_before = min(set_before or earliest, earliest)
            fired += 1
            self._observe(max(0, self.clock.now() - row.due))
        return fired

    def _observe(self, late: int) -> None:
        self.stats.fired += 1
        self.stats.last_lateness_us = late
        self.stats.lateness_sum_us += late
        if self.on_fired:
            self.on_fired(late)
