"""Escalation invariants under random stories (hypothesis), against the pure core.

A `RuleBasedStateMachine` tells random stories (open, acknowledge, respond, customer replies,
pending, escalations, assignments, priority changes, resolve, reopen, close, and the clock
moving on) to two simulations at once: one that is cut, persisted as JSON and continued at
random instants, and one that never is. After every step it checks the semantics contract
(`shared/scenarios/README.md`):

- the level never goes down except on reopen, it moves only by recorded escalations that go
  up, and a timer never skips a level whose condition did not hold;
- no timer escalates, pages or warns for a resolved or closed case;
- each SLA metric warns at most once per percent and breaches at most once per case;
- acknowledgement cancels every pending personal step and every `unless: acknowledged` level;
- resolve and close leave no timer behind;
- a refused action changes nothing (the case, the timeline, the timers);
- cutting at any instant and continuing from the JSON state gives the same timeline, and
  the same story told again gives the same timeline;
- instants never go backwards;
- while a case is pending under a `pause_on` policy, its paused metrics do not advance and no
  timer escalates it, repeats it, or warns about those metrics;
- the handoff context of every case is JSON, leaves the case unchanged and agrees with it.

A failure shrinks to a short program; its notes give the story as YAML story events.
"""

from __future__ import annotations

import contextlib
import itertools
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

import rungs
from rungs.core import sla
from rungs.core.handoff import handoff
from rungs.core.model import Case, Event, Refused
from rungs.core.timers import StepTimer
from rungs.policy import load_policy, load_policy_text
from rungs.policy.model import Matrix, Policy
from rungs.sim.runner import Simulation
from rungs.sim.story import event_of
from rungs.time.instant import MINUTE, format_utc, parse_instant

ACME = load_policy(Path(rungs.__file__).parent / "examples" / "acme.yaml")

