"""`decide(case, event, now, policy) -> (case, effects)`: the whole of escalation, pure.

No clock, no database, no network: the same function drives the simulator, the live engine
and replay. A refused action raises `Refused` and changes nothing: every action is checked
against the caller's case before anything is copied, so a refusal costs no copy either.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rungs.core import matrix, notices, rules, sla, timers
from rungs.core.ctx import Ctx
from rungs.core.customer import at_top, check_observed, mail_fields, observe, page_top_again
from rungs.core.model import ENDED, Case, Effect, Event, Refused
from rungs.core.plan import plan_of
from rungs.core.provenance import opened_by, record_corrections, said
from rungs.core.targets import parse_target
from rungs.core.timers import LevelTimer, RepeatTimer, StepTimer, cancel_all
from rungs.policy.model import PRIORITIES, Matrix, Policy, Target

__all__ = ["decide", "new_case", "open_case", "ACTIONS", "allowed_actions"]

ACTIVE = ("open", "acknowledged", "pending")


def decide(
    case: Case | None, event: Event, now: int, policy: Policy, *, case_id: str = ""
) -> tuple[Case, list[Effect]]:
    """Apply one event at `now`; returns the new case and the effects to carry out."""
    kind = event.kind
    if kind == "timer" and case is not None:
        handler = _timer  # the commonest event, and one that is never refused
        about = None
    else:
        if kind == "open":
            if case is not None:
                raise Refused(f"case '{case.id}' is already open")
            return open_case(case_id, event.data or {}, now, policy)
        if case is None:
            raise Refused(f"cannot {kind} a case that was never opened", 404)
        action = _ACTIONS.get(kind)
        if action is None:
            raise Refused(f"unknown action '{kind}'", 422, "do")
        verb, statuses, check, handler, about = action
        if statuses and case.status not in statuses:
            raise Refused(f"cannot {verb} a case that is {case.status}")
        if check is not None:
            check(case, event, policy)
    ctx = Ctx(case.copy(), now, policy)
    handler(ctx, event)
    c = ctx.case
    if kind != "timer" and kind != "delivery" and kind != "observed":
        c.updated_at = now
    if ctx.plan.rules and not rules.settled(ctx) and rules.needs_check(ctx, event, case):
        rules.evaluate(ctx)
    if about is not None:  # last: whoever this decision paged is told too
        notices.handled(ctx, about, event.by)
    return c, ctx.effects


def open_case(
    case_id: str, data: dict[str, Any] | Any, now: int, policy: Policy, *, seq: int = 0
) -> tuple[Case, list[Effect]]:
    """Open a case at level 1 of the most specific matching matrix and notify level 1.
    `seq`: the case's effects so far (a held case opened at its window's end), so that its
    new pages' keys follow theirs."""
    case, chosen = new_case(case_id, data, now, policy)
    case.seq = seq
    ctx = Ctx(case, now, policy)
    ctx.record(
        "opened",
        customer=case.customer,
        category=case.category,
        priority=case.priority,
        title=case.title,
        matrix=chosen.id,
        **opened_by(data),
    )
    record_corrections(ctx, data)
    first = chosen.levels[0]
    ctx.notify_targets(first.notify, 1, "opened", first.fallback)
    matrix.schedule_next_level(ctx)
    sla.start(ctx, "first_response")
    sla.start(ctx, "resolution")
    if not rules.settled(ctx):
        rules.evaluate(ctx)
    return ctx.case, ctx.effects


