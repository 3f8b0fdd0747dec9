"""Handoff context: exact answers for acme stories cut at known instants."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

import rungs
from rungs.core.handoff import handoff
from rungs.policy import load_policy
from rungs.sim.runner import Simulation
from rungs.sim.story import event_of
from rungs.time.instant import parse_instant

ACME = load_policy(Path(rungs.__file__).parent / "examples" / "acme.yaml")

Step = tuple[str, str, str, dict[str, Any]]

# The first shared story (acme/01-standard-weekend): opened late on a Friday, nobody acts.
WEEKEND: list[Step] = [
    ("2026-11-20T15:00:00Z", "C1", "open",
     {"customer": "initech", "category": "general", "priority": "P2",
      "title": "Cannot log in to the portal"}),
    ("2026-11-23T09:00:00Z", "C1", "acknowledge", {"by": "alice"}),
    ("2026-11-25T11:00:00Z", "C1", "resolve", {"by": "alice"}),
]  # fmt: skip

# A billing question (Wednesday 2026-11-18, Berlin business hours): assigned by a rule, then by
# hand, escalated by a timer and by hand, answered, waiting on the customer.
BILLING: list[Step] = [
    ("2026-11-18T09:00:00Z", "B-1", "open",
     {"customer": "initech", "category": "billing", "priority": "P3",
      "title": "Invoice charged twice", "description": "Charged twice for October",
      "fields": {"invoice": "INV-1"}}),
    ("2026-11-18T09:20:00Z", "B-1", "assign", {"to": "person:gina", "by": "bob"}),
    ("2026-11-18T09:40:00Z", "B-1", "escalate",
     {"by": "bob", "reason": "business_impact", "to_level": 3}),
    ("2026-11-18T10:00:00Z", "B-1", "respond", {"by": "gina"}),
    ("2026-11-18T11:00:00Z", "B-1", "pending", {"by": "gina"}),
    # --- cut at 2026-11-19T12:00Z for the pending checks
    ("2026-11-19T13:00:00Z", "B-1", "customer_reply", {}),
    ("2026-11-19T14:00:00Z", "B-1", "resolve", {"by": "gina"}),
    ("2026-11-20T08:00:00Z", "B-1", "reopen", {}),
    ("2026-11-20T08:10:00Z", "B-1", "request_escalation",
     {"reason": "customer_request", "to_level": 3}),
]  # fmt: skip


def simulate(steps: list[Step], until: str) -> Simulation:
    """Run the steps that happen up to `until`, then every timer due by then."""
    sim = Simulation(ACME)
    end = parse_instant(until)
    for at, case_id, do, params in steps:
        t = parse_instant(at)
        if t > end:
            break
        sim.run_until(t)
        sim.handle(case_id, event_of(do, params), t)
    sim.run_until(end)
    return sim


def handoff_at(steps: list[Step], case_id: str, until: str, level: int | None = None) -> dict:
    sim = simulate(steps, until)
    return handoff(sim.cases[case_id], ACME, parse_instant(until), sim.timeline, level)


def notified(rung: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(n["at"], n["to"], n["channel"]) for n in rung["notified"]]


def metric(h: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in h["sla"] if s["metric"] == name)


# -- the first shared story at Friday 18:00Z: at level 3, nobody has acknowledged --------------


@pytest.fixture(scope="module")
def weekend() -> dict[str, Any]:
    return handoff_at(WEEKEND, "C1", "2026-11-20T18:00:00Z")


def test_case_and_customer(weekend: dict[str, Any]) -> None:
    assert weekend["at"] == "2026-11-20T18:00:00Z"
    assert weekend["case"] == {
        "id": "C1",
        "title": "Cannot log in to the portal",
        "description": "",
        "customer": "initech",
        "category": "general",
        "priority": "P2",
        "status": "open",
        "level": 3,
        "level_name": "L3 support manager",
        "levels": 3,
        "matrix": "default",
        "assignee": None,
        "acknowledged": False,
        "fields": {},
        "tags": [],
        "opened_at": "2026-11-20T15:00:00Z",
        "round_started_at": "2026-11-20T15:00:00Z",
        "reopened": 0,
        "resolved_at": None,
    }
    assert weekend["customer"] == {
        "id": "initech",
        "name": "Initech",
        "tier": "standard",
        "value": 12000,
        "partner": None,
        "partner_name": None,
        "sla_policy": "standard",
    }
    assert weekend["for_level"] == {
        "number": 3,
        "name": "L3 support manager",
        "targets": ["person:erin"],
        "people": ["erin"],
    }


def test_ladder_reached_and_notified(weekend: dict[str, Any]) -> None:
    ladder = weekend["ladder"]
    assert [r["number"] for r in ladder] == [1, 2, 3]
    assert [r["name"] for r in ladder] == ["L1 service desk", "L2 team lead", "L3 support manager"]
    assert [r["reached_at"] for r in ladder] == [
        "2026-11-20T15:00:00Z",
        "2026-11-20T15:30:00Z",
        "2026-11-20T17:00:00Z",
    ]
    assert [r["state"] for r in ladder] == ["reached", "reached", "current"]
    assert [(r["after"], r["unless"]) for r in ladder] == [
        (None, None),
        ("30m", "acknowledged"),
        ("2h", "resolved"),
    ]
    assert notified(ladder[0]) == [
        ("2026-11-20T15:00:00Z", "alice", "email"),
        ("2026-11-20T15:00:00Z", "bob", "email"),
        ("2026-11-20T15:05:00Z", "alice", "sms"),  # alice's own 5m step
    ]
    assert notified(ladder[1]) == [("2026-11-20T15:30:00Z", "carol", "email")]
    assert notified(ladder[2]) == [("2026-11-20T17:00:00Z", "erin", "email")]
    assert ladder[2]["notified"][0]["name"] == "Erin Shah"
    assert all(r["due"] is None for r in ladder)  # nothing left to climb


def test_sla_over_the_weekend(weekend: dict[str, Any]) -> None:
    # Berlin office hours: Friday 16:00-17:00 local counted, the weekend not.
    assert metric(weekend, "first_response") == {
        "metric": "first_response",
        "state": "running",
        "elapsed": "1h",
        "elapsed_seconds": 3600,
        "target": "4h",
        "target_seconds": 14400,
        "clock": "business",  # the target counts office hours: "4h business"
        "target_text": "4h business",
        "overdue": None,
        "overdue_seconds": None,
        "remaining": "3h",
        "remaining_seconds": 10800,
        "percent": 25,
        "breached": False,
        "met": False,
        "due": "2026-11-23T11:00:00Z",  # Monday 12:00 in Berlin
        "calendar": "berlin-office",
    }
    resolution = metric(weekend, "resolution")
    assert resolution["state"] == "running"
    assert (resolution["elapsed"], resolution["target"]) == ("1h", "1d")
    assert (resolution["remaining"], resolution["remaining_seconds"]) == ("23h", 82800)
    assert resolution["due"] == "2026-11-25T15:00:00Z"  # 1h Fri + 8h Mon + 8h Tue + 7h Wed
    assert [s["metric"] for s in weekend["sla"]] == ["first_response", "resolution"]


def test_escalation_moves_and_summary(weekend: dict[str, Any]) -> None:
    assert weekend["escalation"] == {
        "at": "2026-11-20T17:00:00Z",
        "from": 2,
        "to": 3,
        "cause": "timer",
        "reason": None,
        "by": None,
        "rule": None,
    }
    assert weekend["previous_assignees"] == []
    assert weekend["moves"] == [
        {
            "at": "2026-11-20T15:30:00Z",
            "kind": "escalated",
            "from": "level 1 (L1 service desk)",
            "to": "level 2 (L2 team lead)",
            "why": "not acknowledged within 30m (level timer)",
        },
        {
            "at": "2026-11-20T17:00:00Z",
            "kind": "escalated",
            "from": "level 2 (L2 team lead)",
            "to": "level 3 (L3 support manager)",
            "why": "not resolved within 2h (level timer)",
        },
    ]
    assert weekend["summary"] == (
        'C1 "Cannot log in to the portal" (Initech, standard tier; P2 general) is open at '
        "level 3 (L3 support manager), unassigned; last escalated from level 2 to level 3 at "
        "2026-11-20T17:00:00Z: not resolved within 2h (level timer); first_response 3h left "
        "(due 2026-11-23T11:00:00Z); resolution 23h left (due 2026-11-25T15:00:00Z)."
    )


def test_timeline_formatted(weekend: dict[str, Any]) -> None:
    tl = weekend["timeline"]
    assert [(e["at"], e["kind"]) for e in tl] == [
        ("2026-11-20T15:00:00Z", "opened"),
        ("2026-11-20T15:00:00Z", "notified"),
        ("2026-11-20T15:00:00Z", "notified"),
        ("2026-11-20T15:05:00Z", "notified"),
        ("2026-11-20T15:30:00Z", "escalated"),
        ("2026-11-20T15:30:00Z", "notified"),
        ("2026-11-20T17:00:00Z", "escalated"),
        ("2026-11-20T17:00:00Z", "notified"),
    ]
    assert tl[4] == {
        "at": "2026-11-20T15:30:00Z",
        "case": "C1",
        "kind": "escalated",
        "level": 2,
        "from": 1,
        "cause": "timer",
    }


def test_json_serialisable(weekend: dict[str, Any]) -> None:
    assert json.loads(json.dumps(weekend)) == weekend


def test_next_level_due_before_it_fires() -> None:
    h = handoff_at(WEEKEND, "C1", "2026-11-20T15:10:00Z")
    assert h["case"]["level"] == 1
    assert [r["state"] for r in h["ladder"]] == ["current", "upcoming", "upcoming"]
    assert [r["due"] for r in h["ladder"]] == [None, "2026-11-20T15:30:00Z", None]
    assert h["escalation"] is None
    assert "never escalated" in h["summary"]


def test_later_entries_and_other_cases_are_left_out() -> None:
    """The handoff at 18:00Z reads the same with the whole story's timeline and other cases."""
    sim = simulate(WEEKEND, "2026-11-20T18:00:00Z")
    case = copy.deepcopy(sim.cases["C1"])
    now = parse_instant("2026-11-20T18:00:00Z")
    cut = handoff(case, ACME, now, list(sim.timeline))
    other: Step = (
        "2026-11-20T16:00:00Z",
        "C9",
        "open",
        {"customer": "globex", "category": "network", "priority": "P1", "title": "other"},
    )
    steps = sorted([*WEEKEND, other], key=lambda s: s[0])
    full = simulate(steps, "2026-11-26T00:00:00Z")
    assert handoff(case, ACME, now, full.timeline) == cut
    assert case.to_dict() == sim.cases["C1"].to_dict()  # the case is read, not changed


