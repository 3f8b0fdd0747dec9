"""SLA clocks: first response, next response and resolution on the policy's calendar.

A metric's elapsed time is `acc` plus the business time since `since` while it runs. Each
threshold (every `warn_at` percent, then 100%) is passed at most once per case; a timer is set
for the next one, and re-checking at any instant is idempotent.

Readers (the API, the handoff, `--explain`) see the clocks through `read_clocks` (typed) or
`clocks` (the API's JSON), never through a decision's `Ctx`.
"""

from __future__ import annotations

from dataclasses import dataclass

from rungs.core.ctx import Ctx
from rungs.core.model import Case, Metric
from rungs.core.plan import plan_of
from rungs.core.timers import SlaTimer
from rungs.policy import Policy
from rungs.policy.model import METRICS, SlaPolicy
from rungs.time.calendar import WALL_CLOCK, Calendar
from rungs.time.instant import format_duration, format_utc

__all__ = [
    "Clock",
    "policy_for",
    "target_of",
    "elapsed",
    "start",
    "stop",
    "pause",
    "resume",
    "check",
    "retarget",
    "due",
    "clocks",
    "read_clocks",
    "next_breach",
]


def policy_for(case: Case, policy: Policy) -> SlaPolicy | None:
    """The case's SLA policy: its customer's (or partner's), None when it has none."""
    return plan_of(policy).sla_of(policy, case.customer)


def target_of(sla: SlaPolicy | None, priority: str, metric: str) -> int | None:
    if sla is None:
        return None
    targets = sla.targets.get(priority)
    return targets.get(metric) if targets is not None else None


def _calendar(sla: SlaPolicy | None) -> Calendar:
    return sla.calendar if sla is not None else WALL_CLOCK


def elapsed(m: Metric, now: int, cal: Calendar) -> int:
    if m.state == "running":
        return m.acc + cal.elapsed_us(m.since, now)
    return m.acc


def due(m: Metric, target: int, sla: SlaPolicy | None) -> int | None:
    """When a running metric reaches its target, or None."""
    if m.state != "running":
        return None
    return _calendar(sla).add_us(m.since, max(0, target - m.acc))


def next_breach(case: Case, policy: Policy) -> int | None:
    """The earliest instant a running metric reaches its target (past once breached); None
    when no clock runs. Stored with the case, so the console's queue sorts by it in SQL."""
    sp = None
    best = None
    for name, m in case.metrics.items():
        if m.state != "running":
            continue
        sp = sp or policy_for(case, policy)
        target = target_of(sp, case.priority, name)
        if target is None:
            continue
        at = due(m, target, sp)
        if at is not None and (best is None or at < best):
            best = at
    return best


# Per metric, built once: the names of its `happened` events.
_WARNED = {name: frozenset((f"sla_warning:{name}",)) for name in METRICS}
_BREACHED = {name: frozenset((f"sla_breached:{name}",)) for name in METRICS}
_QUIET = ("idle", "stopped")


def check(ctx: Ctx, name: str, *, silent_warnings: bool = False) -> None:
    """Record every threshold this metric has reached and set the timer for the next one."""
    case = ctx.case
    m = case.metrics.get(name)
    if m is None or m.state in _QUIET:
        return
    m = ctx.metric(name)
    assert m is not None
    sla = ctx.sla
    if sla is None:
        return
    row = ctx.plan.limits[sla.id].get(case.priority)
    limit = row[name] if row is not None else None
    if limit is None or m.breached:
        return
    target, warnings = limit
    cal = sla.calendar
    now = ctx.now
    running = m.state == "running"
    now_elapsed = m.acc + cal.elapsed_us(m.since, now) if running else m.acc
    upcoming = None
    passed = m.passed
    for pct, thr in warnings:
        if pct in passed:
            continue
        if now_elapsed >= thr:
            m.passed = passed = (*passed, pct)
            if not silent_warnings:
                ctx.record("sla_warning", metric=name, percent=pct)
                case.happened = _happen(ctx, _WARNED[name])
        elif upcoming is None:
            upcoming = thr
    if now_elapsed >= target:
        m.breached = True
        ctx.record("sla_breached", metric=name)
        case.happened = _happen(ctx, _BREACHED[name])
        ctx.effects.append(SlaTimer.cancel(case.id, name))
        return
    if running:
        nxt = upcoming if upcoming is not None else target
        ctx.effects.append(SlaTimer.schedule(case.id, cal.add_us(m.since, nxt - m.acc), name))


def _happen(ctx: Ctx, event: frozenset[str]) -> frozenset[str]:
    """`happened` with the event, never the case's own set object (rules re-check on another).

    When the content is new too, it is the object other cases with that content share.
    """
    happened = ctx.case.happened
    if event <= happened:
        return happened | event  # the same content, still a new object
    return ctx.plan.shared(happened | event)