def new_case(
    case_id: str, data: dict[str, Any] | Any, now: int, policy: Policy
) -> tuple[Case, Matrix]:
    """The case `data` opens at `now` and its matrix, before anything is recorded or sent
    (Refused for a customer, priority or matrix the policy cannot open it with)."""
    customer_id = data.get("customer")
    if not customer_id:
        raise Refused("'customer' is required to open a case", 422, "customer")
    customer = policy.customer(str(customer_id))
    if customer is None:
        raise Refused(
            f"unknown customer '{customer_id}' (not in the policy, and no default_customer)",
            422,
            "customer",
        )
    priority = str(data.get("priority") or "P3")
    if priority not in PRIORITIES:
        raise Refused(
            f"unknown priority '{priority}' (use {', '.join(PRIORITIES)})", 422, "priority"
        )
    scope = matrix.scope_of(
        {**data, "priority": priority, "category": data.get("category") or "general"}, customer
    )
    wanted = data.get("matrix")
    if wanted:
        chosen = next((m for m in policy.matrices if m.id == wanted), None)
        if chosen is None:
            raise Refused(f"unknown matrix '{wanted}'", 422, "matrix")
    else:
        chosen = matrix.select_matrix(policy, scope)
        if chosen is None:
            raise Refused(
                "no escalation matrix matches this case; add one without 'match'", 422, "customer"
            )
    fields = dict(data.get("fields") or {})
    for key in matrix.SCOPE_FIELDS:
        if key in scope:
            fields[key] = scope[key]
    case = Case(
        id=case_id,
        customer=str(customer_id),
        category=scope["category"],
        priority=priority,
        title=str(data.get("title") or ""),
        matrix=chosen.id,
        opened_at=now,
        description=str(data.get("description") or ""),
        fields=fields,
        tags=tuple(data.get("tags") or ()),
        dedup_key=data.get("dedup_key"),
        epoch_start=now,
        level_since=now,
        next_level=2 if len(chosen.levels) > 1 else 0,
        updated_at=now,
    )
    return case, chosen


# -- checks: read-only, on the caller's case, before anything changes -------------------------


def _check_acknowledge(case: Case, ev: Event, policy: Policy) -> None:
    if case.acknowledged:
        raise Refused("the case is already acknowledged")


def _check_reason(policy: Policy, reason: str | None) -> None:
    reasons = policy.reasons
    if reasons and reason is None:
        raise Refused(f"a reason is required (one of: {', '.join(reasons)})", 422, "reason")
    if reasons and reason not in reasons:
        raise Refused(
            f"unknown reason '{reason}' (use one of: {', '.join(reasons)})", 422, "reason"
        )


def _check_escalation(case: Case, ev: Event, policy: Policy) -> None:
    _check_reason(policy, ev.reason)
    if ev.kind == "request_escalation" and at_top(case, ev, policy):
        return  # recorded and the last level paged again (`page_top_again`)
    levels = matrix.levels_of(plan_of(policy), case.matrix)
    to = ev.to_level if ev.to_level is not None else case.level + 1
    if isinstance(to, bool) or not isinstance(to, int) or to < 1 or to > levels:
        if ev.to_level is None:
            raise Refused(
                f"the case is already at the last level ({levels}); it cannot escalate further"
            )
        raise Refused(
            f"to_level {ev.to_level!r} is not a level of matrix '{case.matrix}' (1..{levels})",
            422,
            "to_level",
        )
    if to <= case.level:
        raise Refused(f"the case is already at level {case.level}; to_level must be higher")


def matrix_in_force(case: Case, policy: Policy) -> Matrix:
    """The case's matrix in `policy`; Refused (409) when the policy no longer has it (removed
    since the case last moved: a resolved case reopening, a held one at its window's end)."""
    m = plan_of(policy).matrices.get(case.matrix)
    if m is None:
        raise Refused(f"the case's matrix '{case.matrix}' is not in the policy in force", 409)
    return m


def _check_reopen(case: Case, ev: Event, policy: Policy) -> None:
    matrix_in_force(case, policy)


def _check_assign(case: Case, ev: Event, policy: Policy) -> None:
    parse_target(ev.to, policy)


def _check_priority(case: Case, ev: Event, policy: Policy) -> None:
    if ev.priority not in PRIORITIES:
        raise Refused(
            f"unknown priority {ev.priority!r} (use {', '.join(PRIORITIES)})", 422, "priority"
        )


# -- handlers: the action is allowed; change the case --------------------------------------------


def _acknowledge(ctx: Ctx, ev: Event) -> None:
    case = ctx.case
    case.acknowledged = True
    if case.status == "pending":
        case.resume_status = "acknowledged"
    else:
        case.status = "acknowledged"
    ctx.record("acknowledged", by=ev.by, **said(ev))
    ctx.effects.append(StepTimer.cancel(case.id))
    sla.stop(ctx, "first_response")


def _respond(ctx: Ctx, ev: Event) -> None:
    ctx.case.responded = True
    ctx.record("responded", by=ev.by, **said(ev))
    sla.stop(ctx, "first_response")
    sla.stop(ctx, "next_response")


