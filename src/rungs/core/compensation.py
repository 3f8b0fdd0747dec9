"""Credit suggestions for SLA breaches, from the policy's `compensation` tables. Pure.

`suggest(breaches, compensation, customers)` gives one suggestion per breach, in a fixed
order (per customer: by breach instant, then case and metric), so running a period again
with the same table version gives the same suggestions. Amounts are in cents: the monthly
fee is the customer's annual `value` / 12; the credit is the first matching band's percent
of it, cut to what the tier's cap per period leaves, and 0 below the tier's minimum.
Guidance only: nothing here is ever applied by itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from rungs.policy.model import Compensation, CompensationBand, Customer

__all__ = ["Breach", "Suggestion", "suggest"]


@dataclass(frozen=True, slots=True)
class Breach:
    """One `sla_breached` metric of a case, measured for the period."""

    case: str
    customer: str
    metric: str
    priority: str
    at: int  # the breach instant
    target: int  # µs
    elapsed: int  # µs counted on the SLA's clock (to its stop, or to the period's end)


@dataclass(frozen=True, slots=True)
class Suggestion:
    breach: Breach
    amount_cents: int
    credit_percent: float
    rationale: dict[str, Any]


def _matches(b: CompensationBand, br: Breach, overrun: float, nth: int) -> bool:
    return (
        (not b.metrics or br.metric in b.metrics)
        and (not b.priorities or br.priority in b.priorities)
        and overrun >= b.overrun_at_least
        and nth >= b.breaches_at_least
    )


def _money(cents: int) -> str:
    return f"{cents / 100:.2f}"


def suggest(
    breaches: Iterable[Breach], comp: Compensation, customers: Mapping[str, Customer | None]
) -> list[Suggestion]:
    """Every breach's suggestion; see the module docstring."""
    out: list[Suggestion] = []
    given: dict[str, int] = {}  # customer -> cents suggested so far in the period
    nth: dict[str, int] = {}
    for br in sorted(breaches, key=lambda b: (b.customer, b.at, b.case, b.metric)):
        n = nth[br.customer] = nth.get(br.customer, 0) + 1
        overrun = round(max(0, br.elapsed - br.target) / br.target * 100, 2) if br.target else 0.0
        c = customers.get(br.customer)
        tier = c.tier if c is not None else None
        value = c.value if c is not None and c.value is not None else 0.0
        fee_cents = round(value * 100 / 12)
        why: dict[str, Any] = {
            "table_version": comp.version,
            "tier": tier,
            "breach": {
                "case": br.case,
                "metric": br.metric,
                "priority": br.priority,
                "at_us": br.at,
                "target_s": br.target // 1_000_000,
                "elapsed_s": br.elapsed // 1_000_000,
                "overrun_percent": overrun,
                "breach_in_period": n,
            },
            "monthly_fee": _money(fee_cents),
            "currency": comp.currency,
        }
        table = comp.tiers.get(tier or "")
        band = None
        if table is not None:
            band = next(
                ((i, b) for i, b in enumerate(table.bands) if _matches(b, br, overrun, n)), None
            )
        if table is None or band is None:
            why["band"] = None
            why["arithmetic"] = (
                f"no table for tier '{tier}'" if table is None else "no band matches: 0.00"
            )
            out.append(Suggestion(br, 0, 0.0, why))
            continue
        index, b = band
        raw = round(fee_cents * b.credit_percent / 100)
        cap = round(fee_cents * table.cap_percent / 100)
        so_far = given.get(br.customer, 0)
        amount = max(0, min(raw, cap - so_far))
        steps = [
            f"{value:g} / 12 = {_money(fee_cents)} monthly fee",
            f"x {b.credit_percent:g} % (band {index + 1}) = {_money(raw)}",
        ]
        if amount < raw:
            steps.append(
                f"cap {table.cap_percent:g} % = {_money(cap)}, {_money(so_far)} "
                f"already suggested: {_money(amount)}"
            )
        if amount and amount < round(table.minimum * 100):
            steps.append(f"below the minimum {table.minimum:g}: 0.00")
            amount = 0
        given[br.customer] = so_far + amount
        why["band"] = index + 1
        why["arithmetic"] = "; ".join(steps)
        out.append(Suggestion(br, amount, b.credit_percent, why))
    return out
