"""A case's facts, derived from its timeline: what reports aggregate, one row per case.

`derive(entries, terms)` reads a whole timeline; `steps(facts, entries, terms)` continues
from facts already derived with the entries a decision has just recorded (the engine keeps
a `case_facts` row this way, in the decision's transaction). Both run the same `_apply`, and
a property test holds them equal. Pure: the policy only reaches here as `Terms` (the
customer's tier, the SLA calendar and targets, people's time zones), built by `terms_for`.

The definitions these facts serve are printed with every report (`rungs.core.definitions`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from typing import Any
from weakref import WeakKeyDictionary
from zoneinfo import ZoneInfo

from rungs.policy.model import METRICS, Policy, SlaTargets
from rungs.time.calendar import WALL_CLOCK, Calendar
from rungs.time.instant import from_us

__all__ = [
    "CAUSES",
    "KINDS",
    "WINDOWS",
    "Facts",
    "MetricFacts",
    "Terms",
    "derive",
    "outcome",
    "page_window",
    "steps",
    "terms_for",
]

CAUSES = ("timer", "rule", "manual", "customer")
WINDOWS = ("business", "off_hours", "sleep")  # a page's window in the paged person's time
KINDS = frozenset(
    {
        "opened",
        "acknowledged",
        "responded",
        "customer_replied",
        "pending",
        "escalated",
        "assigned",
        "paused",
        "resumed",
        "sla_breached",
        "priority_changed",
        "resolved",
        "reopened",
        "closed",
        "notified",
    }
)
"""The entry kinds facts depend on: a decision that records none of them changes none."""

ENDED = ("resolved", "closed")


@dataclass(frozen=True, slots=True)
class Terms:
    """What facts need of the policy, for one customer."""

    tier: str | None = None
    calendar: Calendar = WALL_CLOCK
    targets: Mapping[str, SlaTargets] = field(default_factory=dict)  # priority -> targets
    zones: Mapping[str, tzinfo] = field(default_factory=dict)  # person -> zone
    zone: tzinfo = UTC  # the policy's zone, for people without their own

    def target(self, priority: str, metric: str) -> int | None:
        t = self.targets.get(priority)
        return None if t is None else t.get(metric)

    @property
    def clock(self) -> str:
        """`business` when the SLA counts on business hours, `calendar` when on wall time."""
        return "calendar" if self.calendar.hours is None else "business"


_TERMS: WeakKeyDictionary[Policy, dict[str, Terms]] = WeakKeyDictionary()


def terms_for(policy: Policy, customer: str) -> Terms:
    """The customer's terms under `policy`, built once per policy and customer."""
    per = _TERMS.get(policy)
    if per is None:
        per = _TERMS[policy] = {}
    found = per.get(customer)
    if found is not None:
        return found
    from rungs.core.plan import plan_of  # the SLA look-up the core itself uses

    c = policy.customer(customer)
    sla = plan_of(policy).sla_of(policy, customer)
    zone = ZoneInfo(policy.timezone)
    zones = {p.id: ZoneInfo(p.timezone) if p.timezone else zone for p in policy.people.values()}
    found = Terms(
        tier=c.tier if c is not None else None,
        calendar=sla.calendar if sla is not None else WALL_CLOCK,
        targets=sla.targets if sla is not None else {},
        zones=zones,
        zone=zone,
    )
    if len(per) < 10_000:  # default_customer takes any id: keep the cache bounded
        per[customer] = found
    return found


_QUARTER = 15 * 60 * 1_000_000  # every zone's offset is a multiple of 15 minutes
_WINDOWS_SEEN: dict[tuple[tzinfo, int], int] = {}


def page_window(at: int, zone: tzinfo) -> str:
    """`business` (08-18 Mon-Fri), `sleep` (22-08) or `off_hours` (the rest), locally."""
    return WINDOWS[_window_index(at, zone)]


