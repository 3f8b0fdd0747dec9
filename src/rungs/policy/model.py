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
    "CONSOLE_ROLES",
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
    "InboundAddress",
    "Imap",
    "InboundEmail",
    "Surveys",
    "Policy",
    "CompensationBand",
    "CompensationTable",
    "Compensation",
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
CONSOLE_ROLES = ("viewer", "responder", "admin")  # a person's `console_role`, weakest first


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
    console_role: str = "responder"  # what they may do in the web console (CONSOLE_ROLES)


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
    contacts: tuple[str, ...] = ()  # addresses (lower case) that may write in for it
    domains: tuple[str, ...] = ()  # any sender at these domains (lower case) belongs to it
    owner: str | None = None  # the account owner (a person id): paged on a low survey rating


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


@dataclass(frozen=True, slots=True)
class InboundAddress:
    """One address of `inbound_email.addresses`: what a mail to it opens, or escalates."""

    category: str | None = None
    priority: str | None = None
    escalate: bool = False


@dataclass(frozen=True, slots=True)
class Imap:
    """An existing mailbox to poll (`inbound_email.imap`); secrets are read from `*_env`."""

    host: str
    user_env: str
    password_env: str
    port: int = 993
    tls: str = "tls"  # tls | starttls | none
    folder: str = "INBOX"


@dataclass(frozen=True, slots=True)
class InboundEmail:
    addresses: Mapping[str, InboundAddress]  # lower-case address -> what it does
    escalation_reason: str = "customer_request"
    reopen_within: int = 7 * 86_400_000_000  # µs: a later reply opens a new, linked case
    imap: Imap | None = None


@dataclass(frozen=True, slots=True)
class Surveys:
    """Satisfaction surveys after resolution (durations in µs, `sample` a percentage)."""

    after: int = 86_400_000_000
    scale: int = 5  # 5: ratings 1-5, 4 and 5 good; 2: 1 bad, 2 good
    expire: int = 28 * 86_400_000_000
    sample: int = 100
    per_contact: int = 30 * 86_400_000_000
    followup_at_or_below: int = 2

    def good(self, rating: int) -> bool:
        return rating >= (4 if self.scale == 5 else 2)


@dataclass(frozen=True, slots=True)
class CompensationBand:
    """One row of a tier's table: what a breach must be to earn `credit_percent`."""

    credit_percent: float
    metrics: frozenset[str] = frozenset()  # empty: any metric
    priorities: frozenset[str] = frozenset()  # empty: any priority
    overrun_at_least: float = 0.0  # percent of the target past it
    breaches_at_least: int = 1  # the breach's number among the customer's in the period


@dataclass(frozen=True, slots=True)
class CompensationTable:
    """A tier's bands (first match wins), its cap per period and its minimum amount."""

    bands: tuple[CompensationBand, ...]
    cap_percent: float = 100.0  # of the monthly fee, per customer and period
    minimum: float = 0.0  # a suggestion below this amount is 0


@dataclass(frozen=True, slots=True)
class Compensation:
    """Credit guidance for SLA breaches: never applied by itself."""

    version: str
    tiers: Mapping[str, CompensationTable]
    currency: str = ""


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
    inbound_email: InboundEmail | None = None
    surveys: Surveys | None = None
    compensation: Compensation | None = None

    def customer(self, cid: str) -> Customer | None:
        """The customer, or the `default_customer` profile named `cid`, or None."""
        found = self.customers.get(cid)
        if found is None and self.default_customer is not None:
            d = self.default_customer
            return Customer(cid, cid, d.tier, d.value, d.sla, d.partner, owner=d.owner)
        return found