def start(ctx: Ctx, name: str) -> None:
    """Start a fresh measurement (opening, or a next-response cycle)."""
    now = ctx.now
    m = ctx.metric(name) or ctx.new_metric(name)
    m.state, m.acc, m.since, m.segments, m.started = "running", 0, now, (), now
    check(ctx, name)


def _bank(m: Metric, now: int, cal: Calendar) -> None:
    if m.state == "running":
        m.acc += cal.elapsed_us(m.since, now)
        m.segments = (*m.segments, (m.since, now))


# Readers below look before they copy: a metric they leave alone stays shared with the
# caller's case (copy on write, see `Ctx.metric`).


def stop(ctx: Ctx, name: str) -> None:
    """The metric is met (or ended by resolve): it is not measured again."""
    m = ctx.case.metrics.get(name)
    if m is None or m.state in _QUIET:
        return
    m = ctx.metric(name)
    assert m is not None
    if m.state == "running":
        _bank(m, ctx.now, _calendar(ctx.sla))
    m.state = "stopped"
    ctx.effects.append(SlaTimer.cancel(ctx.case.id, name))


def pause(ctx: Ctx, status: str) -> None:
    """Stop next response and resolution from counting while in a `pause_on` status."""
    sla = ctx.sla
    if sla is None or status not in sla.pause_on:
        return
    metrics = ctx.case.metrics
    for name in ("next_response", "resolution"):
        m = metrics.get(name)
        if m is not None and m.state == "running":
            m = ctx.metric(name)
            assert m is not None
            _bank(m, ctx.now, sla.calendar)
            m.state = "paused"
            ctx.effects.append(SlaTimer.cancel(ctx.case.id, name))
            ctx.record("paused", metric=name)


def resume(ctx: Ctx, *, announce: bool = True) -> None:
    metrics = ctx.case.metrics
    for name in METRICS:
        m = metrics.get(name)
        if m is not None and m.state == "paused":
            m = ctx.metric(name)
            assert m is not None
            m.state, m.since = "running", ctx.now
            if announce:
                ctx.record("resumed", metric=name)
            check(ctx, name)


def reopen(ctx: Ctx) -> None:
    """Resolution counts again with the time it had; the response clocks stay as they were."""
    m = ctx.case.metrics.get("resolution")
    if m is not None and m.state == "stopped":
        m = ctx.metric("resolution")
        assert m is not None
        m.state, m.since = "running", ctx.now
        check(ctx, "resolution")


def retarget(ctx: Ctx) -> None:
    """After a priority change: passed warnings stay silent, a reached target breaches now."""
    metrics = ctx.case.metrics
    for name in METRICS:
        m = metrics.get(name)
        if m is not None and m.state in ("running", "paused"):
            ctx.effects.append(SlaTimer.cancel(ctx.case.id, name))
            check(ctx, name, silent_warnings=True)


@dataclass(frozen=True, slots=True)
class Clock:
    """One SLA metric of a case at an instant, against its target (all times in µs).

    `state` is the metric's (`idle` when it has not started); `measured` is the case's own
    metric (its counted segments), None while idle.
    """

    metric: str
    state: str
    target: int
    elapsed: int
    due: int | None
    breached: bool
    calendar: Calendar
    measured: Metric | None

    @property
    def remaining(self) -> int:
        return max(0, self.target - self.elapsed)


def read_clocks(case: Case, policy: Policy, now: int) -> list[Clock]:
    """Every SLA metric the case's priority has a target for, in `METRICS` order: the one
    reading of the clocks, which `clocks`, the handoff and `--explain` present."""
    sp = policy_for(case, policy)
    cal = _calendar(sp)
    out = []
    for name in METRICS:
        target = target_of(sp, case.priority, name)
        if target is None:
            continue
        m = case.metrics.get(name)
        if m is None:
            out.append(Clock(name, "idle", target, 0, None, False, cal, None))
            continue
        spent = elapsed(m, now, cal)
        out.append(Clock(name, m.state, target, spent, due(m, target, sp), m.breached, cal, m))
    return out


def clocks(case: Case, policy: Policy, now: int) -> dict[str, dict[str, object]]:
    """Each running or met SLA metric of the case at `now`, as the API shows it."""
    return {
        c.metric: {
            "state": c.state,
            "target": format_duration(c.target),
            "elapsed": format_duration(c.elapsed),
            "remaining": format_duration(c.remaining),
            "breached": c.breached,
            "due": format_utc(c.due) if c.due is not None else None,
        }
        for c in read_clocks(case, policy, now)
        if c.state != "idle"
    }
