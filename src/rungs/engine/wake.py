"""Waking the engine loop early, only when a new timer comes before its planned wake-up.

The loop plans its next wake-up (`planned`); a decision that sets a timer due earlier marks
the wake-up, given once its transaction commits (woken before, the loop would not see the
row). Other processes' engines are woken by one `NOTIFY` per transaction on PostgreSQL.
"""

from __future__ import annotations

import threading

from sqlalchemy import Connection

from rungs.store.listen import TIMERS_CHANNEL, notify_once

__all__ = ["Wake"]


class Wake:
    def __init__(self, *, postgres: bool) -> None:
        self.event = threading.Event()
        # the instant the loop next wakes by itself (0 while it is busy): a new timer due
        # later than that needs no wake-up, so opening cases does not spin the loop
        self.planned = 0
        self._postgres = postgres
        self._at_commit = False

    def timer_set(self, conn: Connection, earliest: int) -> None:
        """In a decision's transaction: it set a timer due at `earliest` (0: none)."""
        if earliest:
            if self._postgres:
                notify_once(conn, TIMERS_CHANNEL)
            if not self.planned or earliest < self.planned:
                self._at_commit = True

    def committed(self, ok: bool) -> None:
        """On the writer thread after each transaction."""
        if self._at_commit:
            self._at_commit = False
            if ok:
                self.event.set()

    def set(self) -> None:
        self.event.set()

    def wait(self, seconds: float) -> None:
        if seconds > 0:
            self.event.wait(seconds)
        self.event.clear()
