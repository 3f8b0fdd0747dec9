"""`partners`: who resells to customers, with their own SLA policy."""

from __future__ import annotations

from rungs.policy.model import Partner
from rungs.policy.reader import Reader, hint
from rungs.policy.values import Known

__all__ = ["compile_partners"]


def compile_partners(r: Reader, known: Known) -> dict[str, Partner]:
    out = {}
    for ident, m, p in r.entries("partners"):
        m = r.fields(m, p, f"partner '{ident}'", ("id", "name", "sla"), ())
        if m is None:
            continue
        sla = r.string(m, "sla", p)
        if sla is not None and sla not in known["sla_policies"]:
            near = hint(sla, known["sla_policies"])
            r.err((*p, "sla"), f"unknown SLA policy '{sla}' for partner '{ident}'{near}")
        out[ident] = Partner(ident, str(m.get("name", ident)), sla)
    return out
