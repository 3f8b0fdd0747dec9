"""Timers: one small type per kind, and the only place their keys and payloads are written
or read.

The shell stores a timer as the `ScheduleTimer` gives it (`key` is the `timers.key` column,
`payload` a JSON list), deletes by a `CancelTimers` prefix, and hands a due row back through
`due_timer(key, due, payload)`, which returns the typed timer `decide` dispatches on. Keys
and payloads are the ones stored since the first release, so rows written before still read.

| type          | key         | payload                              |
| ------------- | ----------- | ------------------------------------ |
| `LevelTimer`  | `level`     | level, epoch                         |
| `RepeatTimer` | `repeat`    | count, epoch                         |
| `SlaTimer`    | `sla:M`     | M                                    |
| `StepTimer`   | `step:N`    | person, via, level, epoch, reason    |
| `RuleTimer`   | `rule:ID`   | ID, reference instant                |

Each type builds its own effects (`schedule`, `cancel`) as class methods, so a decision
writes no key string of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rungs.core.model import CancelTimers, ScheduleTimer
from rungs.policy.model import METRICS

__all__ = [
    "DueTimer",
    "LevelTimer",
    "RepeatTimer",
    "RuleTimer",
    "SlaTimer",
    "StepTimer",
    "cancel_all",
    "due_timer",
    "timer_key",
]


@dataclass(slots=True)
class LevelTimer:
    """Level `level` of round `epoch` comes due."""

    level: int
    epoch: int
    due: int = 0

    @staticmethod
    def schedule(case: str, due: int, level: int, epoch: int) -> ScheduleTimer:
        return ScheduleTimer(case, "level", due, (level, epoch))

    @staticmethod
    def cancel(case: str) -> CancelTimers:
        return CancelTimers(case, "level")


@dataclass(slots=True)
class RepeatTimer:
    """The `count`th page of the last level again, in round `epoch`."""

    count: int
    epoch: int
    due: int = 0

    @staticmethod
    def schedule(case: str, due: int, count: int, epoch: int) -> ScheduleTimer:
        return ScheduleTimer(case, "repeat", due, (count, epoch))

    @staticmethod
    def cancel(case: str) -> CancelTimers:
        return CancelTimers(case, "repeat")


# Per metric, built once: an SLA timer is (re)set on nearly every decision that touches a clock.
_SLA_KEYS = {name: f"sla:{name}" for name in METRICS}
_SLA_PAYLOADS = {name: (name,) for name in METRICS}


@dataclass(slots=True)
class SlaTimer:
    """The SLA metric's next threshold (a warning or its target) comes due."""

    metric: str
    due: int = 0

    @staticmethod
    def schedule(case: str, due: int, metric: str) -> ScheduleTimer:
        return ScheduleTimer(case, _SLA_KEYS[metric], due, _SLA_PAYLOADS[metric])

    @staticmethod
    def cancel(case: str, metric: str) -> CancelTimers:
        return CancelTimers(case, _SLA_KEYS[metric])


@dataclass(slots=True)
class StepTimer:
    """A later step of a person's own notification rules (`seq` numbers it in the case)."""

    seq: int
    person: str
    via: str
    level: int
    epoch: int
    reason: str
    due: int = 0

    @staticmethod
    def schedule(
        case: str, due: int, seq: int, person: str, via: str, level: int, epoch: int, reason: str
    ) -> ScheduleTimer:
        return ScheduleTimer(case, f"step:{seq}", due, (person, via, level, epoch, reason))

    @staticmethod
    def cancel(case: str) -> CancelTimers:
        """Every pending step of the case."""
        return CancelTimers(case, "step:")


@dataclass(slots=True)
class RuleTimer:
    """A rule's `age_over` is reached (counted from `ref`)."""

    rule: str
    ref: int
    due: int = 0

    @staticmethod
    def schedule(case: str, due: int, rule: str, ref: int) -> ScheduleTimer:
        return ScheduleTimer(case, f"rule:{rule}", due, (rule, ref))


DueTimer = LevelTimer | RepeatTimer | SlaTimer | StepTimer | RuleTimer


def cancel_all(case: str) -> CancelTimers:
    """Every timer of the case (resolve, close)."""
    return CancelTimers(case, "")


Payload = Sequence[Any]
_SLA_OF_KEY = {key: metric for metric, key in _SLA_KEYS.items()}


def due_timer(key: str, due: int, payload: Payload) -> DueTimer:
    """The typed timer of a stored row, as `decide` takes it in `Event("timer", timer=...)`.

    Every due timer passes here (the commonest kinds first).
    """
    metric = _SLA_OF_KEY.get(key)
    if metric is not None:
        return SlaTimer(metric, due)
    if key == "level":
        return LevelTimer(payload[0], payload[1], due)
    kind, _, rest = key.partition(":")
    if kind == "step":
        person, via, level, epoch, reason = payload
        return StepTimer(int(rest), person, via, level, epoch, reason, due)
    if key == "repeat":
        return RepeatTimer(payload[0], payload[1], due)
    if kind == "rule":
        return RuleTimer(payload[0], payload[1], due)
    raise ValueError(f"unknown timer key {key!r}")


def timer_key(t: DueTimer) -> str:
    """The key a due timer was stored under: `due_timer`'s inverse, for the input journal."""
    match t:
        case SlaTimer():
            return _SLA_KEYS[t.metric]
        case LevelTimer():
            return "level"
        case StepTimer():
            return f"step:{t.seq}"
        case RepeatTimer():
            return "repeat"
        case RuleTimer():
            return f"rule:{t.rule}"
    raise ValueError(f"unknown timer {t!r}")
