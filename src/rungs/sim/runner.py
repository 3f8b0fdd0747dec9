"""Run a story through the core with a virtual clock: exactly what production would do.

Timers due at or before an event's instant fire first (as `POST /v1/clock/advance` does in the
live service), in due order, ties in the order they were set.
"""

from __future__ import annotations

import gc
from collections.abc import Container, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from heapq import heappop, heappush
from typing import Any

from rungs.core import model
from rungs.core.decide import decide
from rungs.core.model import Case, Effect, Event, Refused
from rungs.core.timers import due_timer
from rungs.policy.model import Policy
from rungs.sim.story import Story

__all__ = ["Simulation", "SimulationError", "cyclic_gc_paused", "run_story"]


class SimulationError(Exception):
    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


@dataclass
class Simulation:
    """Cases, their timers and the timeline, all in memory; fully serialisable."""

    policy: Policy
    cases: dict[str, Case] = field(default_factory=dict)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    outbox: list[model.Notify | model.CallWebhook | model.Notice] = field(default_factory=list)
    timers: dict[str, dict[str, tuple[int, int, tuple[Any, ...]]]] = field(default_factory=dict)
    heap: list[tuple[int, int, str, str]] = field(default_factory=list)
    seq: int = 0
    now: int = 0
    fired: int = 0
    keep_outbox: bool = True

    def apply(self, effects: Iterable[Effect]) -> None:
        timers = self.timers
        timeline = self.timeline
        # On the effect's exact type: a value pattern is one comparison, where class patterns
        # (isinstance, then an attribute look-up per capture) cost this loop a third of the
        # core bench. The core makes these classes only, never subclasses.
        for eff in effects:
            match type(eff):
                case model.Record:
                    timeline.append(eff.entry)  # type: ignore[union-attr]
                case model.ScheduleTimer:
                    t: model.ScheduleTimer = eff  # type: ignore[assignment]
                    self.seq = seq = self.seq + 1
                    case_id, key = t.case, t.key
                    mine = timers.get(case_id)
                    if mine is None:
                        mine = timers[case_id] = {}
                    mine[key] = (t.due, seq, t.payload)
                    heappush(self.heap, (t.due, seq, case_id, key))
                case model.CancelTimers:
                    c: model.CancelTimers = eff  # type: ignore[assignment]
                    mine = timers.get(c.case)
                    if mine:
                        prefix = c.prefix
                        for k in [k for k in mine if k.startswith(prefix)]:
                            del mine[k]
                case model.Notify | model.CallWebhook | model.Notice:
                    if self.keep_outbox:
                        self.outbox.append(eff)  # type: ignore[arg-type]

    def handle(self, case_id: str, event: Event, now: int) -> None:
        case = self.cases.get(case_id)
        new, effects = decide(case, event, now, self.policy, case_id=case_id)
        self.cases[case_id] = new
        self.apply(effects)

    def run_until(self, until: int, held: Container[tuple[str, str, int]] = ()) -> None:
        """Fire every timer due at or before `until`, in order, but those `held` (case, key,
        due): a replay fires those later, where the live engine did (`fire`)."""
        heap = self.heap
        if heap and heap[0][0] <= until:
            self._fire(until, held)
        if until > self.now:
            self.now = until

    def _fire(self, until: int, held: Container[tuple[str, str, int]]) -> None:
        heap, timers = self.heap, self.timers
        kept = []
        while heap and heap[0][0] <= until:
            due, seq, case_id, key = top = heappop(heap)
            mine = timers.get(case_id)
            current = mine.get(key) if mine else None
            if current is None or current[1] != seq:
                continue  # cancelled or replaced
            if held and (case_id, key, due) in held:
                kept.append(top)
                continue
            del mine[key]  # type: ignore[union-attr]
            self.fired += 1
            if due > self.now:
                self.now = due
            self.handle(case_id, Event("timer", timer=due_timer(key, due, current[2])), due)
        for top in kept:
            heappush(heap, top)

    def fire(self, case_id: str, key: str, due: int, at: int, *, any_due: bool = False) -> bool:
        """Fire the case's pending timer `key` due at `due` (any due instant when `any_due`)
        at `at`, as the live engine recorded it; False when no such timer is pending."""
        mine = self.timers.get(case_id)
        current = mine.get(key) if mine else None
        if current is None or (current[0] != due and not any_due):
            return False
        del mine[key]  # type: ignore[union-attr]
        self.fired += 1
        if at > self.now:
            self.now = at
        self.handle(case_id, Event("timer", timer=due_timer(key, due, current[2])), at)
        return True

    def pending_timers(self) -> list[tuple[int, str, str]]:
        return sorted(
            (due, c, k) for c, mine in self.timers.items() for k, (due, _, _) in mine.items()
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "cases": {k: c.to_dict() for k, c in self.cases.items()},
            "timeline": list(self.timeline),
            "timers": [
                [c, k, d, s, list(p)]
                for c, mine in self.timers.items()
                for k, (d, s, p) in mine.items()
            ],
            "seq": self.seq,
            "now": self.now,
        }

    @classmethod
    def from_dict(cls, policy: Policy, d: dict[str, Any]) -> Simulation:
        sim = cls(policy)
        sim.cases = {k: Case.from_dict(c) for k, c in d["cases"].items()}
        sim.timeline = list(d["timeline"])
        for c, k, due, s, p in d["timers"]:
            sim.timers.setdefault(c, {})[k] = (due, s, tuple(p))
            heappush(sim.heap, (due, s, c, k))
        sim.seq, sim.now = d["seq"], d["now"]
        return sim


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while simulating.

    The core builds no reference cycles (cases, entries and effects are trees of dicts,
    tuples and slotted objects), so reference counting frees everything; the cyclic collector
    would only rescan the growing timeline again and again. What survives the run is
    long-lived, so it joins the oldest generation at once (freeze, then unfreeze) instead of
    being traversed as young objects the moment collection resumes.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.freeze()
            gc.unfreeze()
            gc.enable()


def run_story(policy: Policy, story: Story, sim: Simulation | None = None) -> Simulation:
    """Run every event (timers first), then every timer up to `until`."""
    with cyclic_gc_paused():
        return _run_story(policy, story, sim)


def _run_story(policy: Policy, story: Story, sim: Simulation | None) -> Simulation:
    sim = sim or Simulation(policy)
    for ev in story.events:
        sim.run_until(ev.at)
        try:
            sim.handle(ev.case, ev.event(), ev.at)
        except Refused as exc:
            raise SimulationError(
                f"{story.file}:{ev.line}: {ev.do} on case {ev.case} refused: {exc.message}", ev.line
            ) from exc
    if story.until is not None:
        sim.run_until(story.until)
    return sim
