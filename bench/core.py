"""Throughput of the pure core: a month of work for 10,000 cases, 20 events each, timers included.

    python bench/core.py --json   ->  {"events_per_s": N, "story_events": ..., "timer_events": ...}

Events are generated ahead of time (a valid action for each case's state at each step) and run
through the simulator, which is the same `decide` the live engine calls. Timer firings count as
events. One core: the process is single-threaded, and `events_per_s` divides by its CPU time
(`events_per_wall_s` by wall time, which is the same on an idle machine).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
from pathlib import Path

from rungs.core.model import Event
from rungs.policy import load_policy
from rungs.sim.runner import Simulation, cyclic_gc_paused
from rungs.time.instant import MINUTE, parse_instant

POLICY = Path(__file__).resolve().parents[1] / "src" / "rungs" / "examples" / "acme.yaml"
START = parse_instant("2026-11-02T00:00:00+01:00")
MONTH = 30 * 24 * 60 * MINUTE

CUSTOMERS = ("globex", "initech")
CATEGORIES = ("general", "network", "billing")
PEOPLE = ("alice", "bob", "carol", "dave")
REASONS = ("sla_at_risk", "technical_complexity", "business_impact")


def _next_action(rng: random.Random, status: str, acked: bool, level: int) -> tuple[str, dict]:
    if status == "resolved":
        return ("reopen", {}) if rng.random() < 0.3 else ("close", {})
    if status == "closed":
        return "", {}
    choices: list[tuple[str, dict]] = [
        ("respond", {"by": rng.choice(PEOPLE)}),
        ("customer_reply", {}),
        ("set_priority", {"priority": rng.choice(("P1", "P2", "P3", "P4"))}),
        ("assign", {"to": rng.choice(("team:network", "team:billing", "person:carol"))}),
        ("resolve", {"by": rng.choice(PEOPLE)}),
    ]
    if not acked:
        choices.append(("acknowledge", {"by": rng.choice(PEOPLE)}))
    if status in ("open", "acknowledged"):
        choices.append(("pending", {}))
    if level < 3:
        choices.append(("escalate", {"by": rng.choice(PEOPLE), "reason": rng.choice(REASONS)}))
    return rng.choice(choices)


def generate(cases: int, per_case: int, seed: int) -> list[tuple[int, str, Event]]:
    """Per case: open, then valid actions at random instants over a month."""
    rng = random.Random(seed)
    events: list[tuple[int, str, Event]] = []
    for i in range(cases):
        cid = f"C{i}"
        t = START + rng.randrange(MONTH // 2)
        data = {
            "customer": rng.choice(CUSTOMERS),
            "category": rng.choice(CATEGORIES),
            "priority": rng.choice(("P1", "P2", "P3", "P4")),
            "title": f"case {i}",
        }
        events.append((t, cid, Event("open", data=data)))
        status, acked, level = "open", False, 1
        for _ in range(per_case - 1):
            t += rng.randrange(1, MONTH // (per_case * 2))
            kind, params = _next_action(rng, status, acked, level)
            if not kind:
                break
            events.append((t, cid, Event(kind, **params)))
            if kind == "acknowledge":
                acked = True
                status = "acknowledged" if status != "pending" else status
            elif kind == "pending":
                status = "pending"
            elif kind == "customer_reply" and status == "pending":
                status = "acknowledged" if acked else "open"
            elif kind == "resolve":
                status = "resolved"
            elif kind == "reopen":
                status, acked, level = "open", False, 1
            elif kind == "close":
                status = "closed"
            elif kind == "escalate":
                level += 1
    events.sort(key=lambda e: e[0])
    return events


def run(cases: int, per_case: int, seed: int) -> dict:
    policy = load_policy(POLICY)
    events = generate(cases, per_case, seed)
    sim = Simulation(policy, keep_outbox=False)
    refused = 0
    t0, c0 = time.perf_counter(), time.process_time()
    from rungs.core.model import Refused

    with cyclic_gc_paused():  # as `rungs simulate` runs
        for at, cid, ev in events:
            sim.run_until(at)
            try:
                sim.handle(cid, ev, at)
            except Refused:
                refused += 1  # e.g. a level already reached by a timer: still a decided event
        sim.run_until(START + 2 * MONTH)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    timer_events = sim.fired
    total = len(events) + timer_events
    return {
        "events_per_s": round(total / cpu),  # per second of this process's CPU time: one core
        "events_per_wall_s": round(total / elapsed),  # lower when other work shares the core
        "story_events": len(events),
        "timer_events": timer_events,
        "refused": refused,
        "timeline_entries": len(sim.timeline),
        "seconds": round(elapsed, 3),
        "cpu_seconds": round(cpu, 3),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--cases", type=int, default=10_000)
    ap.add_argument("--events", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    result = run(args.cases, args.events, args.seed)
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['events_per_s']:,} events/s ({result['story_events']:,} story events, "
            f"{result['timer_events']:,} timers) in {result['seconds']} s"
        )
    sys.exit(0)


if __name__ == "__main__":
    main()