def _customer_reply(ctx: Ctx, ev: Event) -> None:
    case = ctx.case
    ctx.record("customer_replied", **said(ev), **mail_fields(ev))
    if case.status == "pending":
        _leave_pending(ctx)
    nr = case.metrics.get("next_response")
    if case.responded and (nr is None or nr.state in ("idle", "stopped")):
        sla.start(ctx, "next_response")


def _leave_pending(ctx: Ctx) -> None:
    case = ctx.case
    case.status = case.resume_status or "open"
    case.resume_status = None
    matrix.resume_levels(ctx)
    sla.resume(ctx)


def _pending(ctx: Ctx, ev: Event) -> None:
    case = ctx.case
    case.resume_status = case.status
    case.status = "pending"
    ctx.record("pending", by=ev.by, **said(ev))
    matrix.pause_levels(ctx)
    sla.pause(ctx, "pending")


def _escalate(ctx: Ctx, ev: Event) -> None:
    to = ev.to_level if ev.to_level is not None else ctx.case.level + 1
    matrix.escalate_to(ctx, to, "manual", by=ev.by, **said(ev))


def _request_escalation(ctx: Ctx, ev: Event) -> None:
    if at_top(ctx.case, ev, ctx.policy):
        page_top_again(ctx, ev, **said(ev))
        return
    to = ev.to_level if ev.to_level is not None else ctx.case.level + 1
    matrix.escalate_to(ctx, to, "customer", **said(ev), **mail_fields(ev))


def _assign(ctx: Ctx, ev: Event) -> None:
    text: str = ev.to  # type: ignore[assignment]  # checked: "kind:id" of a known target
    kind, _, ident = text.partition(":")
    ctx.case.assignee = text
    ctx.record("assigned", to=text, by=ev.by, **said(ev))
    ctx.notify_targets((Target(kind, ident),), ctx.case.level, "assigned")


def _set_priority(ctx: Ctx, ev: Event) -> None:
    rules.set_priority(ctx, ev.priority, by=ev.by, **said(ev))  # type: ignore[arg-type]  # checked


def _resolve(ctx: Ctx, ev: Event) -> None:
    case = ctx.case
    if case.level_since is not None:
        matrix.pause_levels(ctx)
    case.status = "resolved"
    case.resume_status = None
    case.resolved_at = ctx.now
    ctx.record("resolved", by=ev.by, **said(ev))
    for name in ("first_response", "next_response", "resolution"):
        sla.stop(ctx, name)
    ctx.effects.append(cancel_all(ctx.case.id))


def _reopen(ctx: Ctx, ev: Event) -> None:
    """Reopen at level 1 and page it; reopened by its alert as that alert turns flapping
    (`data.flapping`, the router's), nobody is paged for it: no page per flap."""
    flaps = bool((ev.data or {}).get("flapping"))
    case = ctx.case
    m = matrix.matrix_of(ctx.plan, case.matrix)
    case.status = "open"
    case.level = 1
    case.epoch += 1
    case.epoch_start = ctx.now
    case.acknowledged = False
    case.level_acc = 0
    case.level_since = ctx.now
    case.next_level = 2 if len(m.levels) > 1 else 0
    case.repeats = 0
    case.resolved_at = None
    case.paged = {}  # a new round: only its pages count for notices
    ctx.record("reopened", by=ev.by, **said(ev), **({"flapping": True} if flaps else {}))
    if not flaps:
        ctx.notify_targets(m.levels[0].notify, 1, "reopened", m.levels[0].fallback)
    matrix.schedule_next_level(ctx)
    sla.reopen(ctx)


def _close(ctx: Ctx, ev: Event) -> None:
    ctx.case.status = "closed"
    ctx.record("closed", by=ev.by, **said(ev))
    ctx.effects.append(cancel_all(ctx.case.id))


