"""The timeline JSON of the scenarios README, and its comparison rule."""

from __future__ import annotations

from collections import Counter
from typing import Any
from zoneinfo import ZoneInfo

from rich.table import Table

from rungs.core.timeline import timeline_json
from rungs.time.instant import format_local

__all__ = [
    "timeline_json",
    "timeline_table",
    "CONTRACT_FIELDS",
    "LIVE_FIELDS",
    "compare_timelines",
    "WIDE",
]

WIDE = 100
"""Below this many columns, `timeline_table` leaves out the UTC column rather than cut times."""

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


def _value(v: object) -> str:
    """A detail's value as a person reads it: no Python `None`, lists without brackets."""
    if isinstance(v, list | tuple):
        return ", ".join(_value(x) for x in v)
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_value(x)}" for k, x in v.items()) + "}"
    return "-" if v is None else str(v)


def timeline_table(
    title: str, raw: list[dict[str, Any]], entries: list[dict[str, Any]], zone: str, width: int
) -> Table:
    """`rungs simulate`'s table: one row per entry. Instants are never cut: they do not wrap,
    and the UTC column goes when the terminal is narrower than `WIDE` (the local time, in the
    policy's `zone`, stays); the details wrap instead."""
    tz = ZoneInfo(zone)
    table = Table(title=title)
    table.add_column(f"local ({zone})" if width >= WIDE else "local", no_wrap=True)
    if width >= WIDE:
        table.add_column("UTC", no_wrap=True)
    table.add_column("case", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("details", overflow="fold")
    for r, e in zip(raw, entries, strict=True):
        details = ", ".join(
            f"{k}={_value(v)}"
            for k, v in e.items()
            if k not in ("at", "case", "kind") and v is not None
        )
        local = format_local(r["at"], tz)
        row = (local, e["at"]) if width >= WIDE else (local,)
        table.add_row(*row, e["case"], e["kind"], details)
    return table
