"""The timer manager: due timer rows into the core as `timer` events, in due order.

Timers are rows taken by due time in batches (`rungs.store.claims`: `FOR UPDATE SKIP
LOCKED` on PostgreSQL), so the work per tick follows what is due. A batch shares one
savepoint, and its cases are loaded in one statement and saved in one, their facts rows
likewise (`rungs.store.facts.facts_batch`). When a decision
fails, the batch is rolled back to its savepoint and fired again with a savepoint per timer:
the one that fails leaves nothing of itself behind (never half a decision) and is kept and
tried again a minute later, so one bad case cannot stop the others. A failure
of the database itself (`unavailable`) is not the timer's: it fails the whole batch, which
the loop tries again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert

from rungs.core.model import Case, Event
from rungs.core.timers import due_timer
from rungs.engine.commands import Commands
from rungs.engine.writer import unavailable
from rungs.policy import Policy
from rungs.store.cases import load_cases, save_case, save_cases
from rungs.store.claims import claim_due, first_due
from rungs.store.facts import facts_batch
from rungs.store.sql import Sql, run_many
from rungs.store.tables import timers
from rungs.time.clock import Clock, VirtualClock

__all__ = ["RETRY_US", "Stats", "Timers"]

log = logging.getLogger("rungs.engine")
RETRY_US = 60_000_000  # a timer whose decision failed is tried again after a minute
_DELETE = Sql("DELETE FROM timers WHERE id = :id")


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
        """Fire up to one batch of timers due at or before `until`; returns how many fired.

        The batch shares one savepoint, its cases loaded in one statement and saved in one.
        When any of its decisions fails, the savepoint is rolled back and the batch is fired
        again one savepoint per timer (`careful`), so only the bad timer is kept back."""
        rows = claim_due(conn, timers, "due", until, limit=self.batch, order=("id",))
        if not rows:
            return 0
        try:
            with self.decisions.undoable(conn, "rungs_timers"):
                fired, late = self._fire(conn, rows, careful=False)
        except Exception as exc:
            if unavailable(exc) is not None:
                raise  # the database's trouble, not a timer's
            fired, late = self._fire(conn, rows, careful=True)
        for lateness in late:
            self._observe(lateness)
        return fired

    def _fire(
        self, conn: Connection, rows: Sequence[Any], *, careful: bool
    ) -> tuple[int, list[int]]:
        loaded = load_cases(conn, dict.fromkeys(r.case_id for r in rows), lock=True)
        if careful:
            return self._fire_each(conn, rows, loaded, careful=True)
        keys = [(case.opened_at, case.id) for case, _ in loaded.values()]
        with facts_batch(conn, keys):  # the cases' facts rows: one read, one write
            return self._fire_each(conn, rows, loaded, careful=False)

    def _fire_each(
        self,
        conn: Connection,
        rows: Sequence[Any],
        loaded: dict[str, tuple[Case, int]],
        *,
        careful: bool,
    ) -> tuple[int, list[int]]:
        dirty: dict[str, tuple[Case, int, Policy]] = {}  # saved together at the end (not careful)
        late: list[int] = []
        set_before = 0
        for i, row in enumerate(rows):
            if i and set_before and set_before < row.due:
                break  # a timer set by this batch comes first: re-select, keep the order
            if not run_many(conn, _DELETE, [{"id": row.id}]):
                continue  # replaced or cancelled by an earlier timer of this batch
            if isinstance(self.clock, VirtualClock):
                self.clock.set(max(self.clock.now(), row.due))
            now = max(self.clock.now(), row.due)
            found = loaded.get(row.case_id)
            earliest = 0  # a case that is gone: nothing to do
            if found is not None and not careful:
                timer = due_timer(row.key, row.due, json.loads(row.payload))
                new, earliest, policy = self.decisions.decide_loaded(
                    conn, *found, Event("timer", timer=timer), now
                )
                loaded[row.case_id] = (new, found[1])
                dirty[row.case_id] = (new, found[1], policy)
            elif found is not None:
                try:  # a row that does not read back (corrupt payload) is retried likewise
                    timer = due_timer(row.key, row.due, json.loads(row.payload))
                    with self.decisions.undoable(conn, "rungs_timer"):
                        new, earliest, policy = self.decisions.decide_loaded(
                            conn, *found, Event("timer", timer=timer), now
                        )
                        save_case(conn, new, found[1], policy)
                    loaded[row.case_id] = (new, found[1])
                except Exception as exc:
                    if unavailable(exc) is not None:
                        raise  # the database's trouble, not this timer's
                    # its writes are rolled back: keep the timer, retry it a minute later
                    log.exception("timer %s of case %s failed; retrying", row.key, row.case_id)
                    conn.execute(
                        insert(timers).values(
                            case_id=row.case_id, key=row.key, due=now + RETRY_US,
                            payload=row.payload,
                        )
                    )  # fmt: skip
                    continue
            if earliest:
                set_before = min(set_before or earliest, earliest)
            late.append(max(0, self.clock.now() - row.due))
        if dirty:
            save_cases(conn, dirty.values())
        return len(late), late

    def _observe(self, late: int) -> None:
        self.stats.fired += 1
        self.stats.last_lateness_us = late
        self.stats.lateness_sum_us += late
        if self.on_fired:
            self.on_fired(late)
