"""The timeline JSON of the scenarios README, and its comparison rule."""

from __future__ import annotations

from collections import Counter
from typing import Any

from rungs.time.instant import format_utc

__all__ = ["timeline_json", "CONTRACT_FIELDS", "compare_timelines"]

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


def timeline_json(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Entries with `at` as `YYYY-MM-DDTHH:MM:SSZ` and no empty fields."""
    out = []
    for e in entries:
        d = {"at": format_utc(e["at"]), "case": e["case"], "kind": e["kind"]}
        for k, v in e.items():
            if k not in d and v is not None and k != "at":
                d[k] = v
        out.append(d)
    return out


def _key(e: dict[str, Any]) -> tuple[Any, ...]:
    kind = e["kind"]
    return (e["case"], kind, *((f, e.get(f)) for f in CONTRACT_FIELDS[kind]))


def compare_timelines(expected: list[dict[str, Any]], actual: list[dict[str, Any]]) -> list[str]:
    """Differences under the contract: listed kinds and fields only, multisets per instant."""
    problems: list[str] = []
    ats = [e["at"] for e in actual]
    if ats != sorted(ats):
        problems.append("instants do not ascend")

    def group(entries: list[dict[str, Any]]) -> dict[str, Counter]:
        g: dict[str, Counter] = {}
        for e in entries:
            if e["kind"] in CONTRACT_FIELDS:
                g.setdefault(e["at"], Counter())[_key(e)] += 1
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
