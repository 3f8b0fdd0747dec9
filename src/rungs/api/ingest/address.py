"""Alerts are always addressed: an alert's customer, category, priority and matrix are made
ones the policy can open a case with, and each value that had to change is said.

A monitoring sender cannot fix a mistyped label and retry, so ingest never refuses an alert
for where it belongs. A value the policy does not know is replaced, in this order:

- customer: the integration's `defaults.customer`; else, when the policy has a
  `default_customer` profile, the customer `default` under it; else the policy's first
  customer. (With `default_customer`, every customer id is known: that profile is for them.)
- category: the integration's `defaults.category`, else `general`. A category is unknown
  only when the policy routes on categories (a matrix `match` or a rule `when` names one) and
  neither those, nor an integration's default, nor `general` is it.
- priority: the integration's `defaults.priority`, else P3.
- matrix: when no matrix matches the case (a policy without a catch-all), the first matrix.

Each change becomes `corrections: [{field, received, used}]` in the open data, which the core
records as `input_corrected` entries right after `opened` (`rungs.core.provenance`).
"""

from __future__ import annotations

from typing import Any

from rungs.core.matrix import scope_of, select_matrix
from rungs.policy import Policy
from rungs.policy.model import PRIORITIES, Integration

__all__ = ["Correction", "addressed", "categories"]

Correction = dict[str, str | None]  # field, received (None: nothing was given), used


def addressed(data: dict[str, Any], integ: Integration, policy: Policy) -> dict[str, Any]:
    """`data` (what `case_data` built from an alert) with its customer, category, priority
    and matrix usable under `policy`, and `corrections` listing what changed (only when
    something did)."""
    d = integ.defaults
    fixed: dict[str, Any] = {}
    corrections: list[Correction] = []

    def correct(field: str, used: str | None) -> None:
        if used is not None:
            corrections.append({"field": field, "received": data.get(field), "used": used})
            fixed[field] = used

    if not data.get("customer") or policy.customer(str(data["customer"])) is None:
        correct("customer", _fallback_customer(integ, policy))
    known = categories(policy)
    if known is not None and data.get("category") not in known:
        correct("category", d.get("category") or "general")
    if data.get("priority") not in PRIORITIES:
        correct("priority", d.get("priority") or "P3")
    merged = {**data, **fixed}
    if not merged.get("matrix") and policy.matrices:
        customer = policy.customer(str(merged.get("customer")))
        if customer is not None and select_matrix(policy, scope_of(merged, customer)) is None:
            correct("matrix", policy.matrices[0].id)
    if not corrections:
        return data
    return {**data, **fixed, "corrections": corrections}


_KNOWN: dict[int, tuple[Policy, frozenset[str] | None]] = {}  # by policy identity: few live


def categories(policy: Policy) -> frozenset[str] | None:
    """The categories the policy knows, or None when it routes on none (any is fine then).
    Read once per policy version: a storm asks it for every alert, and the walk over its
    matrices and rules cost more than the rest of addressing one."""
    got = _KNOWN.get(id(policy))
    if got is not None and got[0] is policy:
        return got[1]
    known = _categories(policy)
    if len(_KNOWN) >= 16:
        _KNOWN.clear()
    _KNOWN[id(policy)] = (policy, known)
    return known


def _categories(policy: Policy) -> frozenset[str] | None:
    named = {str(c) for m in policy.matrices for c in m.match.get("category", ())}
    named |= {str(c) for r in policy.rules for c in r.when.get("category", ())}
    if not named:
        return None
    defaults = {
        i.defaults["category"] for i in policy.integrations.values() if i.defaults.get("category")
    }
    return frozenset(named | defaults | {"general"})


def _fallback_customer(integ: Integration, policy: Policy) -> str | None:
    """The customer for an alert whose own is missing or unknown (None: the policy has none)."""
    default = integ.defaults.get("customer")
    if default and policy.customer(default) is not None:
        return default
    if policy.default_customer is not None:
        return "default"
    return next(iter(policy.customers), None)
