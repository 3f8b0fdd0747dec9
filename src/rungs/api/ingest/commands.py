"""What a sender's body asks of the engine, as plain values: the seam between the pure
`to_commands` of each format and the routes that submit them.

A `Trigger` opens a case (or repeats the open one with the same dedup key), an `Act`
acknowledges or resolves the open case of a dedup key, a `Beat` records a heartbeat. `Invalid`
is a body the format allows but the action refuses (a missing dedup key, a bad timestamp); each
route answers it in its sender's format. `Unreadable` is one alert of a batch that cannot be
read: it is answered, and the batch's other alerts are still taken.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from rungs.core.model import Event
from rungs.engine.integrations import scoped_key
from rungs.policy.model import Integration

__all__ = [
    "Act",
    "Beat",
    "CaseCommand",
    "Command",
    "Invalid",
    "Trigger",
    "Unreadable",
    "act",
    "new_key",
]


@dataclass(frozen=True, slots=True)
class Trigger:
    """Open a case from `data` (`case_data`), or add `repeat` to the open one."""

    key: str  # the sender's dedup key, as answered (the case's is scoped to the integration)
    data: dict[str, Any]
    repeat: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Act:
    """Apply `event` (acknowledge or resolve) to the open case of `dedup_key`, if any."""

    key: str  # the sender's dedup key, as answered
    dedup_key: str  # the case's: scoped to the integration
    event: Event


@dataclass(frozen=True, slots=True)
class Beat:
    """A heartbeat of `integration`: the next one is due an interval from now."""

    integration: Integration


@dataclass(frozen=True, slots=True)
class Unreadable:
    """One alert of a batch that cannot be read: `field` locates it in the body."""

    field: str
    message: str


CaseCommand = Trigger | Act  # what an alert asks of a case: the engine's command calls
Command = Trigger | Act | Beat


class Invalid(Exception):
    """A body its format's schema allows but its action cannot take; nothing was submitted."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message, self.field = message, field


def act(
    integ: Integration,
    key: str,
    kind: str,
    by: str | None = None,
    *,
    reason: str | None = None,
    source_user: str | None = None,
) -> Act:
    """`kind` (acknowledge or resolve) on the sender's `key`, by `by` or the integration,
    with the sender's `reason` and `source_user` when it gives them."""
    event = Event(kind, by=by or f"integration:{integ.id}", reason=reason, source_user=source_user)
    return Act(key, scoped_key(integ.id, key), event)


def new_key() -> str:
    """A dedup key for an alert that came without one (the routes pass it as `fresh`)."""
    return uuid.uuid4().hex
