"""Matrix selection by specificity and level timing on the matrix's calendar.

Level k is due when the case's age since opening (or the last reopening), counted on the
matrix's calendar with pending time left out, reaches level k's `after`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rungs.core.ctx import Ctx
from rungs.core.model import ENDED
from rungs.core.plan import Plan, plan_of
from rungs.core.timers import LevelTimer, RepeatTimer
from rungs.policy.model import Customer, Matrix, Policy

__all__ = [
    "SCOPE_FIELDS",
    "select_matrix",
    "scope_of",
    "schedule_next_level",
    "pause_levels",
    "resume_levels",
    "on_level_timer",
    "on_repeat_timer",
    "escalate_to",
    "levels_of",
    "matrix_of",
]


SCOPE_FIELDS = ("site", "device_group", "device")
"""The scope below the customer: case `fields` a matrix `match` and a rule `when` may name."""


def scope_of(data: Mapping[str, Any], customer: Customer | None) -> dict[str, str]:
    """The values a matrix `match` and a rule `when` look at, for an opening case."""
    fields = data.get("fields") or {}
    scope: dict[str, str] = {}
    for key in ("customer", "category", "priority"):
        if data.get(key) is not None:
            scope[key] = str(data[key])
    for key in SCOPE_FIELDS:
        value = data.get(key, fields.get(key))
        if value is not None:
            scope[key] = str(value)
    if customer is not None:
        if customer.partner:
            scope["partner"] = customer.partner
        if customer.tier:
            scope["tier"] = customer.tier
    return scope


def select_matrix(policy: Policy, scope: Mapping[str, str]) -> Matrix | None:
    """The matrix whose `match` names the most fields and matches; ties go to the earlier.

    Remembered per policy by the scope's items: cases open with few distinct scopes.
    """
    chosen = plan_of(policy).chosen
    key = tuple(scope.items())
    found = chosen.get(key, False)
    if found is False:
        if len(chosen) >= _CHOSEN_KEPT:
            chosen.clear()
        found = chosen[key] = _select(policy, scope)
    return found


_CHOSEN_KEPT = 4096  # distinct scopes remembered per policy before starting afresh


def _select(policy: Policy, scope: Mapping[str, str]) -> Matrix | None:
    best: Matrix | None = None
    for m in policy.matrices:
        if best is not None and m.specificity <= best.specificity:
            continue
        if all(scope.get(k) in allowed for k, allowed in m.match.items()):
            best = m
    return best


def matrix_of(plan: Plan, matrix_id: str) -> Matrix:
    """The policy's matrix by id (a case's `matrix`); KeyError when this version lacks it."""
    m = plan.matrices.get(matrix_id)
    if m is None:
        raise KeyError(f"matrix '{matrix_id}' is not in this policy version")
    return m


def _matrix(ctx: Ctx) -> Matrix:
    m = ctx.plan.matrices.get(ctx.case.matrix)  # `matrix_of`, without a call on the hot path
    return m if m is not None else matrix_of(ctx.plan, ctx.case.matrix)


def levels_of(plan: Plan, matrix_id: str) -> int:
    """How many levels a matrix has."""
    return len(matrix_of(plan, matrix_id).levels)


def schedule_next_level(ctx: Ctx) -> None:
    """(Re)schedule the timer for `case.next_level`, or the repeat timer after the last level."""
    case = ctx.case
    if case.level_since is None:
        return
    m = _matrix(ctx)
    if case.next_level:
        level = m.levels[case.next_level - 1]
        due = m.calendar.add_us(case.level_since, max(0, level.after - case.level_acc))
        ctx.effects.append(LevelTimer.schedule(case.id, due, case.next_level, case.epoch))
    elif m.repeat is not None and case.repeats < m.repeat.times:
        after = m.levels[-1].after + m.repeat.every * (case.repeats + 1)
        due = m.calendar.add_us(case.level_since, max(0, after - case.level_acc))
        ctx.effects.append(RepeatTimer.schedule(case.id, due, case.repeats + 1, case.epoch))


def pause_levels(ctx: Ctx) -> None:
    case = ctx.case
    if case.level_since is None:
        return
    m = _matrix(ctx)
    case.level_acc += m.calendar.elapsed_us(case.level_since, ctx.now)
    case.level_since = None
    ctx.effects.append(LevelTimer.cancel(case.id))
    ctx.effects.append(RepeatTimer.cancel(case.id))


def resume_levels(ctx: Ctx) -> None:
    case = ctx.case
    if case.level_since is not None:
        return
    case.level_since = ctx.now
    schedule_next_level(ctx)


def _holds(ctx: Ctx, unless: str) -> bool:
    case = ctx.case
    if unless == "resolved":
        return case.status in ENDED
    return case.acknowledged or case.status in ENDED


def escalate_to(
    ctx: Ctx, level: int, cause: str, reason: str | None = None, by: str | None = None, **extra: Any
) -> None:
    """Move up to `level` and notify its targets, whatever the cause."""
    case = ctx.case
    m = _matrix(ctx)
    old = case.level
    case.level = level
    entry: dict[str, Any] = {"level": level, "from": old, "cause": cause}
    if reason is not None:
        entry["reason"] = reason
    if by is not None:
        entry["by"] = by
    ctx.record("escalated", **entry, **extra)
    lv = m.levels[level - 1]
    ctx.notify_targets(lv.notify, level, "escalation", lv.fallback)


def on_level_timer(ctx: Ctx, level: int, epoch: int) -> None:
    """Level `level` comes due: escalate unless its condition holds or it was reached."""
    case = ctx.case
    if epoch != case.epoch or level != case.next_level or case.level_since is None:
        return  # a stale timer: the case moved on since it was set
    m = _matrix(ctx)
    lv = m.levels[level - 1]
    if case.level < level:
        if _holds(ctx, lv.unless):
            ctx.record("level_passed", level=level, unless=lv.unless)
        else:
            escalate_to(ctx, level, "timer")
    case.next_level = level + 1 if level < len(m.levels) else 0
    schedule_next_level(ctx)


def on_repeat_timer(ctx: Ctx, count: int, epoch: int) -> None:
    """Page the current level again while nobody has acknowledged."""
    case = ctx.case
    if (
        epoch != case.epoch
        or count != case.repeats + 1
        or case.next_level
        or case.level_since is None
    ):
        return
    case.repeats = count
    if not _holds(ctx, "acknowledged"):
        lv = _matrix(ctx).levels[case.level - 1]
        ctx.record("repeated", level=case.level, count=count)
        ctx.notify_targets(lv.notify, case.level, "repeat", lv.fallback)
        schedule_next_level(ctx)
