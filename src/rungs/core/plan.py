"""Per-policy look-up tables for the hot path, built on first use and kept beside the policy.

A compiled `Policy` never changes, so what `decide` would otherwise work out again on every
event (a matrix by id, a customer's SLA policy, the warning thresholds of each target, which
rules exist) is worked out once per policy instance instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from weakref import finalize

from rungs.policy.channels import channels_of
from rungs.policy.model import METRICS, Matrix, Policy, SlaPolicy

if TYPE_CHECKING:  # rules.py builds them (it imports this module): for the annotation only
    from rungs.core.rules import RuleTests

__all__ = ["Plan", "Limit", "plan_of"]

Limit = tuple[int, tuple[tuple[int, int], ...]]
"""A metric's target and its warnings as (percent, threshold) pairs, in `warn_at` order."""


class Plan:
    """What one policy means for the hot path; see `plan_of`."""

    __slots__ = (
        "_sets",
        "chosen",
        "limits",
        "matrices",
        "notices",
        "rule_tests",
        "rules",
        "sends",
        "slas",
        "updated_ages",
    )

    def __init__(self, policy: Policy) -> None:
        # No reference to the policy itself: `plan_of` keeps plans under weak policy keys.
        self.matrices: dict[str, Matrix] = {}
        for m in policy.matrices:
            self.matrices.setdefault(m.id, m)  # the first of a repeated id, as a scan finds
        self.rules = policy.rules
        self.updated_ages = any(r.age_since == "updated" for r in policy.rules)
        self.rule_tests: RuleTests | None = None  # built by `rules` on first use: it owns them
        self.chosen: dict[tuple[tuple[str, str], ...], Matrix | None] = {}  # see select_matrix
        # Only declared customers: `default_customer` accepts any id, which must not grow this.
        self.slas = {cid: _sla_policy(policy, cid) for cid in policy.customers}
        self.limits = {s.id: _limits(s) for s in policy.sla_policies.values()}
        self._sets: dict[frozenset[str], frozenset[str]] = {}
        channels = channels_of(policy)
        self.notices = channels.declared and channels.handled_notice  # "handled by" notices
        self.sends = channels.declared  # without a `channels` section no page goes out

    def shared(self, names: frozenset[str]) -> frozenset[str]:
        """The one object kept for this content (`rules_true`, `happened`).

        Cases share few distinct such sets: a shared one stays in cache, its hash computed
        once, where every case's own copy would be read cold on each decision.
        """
        found = self._sets.get(names)
        if found is None:
            if len(self._sets) >= _SETS_KEPT:
                return names
            found = self._sets[names] = names
        return found

    def sla_of(self, policy: Policy, customer: str) -> SlaPolicy | None:
        """The SLA policy of a customer of `policy` (this plan's), through its partner when it
        names none itself."""
        slas = self.slas
        if customer in slas:
            return slas[customer]
        return _sla_policy(policy, customer)  # a `default_customer` profile


_SETS_KEPT = 4096  # distinct sets shared per policy; past that, sets are kept as they come

# A plan lives as long as its policy (a policy is never changed, only replaced) and not on it:
# a policy stays a plain value that copies and pickles as it did. Kept by the policy's
# identity: `plan_of` runs on every decision, and a look-up by `id` is one C call, where a
# `WeakKeyDictionary` costs a Python call and a new weak reference each time (measured: ~2%
# of the core bench). A finalizer drops the entry when the policy is freed, before its id can
# be reused; a plan holds no reference to its policy, so dropping a version drops its plan.
_PLANS: dict[int, Plan] = {}


def plan_of(policy: Policy) -> Plan:
    """The policy's plan, built on first use."""
    plan = _PLANS.get(id(policy))
    if plan is None:
        plan = _PLANS[id(policy)] = Plan(policy)
        finalize(policy, _PLANS.pop, id(policy), None)
    return plan


def _sla_policy(policy: Policy, cid: str) -> SlaPolicy | None:
    customer = policy.customer(cid)
    if customer is None:
        return None
    name = customer.sla
    if name is None and customer.partner and customer.partner in policy.partners:
        name = policy.partners[customer.partner].sla
    return policy.sla_policies.get(name) if name else None


def _limits(sla: SlaPolicy) -> dict[str, dict[str, Limit | None]]:
    """Priority -> metric -> (target, warnings), None where the priority sets no target."""
    out: dict[str, dict[str, Limit | None]] = {}
    for priority, targets in sla.targets.items():
        row: dict[str, Limit | None] = {}
        for metric in METRICS:
            target = targets.get(metric)
            row[metric] = None if target is None else (target, _warnings(target, sla.warn_at))
        out[priority] = row
    return out


def _warnings(target: int, warn_at: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    # ceiling: a percent is reached, never rounded early
    return tuple((pct, -((-target * pct) // 100)) for pct in warn_at)
