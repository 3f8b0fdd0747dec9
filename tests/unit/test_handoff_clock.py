"""The handoff says how each SLA target counts ("80h business", "4h calendar") and how far a
breached one is overdue, in its JSON and in its summary."""

from __future__ import annotations

from rungs.core.handoff import handoff
from rungs.policy import load_policy
from rungs.sim import load_story, run_story
from tests.conftest import ROOT

EXAMPLES = ROOT / "src" / "rungs" / "examples"


def test_breached_target_with_its_clock_and_overdue() -> None:
    policy = load_policy(EXAMPLES / "acme.yaml")
    sim = run_story(policy, load_story(EXAMPLES / "acme-story.yaml"))
    h = handoff(sim.cases["B-12"], policy, sim.now, sim.timeline)
    resolution = next(s for s in h["sla"] if s["metric"] == "resolution")
    assert resolution["breached"] and resolution["target_text"] == "80h business"
    assert resolution["overdue_seconds"] > 0 and resolution["overdue"]
    assert (
        f"resolution breached, {resolution['overdue']} overdue (target 80h business)"
        in (h["summary"])
    )
    gold = handoff(sim.cases["OUT-7"], policy, sim.now, sim.timeline)
    assert {s["clock"] for s in gold["sla"]} == {"calendar"}
    assert all(s["overdue"] is None for s in gold["sla"] if not s["breached"])
