"""The one place that reads the wall clock. Everything else is handed `now`."""

from __future__ import annotations

import threading
import time

__all__ = ["Clock", "SystemClock", "VirtualClock"]


class Clock:
    virtual = False

    def now(self) -> int:
        """Microseconds since the epoch."""
        raise NotImplementedError


class SystemClock(Clock):
    def now(self) -> int:
        return time.time_ns() // 1000


class VirtualClock(Clock):
    """Time stands still until moved forward (tests and demos; never backwards)."""

    virtual = True

    def __init__(self, start: int) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> int:
        return self._now

    def set(self, t: int) -> None:
        with self._lock:
            if t < self._now:
                raise ValueError("the virtual clock cannot go backwards")
            self._now = t