def _window_index(at: int, zone: tzinfo) -> int:
    """`page_window` as an index of WINDOWS, remembered per zone and quarter hour (pages
    come in bursts: a quarter hour's are worked out once)."""
    key = (zone, at // _QUARTER)
    found = _WINDOWS_SEEN.get(key)
    if found is not None:
        return found
    local = from_us(at, zone)
    h = local.hour
    if h >= 22 or h < 8:
        found = 2
    elif h < 18 and local.weekday() < 5:
        found = 0
    else:
        found = 1
    if len(_WINDOWS_SEEN) > 4096:
        _WINDOWS_SEEN.clear()
    _WINDOWS_SEEN[key] = found
    return found


@dataclass(slots=True)
class MetricFacts:
    """One SLA metric: its state (`idle`, `running`, `paused`, `stopped`) and time counted.

    `business` is counted on the SLA's calendar, `calendar` on the wall clock, both up to the
    last pause or stop of the current measurement (a next-response cycle starts a new one).
    """

    state: str = "idle"
    breached_at: int | None = None
    business: int = 0
    calendar: int = 0
    since: int = 0  # running since

    def to_list(self) -> list[Any]:
        return [self.state, self.breached_at, self.business, self.calendar, self.since]

    @classmethod
    def from_list(cls, v: list[Any]) -> MetricFacts:
        return cls(*v)


@dataclass(slots=True)
class Facts:
    """Everything reports need of one case; see the module docstring."""

    case: str
    customer: str = ""
    tier: str | None = None
    category: str = ""
    priority: str = ""
    status: str = "open"
    resume_status: str = "open"
    opened_at: int = 0
    first_ack_at: int | None = None
    first_response_at: int | None = None
    resolved_at: int | None = None  # the last resolution, None once reopened
    closed_at: int | None = None
    level: int = 1
    levels: tuple[int, ...] = (1,)  # every level reached, ascending
    resolved_level: int | None = None
    resolved_holder: str | None = None
    escalations: int = 0
    causes: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)
    reopens: int = 0
    holders: tuple[str, ...] = ()  # `assigned` targets in order, a repeat in a row once
    pages: dict[str, list[int]] = field(default_factory=dict)  # person -> per WINDOWS
    metrics: dict[str, MetricFacts] = field(default_factory=dict)
    responded: bool = False
    last_at: int = 0

    @property
    def holder(self) -> str | None:
        return self.holders[-1] if self.holders else None

    @property
    def ping_pong(self) -> bool:
        """The case went back to a holder it had left (A -> B -> A)."""
        return len(set(self.holders)) < len(self.holders)

    @property
    def hops(self) -> int:
        return len(set(self.holders))

    @property
    def right_first_time(self) -> bool:
        return (
            self.status in ENDED and self.escalations == 0 and self.reopens == 0 and self.hops <= 1
        )

    def copy(self) -> Facts:
        return Facts.from_dict(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, without the fields still at their defaults (kept with every case)."""
        d: dict[str, Any] = {"case": self.case}
        for name, default in _SCALARS.items():
            v = getattr(self, name)
            if v != default:
                d[name] = v
        if self.levels != (1,):
            d["levels"] = list(self.levels)
        if self.holders:
            d["holders"] = list(self.holders)
        if self.causes:
            d["causes"] = dict(self.causes)
        if self.reasons:
            d["reasons"] = dict(self.reasons)
        if self.pages:
            d["pages"] = {k: list(v) for k, v in self.pages.items()}
        d["metrics"] = {k: m.to_list() for k, m in self.metrics.items()}
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Facts:
        f = cls(**{k: d[k] for k in _FIELDS if k in d})
        f.levels = tuple(d.get("levels", (1,)))
        f.holders = tuple(d.get("holders", ()))
        f.causes = dict(d.get("causes", {}))
        f.reasons = dict(d.get("reasons", {}))
        f.pages = {k: list(v) for k, v in d.get("pages", {}).items()}
        f.metrics = {
            k: MetricFacts(**v) if isinstance(v, dict) else MetricFacts.from_list(v)
            for k, v in d.get("metrics", {}).items()
        }
        return f


_FIELDS = tuple(Facts.__dataclass_fields__)
_SCALARS = {  # field -> default, for the fields that hold plain values
    name: f.default
    for name, f in Facts.__dataclass_fields__.items()
    if name not in ("case", "levels", "holders", "causes", "reasons", "pages", "metrics")
}


def outcome(f: Facts, metric: str, terms: Terms) -> str:
    """`met`, `breached`, `running`, `paused` or `not_applicable` (no target for the case's
    priority, or a metric that never started, such as next response without a reply)."""
    m = f.metrics.get(metric)
    if m is not None and m.breached_at is not None:
        return "breached"
    if m is None or m.state == "idle" or terms.target(f.priority, metric) is None:
        return "not_applicable"
    return {"stopped": "met", "paused": "paused", "running": "running"}[m.state]


def derive(entries: Iterable[Mapping[str, Any]], terms: Terms) -> Facts | None:
    """The facts of a whole timeline (None before its `opened` entry)."""
    facts: Facts | None = None
    for e in entries:
        if facts is None:
            if e["kind"] != "opened":
                continue
            facts = Facts(e["case"])
        _apply(facts, e, terms)
    return facts


def steps(
    facts: Facts | None,
    entries: Iterable[Mapping[str, Any]],
    terms: Terms,
    *,
    in_place: bool = False,
) -> Facts | None:
    """`facts` continued with later entries; `facts` itself is left unchanged, unless
    `in_place` (a caller's own copy, just read back: copying it again costs as much)."""
    out = facts if in_place or facts is None else facts.copy()
    for e in entries:
        if out is None:
            if e["kind"] != "opened":
                continue
            out = Facts(e["case"])
        _apply(out, e, terms)
    return out


def _metric(f: Facts, name: str) -> MetricFacts:
    m = f.metrics.get(name)
    if m is None:
        m = f.metrics[name] = MetricFacts()
    return m


def _start(m: MetricFacts, at: int) -> None:
    m.state, m.business, m.calendar, m.since = "running", 0, 0, at


def _bank(m: MetricFacts, at: int, terms: Terms, state: str) -> None:
    """Count the running stretch up to `at`, and leave the metric in `state`."""
    if m.state == "running":
        m.business += terms.calendar.elapsed_us(m.since, at)
        m.calendar += at - m.since
    m.state = state


def _stop(f: Facts, name: str, at: int, terms: Terms) -> None:
    m = f.metrics.get(name)
    if m is not None and m.state in ("running", "paused"):
        _bank(m, at, terms, "stopped")


def _apply(f: Facts, e: Mapping[str, Any], terms: Terms) -> None:
    """One entry, as the core meant it (see `rungs.core.decide` and `rungs.core.sla`)."""
    kind, at = e["kind"], e["at"]
    if kind not in KINDS:
        return  # `last_at` too: a decision without these kinds leaves the stored row alone
    f.last_at = at
    match kind:
        case "notified":
            person = str(e.get("to") or "")
            window = _window_index(at, terms.zones.get(person, terms.zone))
            counts = f.pages.get(person)
            if counts is None:
                counts = f.pages[person] = [0, 0, 0]
            counts[window] += 1
        case "opened":
            f.customer, f.category = e.get("customer") or "", e.get("category") or ""
            f.priority, f.opened_at, f.tier = e.get("priority") or "", at, terms.tier
            _start(_metric(f, "first_response"), at)
            _start(_metric(f, "resolution"), at)
        case "acknowledged":
            if f.first_ack_at is None:
                f.first_ack_at = at
            if f.status == "pending":
                f.resume_status = "acknowledged"
            else:
                f.status = "acknowledged"
            _stop(f, "first_response", at, terms)
        case "responded":
            f.responded = True
            if f.first_response_at is None:
                f.first_response_at = at
            _stop(f, "first_response", at, terms)
            _stop(f, "next_response", at, terms)
        case "customer_replied":
            if f.status == "pending":
                f.status, f.resume_status = f.resume_status, "open"
            nr = f.metrics.get("next_response")
            if f.responded and (nr is None or nr.state in ("idle", "stopped")):
                _start(_metric(f, "next_response"), at)
        case "pending":
            f.resume_status, f.status = f.status, "pending"
        case "paused":
            m = f.metrics.get(e.get("metric") or "")
            if m is not None:
                _bank(m, at, terms, "paused")
        case "resumed":
            m = f.metrics.get(e.get("metric") or "")
            if m is not None and m.state == "paused":
                m.state, m.since = "running", at
        case "sla_breached":
            m = _metric(f, e.get("metric") or "")
            if m.breached_at is None:
                m.breached_at = at
        case "escalated":
            f.escalations += 1
            level = int(e.get("level") or f.level + 1)
            f.level = level
            if level not in f.levels:
                f.levels = tuple(sorted((*f.levels, level)))
            cause = str(e.get("cause") or "manual")
            f.causes[cause] = f.causes.get(cause, 0) + 1
            reason = e.get("reason")
            if reason:
                f.reasons[str(reason)] = f.reasons.get(str(reason), 0) + 1
        case "assigned":
            to = str(e.get("to") or "")
            if to and (not f.holders or f.holders[-1] != to):
                f.holders = (*f.holders, to)
        case "priority_changed":
            f.priority = e.get("priority") or f.priority
        case "resolved":
            f.status, f.resume_status = "resolved", "open"
            f.resolved_at, f.resolved_level, f.resolved_holder = at, f.level, f.holder
            for name in METRICS:
                _stop(f, name, at, terms)
        case "reopened":
            f.status, f.level, f.resolved_at = "open", 1, None
            f.reopens += 1
            m = f.metrics.get("resolution")
            if m is not None and m.state == "stopped":
                m.state, m.since = "running", at
        case "closed":
            f.status, f.closed_at = "closed", at