# A second policy that uses what acme does not: a matrix on a business calendar (with a split
# day, a span past midnight, holidays), `repeat`, a `schedule:` target with gaps and a fallback,
# a team paged through a schedule, a gold matrix on wall-clock time, rules that escalate,
# change the priority, notify and assign (one with an age condition), and SLA policies with
# next-response targets and several warning percentages.
BETA_TEXT = """\
version: 1
timezone: America/New_York
calendars:
  nyc:
    timezone: America/New_York
    hours:
      mon: "08:00-12:00,13:00-18:00"
      tue: "08:00-12:00,13:00-18:00"
      wed: "08:00-12:00,13:00-18:00"
      thu: "08:00-12:00,13:00-18:00"
      fri: "08:00-16:00"
      sat: "22:00-02:00"
    holidays:
      country: US
      dates: ["2026-12-24"]
  always:
    timezone: UTC
    hours: 24x7
people:
  - id: pat
    contacts: {email: pat@b.test, sms: "+100001", voice: "+100001"}
    notify:
      - {after: 0m, via: email}
      - {after: 2m, via: sms}
      - {after: 10m, via: voice}
  - id: quinn
    contacts: {email: quinn@b.test}
  - id: rosa
    contacts: {slack: "@rosa", sms: "+100003"}
    notify:
      - {after: 0m, via: slack}
      - {after: 3m, via: sms}
  - id: sam
    contacts: {email: sam@b.test}
  - id: tess
    contacts: {email: tess@b.test, sms: "+100005"}
    notify:
      - {after: 0m, via: sms}
      - {after: 1h, via: email}
teams:
  - id: ops
    members: [pat, quinn]
  - id: nightwatch
    members: [rosa]
    schedule: primary
schedules:
  primary:
    timezone: America/New_York
    layers:
      - name: weekday
        members: [pat, rosa]
        shift: 12h
        start: "2026-10-05T08:00:00-04:00"
        restrict:
          mon: "08:00-20:00"
          tue: "08:00-20:00"
          wed: "08:00-20:00"
          thu: "08:00-20:00"
          fri: "08:00-20:00"
    overrides:
      - {from: "2026-11-26T00:00:00-05:00", to: "2026-11-27T00:00:00-05:00", who: quinn}
    fallback: person:sam
customers:
  - id: bigco
    name: BigCo
    tier: gold
    value: 900000
    sla: fast
  - id: smallco
    name: SmallCo
    tier: basic
    value: 1000
    sla: slow
sla_policies:
  fast:
    calendar: always
    warn_at: [25, 50, 90]
    pause_on: [pending]
    targets:
      P1: {first_response: 10m, next_response: 30m, resolution: 2h}
      P2: {first_response: 30m, next_response: 1h, resolution: 8h}
      P3: {first_response: 2h, next_response: 4h, resolution: 3d}
      P4: {first_response: 4h, resolution: 10d}
  slow:
    calendar: nyc
    warn_at: [50, 80]
    pause_on: [pending]
    targets:
      P1: {first_response: 1h, next_response: 2h, resolution: 9h}
      P2: {first_response: 2h, next_response: 4h, resolution: 18h}
      P3: {first_response: 4h, resolution: 45h}
      P4: {first_response: 9h, resolution: 90h}
reasons: [sla_at_risk, vip, outage]
matrices:
  - id: main
    calendar: nyc
    repeat: {every: 20m, times: 2}
    levels:
      - name: on call
        notify: [schedule:primary]
        fallback: person:tess
      - name: ops team
        after: 15m
        unless: acknowledged
        notify: [team:ops, team:nightwatch]
      - name: manager
        after: 1h
        unless: resolved
        notify: [person:tess]
      - name: director
        after: 3h
        unless: acknowledged
        notify: [person:sam, person:pat]
  - id: gold-wallclock
    match: {tier: gold, priority: [P1, P2]}
    repeat: {every: 10m, times: 3}
    levels:
      - name: on call
        notify: [schedule:primary]
      - name: manager
        after: 10m
        notify: [person:tess, team:ops]
rules:
  - id: first-response-breach
    when: {sla_breached: first_response}
    then:
      - escalate: {to_level: 3}
      - notify: [person:sam]
  - id: resolution-warning-bump
    when: {sla_warning: resolution, priority: [P3, P4]}
    then:
      - set_priority: P2
  - id: billing
    when: {category: billing}
    then:
      - assign: team:ops
  - id: gold-p1
    when: {tier: gold, priority: P1, status: [open]}
    then:
      - notify: [person:tess]
      - escalate: {}
  - id: stale
    when: {age_over: 90m, status: [open, acknowledged], level: [1, 2]}
    then:
      - assign: person:quinn
      - notify: [person:quinn]
"""


def _compile(text: str) -> Policy:
    policy, problems = load_policy_text(text, "beta.yaml")
    assert policy is not None, "\n".join(map(str, problems))
    return policy


BETA = _compile(BETA_TEXT)
POLICIES = {"acme": ACME, "beta": BETA}
# Customers by role, so the printed program reads the same for either policy.
CUSTOMERS = {
    "acme": {"gold": "globex", "standard": "initech", "unknown": "nobody-inc"},
    "beta": {"gold": "bigco", "standard": "smallco", "unknown": "nobody-inc"},
}
START = parse_instant("2026-10-23T00:00:00Z")  # both DST ends, Thanksgiving and Christmas ahead
CASE_IDS = ("C1", "C2")
ACTIVE = ("open", "acknowledged", "pending")
ENDED = ("resolved", "closed")
PEOPLE = ("alice", "bob", "carol", "pat", "rosa", "tess")


# -- the simulation under test, with a record of every event it handled ------------------------


@dataclass
class Handled:
    """One event the simulation handled: the case before and after, and what it recorded."""

    case_id: str
    event: Event
    before: Case | None
    after: Case
    entries: list[dict[str, Any]]


@dataclass
class Probe(Simulation):
    handled: list[Handled] = field(default_factory=list)

    def handle(self, case_id: str, event: Event, now: int) -> None:
        before = self.cases.get(case_id)
        n = len(self.timeline)
        super().handle(case_id, event, now)
        self.handled.append(Handled(case_id, event, before, self.cases[case_id], self.timeline[n:]))


