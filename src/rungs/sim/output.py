"""The timeline JSON of the scenarios README, and its comparison rule."""

from __future__ import annotations

from collections import Counter
from typing import Any

from rungs.core.timeline import timeline_json

__all__ = ["timeline_json", "CONTRACT_FIELDS", "LIVE_FIELDS", "compare_timelines"]

CONTRACT_FIELDS: dict[str, tuple[str, ...]] = {
    "opened": (),
    "notified": ("to", "channel", "level"),
    "escalated": ("level", "from", "cause", "reason"),
    "assigned": ("to",),
    "acknowledged": ("by",),
    "responded": ("by",),
    "customer_replied": (),
    "paused": ("metric",),
    "resumed": ("metric",),
    "sla_warning": ("metric", "percent"),
    "sla_breached": ("metric",),
    "priority_changed": ("priority",),
    "resolved": ("by",),
    "reopened": (),
    "closed": (),
}

LIVE_FIELDS: dict[str, tuple[str, ...]] = {
    "notice": ("to", "channel", "about"),
    "not_sent": ("to", "channel", "why"),
    "input_corrected": ("field", "received", "used"),
    "survey_sent": (),
    "survey_answered": ("rating", "comment"),
    "survey_expired": (),
    "survey_cancelled": (),
    "survey_followup": (),
    "suppressed": (),
}
"""Kinds the live service adds: compared only for a scenario whose expected file lists them."""


def compare_timelines(expected: list[dict[str, Any]], actual: list[dict[str, Any]]) -> list[str]:
    """Differences under the contract: listed kinds and fields only, multisets per instant.

    The contract's kinds always count; a kind of `LIVE_FIELDS` counts when `expected` shows
    at least one entry of it.
    """
    problems: list[str] = []
    ats = [e["at"] for e in actual]
    if ats != sorted(ats):
        problems.append("instants do not ascend")
    fields = {**CONTRACT_FIELDS}
    for e in expected:
        kind = e["kind"]
        if kind in LIVE_FIELDS:
            fields[kind] = LIVE_FIELDS[kind]

    def group(entries: list[dict[str, Any]]) -> dict[str, Counter]:
        g: dict[str, Counter] = {}
        for e in entries:
            kind = e["kind"]
            if kind in fields:
                key = (e["case"], kind, *((f, e.get(f)) for f in fields[kind]))
                g.setdefault(e["at"], Counter())[key] += 1
        return g

    exp, act = group(expected), group(actual)
    for at in sorted(set(exp) | set(act)):
        missing = exp.get(at, Counter()) - act.get(at, Counter())
        extra = act.get(at, Counter()) - exp.get(at, Counter())
        for k in missing.elements():
            problems.append(f"{at}: missing {k}")
        for k in extra.elements():
            problems.append(f"{at}: unexpected {k}")
    return problems