def test_a_level_outside_the_matrix_is_an_error() -> None:
    sim = simulate(WEEKEND, "2026-11-20T18:00:00Z")
    with pytest.raises(ValueError, match="level 4 is not a level of matrix 'default'"):
        handoff(sim.cases["C1"], ACME, parse_instant("2026-11-20T18:00:00Z"), sim.timeline, 4)


# -- the gold P1 outage (acme/02): level 2 passed over after acknowledgement ------------------


def test_passed_level_and_met_response_clocks() -> None:
    steps: list[Step] = [
        ("2026-11-24T08:00:00Z", "OUT-7", "open",
         {"customer": "globex", "category": "network", "priority": "P1",
          "title": "Frankfurt site unreachable"}),
        ("2026-11-24T08:10:00Z", "OUT-7", "acknowledge", {"by": "dave"}),
        ("2026-11-24T08:30:00Z", "OUT-7", "respond", {"by": "dave"}),
        ("2026-11-24T08:45:00Z", "OUT-7", "customer_reply", {}),
        ("2026-11-24T09:20:00Z", "OUT-7", "respond", {"by": "dave"}),
    ]  # fmt: skip
    h = handoff_at(steps, "OUT-7", "2026-11-24T09:30:00Z")
    assert h["customer"]["name"] == "Globex Corporation" and h["customer"]["value"] == 250000
    assert [(r["state"], r["reached_at"], r["passed_at"]) for r in h["ladder"]] == [
        ("reached", "2026-11-24T08:00:00Z", None),
        ("passed", None, "2026-11-24T08:15:00Z"),  # acknowledged before its 15m were up
        ("current", "2026-11-24T09:00:00Z", None),
    ]
    assert notified(h["ladder"][0]) == [
        ("2026-11-24T08:00:00Z", "dave", "sms"),
        ("2026-11-24T08:00:00Z", "dave", "email"),
    ]
    assert notified(h["ladder"][2]) == [("2026-11-24T09:00:00Z", "frank", "email")]
    assert h["escalation"]["from"] == 1 and h["escalation"]["to"] == 3
    fr, nr, res = h["sla"]
    assert (fr["metric"], fr["state"], fr["elapsed"], fr["met"], fr["remaining"]) == (
        "first_response", "stopped", "10m", True, None,
    )  # fmt: skip
    assert (nr["metric"], nr["state"], nr["elapsed"], nr["met"]) == (
        "next_response", "stopped", "35m", True,
    )  # fmt: skip
    assert (res["state"], res["elapsed"], res["remaining"], res["due"], res["percent"]) == (
        "running", "1h30m", "2h30m", "2026-11-24T12:00:00Z", 37,
    )  # fmt: skip
    assert h["case"]["status"] == "acknowledged"


