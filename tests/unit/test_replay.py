"""The pure re-run (`rungs.sim.replay`): a story recorded as the engine journals it re-runs
exactly; a firing the re-run never set, or an input it refuses, is a divergence; timers keep
their keys through the journal."""

from __future__ import annotations

import json

import pytest

from rungs.core.model import Event
from rungs.core.timers import (
    LevelTimer,
    RepeatTimer,
    RuleTimer,
    SlaTimer,
    StepTimer,
    due_timer,
    timer_key,
)
from rungs.policy import load_policy
from rungs.sim import load_story
from rungs.sim.inputs import Input, decode_input, encode_event
from rungs.sim.replay import first_divergence, rerun
from rungs.sim.runner import Simulation, run_story
from tests.conftest import ROOT

EXAMPLES = ROOT / "src" / "rungs" / "examples"


class Journaled(Simulation):
    """The simulator, journaling each decision's input as the engine does."""

    def __init__(self, *args: object, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.journal: list[Input] = []

    def handle(self, case_id: str, event: Event, now: int) -> None:
        super().handle(case_id, event, now)
        row = json.loads(json.dumps(encode_event(event)))
        self.journal.append(decode_input(case_id, now, 1, row))


@pytest.fixture(scope="module")
def acme() -> tuple[object, Journaled]:
    policy = load_policy(EXAMPLES / "acme.yaml")
    sim = Journaled(policy)
    run_story(policy, load_story(EXAMPLES / "acme-story.yaml"), sim)
    return policy, sim


def _stored(sim: Simulation, case: str) -> list[str]:
    return [json.dumps(e) for e in sim.timeline if e["case"] == case]


def test_every_timer_key_comes_back() -> None:
    for t in (
        SlaTimer("resolution", 5),
        LevelTimer(2, 0, 5),
        StepTimer(7, "ann", "sms", 1, 0, "opened", 5),
        RepeatTimer(1, 0, 5),
        RuleTimer("vip", 3, 5),
    ):
        key = timer_key(t)
        payload = {
            SlaTimer: ("resolution",),
            LevelTimer: (2, 0),
            StepTimer: ("ann", "sms", 1, 0, "opened"),
            RepeatTimer: (1, 0),
            RuleTimer: ("vip", 3),
        }[type(t)]
        assert due_timer(key, 5, payload) == t


def test_a_recorded_story_reruns_exactly_and_a_draft_of_itself_changes_nothing(acme) -> None:
    policy, sim = acme
    assert {"open", "timer", "acknowledge", "escalate", "resolve"} <= {i.kind for i in sim.journal}
    for case in sim.cases:
        inputs = [i for i in sim.journal if i.case == case]
        horizon = inputs[-1].at
        again = rerun(case, inputs, lambda _: policy, horizon=horizon, exact=True)
        stored = _stored(sim, case)
        keys = [o.key for o in sim.outbox if o.case == case]
        assert first_divergence(stored, [1] * len(stored), keys, again) is None
        draft = rerun(case, inputs, lambda _: policy, horizon=horizon, exact=False)
        assert [json.dumps(e) for e in draft.timeline] == stored


def test_what_the_rerun_cannot_take_is_a_divergence(acme) -> None:
    policy, sim = acme
    inputs = [i for i in sim.journal if i.case == "OUT-7"]
    stored = _stored(sim, "OUT-7")
    keys = [o.key for o in sim.outbox if o.case == "OUT-7"]
    ghost = Input("OUT-7", inputs[1].at, 1, "timer", key="rule:nothing", due=inputs[1].at)
    again = rerun("OUT-7", [inputs[0], ghost], lambda _: policy, horizon=ghost.at, exact=True)
    assert again.problem is not None and "rule:nothing" in again.problem
    ack = next(i for i, inp in enumerate(inputs) if inp.kind == "acknowledge")
    twice = [*inputs[: ack + 1], inputs[ack]]  # acknowledged twice: the core refuses the second
    again = rerun("OUT-7", twice, lambda _: policy, horizon=twice[-1].at, exact=True)
    why = first_divergence(stored, [1] * len(stored), keys, again)
    assert why is not None and "refuses" in why
    assert rerun("X", [], lambda _: policy, horizon=0, exact=True).replayable is False
