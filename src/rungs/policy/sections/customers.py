"""`customers`: tier, value, SLA policy, partner, sites and device groups.

`customer` also reads the `default_customer` profile (see `default_customer.py`).
"""

from __future__ import annotations

from typing import Any

from rungs.policy.loader import Path
from rungs.policy.model import Customer
from rungs.policy.reader import Reader, hint, kind_of
from rungs.policy.values import Known

__all__ = ["compile_customers", "customer"]


def customer(r: Reader, ident: str, value: Any, p: Path, known: Known) -> Customer | None:
    """One customer profile (an entry of `customers`, or `default_customer`)."""
    allowed = (
        "id",
        "name",
        "tier",
        "value",
        "sla",
        "partner",
        "sites",
        "device_groups",
        "timezone",
    )
    m = r.fields(value, p, f"customer '{ident}'", allowed, ())
    if m is None:
        return None
    sla = r.string(m, "sla", p)
    if sla is not None and sla not in known["sla_policies"]:
        near = hint(sla, known["sla_policies"])
        r.err((*p, "sla"), f"unknown SLA policy '{sla}' for customer '{ident}'{near}")
    partner = r.string(m, "partner", p)
    if partner is not None and partner not in known["partners"]:
        near = hint(partner, known["partners"])
        r.err((*p, "partner"), f"unknown partner '{partner}' for customer '{ident}'{near}")
    worth = m.get("value")
    if worth is not None and (isinstance(worth, bool) or not isinstance(worth, int | float)):
        r.err((*p, "value"), f"customer value must be a number, not {kind_of(worth)}")
        worth = None

    def ids(key: str) -> tuple[str, ...]:
        raw = m.get(key, [])
        if isinstance(raw, list):
            return tuple(str(x["id"]) if isinstance(x, dict) and "id" in x else str(x) for x in raw)
        r.err((*p, key), f"'{key}' must be a list")
        return ()

    tier = r.string(m, "tier", p)
    return Customer(
        ident,
        str(m.get("name", ident)),
        tier,
        worth,
        sla,
        partner,
        ids("sites"),
        ids("device_groups"),
    )


def compile_customers(r: Reader, known: Known) -> dict[str, Customer]:
    out = {}
    for ident, m, p in r.entries("customers"):
        c = customer(r, ident, m, p, known)
        if c is not None:
            out[ident] = c
    return out
