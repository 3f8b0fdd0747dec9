"""What customers' mail and surveys add to a case, decided like every other input.

- `mail_fields`: a customer reply or escalation request that came by mail keeps its text and
  sender on its entry (`text`, `from`, `message_id`), from the event's `data`.
- `at_top`: a customer's escalation request that says `data.at_top = "page"` (the mail
  shell does) is not refused at the last level: an `escalation_requested` entry and the last
  level paged again.
- `observe`: the `observed` event records one shell-observed entry (survey sends, answers,
  expiries, cancellations, auto-replies on a case) and changes nothing else, except that a
  `survey_followup` pages the customer's owner, or else the case's current level, which is
  the highest it reached since its last reopening.
"""

from __future__ import annotations

from typing import Any

from rungs.core import matrix
from rungs.core.ctx import Ctx
from rungs.core.model import Case, Event, Refused
from rungs.core.plan import plan_of
from rungs.policy.model import Policy, Target

__all__ = ["OBSERVED", "at_top", "mail_fields", "observe", "check_observed"]

OBSERVED = frozenset(
    (
        "survey_sent",
        "survey_answered",
        "survey_expired",
        "survey_cancelled",
        "survey_followup",
        "survey_opt_out",
        "auto_reply",
    )
)
_MAIL_KEYS = ("text", "sender", "message_id", "subject", "attachments")


def mail_fields(ev: Event) -> dict[str, Any]:
    """The mail an event came from, for its entry (nothing for other events)."""
    d = ev.data
    if not d:
        return {}
    return {k: d[k] for k in _MAIL_KEYS if d.get(k) is not None}


def at_top(case: Case, ev: Event, policy: Policy) -> bool:
    """Whether this is a customer's request at the last level that is recorded, not refused."""
    if ev.to_level is not None or not ev.data or ev.data.get("at_top") != "page":
        return False
    return case.level >= matrix.levels_of(plan_of(policy), case.matrix)


def page_top_again(ctx: Ctx, ev: Event, **said: Any) -> None:
    case = ctx.case
    ctx.record("escalation_requested", level=case.level, cause="customer", **said,
               **mail_fields(ev))  # fmt: skip
    lv = matrix.matrix_of(ctx.plan, case.matrix).levels[case.level - 1]
    ctx.notify_targets(lv.notify, case.level, "escalation requested again", lv.fallback)


def check_observed(case: Case, ev: Event, policy: Policy) -> None:
    kind = (ev.data or {}).get("entry")
    if kind not in OBSERVED:
        raise Refused(f"'{kind}' is not an observed entry ({', '.join(sorted(OBSERVED))})", 422)


def observe(ctx: Ctx, ev: Event) -> None:
    d = dict(ev.data or {})
    kind = d.pop("entry")
    ctx.record(kind, **d)
    if kind != "survey_followup":
        return
    case = ctx.case
    customer = ctx.policy.customer(case.customer)
    owner = customer.owner if customer is not None else None
    if owner is not None:
        ctx.notify_targets((Target("person", owner),), case.level, "survey_followup")
        return
    try:
        lv = matrix.matrix_of(ctx.plan, case.matrix).levels[case.level - 1]
    except (KeyError, IndexError):
        return  # the case's matrix is gone from this version: the entry stands alone
    ctx.notify_targets(lv.notify, case.level, "survey_followup", lv.fallback)
