"""`default_customer`: the profile of a customer the policy does not list by id."""

from __future__ import annotations

from rungs.policy.model import Customer
from rungs.policy.reader import Reader
from rungs.policy.sections.customers import customer
from rungs.policy.values import Known

__all__ = ["compile_default_customer"]


def compile_default_customer(r: Reader, known: Known) -> Customer | None:
    if "default_customer" not in r.data:
        return None
    return customer(r, "default", r.data["default_customer"], ("default_customer",), known)
