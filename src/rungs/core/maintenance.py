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
from rungs.core.decide import matrix_in_force, new_case, open_case
from rungs.core.model import Case, Effect, Refused
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


def worked(case: Case) -> bool:
    """Whether someone worked the held case by hand during its window: paged someone for it,
    escalated, assigned or reopened it, or brought it back from pending."""
    return bool(
        case.paged or case.level > 1 or case.assignee is not None or case.epoch > 0
        or case.level_since is not None
    )  # fmt: skip


def resume(case: Case, now: int, policy: Policy, window: int) -> tuple[Case, list[Effect]]:
    """A held case worked by hand during its window (`worked`): at the window's end its
    ladder runs on from the level it reached, and its SLA clocks start (first response unless
    it was answered), as for an alert that had just arrived. Its level is paged now only when
    nobody was paged for it yet. Refused when the policy lacks its matrix or its customer."""
    m = matrix_in_force(case, policy)
    if policy.customer(case.customer) is None:
        raise Refused(f"the case's customer '{case.customer}' is not in the policy", 409)
    ctx = Ctx(case.copy(), now, policy)
    c = ctx.case
    c.level = min(c.level, len(m.levels))
    c.level_since, c.level_acc, c.updated_at = now, 0, now
    c.next_level = c.level + 1 if c.level < len(m.levels) else 0
    ctx.record("maintenance_ended", window=window)
    if not c.paged:  # nobody paged yet (escalated to a level whose first step waits, pending)
        lv = m.levels[c.level - 1]
        ctx.notify_targets(lv.notify, c.level, "opened" if c.level == 1 else "escalation",
                           lv.fallback)  # fmt: skip
    matrix.schedule_next_level(ctx)
    if ctx.metric("first_response") is None and not (c.responded or c.acknowledged):
        sla.start(ctx, "first_response")
    if ctx.metric("resolution") is None:
        sla.start(ctx, "resolution")
    return ctx.case, ctx.effects
