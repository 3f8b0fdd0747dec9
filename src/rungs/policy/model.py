"""The compiled policy: immutable objects with ids resolved, ready for the core.

Durations are integer microseconds (see `rungs.time.instant`); calendars are
`rungs.time.calendar.Calendar`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rungs.policy.channels import Channels
from rungs.policy.rate import Rate
from rungs.schedules.oncall import Schedule
from rungs.time.calendar import Calendar

__all__ = [
    "STATUSES",
    "PRIORITIES",
    "METRICS",
    "MATCH_KEYS",
    "CHANNELS",
    "Target",
    "NotifyStep",
    "Person",
    "Team",
    "Partner",
    "Customer",
    "SlaTargets",
    "SlaPolicy",
    "Level",
    "Repeat",
    "Matrix",
    "Action",
    "Rule",
    "IntegrationOptions",
    "Grouping",
    "Storm",
    "Flap",
    "AlertmanagerOptions",
    "HeartbeatOptions",
    "Integration",
    "Policy",
]

STATUSES = ("open", "acknowledged", "pending", "resolved", "closed")  # a case's statuses

PRIORITIES = ("P1", "P2", "P3", "P4")
METRICS = ("first_response", "next_response", "resolution")
# The case fields a matrix can match on (rules may test these and more).
MATCH_KEYS = (
    "customer",
    "partner",
    "tier",
    "site",
    "device_group",
    "device",
    "category",
    "priority",
)
CHANNELS = ("email", "sms", "voice", "slack", "webhook", "apprise")


@dataclass(frozen=True, slots=True)
class Target:
    """`person:ID`, `team:ID` or `schedule:ID`."""

    kind: str
    id: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.id}"


@dataclass(frozen=True, slots=True)
class NotifyStep:
    after: int
    via: str


DEFAULT_STEPS = (NotifyStep(0, "email"),)


@dataclass(frozen=True, slots=True)
class Person:
    id: str
    name: str
    contacts: Mapping[str, str]
    notify: tuple[NotifyStep, ...] = DEFAULT_STEPS
    timezone: str | None = None


@dataclass(frozen=True, slots=True)
class Team:
    id: str
    name: str
    members: tuple[str, ...]
    schedule: str | None = None
    skills: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Partner:
    id: str
    name: str
    sla: str | None = None


@dataclass(frozen=True, slots=True)
class Customer:
    id: str
    name: str
    tier: str | None = None
    value: float | None = None
    sla: str | None = None
    partner: str | None = None
    sites: tuple[str, ...] = ()
    device_groups: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SlaTargets:
    first_response: int | None
    next_response: int | None
    resolution: int | None

    def get(self, metric: str) -> int | None:
        return getattr(self, metric)


@dataclass(frozen=True, slots=True)
class SlaPolicy:
    id: str
    calendar: Calendar
    warn_at: tuple[int, ...]
    pause_on: frozenset[str]
    targets: Mapping[str, SlaTargets]


@dataclass(frozen=True, slots=True)
class Level:
    number: int
    name: str
    after: int
    unless: str
    notify: tuple[Target, ...]
    fallback: Target | None = None


@dataclass(frozen=True, slots=True)
class Repeat:
    """Page the last level again every `every`, `times` times, while its condition fails."""

    every: int
    times: int


@dataclass(frozen=True, slots=True)
class Matrix:
    id: str
    match: Mapping[str, frozenset[str]]
    levels: tuple[Level, ...]
    calendar: Calendar
    repeat: Repeat | None = None
    order: int = 0

    @property
    def specificity(self) -> int:
        return len(self.match)


@dataclass(frozen=True, slots=True)
class Action:
    """One rule action: notify, assign, escalate, set_priority or webhook."""

    kind: str
    targets: tuple[Target, ...] = ()
    to_level: int | None = None
    priority: str | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    when: Mapping[str, frozenset[str | int]]  # `level` holds numbers, the others strings
    then: tuple[Action, ...]
    age_over: int | None = None
    age_since: str = "opened"
    calendar: Calendar | None = None


@dataclass(frozen=True, slots=True)
class Grouping:
    """`group_by`: alerts with the same values of these labels or fields share one case,
    while it is open and (with `window`, µs) opened less than `window` ago; `resolve`: the
    case resolves when `all` its alerts have resolved, or when `any` has."""

    by: tuple[str, ...]
    window: int | None = None
    resolve: str = "all"


@dataclass(frozen=True, slots=True)
class Storm:
    """More than `cases` cases opened in `window` (µs): further alerts join one storm case."""

    cases: int
    window: int


@dataclass(frozen=True, slots=True)
class Flap:
    """An alert changing state (firing, resolved) more than `count` times in `window` (µs)
    is flapping: it stays open, without a page per change, until quiet for `window`."""

    count: int
    window: int


@dataclass(frozen=True, slots=True, kw_only=True)
class IntegrationOptions:
    """What every sender format may set (`pagerduty`, `opsgenie` and `events` set only this)."""

    severity_map: Mapping[str, str] = field(default_factory=dict)  # severity -> priority
    rate_limit: Rate | None = None  # per integration key
    grouping: Grouping | None = None  # alerts of a group attach to one case (off: None)
    storm: Storm | None = None  # the storm guard (off: None)
    flap: Flap | None = None  # flapping alerts stay open, quietly (off: None)


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertmanagerOptions(IntegrationOptions):
    dedup: str = "fingerprint"  # or `group_key`: one case per alert group


@dataclass(frozen=True, slots=True, kw_only=True)
class HeartbeatOptions(IntegrationOptions):
    interval: int  # µs: a beat missing this long opens a case


@dataclass(frozen=True, slots=True)
class Integration:
    id: str
    format: str
    key: str | None
    key_env: str | None
    defaults: Mapping[str, str]
    matrix: str | None = None
    # AlertmanagerOptions for `alertmanager`, HeartbeatOptions for `heartbeat`, else the base
    options: IntegrationOptions = IntegrationOptions()


@dataclass(frozen=True, eq=False)
class Policy:
    version: int
    timezone: str
    calendars: Mapping[str, Calendar]
    people: Mapping[str, Person]
    teams: Mapping[str, Team]
    partners: Mapping[str, Partner]
    customers: Mapping[str, Customer]
    sla_policies: Mapping[str, SlaPolicy]
    matrices: tuple[Matrix, ...]
    rules: tuple[Rule, ...]
    reasons: tuple[str, ...]
    schedules: Mapping[str, Schedule]
    integrations: Mapping[str, Integration]
    default_customer: Customer | None = None
    channels: Channels = field(default_factory=Channels)
    links: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""
    folder: str = "."

    def customer(self, cid: str) -> Customer | None:
        """The customer, or the `default_customer` profile named `cid`, or None."""
        found = self.customers.get(cid)
        if found is None and self.default_customer is not None:
            d = self.default_customer
            return Customer(cid, cid, d.tier, d.value, d.sla, d.partner)
        return found
