"""The one SLA clock reading (`sla.read_clocks`) and its presentations: the API's `clocks`,
the handoff's `sla` section."""

from __future__ import annotations

from pathlib import Path

import rungs
from rungs.core import sla
from rungs.core.handoff import handoff
from rungs.core.model import Event
from rungs.policy import load_policy
from rungs.sim.runner import Simulation
from rungs.time.instant import MINUTE, parse_instant

ACME = load_policy(Path(rungs.__file__).parent / "examples" / "acme.yaml")
AT = parse_instant("2026-11-18T09:00:00Z")  # a Wednesday, Berlin business hours


def _case_after_response() -> Simulation:
    sim = Simulation(ACME)
    data = {"customer": "initech", "category": "billing", "priority": "P3", "title": "t"}
    sim.handle("B-1", Event("open", data=data), AT)
    sim.handle("B-1", Event("respond", by="gina"), AT + 30 * MINUTE)
    sim.run_until(AT + 60 * MINUTE)
    return sim


def test_read_clocks_lists_every_metric_with_a_target_idle_ones_too() -> None:
    sim = _case_after_response()
    case = sim.cases["B-1"]
    read = {c.metric: c for c in sla.read_clocks(case, ACME, sim.now)}
    assert read["first_response"].state == "stopped"
    assert read["first_response"].elapsed == 30 * MINUTE
    assert read["resolution"].state == "running"
    assert read["resolution"].elapsed == 60 * MINUTE
    assert read["resolution"].due is not None
    idle = [c for c in read.values() if c.state == "idle"]
    assert all(c.measured is None and c.elapsed == 0 and c.due is None for c in idle)
    assert sla.policy_for(case, ACME) is not None


def test_the_api_clocks_and_the_handoff_show_the_same_reading() -> None:
    sim = _case_after_response()
    case = sim.cases["B-1"]
    api = sla.clocks(case, ACME, sim.now)
    assert set(api) == {c.metric for c in sla.read_clocks(case, ACME, sim.now) if c.state != "idle"}
    assert set(api["resolution"]) == {"state", "target", "elapsed", "remaining", "breached", "due"}
    shown = {s["metric"]: s for s in handoff(case, ACME, sim.now, sim.timeline)["sla"]}
    for metric, clock in api.items():
        for field in ("state", "target", "elapsed", "breached", "due"):
            assert shown[metric][field] == clock[field], (metric, field)
