"""A case's inputs as the input journal keeps them, and back as the core's `Event`s.

An input is what one decision took: an action or an opening (its `Event` fields, only those
given), a delivery result (its data), or a timer firing. A firing is kept as its key, its
due instant and the instant it fired at: under a real clock the engine's loop fires a timer
a little after it is due, and commands decided meanwhile come before it, so the instant and
the order are the shell's and a re-run needs them to come out exactly the same. The timer's
payload is not kept: the re-run derives it (and checks it derived that timer at all).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rungs.core.model import Event
from rungs.core.timers import DueTimer, timer_key

__all__ = ["Input", "NOT_REPLAYABLE", "encode_event", "decode_input"]

NOT_REPLAYABLE = "not_replayable"
"""The journal's mark on a case stored before the journal existed (migration 0010)."""

_FIELDS = ("by", "reason", "to_level", "to", "priority", "data", "source_user", "actor")


@dataclass(frozen=True, slots=True)
class Input:
    """One journal row: `event` for everything but a timer firing, which has `key`/`due`."""

    case: str
    at: int
    version: int
    kind: str
    event: Event | None = None
    key: str | None = None
    due: int | None = None


def encode_event(event: Event) -> dict[str, Any]:
    """The journal's JSON object for an input (the `Event`'s fields that are set)."""
    kind = event.kind
    if kind == "timer":
        t: DueTimer = event.timer  # type: ignore[assignment]  # a timer event has its timer
        return {"kind": kind, "key": timer_key(t), "due": t.due}
    out: dict[str, Any] = {"kind": kind}
    for name in _FIELDS:
        value = getattr(event, name)
        if value is not None:
            out[name] = value
    return out


def decode_input(case: str, at: int, version: int, d: Mapping[str, Any]) -> Input:
    """A journal row back as an `Input` (the `Event` rebuilt, but for a timer firing)."""
    kind = str(d["kind"])
    if kind == "timer":
        return Input(case, at, version, kind, key=str(d["key"]), due=int(d["due"]))
    if kind == NOT_REPLAYABLE:
        return Input(case, at, version, kind)
    fields = {k: d[k] for k in _FIELDS if k in d}
    return Input(case, at, version, kind, event=Event(kind, **fields))
