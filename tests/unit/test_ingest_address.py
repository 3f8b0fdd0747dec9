"""Alerts are always addressed: the pure rules of `rungs.api.ingest.address` (which value an
unknown customer, category, priority or matrix becomes), and the core's `input_corrected`
entries right after `opened` (the senders that use them: test_ingest_senders.py)."""

from __future__ import annotations

from typing import Any

import pytest

from rungs.api.ingest.address import addressed, categories
from rungs.core.decide import decide
from rungs.core.model import Event, Record
from rungs.engine.integrations import case_data
from rungs.policy import Policy, load_policy_text

BASE = """\
version: 1
timezone: UTC
people: [{ id: ann, contacts: { email: ann@example.com } }]
customers:
  - { id: acme, name: Acme }
  - { id: globex, name: Globex }
matrices:
  - id: network
    match: { category: [network] }
    levels: [{ notify: [person:ann] }]
  - id: default
    levels: [{ notify: [person:ann] }]
integrations:
  - { id: full, format: events, key: k-full,
      defaults: { customer: globex, category: monitoring, priority: P2 } }
  - { id: bare, format: events, key: k-bare }
"""


def _policy(text: str = BASE) -> Policy:
    policy, problems = load_policy_text(text)
    assert policy is not None, problems
    return policy


def _data(policy: Policy, integ: str, **given: Any) -> dict[str, Any]:
    """What a sender builds from an alert, addressed."""
    i = policy.integrations[integ]
    return addressed(case_data(i, dedup_key="k", title="t", **given), i, policy)


def test_known_values_are_kept_as_they_are() -> None:
    policy = _policy()
    d = _data(policy, "full", customer="acme", category="network", priority="P1")
    assert (d["customer"], d["category"], d["priority"]) == ("acme", "network", "P1")
    assert "corrections" not in d
    assert "corrections" not in _data(policy, "full")  # the defaults are known


def test_unknown_values_become_the_integrations_defaults() -> None:
    d = _data(_policy(), "full", customer="acmee", category="netwrok", priority="P0")
    assert (d["customer"], d["category"], d["priority"]) == ("globex", "monitoring", "P2")
    assert d["corrections"] == [
        {"field": "customer", "received": "acmee", "used": "globex"},
        {"field": "category", "received": "netwrok", "used": "monitoring"},
        {"field": "priority", "received": "P0", "used": "P2"},
    ]


def test_without_defaults_the_fallbacks() -> None:
    """No defaults: the first customer, `general`, P3; a missing customer is said as null."""
    d = _data(_policy(), "bare", category="netwrok", priority="high")
    assert (d["customer"], d["category"], d["priority"]) == ("acme", "general", "P3")
    assert d["corrections"] == [
        {"field": "customer", "received": None, "used": "acme"},
        {"field": "category", "received": "netwrok", "used": "general"},
        {"field": "priority", "received": "high", "used": "P3"},
    ]


def test_default_customer_profile_knows_every_customer() -> None:
    policy = _policy(BASE.replace("matrices:", "default_customer: { tier: bronze }\nmatrices:"))
    d = _data(policy, "bare", customer="newco")
    assert d["customer"] == "newco" and "corrections" not in d  # the profile is for it
    d = _data(policy, "bare")  # none at all: the profile's own id
    assert d["corrections"] == [{"field": "customer", "received": None, "used": "default"}]
    assert _data(policy, "full")["customer"] == "globex"  # the integration's default first


def test_categories_are_free_unless_the_policy_routes_on_them() -> None:
    routed = _policy()
    assert categories(routed) == {"network", "monitoring", "general"}
    free = _policy(BASE.replace("    match: { category: [network] }\n", ""))
    assert categories(free) is None
    assert "corrections" not in _data(free, "bare", customer="acme", category="anything")


def test_a_case_no_matrix_matches_gets_the_first_matrix() -> None:
    no_catch_all = (
        BASE.split("  - id: default")[0] + "integrations:" + BASE.split("integrations:")[1]
    )
    policy = _policy(no_catch_all)
    d = _data(policy, "bare", customer="acme", category="network")
    assert "corrections" not in d  # it matches
    d = _data(policy, "full", customer="acme")  # category monitoring: no matrix for it
    assert d["matrix"] == "network"
    assert d["corrections"] == [{"field": "matrix", "received": None, "used": "network"}]


def test_a_policy_without_customers_corrects_nothing_it_cannot() -> None:
    policy = _policy(
        BASE.replace("  - { id: acme, name: Acme }\n  - { id: globex, name: Globex }\n", "")
        .replace("customers:\n", "customers: []\n")
        .replace("customer: globex, ", "")
    )
    d = _data(policy, "bare", customer="acme")
    assert d["customer"] == "acme" and "corrections" not in d  # left for the core to refuse


# the core: one input_corrected entry per correction, right after `opened` ---------------------


def _kinds(effects: list[Any]) -> list[dict[str, Any]]:
    return [e.entry for e in effects if isinstance(e, Record)]


def test_the_core_records_each_correction_right_after_opened() -> None:
    policy = _policy()
    data = _data(policy, "full", customer="acmee", priority="P0")
    case, effects = decide(None, Event("open", data=data), 0, policy, case_id="C1")
    assert (case.customer, case.priority) == ("globex", "P2")
    entries = _kinds(effects)
    assert [e["kind"] for e in entries[:3]] == ["opened", "input_corrected", "input_corrected"]
    assert entries[1] == {
        "field": "customer",
        "received": "acmee",
        "used": "globex",
        "at": 0,
        "case": "C1",
        "kind": "input_corrected",
    }
    assert (entries[2]["field"], entries[2]["received"], entries[2]["used"]) == (
        "priority",
        "P0",
        "P2",
    )
    assert "corrections" not in case.fields


@pytest.mark.parametrize("kind", ["acknowledge", "resolve"])
def test_an_actions_reason_and_source_user_are_kept(kind: str) -> None:
    policy = _policy()
    case, _ = decide(None, Event("open", data=_data(policy, "full")), 0, policy, case_id="C1")
    ev = Event(kind, by="integration:og", reason="restarted", source_user="Monitoring Script")
    _, effects = decide(case, ev, 1, policy)
    entry = next(e for e in _kinds(effects) if e["kind"] in ("acknowledged", "resolved"))
    assert (entry["by"], entry["reason"], entry["source_user"]) == (
        "integration:og",
        "restarted",
        "Monitoring Script",
    )
    _, effects = decide(case, Event(kind, by="ann"), 1, policy)
    entry = next(e for e in _kinds(effects) if e["kind"] in ("acknowledged", "resolved"))
    assert "reason" not in entry and "source_user" not in entry  # as before when not given


def test_each_policy_version_is_addressed_by_its_own_categories() -> None:
    # the known categories are read once per policy object: a new version must not be
    # addressed with the categories of the one before
    old = _policy()
    new = _policy(BASE.replace("category: [network]", "category: [storage]"))
    assert categories(old) is categories(old)
    assert "network" in (categories(old) or ()) and "storage" in (categories(new) or ())
    assert "corrections" not in _data(old, "full", category="network")
    d = _data(new, "full", category="network")
    assert d["category"] == "monitoring" and d["corrections"][0]["field"] == "category"
    assert "corrections" not in _data(new, "full", category="storage")
