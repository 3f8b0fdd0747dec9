"""What each report figure means, printed with every report so nobody has to guess.

One text per key of the reports' JSON (`rungs.store.views.reports`); the README repeats
them. Every report covers the cases *opened* in its window `[from, to)`.
"""

from __future__ import annotations

__all__ = ["DEFINITIONS", "definitions"]

DEFINITIONS: dict[str, str] = {
    "window": "A report covers the cases opened at or after `from` and before `to` (UTC); "
    "every count below is over those cases, whenever its entries happened.",
    "cases": "Cases opened in the window.",
    "escalated_cases": "Cases with at least one `escalated` entry.",
    "escalation_rate": "escalated_cases / cases (0 when there are no cases); also per cause, "
    "per reason code, per customer tier, per team and per category in the escalation report.",
    "escalations_by_cause": "`escalated` entries by cause: timer (a level's time ran out), rule "
    "(an escalation rule), manual (a person escalated), customer (the customer asked).",
    "escalations_by_reason": "`escalated` entries by their reason code (entries without a "
    "reason are not counted here).",
    "sla_breaches": "`sla_breached` entries per metric (a metric breaches at most once per case).",
    "reopened_cases": "Cases with at least one `reopened` entry.",
    "ping_pong_cases": "Cases, sorted by id, whose assignment went back to a holder it had "
    "left (A -> B -> A), across teams or people. Holders are the targets of `assigned` "
    "entries; moving up the levels is escalation, not reassignment. Hops: distinct holders.",
    "right_first_time": "Cases resolved (or closed) by the team or level that first held them: "
    "never escalated, never reopened, never passed to a second holder.",
    "sla_achievement": "Per metric: met / (met + breached). Running, paused and not-applicable "
    "metrics (no target for the case's priority, or never started) are left out. A metric is "
    "met when it stopped (its response, or the resolution) before its target. `clock` says "
    "whether the target counts business hours (`business`) or wall time (`calendar`).",
    "mtta": "Mean time to acknowledge: from opening to the first `acknowledged` entry; mean, "
    "median and p90 in seconds (median and p90 by nearest rank, to the minute). Cases never "
    "acknowledged are excluded (`unacknowledged` counts them).",
    "mttr": "Mean time to resolve: from opening to the last resolution of a case that is "
    "resolved or closed now; mean, median and p90 in seconds (median and p90 by nearest "
    "rank, to the minute). Open cases are excluded.",
    "aging": "Cases not resolved or closed, by age at the report's `now`: 0-1 d, 1-7 d, "
    "7-30 d, > 30 d.",
    "closed_within_30_days": "The 30-day close rule: the share of cases resolved (and not "
    "reopened since) within 30 days of opening; `late` lists those resolved later, "
    "`open_past_30_days` the open ones older than 30 days.",
    "load": "Per person: pages (`notified` entries) in the person's own time zone by window: "
    "business (08-18 Mon-Fri), sleep (22-08), off_hours (the rest); on-call hours in the "
    "window from the schedules with their overrides; cases held (the person is the holder). "
    "Ranked by out-of-hours pages (off_hours + sleep).",
    "reasons": "The top escalation reason codes, their counts and share of all `escalated` "
    "entries with a reason, and counts per week (weeks start on Monday, UTC, by opening).",
    "value_at_risk": "Open cases with an SLA metric past its target or within `horizon` of "
    "it, with their customer's annual value; summed per customer.",
}


def definitions(*keys: str) -> dict[str, str]:
    """The definitions of `keys` (all of them when none), always with the window's."""
    if not keys:
        return dict(DEFINITIONS)
    return {k: DEFINITIONS[k] for k in ("window", *keys) if k in DEFINITIONS}
