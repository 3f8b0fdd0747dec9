"""Escalation rules: criteria over the case, edge-triggered actions.

A rule's actions run when its `when` becomes true, and again only after it was false in
between. Rules are checked after every change; actions may change the case, so checking
repeats until nothing new fires (bounded, so two rules cannot ping-pong for ever).
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import Any

from rungs.core import matrix, sla
from rungs.core.ctx import Ctx
from rungs.core.model import ENDED, Case, Event
from rungs.core.timers import RuleTimer
from rungs.policy.model import Rule
from rungs.time.calendar import WALL_CLOCK

__all__ = ["evaluate", "needs_check", "settled", "set_priority", "MAX_PASSES"]

MAX_PASSES = 8
_PASSES = tuple(range(MAX_PASSES))


def _value(ctx: Ctx, key: str) -> Any:
    case = ctx.case
    if key == "level":
        return case.level
    if key == "tier" or key == "partner":
        customer = ctx.policy.customer(case.customer)
        return getattr(customer, key) if customer else None
    if key in matrix.SCOPE_FIELDS:
        return case.fields.get(key)
    return getattr(case, key)


def _age_ok(ctx: Ctx, rule: Rule) -> bool:
    """True when the rule has no age condition or the case is old enough; else set a timer."""
    if rule.age_over is None:
        return True
    case = ctx.case
    ref = case.epoch_start if rule.age_since == "opened" else case.updated_at
    cal = rule.calendar or WALL_CLOCK
    if cal.elapsed_us(ref, ctx.now) >= rule.age_over:
        return True
    if case.status not in ENDED:
        due = cal.add_us(ref, rule.age_over)
        ctx.effects.append(RuleTimer.schedule(case.id, due, rule.id, ref))
    return False


_DIRECT = frozenset(("customer", "category", "priority", "status", "level", "assignee"))


Test = Callable[[Ctx], bool]


def _compile(rule: Rule) -> Test:
    """Whether a rule's `when` holds, as a closure: its keys sorted out once, not per event.

    Only `age_over` has an effect (it may set a timer), and it is still tested last.
    """
    direct = []
    events = []
    others = []
    for key, allowed in rule.when.items():
        if key in _DIRECT:
            direct.append((attrgetter(key), allowed))
        elif key in ("sla_breached", "sla_warning"):
            events.append(frozenset(f"{key}:{metric}" for metric in allowed))
        else:
            others.append((key, allowed))
    if rule.age_over is None and not events and not others and len(direct) == 1:
        ((get, allowed),) = direct
        return lambda ctx: get(ctx.case) in allowed

    def test(ctx: Ctx) -> bool:
        case = ctx.case
        for get, allowed in direct:
            if get(case) not in allowed:
                return False
        for names in events:
            if names.isdisjoint(case.happened):
                return False
        for key, allowed in others:
            if _value(ctx, key) not in allowed:
                return False
        return rule.age_over is None or _age_ok(ctx, rule)

    return test


class RuleTests:
    """A policy's rules made ready: their tests, and what is known about agreeing states.

    When every `when` reads only case fields (no `age_over`, no customer or site look-up),
    whether the rules agree with a case, that is whether evaluating would fire or clear
    nothing, depends only on those fields and `rules_true`: `watch` reads them as one key,
    and `agrees` remembers the answer per key.
    """

    __slots__ = ("agrees", "tests", "watch")

    def __init__(self, rules: tuple[Rule, ...]) -> None:
        self.tests = tuple((r.id, r, _compile(r)) for r in rules)
        self.agrees: dict[tuple[Any, ...], bool] = {}
        fields = _case_fields_read(rules)
        self.watch: Callable[[Case], tuple[Any, ...]] | None = (
            None if fields is None else attrgetter("rules_true", *fields)
        )


def _case_fields_read(rules: tuple[Rule, ...]) -> tuple[str, ...] | None:
    """The case fields the rules' `when`s read, or None when they read more than that."""
    fields: set[str] = set()
    for r in rules:
        if r.age_over is not None:
            return None  # the case's age, and a timer set as a side effect
        for key in r.when:
            if key in _DIRECT:
                fields.add(key)
            elif key in ("sla_breached", "sla_warning"):
                fields.add("happened")
            else:
                return None  # the customer's tier or partner, or a site field
    return tuple(sorted(fields))


