"""`compensation`: versioned credit band tables per customer tier, for SLA breaches.

    compensation:
      version: "2026-01"          # named in every suggestion: change it when the bands change
      currency: EUR               # optional, shown with amounts
      tiers:
        gold:
          cap_percent: 30         # at most 30 % of the monthly fee per customer and month
          minimum: 50             # a suggestion below 50 is 0
          bands:                  # the first band a breach matches, top to bottom
            - {metric: resolution, priority: [P1], overrun_at_least: 100, credit_percent: 20}
            - {metric: [resolution, first_response], credit_percent: 10}
            - {breaches_at_least: 3, credit_percent: 5}

A band matches a breach of one of its `metric`s (any when absent) on a case of one of its
`priority`s (any when absent), overrun by at least `overrun_at_least` percent of the target,
that is at least the `breaches_at_least`-th breach of the customer in the period.
"""

from __future__ import annotations

from typing import Any

from rungs.policy.loader import Path
from rungs.policy.model import (
    METRICS,
    PRIORITIES,
    Compensation,
    CompensationBand,
    CompensationTable,
)
from rungs.policy.reader import Reader, hint, kind_of

__all__ = ["compile_compensation"]

_BAND_KEYS = ("metric", "priority", "overrun_at_least", "breaches_at_least", "credit_percent")
MAX_BANDS = 100


def compile_compensation(r: Reader, tiers_used: set[str]) -> Compensation | None:
    if "compensation" not in r.data:
        return None
    p: Path = ("compensation",)
    m = r.fields(
        r.data["compensation"],
        p,
        "compensation",
        ("version", "currency", "tiers"),
        ("version", "tiers"),
    )
    if m is None:
        return None
    version = r.string(m, "version", p)
    if version is not None and not 0 < len(version) <= 40:
        r.err((*p, "version"), "'version' must be 1 to 40 characters")
    currency = r.string(m, "currency", p) or ""
    raw = m.get("tiers")
    tiers: dict[str, CompensationTable] = {}
    if raw is not None and r.mapping(raw, (*p, "tiers"), "compensation 'tiers'") is not None:
        for tier, value in raw.items():
            tp = (*p, "tiers", tier)
            if tiers_used and str(tier) not in tiers_used:
                r.warn(tp, f"no customer has tier '{tier}'{hint(str(tier), tiers_used)}")
            table = _table(r, value, tp, str(tier))
            if table is not None:
                tiers[str(tier)] = table
    if version is None:
        return None
    return Compensation(version, tiers, currency)


def _number(r: Reader, m: dict[str, Any], key: str, p: Path, lo: float, hi: float) -> float | None:
    v = m.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float) or not lo <= v <= hi:
        shown = kind_of(v) if isinstance(v, dict | list) else repr(v)
        r.err((*p, key), f"'{key}' must be a number from {lo:g} to {hi:g}, not {shown}")
        return None
    return float(v)


def _table(r: Reader, value: Any, p: Path, tier: str) -> CompensationTable | None:
    what = f"compensation tier '{tier}'"
    m = r.fields(value, p, what, ("bands", "cap_percent", "minimum"), ("bands",))
    if m is None:
        return None
    cap = _number(r, m, "cap_percent", p, 0, 100)
    minimum = _number(r, m, "minimum", p, 0, 1e12)
    raw = m.get("bands")
    if not isinstance(raw, list) or not raw:
        r.err((*p, "bands"), f"{what}: 'bands' must be a non-empty list")
        return None
    if len(raw) > MAX_BANDS:
        r.err((*p, "bands"), f"{what}: at most {MAX_BANDS} bands")
        return None
    bands = [b for i, v in enumerate(raw) if (b := _band(r, v, (*p, "bands", i))) is not None]
    if len(bands) != len(raw):
        return None
    return CompensationTable(
        tuple(bands), 100.0 if cap is None else cap, 0.0 if minimum is None else minimum
    )


def _band(r: Reader, value: Any, p: Path) -> CompensationBand | None:
    m = r.fields(value, p, "compensation band", _BAND_KEYS, ("credit_percent",))
    if m is None:
        return None
    ok = True
    metrics = r.strings(m["metric"], (*p, "metric"), "metric") if "metric" in m else []
    for metric in metrics:
        if metric not in METRICS:
            r.err((*p, "metric"), f"unknown metric '{metric}'{hint(metric, METRICS)}")
            ok = False
    prios = r.strings(m["priority"], (*p, "priority"), "priority") if "priority" in m else []
    for prio in prios:
        if prio not in PRIORITIES:
            r.err((*p, "priority"), f"unknown priority '{prio}' (use {', '.join(PRIORITIES)})")
            ok = False
    credit = _number(r, m, "credit_percent", p, 0, 100)
    overrun = _number(r, m, "overrun_at_least", p, 0, 1e6)
    nth = m.get("breaches_at_least", 1)
    if isinstance(nth, bool) or not isinstance(nth, int) or not 1 <= nth <= 10_000:
        r.err(
            (*p, "breaches_at_least"),
            f"'breaches_at_least' must be a whole number from 1, not {nth!r}",
        )
        ok = False
    if not ok or credit is None or ("overrun_at_least" in m and overrun is None):
        return None
    return CompensationBand(credit, frozenset(metrics), frozenset(prios), overrun or 0.0, nth)