# -- the billing case: assignments, manual escalation, pending, reopen ------------------------


def test_pending_case_for_the_team_lead() -> None:
    h = handoff_at(BILLING, "B-1", "2026-11-19T12:00:00Z", level=2)
    assert h["for_level"] == {
        "number": 2,
        "name": "L2 team lead",
        "targets": ["person:carol"],
        "people": ["carol"],
    }
    c = h["case"]
    assert (c["status"], c["level"], c["assignee"]) == ("pending", 3, "person:gina")
    assert (c["description"], c["fields"]) == ("Charged twice for October", {"invoice": "INV-1"})
    resolution = metric(h, "resolution")
    # 10:00-12:00 Berlin counted on Wednesday, then paused: nothing since.
    assert (resolution["state"], resolution["elapsed"], resolution["remaining"]) == (
        "paused", "2h", "78h",
    )  # fmt: skip
    assert resolution["due"] is None
    assert metric(h, "first_response")["elapsed"] == "1h"
    assert h["escalation"] == {
        "at": "2026-11-18T09:40:00Z",
        "from": 2,
        "to": 3,
        "cause": "manual",
        "reason": "business_impact",
        "by": "bob",
        "rule": None,
    }
    assert h["previous_assignees"] == [
        {
            "assignee": "team:billing",
            "from": "2026-11-18T09:00:00Z",
            "until": "2026-11-18T09:20:00Z",
            "why_moved": "assigned by bob",
        }
    ]
    assert [(m["at"], m["kind"], m["from"], m["to"], m["why"]) for m in h["moves"]] == [
        ("2026-11-18T09:00:00Z", "assigned", None, "team:billing",
         "rule billing-to-billing-team"),
        ("2026-11-18T09:20:00Z", "assigned", "team:billing", "person:gina", "assigned by bob"),
        ("2026-11-18T09:30:00Z", "escalated", "level 1 (L1 service desk)",
         "level 2 (L2 team lead)", "not acknowledged within 30m (level timer)"),
        ("2026-11-18T09:40:00Z", "escalated", "level 2 (L2 team lead)",
         "level 3 (L3 support manager)", "manual escalation by bob (business_impact)"),
    ]  # fmt: skip
    assert notified(h["ladder"][0]) == [
        ("2026-11-18T09:00:00Z", "alice", "email"),
        ("2026-11-18T09:00:00Z", "bob", "email"),
        ("2026-11-18T09:00:00Z", "gina", "email"),  # the rule's assignment to team:billing
        ("2026-11-18T09:05:00Z", "alice", "sms"),
        ("2026-11-18T09:20:00Z", "gina", "email"),  # bob's assignment
    ]
    assert h["summary"] == (
        'B-1 "Invoice charged twice" (Initech, standard tier; P3 billing) is pending at '
        "level 3 (L3 support manager), assigned to person:gina; last escalated from level 2 "
        "to level 3 at 2026-11-18T09:40:00Z: manual escalation by bob (business_impact); "
        "resolution paused with 78h left."
    )


