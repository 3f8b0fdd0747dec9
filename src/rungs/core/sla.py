"""SLA clocks: first response, next response and resolution on the policy's calendar.

A metric's elapsed time is `acc` plus the business time since `since` while it runs. Each
threshold (every `warn_at` percent, then 100%) is passed at most once per case; a timer is set
for the next one, and re-checking at any instant is idempotent.
"""

from __future__ import annotations

from rungs.calendar import WALL_CLOCK, Calendar
from rungs.core.ctx import Ctx
from rungs.core.model import Metric
from rungs.policy.model import METRICS, SlaPolicy

__all__ = [
    "policy_of",
    "target_of",
    "elapsed",
    "start",
    "stop",
    "pause",
    "resume",
    "check",
    "retarget",
    "due",
]


def policy_of(ctx: Ctx) -> SlaPolicy | None:
    if ctx._sla is False:
        ctx._sla = _lookup(ctx)
    return ctx._sla


def _lookup(ctx: Ctx) -> SlaPolicy | None:
    policy = ctx.policy
    customer = policy.customer(ctx.case.customer)
    if customer is None:
        return None
    name = customer.sla
    if name is None and customer.partner and customer.partner in policy.partners:
        name = policy.partners[customer.partner].sla
    return policy.sla_policies.get(name) if name else None


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


def _threshold(target: int, percent: int) -> int:
    return -((-target * percent) // 100)  # ceiling: a percent is reached, never rounded early


def due(m: Metric, target: int, sla: SlaPolicy | None) -> int | None:
    """When a running metric reaches its target, or None."""
    if m.state != "running":
        return None
    return _calendar(sla).add_us(m.since, max(0, target - m.acc))


def check(ctx: Ctx, name: str, *, silent_warnings: bool = False) -> None:
    """Record every threshold this metric has reached and set the timer for the next one."""
    case = ctx.case
    m = case.metrics.get(name)
    if m is None or m.state in ("idle", "stopped"):
        return
    m = ctx.metric(name)
    assert m is not None
    sla = policy_of(ctx)
    target = target_of(sla, case.priority, name)
    if target is None or m.breached:
        return
    cal = _calendar(sla)
    now_elapsed = elapsed(m, ctx.now, cal)
    upcoming = None
    for pct in sla.warn_at if sla else ():
        if pct in m.passed:
            continue
        thr = _threshold(target, pct)
        if now_elapsed >= thr:
            m.passed = (*m.passed, pct)
            if not silent_warnings:
                ctx.record("sla_warning", metric=name, percent=pct)
                case.happened = case.happened | {f"sla_warning:{name}"}
        elif upcoming is None:
            upcoming = thr
    if now_elapsed >= target:
        m.breached = True
        ctx.record("sla_breached", metric=name)
        case.happened = case.happened | {f"sla_breached:{name}"}
        ctx.cancel(f"sla:{name}")
        return
    if m.state == "running":
        nxt = upcoming if upcoming is not None else target
        ctx.schedule(f"sla:{name}", cal.add_us(m.since, nxt - m.acc), (name,))


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


def stop(ctx: Ctx, name: str) -> None:
    """The metric is met (or ended by resolve): it is not measured again."""
    m = ctx.metric(name)
    if m is None or m.state in ("idle", "stopped"):
        return
    _bank(m, ctx.now, _calendar(policy_of(ctx)))
    m.state = "stopped"
    ctx.cancel(f"sla:{name}")


def pause(ctx: Ctx, status: str) -> None:
    """Stop next response and resolution from counting while in a `pause_on` status."""
    sla = policy_of(ctx)
    if sla is None or status not in sla.pause_on:
        return
    for name in ("next_response", "resolution"):
        m = ctx.metric(name)
        if m is not None and m.state == "running":
            _bank(m, ctx.now, sla.calendar)
            m.state = "paused"
            ctx.cancel(f"sla:{name}")
            ctx.record("paused", metric=name)


def resume(ctx: Ctx, *, announce: bool = True) -> None:
    for name in METRICS:
        m = ctx.metric(name)
        if m is not None and m.state == "paused":
            m.state, m.since = "running", ctx.now
            if announce:
                ctx.record("resumed", metric=name)
            check(ctx, name)


def reopen(ctx: Ctx) -> None:
    """Resolution counts again with the time it had; the response clocks stay as they were."""
    m = ctx.metric("resolution")
    if m is not None and m.state == "stopped":
        m.state, m.since = "running", ctx.now
        check(ctx, "resolution")


def retarget(ctx: Ctx) -> None:
    """After a priority change: passed warnings stay silent, a reached target breaches now."""
    for name in METRICS:
        m = ctx.metric(name)
        if m is not None and m.state in ("running", "paused"):
            ctx.cancel(f"sla:{name}")
            check(ctx, name, silent_warnings=True)