_AGREES_KEPT = 4096  # distinct keys remembered per policy before starting afresh


def _rules(ctx: Ctx) -> RuleTests:
    plan = ctx.plan
    if plan.rule_tests is None:
        plan.rule_tests = RuleTests(plan.rules)
    return plan.rule_tests


def settled(ctx: Ctx) -> bool:
    """True when evaluating the rules now would change nothing (so it can be skipped)."""
    ready = ctx.plan.rule_tests or _rules(ctx)
    watch = ready.watch
    if watch is None:
        return False
    case = ctx.case
    key = watch(case)
    known = ready.agrees.get(key)
    if known is None:
        known = all(test(ctx) == (rid in case.rules_true) for rid, _, test in ready.tests)
        if len(ready.agrees) >= _AGREES_KEPT:
            ready.agrees.clear()
        ready.agrees[key] = known
    return known


def set_priority(ctx: Ctx, priority: str, **extra: Any) -> None:
    case = ctx.case
    if priority == case.priority:
        return
    old = case.priority
    case.priority = priority
    ctx.record("priority_changed", priority=priority, **{"from": old}, **extra)
    sla.retarget(ctx)


def _run(ctx: Ctx, rule: Rule) -> None:
    case = ctx.case
    ctx.record("rule_fired", rule=rule.id)
    for action in rule.then:
        if action.kind == "notify":
            ctx.notify_targets(action.targets, case.level, f"rule:{rule.id}")
        elif action.kind == "assign":
            target = action.targets[0]
            case.assignee = str(target)
            ctx.record("assigned", to=str(target), rule=rule.id)
            ctx.notify_targets(action.targets, case.level, "assigned")
        elif action.kind == "escalate":
            levels = matrix.levels_of(ctx.plan, case.matrix)
            to = action.to_level or case.level + 1
            if case.level < to <= levels and case.status not in ENDED:
                matrix.escalate_to(ctx, to, "rule", rule=rule.id)
        elif action.kind == "set_priority":
            set_priority(ctx, action.priority or case.priority, rule=rule.id)
        elif action.kind == "webhook":
            ctx.webhook(
                action.url or "",
                {"case": case.id, "rule": rule.id, "at": ctx.now, "level": case.level},
            )


def needs_check(ctx: Ctx, event: Event, before: Case) -> bool:
    """Whether any rule could have changed its mind: only what `when` reads matters.

    `when` reads the level, priority, status, assignee and the SLA events that happened (the
    customer, category and fields never change), and the case's age, whose crossing has a
    timer of its own, as has `age_since: updated`, whose reference moves with every action.
    """
    plan = ctx.plan
    if not plan.rules:
        return False
    kind = event.kind
    if kind == "timer":
        if type(event.timer) is RuleTimer:
            return True
    elif plan.updated_ages and kind != "delivery":
        return True  # an action moved the reference of `updated` ages
    case = ctx.case
    return (
        case.level != before.level
        or case.priority != before.priority
        or case.status != before.status
        or case.assignee != before.assignee
        or case.happened is not before.happened
    )


def evaluate(ctx: Ctx) -> None:
    tests = (ctx.plan.rule_tests or _rules(ctx)).tests
    if not tests:
        return
    case = ctx.case
    for _ in _PASSES:
        fired = False
        for rule_id, rule, test in tests:
            now_true = test(ctx)
            if now_true == (rule_id in case.rules_true):
                continue
            if now_true:
                case.rules_true = ctx.plan.shared(case.rules_true | {rule_id})
                _run(ctx, rule)
                fired = True
            else:
                case.rules_true = ctx.plan.shared(case.rules_true - {rule_id})
        if not fired:
            return
    ctx.record("rule_loop", note=f"rules still firing after {MAX_PASSES} passes; stopped")