def test_after_reopen_the_ladder_starts_again() -> None:
    h = handoff_at(BILLING, "B-1", "2026-11-20T08:20:00Z")
    c = h["case"]
    assert (c["status"], c["level"], c["reopened"]) == ("open", 3, 1)
    assert (c["opened_at"], c["round_started_at"]) == (
        "2026-11-18T09:00:00Z",
        "2026-11-20T08:00:00Z",
    )
    assert [(r["state"], r["reached_at"]) for r in h["ladder"]] == [
        ("reached", "2026-11-20T08:00:00Z"),
        ("skipped", None),  # the customer's request went from level 1 straight to 3
        ("current", "2026-11-20T08:10:00Z"),
    ]
    assert notified(h["ladder"][0]) == [
        ("2026-11-20T08:00:00Z", "alice", "email"),
        ("2026-11-20T08:00:00Z", "bob", "email"),
        ("2026-11-20T08:05:00Z", "alice", "sms"),
    ]
    assert h["ladder"][1]["notified"] == []
    assert h["escalation"] == {
        "at": "2026-11-20T08:10:00Z",
        "from": 1,
        "to": 3,
        "cause": "customer",
        "reason": "customer_request",
        "by": None,
        "rule": None,
    }
    assert [(m["kind"], m["why"]) for m in h["moves"][-2:]] == [
        ("reopened", "reopened"),
        ("escalated", "customer request (customer_request)"),
    ]
    resolution = metric(h, "resolution")
    # 2h + 1h before the resolve, 20m since the reopen: the time already counted is kept.
    assert (resolution["state"], resolution["elapsed"], resolution["remaining"]) == (
        "running", "3h20m", "76h40m",
    )  # fmt: skip
    assert resolution["due"] == "2026-12-03T13:00:00Z"
    assert [s["metric"] for s in h["sla"]] == ["first_response", "resolution"]  # P3: no next
    assert h["timeline"][-1]["kind"] == "notified" and h["timeline"][-1]["to"] == "erin"