def _json(x: Any) -> str:
    return json.dumps(x, sort_keys=True)


def _case_json(case: Case | None) -> str:
    return _json(case.to_dict() if case is not None else None)


def _state(sim: Simulation) -> tuple[str, dict[str, Case], dict[str, dict[str, Any]]]:
    """What must survive a cut: the timeline, every case field, every timer with its payload."""
    return (
        _json(sim.timeline),
        dict(sim.cases),
        {c: {k: (due, seq, tuple(p)) for k, (due, seq, p) in mine.items()}
         for c, mine in sim.timers.items() if mine},
    )  # fmt: skip


def _round_trip(sim: Simulation) -> Simulation:
    return type(sim).from_dict(sim.policy, json.loads(json.dumps(sim.to_dict())))


def _matrix(policy: Policy, case: Case) -> Matrix:
    return next(m for m in policy.matrices if m.id == case.matrix)


def _tell(sim: Simulation, story: list[tuple[Any, ...]]) -> Simulation:
    """Tell recorded story steps to a simulation (refused actions stay refused)."""
    for step in story:
        if step[0] == "start":
            sim.now = step[1]
        elif step[0] == "advance":
            sim.run_until(step[1])
        else:
            _, at, case_id, do, params = step
            with contextlib.suppress(Refused):
                sim.handle(case_id, event_of(do, params), at)
    return sim


def _replay(policy: Policy, story: list[tuple[Any, ...]]) -> Simulation:
    """Tell a recorded story again, from the start, to a fresh simulation."""
    return _tell(Simulation(policy), story)


def _story_line(at: int, case_id: str, do: str, params: dict[str, Any], refused: str | None) -> str:
    if do == "open":
        extra = ", with: " + _json(params)
    else:
        extra = "".join(f", {k}: {v}" for k, v in params.items() if v is not None)
    line = f'- {{at: "{format_utc(at)}", case: {case_id}, do: {do}{extra}}}'
    return line + (f"  # refused: {refused}" if refused else "")


# -- the state machine --------------------------------------------------------------------------


