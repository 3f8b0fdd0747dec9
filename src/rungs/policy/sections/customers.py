"""`customers`: tier, value, SLA policy, partner, sites and device groups; for inbound mail
the `contacts` and `domains` that write in for it, and its account `owner` (a person).

`customer` also reads the `default_customer` profile (see `default_customer.py`).
"""

from __future__ import annotations

from typing import Any

from rungs.policy.loader import Path
from rungs.policy.model import Customer
from rungs.policy.reader import Reader, hint, kind_of
from rungs.policy.values import DOMAIN, MAILBOX, Known

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
        "contacts",
        "domains",
        "owner",
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
        _addresses(r, m, p, "contacts", ident),
        _addresses(r, m, p, "domains", ident),
        _owner(r, m, p, ident, known),
    )


def _addresses(r: Reader, m: dict[str, Any], p: Path, key: str, ident: str) -> tuple[str, ...]:
    """`contacts` (mail addresses) or `domains`, lower case, each checked for its shape."""
    if key not in m:
        return ()
    out = []
    for i, raw in enumerate(r.strings(m[key], (*p, key), f"'{key}'")):
        value = raw.strip().lower()
        at = (*p, key, i) if isinstance(m[key], list) else (*p, key)
        if key == "contacts" and not MAILBOX.match(value):
            r.err(at, f"'{raw}' in contacts of customer '{ident}' is not a mail address")
        elif key == "domains" and not DOMAIN.match(value):
            r.err(at, f"'{raw}' in domains of customer '{ident}' is not a domain name")
        else:
            out.append(value)
    return tuple(dict.fromkeys(out))


def _owner(r: Reader, m: dict[str, Any], p: Path, ident: str, known: Known) -> str | None:
    """The account owner: `ID` or `person:ID` of a person the policy declares."""
    owner = r.string(m, "owner", p)
    if owner is None:
        return None
    person = owner.removeprefix("person:")
    if person not in known["people"]:
        near = hint(person, known["people"])
        r.err((*p, "owner"), f"unknown person '{person}' as owner of customer '{ident}'{near}")
        return None
    return person


def compile_customers(r: Reader, known: Known) -> dict[str, Customer]:
    out = {}
    for ident, m, p in r.entries("customers"):
        c = customer(r, ident, m, p, known)
        if c is not None:
            out[ident] = c
    return out
