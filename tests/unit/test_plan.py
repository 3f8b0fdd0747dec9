"""A policy's plan: built once per policy, and gone with the policy."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

import rungs
from rungs.core import plan as plans
from rungs.core.matrix import levels_of, matrix_of
from rungs.policy import load_policy

ACME_FILE = Path(rungs.__file__).parent / "examples" / "acme.yaml"


def test_one_plan_per_policy() -> None:
    policy = load_policy(ACME_FILE)
    assert plans.plan_of(policy) is plans.plan_of(policy)
    assert plans.plan_of(load_policy(ACME_FILE)) is not plans.plan_of(policy)


def test_a_dropped_policy_takes_its_plan_along() -> None:
    gc.collect()
    before = len(plans._PLANS)
    policy = load_policy(ACME_FILE)
    plans.plan_of(policy)
    assert len(plans._PLANS) == before + 1
    del policy
    gc.collect()
    assert len(plans._PLANS) == before


def test_a_matrix_missing_from_the_version_is_named() -> None:
    plan = plans.plan_of(load_policy(ACME_FILE))
    first = next(iter(plan.matrices))
    assert matrix_of(plan, first).id == first
    assert levels_of(plan, first) == len(plan.matrices[first].levels)
    with pytest.raises(KeyError, match="matrix 'gone' is not in this policy version"):
        levels_of(plan, "gone")