class EscalationStories(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.sim: Probe | None = None

    @initialize(
        name=st.sampled_from(sorted(POLICIES)),
        start=st.integers(0, 75 * 96).map(lambda k: START + k * 15 * MINUTE),
        customer=st.sampled_from(["gold", "standard"]),
        category=st.sampled_from(["general", "network", "billing"]),
        priority=st.sampled_from(["P1", "P2", "P3", "P4"]),
    )
    def setup(self, name: str, start: int, customer: str, category: str, priority: str) -> None:
        """Pick a policy and a start instant, and open C1 (so most steps have a case)."""
        self.name = name
        self.policy = POLICIES[name]
        self.sim = Probe(self.policy)
        self.shadow = Simulation(self.policy)  # the same story, never cut
        self.sim.now = self.shadow.now = start
        self.story: list[tuple[Any, ...]] = [("start", start)]
        self.pending_elapsed: dict[str, dict[str, int]] = {}
        note(f"# policy {name}, clock starts at {format_utc(start)}")
        self.open_case("C1", customer, category, priority)

    # -- actions --------------------------------------------------------------------------------

    def _act(self, case_id: str, do: str, **params: Any) -> bool:
        sim = self.sim
        assert sim is not None
        now = sim.now
        before = sim.cases.get(case_id)
        before_json = _case_json(before)
        before_state = _state(sim)
        sim.handled.clear()
        refused: str | None = None
        try:
            sim.handle(case_id, event_of(do, dict(params)), now)
        except Refused as exc:
            refused = exc.message
        try:
            self.shadow.handle(case_id, event_of(do, dict(params)), now)
            shadow_refused = False
        except Refused:
            shadow_refused = True
        self.story.append(("act", now, case_id, do, dict(params)))
        note(_story_line(now, case_id, do, params, refused))
        assert shadow_refused == (refused is not None), "the same action, judged differently"
        if refused is not None:
            # A refused action changes nothing: not the case given to decide, not the state.
            assert _case_json(before) == before_json, "decide changed the case it refused"
            assert _state(sim) == before_state, "a refused action changed the simulation"
            assert not sim.handled
            return False
        self._check_handled()
        mine = sim.timers.get(case_id, {})
        if do == "acknowledge":
            steps = [k for k in mine if k.startswith("step:")]
            assert not steps, f"personal steps still pending after acknowledge: {steps}"
        if do in ("resolve", "close"):
            assert not mine, f"timers left after {do}: {sorted(mine)}"
        return True

    @rule(
        case_id=st.sampled_from(CASE_IDS),
        customer=st.sampled_from(["gold", "standard", "standard", "unknown"]),
        category=st.sampled_from(["general", "network", "billing"]),
        priority=st.sampled_from(["P1", "P2", "P3", "P4"]),
    )
    def open_case(self, case_id: str, customer: str, category: str, priority: str) -> None:
        self._act(
            case_id,
            "open",
            customer=CUSTOMERS[self.name][customer],
            category=category,
            priority=priority,
            title=f"{category} trouble",
        )

    @rule(case_id=st.sampled_from(CASE_IDS), by=st.sampled_from(PEOPLE))
    def acknowledge(self, case_id: str, by: str) -> None:
        self._act(case_id, "acknowledge", by=by)

    @rule(case_id=st.sampled_from(CASE_IDS), by=st.sampled_from(PEOPLE))
    def respond(self, case_id: str, by: str) -> None:
        self._act(case_id, "respond", by=by)

    @rule(case_id=st.sampled_from(CASE_IDS))
    def customer_reply(self, case_id: str) -> None:
        self._act(case_id, "customer_reply")

    @rule(case_id=st.sampled_from(CASE_IDS), by=st.sampled_from(PEOPLE))
    def pending(self, case_id: str, by: str) -> None:
        self._act(case_id, "pending", by=by)

    @rule(
        case_id=st.sampled_from(CASE_IDS),
        by=st.sampled_from(PEOPLE),
        reason=st.sampled_from(["sla_at_risk", "sla_at_risk", "bogus-reason"]),
        to_level=st.sampled_from([None, None, 1, 2, 3, 4, 5]),
    )
    def escalate(self, case_id: str, by: str, reason: str, to_level: int | None) -> None:
        self._act(case_id, "escalate", by=by, reason=reason, to_level=to_level)

    @rule(
        case_id=st.sampled_from(CASE_IDS),
        reason=st.sampled_from(["sla_at_risk", "bogus-reason"]),
        to_level=st.sampled_from([None, None, 3]),
    )
    def request_escalation(self, case_id: str, reason: str, to_level: int | None) -> None:
        self._act(case_id, "request_escalation", reason=reason, to_level=to_level)

    @rule(case_id=st.sampled_from(CASE_IDS), pick=st.integers(0, 20), by=st.sampled_from(PEOPLE))
    def assign(self, case_id: str, pick: int, by: str) -> None:
        p = self.policy
        targets = [f"team:{t}" for t in p.teams] + [f"person:{x}" for x in p.people]
        targets.append("person:ghost")  # refused: unknown person
        self._act(case_id, "assign", to=targets[pick % len(targets)], by=by)

    @rule(
        case_id=st.sampled_from(CASE_IDS),
        priority=st.sampled_from(["P1", "P2", "P3", "P4", "P9"]),
        by=st.sampled_from(PEOPLE),
    )
    def set_priority(self, case_id: str, priority: str, by: str) -> None:
        self._act(case_id, "set_priority", priority=priority, by=by)

    @rule(case_id=st.sampled_from(CASE_IDS), by=st.sampled_from(PEOPLE))
    def resolve(self, case_id: str, by: str) -> None:
        self._act(case_id, "resolve", by=by)

    @rule(case_id=st.sampled_from(CASE_IDS))
    def reopen(self, case_id: str) -> None:
        self._act(case_id, "reopen")

    @rule(case_id=st.sampled_from(CASE_IDS))
    def close(self, case_id: str) -> None:
        self._act(case_id, "close")

    @rule(
        minutes=st.one_of(
            st.sampled_from([1, 2, 3, 5, 10, 15, 30, 60, 120, 240, 480, 1440, 4320]),
            st.integers(1, 3000),
        ),
        cut=st.booleans(),
    )
    def advance(self, minutes: int, cut: bool) -> None:
        """Move the clock on, running every timer due; optionally persist half-way."""
        assert self.sim is not None
        until = self.sim.now + minutes * MINUTE
        self.sim.handled.clear()
        if cut:
            self.sim.run_until(self.sim.now + minutes * MINUTE // 2)
            self._check_handled()
            self._persist()
        self.sim.run_until(until)
        self.shadow.run_until(until)
        self.story.append(("advance", until))
        note(f"# advance {minutes}m to {format_utc(until)}{' (cut half-way)' if cut else ''}")
        self._check_handled()

    @precondition(lambda self: self.sim is not None)
    @rule()
    def persist(self) -> None:
        """Cut here: the state goes through JSON and the story continues from the copy."""
        self._persist()
        note("# cut: state persisted as JSON and restored")

    def _persist(self) -> None:
        assert self.sim is not None
        self.sim = _round_trip(self.sim)  # type: ignore[assignment]

    # -- checks after each handled event -------------------------------------------------------

    def _check_handled(self) -> None:
        sim = self.sim
        assert sim is not None
        for h in sim.handled:
            self._check_event(h)
        sim.handled.clear()

    def _check_event(self, h: Handled) -> None:
        before, after, ev = h.before, h.after, h.event
        kinds = [e["kind"] for e in h.entries]
        timer = ev.timer if ev.kind == "timer" else None
        # The level moves only by recorded escalations, each going up, and goes back to 1 only
        # on opening or reopening (where a rule may escalate again at once).
        level = before.level if before is not None else None
        for e in h.entries:
            if e["kind"] in ("opened", "reopened"):
                assert ev.kind in ("open", "reopen"), f"{e['kind']} on {ev.kind}"
                level = 1
            elif e["kind"] == "escalated":
                assert e["from"] == level, f"escalated from {e['from']}, the case was at {level}"
                level = e["level"]
        assert after.level == level, f"level {level} -> {after.level} without an escalation"
        for e in h.entries:
            if e["kind"] == "escalated":
                self._check_escalated(h, e)
            if e["kind"] == "sla_warning":
                assert e["percent"] in (sla.policy_for(after, self.policy).warn_at)
        if timer is None:
            assert "repeated" not in kinds and "level_passed" not in kinds
            return
        assert before is not None
        # Nothing pages, escalates or warns on timers for a resolved or closed case.
        if before.status in ENDED:
            bad = {"escalated", "notified", "repeated", "sla_warning", "sla_breached"}
            assert not bad & set(kinds), f"timer {timer} acted on a {before.status} case: {kinds}"
        # A personal step is sent only if the case is not acknowledged (since the last opening).
        if isinstance(timer, StepTimer) and (before.acknowledged or before.status not in ACTIVE):
            assert "notified" not in kinds, f"step {timer} sent after acknowledgement"
        # Pending: level timing stops, and so do the metrics the SLA policy pauses.
        if before.status == "pending":
            assert not any(e["kind"] == "escalated" and e["cause"] == "timer" for e in h.entries), (
                "escalated by a level timer while pending"
            )
            assert "repeated" not in kinds, "repeated while pending"
            pol = sla.policy_for(before, self.policy)
            if pol is not None and "pending" in pol.pause_on:
                for e in h.entries:
                    if e["kind"] in ("sla_warning", "sla_breached"):
                        assert e["metric"] not in ("resolution", "next_response"), (
                            f"paused metric {e['metric']} warned or breached while pending"
                        )

    def _check_escalated(self, h: Handled, e: dict[str, Any]) -> None:
        ev, before = h.event, h.before
        assert e["level"] > e["from"], f"escalation does not go up: {e}"
        cause = e["cause"]
        expected = {"escalate": "manual", "request_escalation": "customer"}.get(ev.kind)
        if expected is not None:
            assert cause in (expected, "rule")
        elif ev.kind == "timer":
            assert cause in ("timer", "rule")
        else:
            assert cause == "rule", f"{ev.kind} escalated with cause {cause}"
        if cause != "timer":
            return
        assert before is not None
        m = _matrix(self.policy, before)
        lv = m.levels[e["level"] - 1]
        if lv.unless == "acknowledged":
            assert not before.acknowledged, "an unless: acknowledged level fired after ack"
        # A timer skips a level only when that level's condition held at its instant.
        if e["level"] > e["from"] + 1:
            passed = self._passed_levels(h.case_id)
            for k in range(e["from"] + 1, e["level"]):
                assert k in passed, f"timer skipped level {k} without passing it: {e}"

    def _passed_levels(self, case_id: str) -> set[int]:
        assert self.sim is not None
        passed: set[int] = set()
        for e in self.sim.timeline:
            if e["case"] != case_id:
                continue
            if e["kind"] in ("opened", "reopened"):
                passed = set()
            elif e["kind"] == "level_passed":
                passed.add(e["level"])
        return passed

    # -- invariants over the whole state -------------------------------------------------------

    @invariant()
    def timeline_ascends(self) -> None:
        if self.sim is None:
            return
        ats = [e["at"] for e in self.sim.timeline]
        assert all(a <= b for a, b in itertools.pairwise(ats)), "instants go backwards"
        assert not ats or ats[-1] <= self.sim.now

    @invariant()
    def warnings_and_breaches_once(self) -> None:
        if self.sim is None:
            return
        warned = Counter(
            (e["case"], e["metric"], e["percent"])
            for e in self.sim.timeline
            if e["kind"] == "sla_warning"
        )
        breached = Counter(
            (e["case"], e["metric"]) for e in self.sim.timeline if e["kind"] == "sla_breached"
        )
        assert all(n == 1 for n in warned.values()), f"warned twice: {warned}"
        assert all(n == 1 for n in breached.values()), f"breached twice: {breached}"

    @invariant()
    def cut_and_continued_equals_uncut(self) -> None:
        if self.sim is None:
            return
        mine, theirs = _state(self.sim), _state(self.shadow)
        assert mine[0] == theirs[0], "the persisted-and-continued timeline differs"
        assert mine[1] == theirs[1], "the persisted-and-continued cases differ"
        assert mine[2] == theirs[2], "the persisted-and-continued timers differ"

    @invariant()
    def state_survives_json(self) -> None:
        """Every step: the whole state round-trips through JSON unchanged."""
        if self.sim is None:
            return
        assert _state(_round_trip(self.sim)) == _state(self.sim), "state lost in JSON"

    @invariant()
    def paused_metrics_do_not_advance(self) -> None:
        if self.sim is None:
            return
        now = self.sim.now
        seen: dict[str, dict[str, int]] = {}
        for case_id, case in self.sim.cases.items():
            if case.status != "pending":
                continue
            pol = sla.policy_for(case, self.policy)
            if pol is None or "pending" not in pol.pause_on:
                continue
            values = {}
            for name in ("resolution", "next_response"):
                m = case.metrics.get(name)
                if m is None or m.state in ("idle", "stopped"):
                    continue
                assert m.state == "paused", f"{name} is {m.state} while pending"
                values[name] = sla.elapsed(m, now, pol.calendar)
            earlier = self.pending_elapsed.get(case_id)
            if earlier is not None:
                for name, value in values.items():
                    if name in earlier:
                        assert value == earlier[name], f"{name} advanced while paused"
            seen[case_id] = values
        self.pending_elapsed = seen

    @invariant()
    def handoff_agrees_with_the_case(self) -> None:
        """The handoff context of every case is JSON, reads the case unchanged, and agrees."""
        if self.sim is None:
            return
        for case in self.sim.cases.values():
            before = _case_json(case)
            h = handoff(case, self.policy, self.sim.now, self.sim.timeline)
            assert json.loads(json.dumps(h)) == h
            assert _case_json(case) == before, "handoff changed the case"
            current = [r["number"] for r in h["ladder"] if r["state"] == "current"]
            assert current == [case.level]
            assert h["ladder"][case.level - 1]["reached_at"] is not None
            mine = [e for e in self.sim.timeline if e["case"] == case.id]
            assert len(h["timeline"]) == len(mine)
            escalated = [e for e in mine if e["kind"] == "escalated"]
            assert (h["escalation"] is None) == (not escalated)

    def teardown(self) -> None:
        if self.sim is None:
            return
        # The same story, told again from the start, gives the same timeline and cases.
        again = _replay(self.policy, self.story)
        assert _state(again) == _state(self.shadow), "the same story gave another timeline"


EscalationStories.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_escalation_stories = EscalationStories.TestCase


# -- plain properties: exact instants ----------------------------------------------------------

_STARTS = st.integers(0, 75 * 24 * 60).map(lambda k: START + k * MINUTE)


def _open(sim: Simulation, at: int, **data: Any) -> Case:
    sim.run_until(at)
    sim.handle("C", Event("open", data=data), at)
    return sim.cases["C"]


@settings(max_examples=60, deadline=None)
@given(
    at=_STARTS,
    customer=st.sampled_from(["globex", "initech"]),
    category=st.sampled_from(["general", "network", "billing"]),
    priority=st.sampled_from(["P1", "P2", "P3", "P4"]),
)
def test_untouched_case_climbs_every_level_at_its_instant(
    at: int, customer: str, category: str, priority: str
) -> None:
    """Nobody acts: each level k >= 2 fires at opening + `after` on the matrix calendar."""
    sim = Simulation(ACME)
    case = _open(sim, at, customer=customer, category=category, priority=priority, title="t")
    m = _matrix(ACME, case)
    sim.run_until(at + 30 * 24 * 60 * MINUTE)
    got = [
        (e["at"], e["from"], e["level"], e["cause"])
        for e in sim.timeline
        if e["kind"] == "escalated"
    ]
    want = [
        (m.calendar.add_us(at, lv.after), lv.number - 1, lv.number, "timer") for lv in m.levels[1:]
    ]
    assert got == want
    for when, _, level, _ in want:
        people = {e["to"] for e in sim.timeline if e["kind"] == "notified" and e["at"] == when}
        assert people, f"nobody notified when level {level} was reached"


@settings(max_examples=60, deadline=None)
@given(
    at=_STARTS,
    customer=st.sampled_from(["globex", "initech"]),
    priority=st.sampled_from(["P1", "P2", "P3", "P4"]),
)
def test_sla_thresholds_fire_at_their_instants(at: int, customer: str, priority: str) -> None:
    """Nobody acts: every warning and the breach come at opening + percent of the target."""
    sim = Simulation(ACME)
    case = _open(sim, at, customer=customer, category="general", priority=priority, title="t")
    pol = sla.policy_for(case, ACME)
    assert pol is not None
    sim.run_until(at + 200 * 24 * 60 * MINUTE)
    for metric in ("first_response", "resolution"):
        target = sla.target_of(pol, priority, metric)
        assert target is not None
        got = [
            (e["at"], e.get("percent", 100))
            for e in sim.timeline
            if e["kind"] in ("sla_warning", "sla_breached") and e["metric"] == metric
        ]
        want = [
            (pol.calendar.add_us(at, -(-target * pct // 100)), pct) for pct in (*pol.warn_at, 100)
        ]
        assert got == want, metric


@settings(max_examples=80, deadline=None)
@given(
    name=st.sampled_from(["acme", "beta"]),
    at=_STARTS,
    wait=st.integers(0, 120),
    stay=st.integers(1, 5 * 24 * 60),
)
def test_pending_time_does_not_count_toward_the_next_level(
    name: str, at: int, wait: int, stay: int
) -> None:
    """Level 2 comes `after` on the matrix calendar, the pending stretch left out."""
    policy = POLICIES[name]
    customer = CUSTOMERS[name]["standard"]
    sim = Simulation(policy)
    case = _open(sim, at, customer=customer, category="general", priority="P4", title="t")
    m = _matrix(policy, case)
    cal, after = m.calendar, m.levels[1].after
    t_pend = at + wait * MINUTE
    t_back = t_pend + stay * MINUTE
    sim.run_until(t_pend)
    sim.handle("C", Event("pending", by="bob"), t_pend)
    sim.run_until(t_back)
    sim.handle("C", Event("customer_reply"), t_back)
    sim.run_until(t_back + 30 * 24 * 60 * MINUTE)
    counted = cal.elapsed_us(at, t_pend)
    expected = cal.add_us(at, after) if counted >= after else cal.add_us(t_back, after - counted)
    escalations = [e for e in sim.timeline if e["kind"] == "escalated"]
    assert escalations
    first = escalations[0]
    assert not t_pend < first["at"] < t_back or first["cause"] != "timer"
    if first["cause"] == "timer":
        assert (first["at"], first["level"]) == (expected, 2)
    else:  # a rule (first response breached) may escalate earlier, never a timer
        assert first["cause"] == "rule" and first["at"] <= expected


def test_beta_policy_uses_what_acme_does_not() -> None:
    """The second policy really has a calendar, repeat, a schedule with a fallback and rules."""
    main = next(m for m in BETA.matrices if m.id == "main")
    assert main.repeat is not None and main.calendar.id == "nyc"
    assert main.levels[0].notify[0].kind == "schedule" and main.levels[0].fallback is not None
    kinds = {a.kind for r in BETA.rules for a in r.then}
    assert kinds == {"escalate", "set_priority", "notify", "assign"}


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_cut_at_every_instant_of_a_fixed_story(name: str) -> None:
    """A fixed busy story, cut (JSON round trip) at every step, ends as the uncut run does."""
    cust = CUSTOMERS[name]
    t0 = parse_instant("2026-11-20T15:00:00Z")
    steps: list[tuple[Any, ...]] = [
        ("act", t0, "C1", "open", {"customer": cust["standard"], "category": "billing",
                                   "priority": "P3", "title": "x"}),
        ("act", t0, "C2", "open", {"customer": cust["gold"], "category": "network",
                                   "priority": "P1", "title": "y"}),
        ("advance", t0 + 7 * MINUTE),
        ("act", t0 + 7 * MINUTE, "C2", "respond", {"by": "bob"}),
        ("act", t0 + 7 * MINUTE, "C1", "pending", {"by": "bob"}),
        ("advance", t0 + 3 * 60 * MINUTE),
        ("act", t0 + 3 * 60 * MINUTE, "C2", "customer_reply", {}),
        ("act", t0 + 3 * 60 * MINUTE, "C1", "customer_reply", {}),
        ("advance", t0 + 3 * 24 * 60 * MINUTE),
        ("act", t0 + 3 * 24 * 60 * MINUTE, "C1", "resolve", {"by": "alice"}),
        ("act", t0 + 3 * 24 * 60 * MINUTE, "C1", "reopen", {}),
        ("advance", t0 + 9 * 24 * 60 * MINUTE),
    ]  # fmt: skip
    story = [("start", t0), *steps]
    policy = POLICIES[name]
    whole = _replay(policy, story)
    for cut in range(1, len(story)):
        sim = _tell(_round_trip(_replay(policy, story[:cut])), story[cut:])
        assert _state(sim) == _state(whole), f"cut before step {cut}"
