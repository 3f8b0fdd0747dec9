"""The console's pure reads: the Simulate panel's preview (the core, as `rungs simulate`
runs it) and the on-call board (who a page would reach now, per schedule and matrix level)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from rungs.api.web.inputs import BadInput, local_instant, zone
from rungs.policy import load_policy, load_policy_text
from rungs.policy.redact import public_yaml, stand_ins
from rungs.schedules.oncall import Override
from rungs.sim import SimulationError
from rungs.sim.preview import preview
from rungs.store.views._board import board, person_shifts
from rungs.time.instant import DAY, parse_instant

ACME = Path(__file__).resolve().parents[2] / "src/rungs/examples/acme.yaml"
FRIDAY = parse_instant("2026-11-27T17:55:00+01:00")


def test_a_p1_opened_friday_1755_escalates_on_the_policys_timers() -> None:
    policy = load_policy(ACME)
    data = {"customer": "globex", "category": "network", "priority": "P1", "title": "Down"}
    got = preview(policy, data, FRIDAY, FRIDAY + DAY)
    seen = [(e["at"], e["kind"], e.get("to") or e.get("metric") or e.get("level")) for e in got]
    assert seen[:3] == [
        ("2026-11-27T16:55:00Z", "opened", None),
        ("2026-11-27T16:55:00Z", "notified", "dave"),
        ("2026-11-27T16:55:00Z", "notified", "dave"),
    ]
    assert ("2026-11-27T17:10:00Z", "escalated", 2) in seen  # 15 minutes unacknowledged
    assert ("2026-11-27T17:10:00Z", "notified", "erin") in seen
    assert ("2026-11-27T17:10:00Z", "sla_breached", "first_response") in seen
    assert ("2026-11-27T17:55:00Z", "escalated", 3) in seen
    assert got[0]["matrix"] == "globex-network"
    assert all(e["at"] <= "2026-11-28T16:55:00Z" for e in got), "nothing past the horizon"


def test_business_hours_pause_a_standard_customers_clock_over_the_weekend() -> None:
    policy = load_policy(ACME)
    data = {"customer": "initech", "category": "billing", "priority": "P1", "title": "x"}
    got = preview(policy, data, FRIDAY, FRIDAY + 4 * DAY)
    (breach,) = [e for e in got if e["kind"] == "sla_breached" and e["metric"] == "first_response"]
    assert breach["at"] == "2026-11-30T09:00:00Z", "1h of office hours: Monday 10:00 Berlin"


def test_a_case_the_core_refuses_is_an_error_not_a_timeline() -> None:
    policy = load_policy(ACME)
    with pytest.raises(SimulationError, match="cannot be opened"):
        preview(policy, {"customer": "globex", "priority": "P9", "title": "x"}, FRIDAY, FRIDAY)


def test_the_board_names_who_each_schedule_and_level_reaches_now() -> None:
    policy = load_policy(ACME)
    monday = parse_instant("2026-11-30T10:00:00+01:00")  # the 5th week: dave, carol, ... dave
    b = board(policy, monday)
    (net,) = b["schedules"]
    assert net["id"] == "network-oncall" and net["on_call"] == ["dave"]
    assert net["source"] == "weekly" and net["fallback"] == "person:frank"
    assert net["shifts"][0]["start_us"] <= monday < net["shifts"][0]["end_us"]
    assert all(s["start_us"] < monday + 14 * DAY for s in net["shifts"])
    levels = {m["id"]: m["levels"] for m in b["matrices"]}
    assert levels["default"][0]["targets"] == [
        {"target": "team:service-desk", "people": ["alice", "bob"]}
    ]
    assert levels["globex-network"][2]["targets"][0]["people"] == ["frank"]
    night = board(policy, parse_instant("2026-11-30T23:00:00+01:00"))
    assert night["schedules"][0]["on_call"] == []
    assert night["schedules"][0]["paged"] == ["person:frank"], "outside the layer's hours"


def test_an_override_shows_on_the_board_and_in_the_persons_shifts() -> None:
    policy = load_policy(ACME)
    at = parse_instant("2026-11-30T10:00:00+01:00")
    s = policy.schedules["network-oncall"]
    over = Override(at, at + 3600 * 1_000_000, "gina")
    policy = replace(policy, schedules={s.id: replace(s, overrides=(over,))})
    b = board(policy, at)
    assert b["schedules"][0]["on_call"] == ["gina"] and b["schedules"][0]["source"] == "override"
    (mine,) = person_shifts(policy, "gina", at)
    assert (mine["schedule"], mine["start_us"], mine["source"]) == (
        "network-oncall",
        at,
        "override",
    )
    assert person_shifts(policy, "nobody", at) == []


def test_a_text_without_secrets_checks_and_simulates_with_stand_ins() -> None:
    text = ACME.read_text().replace(
        "contacts: {email: bob@acme.test}",
        'contacts: {email: bob@acme.test, webhook: "https://hooks.example/T0/secret"}',
    )
    policy, _ = load_policy_text(text, "acme.yaml")
    assert policy is not None
    shown = public_yaml(text, policy)
    assert "hooks.example" not in shown and "channels: <redacted>" in shown
    assert load_policy_text(shown, "shown")[0] is None, "as shown it does not compile"
    filled = stand_ins(shown)
    compiled, problems = load_policy_text(filled, "shown")
    assert compiled is not None and problems == []
    assert compiled.people["bob"].contacts["webhook"] == "https://redacted.invalid/"
    assert "hooks.example" not in filled
    broken = shown.replace("warn_at:\n    - 50", "warn_at:\n    - 500", 1)
    line = broken.splitlines().index("    - 500") + 1
    _, found = load_policy_text(stand_ins(broken), "shown")
    assert [(p.line, p.severity) for p in found] == [(line, "error")], "lines stay put"


def test_a_form_instant_is_read_in_its_zone() -> None:
    berlin = zone("Europe/Berlin")
    assert local_instant("2026-11-27T17:55", berlin, "start") == FRIDAY
    assert local_instant("2026-11-27T16:55:00Z", berlin, "start") == FRIDAY, "an offset wins"
    summer = local_instant("2026-07-01T12:00", berlin, "start")
    assert summer == parse_instant("2026-07-01T10:00:00Z"), "CEST"
    for value, why in (
        ("", "give a date"),
        ("tomorrow", "not a date"),
        ("0001-01-01T00:00", "range"),
    ):
        with pytest.raises(BadInput, match=why) as bad:
            local_instant(value, berlin, "start")
        assert bad.value.field == "start"
    with pytest.raises(BadInput, match="unknown time zone"):
        zone("Mars/Olympus")
