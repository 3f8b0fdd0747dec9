"""Maintenance windows, pure: which window covers an alert, and the cases it holds.

During a window an alert of a covered integration or customer is recorded (`suppressed`) on a
held case: one that pages nobody, sets no timer and runs no SLA clock. At the window's end a
held case still open is opened anew, at that instant, as if its alert had just arrived
(`maintenance_ended`, then `opened` and its pages, timers and SLA clocks).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from rungs.core import matrix, sla
from rungs.core.ctx import Ctx
from rungs.core.decide import new_case, open_case
from rungs.core.model import Case, Effect, Refused
from rungs.core.plan import plan_of
from rungs.core.provenance import record_corrections
from rungs.policy.model import Policy

__all__ = ["Window", "covering", "hold", "release", "suppress"]


@dataclass(frozen=True, slots=True)
class Window:
    id: int
    integrations: frozenset[str]
    customers: frozenset[str]
    start: int
    end: int
    reason: str

    def covers(self, integration: str | None, customer: str | None, now: int) -> bool:
        return self.start <= now < self.end and (
            integration in self.integrations or customer in self.customers
        )


def covering(
    windows: Iterable[Window], integration: str | None, customer: str | None, now: int
) -> Window | None:
    """The window covering an alert at `now` (the one ending last), or None."""
    found = [w for w in windows if w.covers(integration, customer, now)]
    return max(found, key=lambda w: (w.end, w.id)) if found else None


def hold(
    case_id: str, data: Mapping[str, Any], now: int, policy: Policy, window: Window
) -> tuple[Case, list[Effect]]:
    """A case for an alert that arrived during `window`: recorded, not worked on."""
    case, chosen = new_case(case_id, data, now, policy)
    case.level_since = None  # level timing waits for the window's end
    case.next_level = 0
    ctx = Ctx(case, now, policy)
    ctx.record("suppressed", window=window.id, reason=window.reason, customer=case.customer,
               category=case.category, priority=case.priority, title=case.title,
               matrix=chosen.id)  # fmt: skip
    record_corrections(ctx, data)
    return ctx.case, ctx.effects


def suppress(
    case: Case, now: int, policy: Policy, window: Window, summary: str | None
) -> tuple[Case, list[Effect]]:
    """A further event for a case during `window`: recorded as `suppressed`, no page."""
    ctx = Ctx(case.copy(), now, policy)
    ctx.case.alerts += 1
    ctx.record("suppressed", window=window.id, reason=window.reason, summary=summary,
               count=ctx.case.alerts)  # fmt: skip
    return ctx.case, ctx.effects


def release(case: Case, now: int, policy: Policy, window: int) -> tuple[Case, list[Effect]]:
    """The held case at its window's end: opened now, as if its alert had just arrived."""
    data = {
        "customer": case.customer,
        "category": case.category,
        "priority": case.priority,
        "title": case.title,
        "description": case.description,
        "fields": dict(case.fields),
        "tags": list(case.tags),
        "dedup_key": case.dedup_key,
        "matrix": case.matrix,
    }
    opened, effects = open_case(case.id, data, now, policy, seq=case.seq)
    opened.alerts = case.alerts
    ctx = Ctx(opened, now, policy)
    ctx.record("maintenance_ended", window=window)
    return opened, [*ctx.effects, *effects]


def resume(case: Case, now: int, policy: Policy, window: int) -> tuple[Case, list[Effect]]:
    """A held case someone paged by hand during its window (escalated or assigned it): at the
    window's end its ladder runs on from the level it reached, and its SLA clocks start, as
    for an alert that had just arrived; nobody is paged again now (Refused when the policy
    has not its matrix any more)."""
    m = plan_of(policy).matrices.get(case.matrix)
    if m is None:
        raise Refused(f"the case's matrix '{case.matrix}' is not in the policy", 409)
    ctx = Ctx(case.copy(), now, policy)
    c = ctx.case
    c.level_since, c.level_acc = now, 0
    c.next_level = c.level + 1 if c.level < len(m.levels) else 0
    ctx.record("maintenance_ended", window=window)
    matrix.schedule_next_level(ctx)
    for name in ("first_response", "resolution"):
        if ctx.metric(name) is None:
            sla.start(ctx, name)
    return ctx.case, ctx.effects
