"""Timers as the shell stores them: a row's (key, due, payload) back into the core's `Timer`.

The shell never parses a timer key: it stores what `ScheduleTimer` gives and hands rows back
through `due_timer`.
"""

from __future__ import annotations

from typing import Any

from rungs.core.model import Timer

__all__ = ["due_timer"]


def due_timer(key: str, due: int, payload: tuple[Any, ...] | list[Any]) -> Timer:
    """The timer of a stored row, as `decide` takes it in `Event("timer", timer=...)`."""
    return Timer(key, due, tuple(payload))