def _timer(ctx: Ctx, ev: Event) -> None:
    case = ctx.case
    if case.status in ENDED:
        return  # resolve stopped every timer; a late one does nothing
    t = ev.timer
    # On the timer's exact type: a value pattern is one comparison, where class patterns
    # with captures cost every due timer an isinstance and a look-up per field.
    match type(t):
        case timers.SlaTimer:
            sla.check(ctx, t.metric)  # type: ignore[union-attr]
        case timers.LevelTimer:
            lv: LevelTimer = t  # type: ignore[assignment]
            matrix.on_level_timer(ctx, lv.level, lv.epoch)
        case timers.StepTimer:
            step: StepTimer = t  # type: ignore[assignment]
            if step.epoch == case.epoch and not case.acknowledged:
                ctx.send(step.person, step.via, step.level, step.reason)
        case timers.RepeatTimer:
            rp: RepeatTimer = t  # type: ignore[assignment]
            matrix.on_repeat_timer(ctx, rp.count, rp.epoch)
        case timers.RuleTimer:
            pass  # nothing more: rules are evaluated after every event


def _alert_repeated(ctx: Ctx, ev: Event) -> None:
    """Another trigger for the open case's dedup key: counted, not a new case."""
    case = ctx.case
    case.alerts += 1
    d = ev.data or {}
    ctx.record("alert_repeated", count=case.alerts, source=d.get("source"),
               summary=d.get("summary"))  # fmt: skip


def _delivery(ctx: Ctx, ev: Event) -> None:
    """A channel's result for one message; a permanent failure moves to the next method."""
    d = ev.data or {}
    person, channel = str(d.get("person")), str(d.get("channel"))
    fields = {"to": person, "channel": channel, "level": d.get("level"), "key": d.get("key")}
    if d.get("ok"):
        ctx.record("delivered", **fields)
        return
    ctx.record("delivery_failed", **fields, reason=str(d.get("error") or "unknown error"),
               permanent=bool(d.get("permanent")))  # fmt: skip
    case = ctx.case
    if not d.get("permanent") or case.status in ENDED:
        return
    ctx.next_method(person, channel, int(d.get("level") or case.level))


def _compensation(ctx: Ctx, ev: Event) -> None:
    """An admin's decision on a credit suggestion (`rungs.core.compensation`): on the record
    only; the case itself does not change."""
    ctx.record("compensation", **dict(ev.data or {}), by=ev.by, **said(ev))


Check = Callable[[Case, Event, Policy], None]
Handler = Callable[[Ctx, Event], None]

# kind -> (verb for refusals, statuses it is allowed in (empty: any), extra check, handler,
# what "handled by" notices say happened (None: the action sends none; see `notices`))
_ACTIONS: dict[str, tuple[str, tuple[str, ...], Check | None, Handler, str | None]] = {
    "acknowledge": ("acknowledge", ACTIVE, _check_acknowledge, _acknowledge, "acknowledged"),
    "respond": ("respond to", ACTIVE, None, _respond, None),
    "customer_reply": ("record a customer reply on", ACTIVE, None, _customer_reply, None),
    "pending": ("set pending", ("open", "acknowledged"), None, _pending, None),
    "escalate": ("escalate", ACTIVE, _check_escalation, _escalate, None),
    "request_escalation": ("escalate", ACTIVE, _check_escalation, _request_escalation, None),
    "assign": ("assign", ACTIVE, _check_assign, _assign, None),
    "set_priority": ("change the priority of", ACTIVE, _check_priority, _set_priority, None),
    "resolve": ("resolve", ACTIVE, None, _resolve, "resolved"),
    "reopen": ("reopen", ("resolved",), _check_reopen, _reopen, None),
    "close": ("close", ("resolved",), None, _close, None),
    "timer": ("", (), None, _timer, None),
    "delivery": ("", (), None, _delivery, None),
    "alert_repeated": ("add an alert to", ACTIVE, None, _alert_repeated, None),
    "observed": ("", (), check_observed, observe, None),
    "compensation": ("", (), None, _compensation, None),  # the ledger's own route only
}

_SHELL_ONLY = ("timer", "delivery", "alert_repeated", "observed", "compensation")
ACTIONS = tuple(k for k in _ACTIONS if k not in _SHELL_ONLY)


def allowed_actions(case: Case) -> frozenset[str]:
    """The actions a person may take on the case in its status (what the console offers;
    `decide` still checks each)."""
    out = {k for k, (_, statuses, *_) in _ACTIONS.items() if statuses and case.status in statuses}
    if case.acknowledged:
        out.discard("acknowledge")
    return frozenset(out)
