"""Waking the engine loop early, only when a new timer comes before its planned wake-up.

The loop plans its next wake-up (`plan`); a decision that sets a timer due earlier wakes it
once its transaction commits (woken before, the loop would not see the row). While the loop
is busy in a tick (no plan), a committed timer is kept instead (`_busy_min`) and the plan
that follows the tick takes it into account: waking the loop for every commit during a tick
kept it ticking for nothing under a stream of new cases (each tick being long enough for the
next commit to land in it). On PostgreSQL other processes' engines are told by a `NOTIFY`
that carries the timer's due instant (again if a later decision of the transaction sets a
sooner one), which they judge the same way (`remote`).
"""

from __future__ import annotations

import threading

from sqlalchemy import Connection

from rungs.store.listen import TIMERS_CHANNEL, notify_due

__all__ = ["Wake"]


class Wake:
    def __init__(self, *, postgres: bool) -> None:
        self.event = threading.Event()
        # the instant the loop next wakes by itself (0 while it is busy): a new timer due
        # later than that needs no wake-up, so opening cases does not spin the loop
        self.planned = 0
        self._postgres = postgres
        self._at_commit = 0  # the earliest timer the transaction under way set (0: none)
        self._busy_min = 0  # the earliest timer committed while the loop was busy (0: none)
        self._lock = threading.Lock()

    def timer_set(self, conn: Connection, earliest: int) -> None:
        """In a decision's transaction: it set a timer due at `earliest` (0: none)."""
        if earliest and (not self._at_commit or earliest < self._at_commit):
            self._at_commit = earliest
            if self._postgres:
                notify_due(conn, TIMERS_CHANNEL, earliest)

    def committed(self, ok: bool) -> None:
        """On the writer thread after each transaction."""
        at, self._at_commit = self._at_commit, 0
        if at and ok:
            self._due(at)

    def remote(self, said: str) -> None:
        """Another process committed a timer due at the instant `said` names (nothing: one
        from a version that did not say; wake)."""
        if said.isdigit():
            self._due(int(said))
        else:
            self.event.set()

    def _due(self, at: int) -> None:
        with self._lock:
            if not self.planned:  # busy: the plan after this tick sees it
                if not self._busy_min or at < self._busy_min:
                    self._busy_min = at
            elif at < self.planned:
                self.event.set()

    def busy(self) -> None:
        """The loop starts a tick: timers committed from now on are kept for its plan."""
        with self._lock:
            self.planned = 0
            self._busy_min = 0

    def plan(self, now: int, wait: float, least: float = 0.0) -> float:
        """The loop, after a tick, will sleep `wait` seconds from `now` (µs): shortened to a
        timer committed during the tick that is due sooner (but not below `least`);
        returns the wait, with the wake-up planned at its end."""
        with self._lock:
            if self._busy_min:
                wait = min(wait, max(least, (self._busy_min - now) / 1e6, 0.0))
                self._busy_min = 0
            self.planned = now + int(wait * 1e6)
            return wait

    def set(self) -> None:
        self.event.set()

    def wait(self, seconds: float) -> None:
        if seconds > 0:
            self.event.wait(seconds)
        self.event.clear()
