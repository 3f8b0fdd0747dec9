"""The case state, the events that reach it and the effects the core asks the shell to carry out.

Everything here is plain data that round-trips through JSON (`to_dict` / `from_dict`), so a case
can be cut at any instant, stored and continued with the same result.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rungs.policy.model import STATUSES

if TYPE_CHECKING:  # only for the annotation of `Event.timer`: timers.py builds these effects
    from rungs.core.timers import DueTimer

__all__ = [
    "STATUSES",
    "ENDED",
    "Metric",
    "Case",
    "Event",
    "Record",
    "Notify",
    "ScheduleTimer",
    "CancelTimers",
    "CallWebhook",
    "Notice",
    "Effect",
    "Refused",
]

ENDED = ("resolved", "closed")
"""The statuses in which a case is no longer worked on: no timer does anything any more."""


class Refused(Exception):
    """An action the case or the policy does not allow; nothing changes.

    `status` is the HTTP status the API answers with: 409 when the case's state forbids the
    action, 422 when the input itself is wrong (an unknown reason, customer or level).
    """

    def __init__(self, message: str, status: int = 409, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.field = field


@dataclass(slots=True)
class Metric:
    """One SLA clock: `idle` (not started), `running`, `paused` or `stopped`.

    Slotted: a case's metrics are copied on write by every decision that touches them, and a
    slotted copy is a fraction of the size of one with an attribute dict.
    """

    state: str = "idle"
    acc: int = 0
    since: int = 0
    passed: tuple[int, ...] = ()  # warn percentages reached (warned, or passed silently)
    breached: bool = False
    segments: tuple[tuple[int, int], ...] = ()  # counted stretches of the current measurement
    started: int = 0

    def copy(self) -> Metric:
        # every field is immutable: a shallow copy is a copy
        return Metric(
            self.state,
            self.acc,
            self.since,
            self.passed,
            self.breached,
            self.segments,
            self.started,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "acc": self.acc,
            "since": self.since,
            "passed": list(self.passed),
            "breached": self.breached,
            "segments": [list(s) for s in self.segments],
            "started": self.started,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Metric:
        return cls(
            d["state"],
            d["acc"],
            d["since"],
            tuple(d["passed"]),
            d["breached"],
            tuple((a, b) for a, b in d["segments"]),
            d.get("started", 0),
        )


@dataclass(slots=True)
class Case:
    """A case's whole state: what `decide` reads and returns, and what the store persists.

    Slotted: every decision copies the case, and a copy of its slots is a third of the size
    of a copy of an attribute dict (31 fields are more than CPython shares dict keys for).
    """

    id: str
    customer: str
    category: str
    priority: str
    title: str
    matrix: str
    opened_at: int
    status: str = "open"
    level: int = 1
    description: str = ""
    fields: Mapping[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    dedup_key: str | None = None
    assignee: str | None = None
    epoch: int = 0  # bumped by every reopen
    epoch_start: int = 0  # opening or the last reopening
    acknowledged: bool = False  # since epoch_start
    responded: bool = False
    resume_status: str | None = None  # the status a customer reply returns to from pending
    level_acc: int = 0  # level-timing time counted before level_since
    level_since: int | None = 0  # None while level timing is paused (pending)
    next_level: int = 0  # the level the pending level timer is for, 0 for none
    repeats: int = 0
    metrics: dict[str, Metric] = field(default_factory=dict)
    rules_true: frozenset[str] = frozenset()
    happened: frozenset[str] = frozenset()  # "sla_breached:resolution", "sla_warning:..."
    seq: int = 0
    updated_at: int = 0
    resolved_at: int | None = None
    failed: Mapping[str, list[str]] = field(default_factory=dict)  # person -> dead channels
    alerts: int = 1  # triggers folded into this case by its dedup key
    paged: Mapping[str, str] = field(default_factory=dict)  # this round: person -> channel

    def copy(self) -> Case:
        """A copy that `decide` may change without touching the caller's case.

        Every field is an immutable value or a container replaced, never changed, on write
        (the metrics dict: `Ctx.metric` copies it, and each metric, on first write), so a
        shallow copy is a copy. Written out field by field: slots have no bulk copy, and a
        loop over the names (or `Case(**...)`) costs several times as much on every decision.
        `test_case_copy_copies_every_field` keeps this list complete.
        """
        c = _new_case(Case)
        c.id = self.id
        c.customer = self.customer
        c.category = self.category
        c.priority = self.priority
        c.title = self.title
        c.matrix = self.matrix
        c.opened_at = self.opened_at
        c.status = self.status
        c.level = self.level
        c.description = self.description
        c.fields = self.fields
        c.tags = self.tags
        c.dedup_key = self.dedup_key
        c.assignee = self.assignee
        c.epoch = self.epoch
        c.epoch_start = self.epoch_start
        c.acknowledged = self.acknowledged
        c.responded = self.responded
        c.resume_status = self.resume_status
        c.level_acc = self.level_acc
        c.level_since = self.level_since
        c.next_level = self.next_level
        c.repeats = self.repeats
        c.metrics = self.metrics
        c.rules_true = self.rules_true
        c.happened = self.happened
        c.seq = self.seq
        c.updated_at = self.updated_at
        c.resolved_at = self.resolved_at
        c.failed = self.failed
        c.alerts = self.alerts
        c.paged = self.paged
        return c

    def to_dict(self) -> dict[str, Any]:
        d = {name: getattr(self, name) for name in _CASE_FIELDS}
        d["fields"] = dict(self.fields)
        d["tags"] = list(self.tags)
        d["metrics"] = {k: m.to_dict() for k, m in self.metrics.items()}
        d["rules_true"] = sorted(self.rules_true)
        d["happened"] = sorted(self.happened)
        d["failed"] = dict(self.failed)
        d["paged"] = dict(self.paged)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Case:
        c = cls.__new__(cls)
        for name in _CASE_FIELDS:
            object.__setattr__(c, name, d.get(name, _DEFAULTS.get(name)))
        c.fields = dict(d["fields"])
        c.tags = tuple(d["tags"])
        c.metrics = {k: Metric.from_dict(m) for k, m in d["metrics"].items()}
        c.rules_true = frozenset(d["rules_true"])
        c.happened = frozenset(d["happened"])
        c.failed = dict(d.get("failed") or {})
        c.paged = dict(d.get("paged") or {})
        return c


_CASE_FIELDS = tuple(Case.__dataclass_fields__)
_new_case = object.__new__
# Fields added after cases were first stored: a case stored before reads them as these.
# `paged` starts empty: a round begun before it existed sends no "handled by" notices.
_DEFAULTS: dict[str, Any] = {"failed": {}, "alerts": 1, "paged": {}}


@dataclass(slots=True)
class Event:
    """One input to a case: a story action, an API call, or a timer coming due."""

    kind: str
    by: str | None = None
    reason: str | None = None
    to_level: int | None = None
    to: str | None = None
    priority: str | None = None
    data: Mapping[str, Any] | None = None  # `open`: customer, category, priority, title, ...
    timer: DueTimer | None = None  # `timer`: see `rungs.core.timers.due_timer`
    source_user: str | None = None  # who a sender says acted (Opsgenie's `user`): unchecked
    actor: str | None = None  # who was authenticated for it: an API token's name, `link`, ...


@dataclass(slots=True)
class Record:
    """Append a timeline entry (a dict with `at`, `case`, `kind` and the kind's fields)."""

    entry: dict[str, Any]


@dataclass(slots=True)
class Notify:
    """Send one message: the outbox row. `key` is the idempotency key."""

    case: str
    person: str
    channel: str
    level: int
    reason: str
    key: str


@dataclass(slots=True)
class ScheduleTimer:
    """Schedule (or replace) the case's timer `key`."""

    case: str
    key: str
    due: int
    payload: tuple[Any, ...] = ()


@dataclass(slots=True)
class CancelTimers:
    """Cancel the case's timers whose key starts with `prefix` (`""`: every timer)."""

    case: str
    prefix: str


@dataclass(slots=True)
class CallWebhook:
    case: str
    url: str
    body: dict[str, Any]
    key: str


@dataclass(slots=True)
class Notice:
    """Tell a person paged this round that someone else handled the case (`about`:
    acknowledged or resolved): an outbox row of kind `notice`. `key` is the idempotency key."""

    case: str
    person: str
    channel: str
    about: str
    by: str | None
    level: int
    title: str
    key: str


Effect = Record | Notify | ScheduleTimer | CancelTimers | CallWebhook | Notice
