"""Replay and verify at scale: 100,000 cases in a SQLite database, re-run through the core.

    python bench/replay.py --json [--cases 100000] [--events 6]
    -> {"replay_cases_per_s": N, "replay_events_per_s": ..., "core_events_per_s": ...,
        "replay_vs_core": ..., "verify_cases_per_s": ..., ...}

The history is made by the core itself, as the engine would store it: bench/core.py's
generator (an opening, then valid actions at random instants over a month), run through the
simulator chunk by chunk with every decision recorded as the engine records it (its input in
the journal, its entries in the timeline, its messages in the outbox), then written to a fresh
SQLite file. `core_events_per_s` is the simulator's own rate on those events (inputs and
timer firings), timed on a run of its own without the recording. Then `rungs replay` under a
draft whose level 2 comes sooner, and `rungs verify`, each timed on this process's CPU (one
core): reading the rows, decoding them, re-running and comparing all count. The machine is
shared: compare the
ratio, not the absolute rates.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rungs.core.model import Case, Event, Refused
from rungs.policy import load_policy_text
from rungs.sim.inputs import encode_event
from rungs.sim.runner import Simulation, cyclic_gc_paused
from rungs.store.db import make_engine, upgrade
from rungs.store.jsonbytes import dumps_text
from rungs.store.views.replay import verify, whatif

ROOT = Path(__file__).resolve().parents[1]
POLICY = ROOT / "src" / "rungs" / "examples" / "acme.yaml"
CHUNK = 5_000  # cases simulated (and written) at a time


def _core_bench() -> Any:
    spec = importlib.util.spec_from_file_location("bench_core", ROOT / "bench" / "core.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Recording(Simulation):
    """The simulator, keeping each decision's input as the engine journals it."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.inputs: list[tuple[str, int, str]] = []

    def handle(self, case_id: str, event: Event, now: int) -> None:
        super().handle(case_id, event, now)  # a refusal raises: nothing is journaled
        self.inputs.append((case_id, now, dumps_text(encode_event(event))))


def _chunk_rows(sim: Recording) -> dict[str, list[tuple[Any, ...]]]:
    return {
        "cases": [_case_row(c) for c in sim.cases.values()],
        "journal": [(c, at, 1, e) for c, at, e in sim.inputs],
        "timeline": [(e["case"], e["at"], e["kind"], 1, dumps_text(e)) for e in sim.timeline],
        "outbox": [(o.case, o.key) for o in sim.outbox],
    }


def _case_row(c: Case) -> tuple[Any, ...]:
    return (c.id, c.status, c.customer, c.priority, c.level, 1, dumps_text(c.to_dict()),
            c.opened_at, c.updated_at)  # fmt: skip


_INSERTS = {
    "cases": "INSERT INTO cases (id, status, customer, priority, level, policy_version, state, "
    "opened_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "journal": "INSERT INTO journal (case_id, at, policy_version, event) VALUES (?, ?, ?, ?)",
    "timeline": "INSERT INTO timeline (case_id, at, kind, policy_version, entry) "
    "VALUES (?, ?, ?, ?, ?)",
    "outbox": "INSERT INTO outbox (case_id, kind, key, payload, status, attempts, next_attempt, "
    "created_at) VALUES (?, 'notify', ?, '{}', 'sent', 1, 0, 0)",
}


def _run(sim: Simulation, story: list[tuple[int, str, Event]], until: int) -> int:
    """The story through the simulator, as bench/core.py runs it; how many were refused."""
    refused = 0
    with cyclic_gc_paused():
        for at, cid, ev in story:
            sim.run_until(at)
            try:
                sim.handle(cid, ev, at)
            except Refused:
                refused += 1
        sim.run_until(until)
    return refused


def policy_of(text: str) -> Any:
    policy, problems = load_policy_text(text, str(POLICY), secret_prefix=None)
    assert policy is not None, problems
    return policy


def _core_rate(core: Any, policy: Any, per_case: int, seed: int) -> int:
    """The core's rate on one chunk's story, timed alone (decided events per CPU second)."""
    story = [(at, f"C0-{cid}", ev) for at, cid, ev in core.generate(CHUNK, per_case, seed)]
    sim = Simulation(policy, keep_outbox=False)
    c0 = time.process_time()
    refused = _run(sim, story, core.START + 2 * core.MONTH)
    return round((len(story) - refused + sim.fired) / (time.process_time() - c0))


def generate(db_url: str, text: str, cases: int, per_case: int, seed: int) -> dict[str, Any]:
    """The history of `cases` cases into the database; the core's rate while making it."""
    core = _core_bench()
    policy = policy_of(text)
    engine = make_engine(db_url)
    upgrade(engine)
    raw = engine.raw_connection()
    cur = raw.cursor()
    cur.execute("PRAGMA synchronous=OFF")
    cur.execute("INSERT INTO policies (version, yaml, source, created_at) VALUES (1, ?, ?, 0)",
                (text, str(POLICY)))  # fmt: skip
    core_cpu, events, refused, core_events = 0.0, 0, 0, 0
    for k in range(0, cases, CHUNK):
        n = min(CHUNK, cases - k)
        story = [(at, f"C{k}-{cid}", ev) for at, cid, ev in core.generate(n, per_case, seed + k)]
        plain = Simulation(policy, keep_outbox=False)  # the core alone, timed
        c0 = time.process_time()
        refused += _run(plain, story, core.START + 2 * core.MONTH)
        core_cpu += time.process_time() - c0
        core_events += len(story) + plain.fired
        sim = Recording(policy)  # the same again, recorded as the engine stores it
        _run(sim, story, core.START + 2 * core.MONTH)
        events += len(sim.inputs)
        for table, rows in _chunk_rows(sim).items():
            cur.executemany(_INSERTS[table], rows)
        raw.commit()
    raw.close()
    engine.dispose()
    rate = round((core_events - refused) / core_cpu)  # decided events, as the journal counts
    return {"inputs": events, "refused": refused, "core_events_per_s": rate}


def run(cases: int, per_case: int, seed: int) -> dict[str, Any]:
    text = POLICY.read_text(encoding="utf-8")
    draft_text = text.replace("after: 30m", "after: 15m", 1)
    draft, _ = load_policy_text(draft_text, "draft", secret_prefix=None)
    assert draft is not None and draft_text != text
    core = _core_bench()
    with tempfile.TemporaryDirectory(prefix="rungs-bench-") as d:
        url = f"sqlite:///{Path(d) / 'replay.db'}"
        made = generate(url, text, cases, per_case, seed)
        engine = make_engine(url)
        w0, c0 = time.perf_counter(), time.process_time()
        with cyclic_gc_paused():
            result = whatif(engine, draft)
        replay_wall, replay_cpu = time.perf_counter() - w0, time.process_time() - c0
        w0, c0 = time.perf_counter(), time.process_time()
        with cyclic_gc_paused():
            checked = verify(engine, 0)
        verify_wall, verify_cpu = time.perf_counter() - w0, time.process_time() - c0
        engine.dispose()
        core_after = _core_rate(core, policy_of(text), per_case, seed)  # the same load now
        size_mb = round(Path(d, "replay.db").stat().st_size / 1e6)
    answer = result.as_dict()
    core_rate = (made["core_events_per_s"] + core_after) / 2
    return {
        "cases": answer["cases"],
        "inputs": made["inputs"],
        "replay_cases_per_s": round(answer["cases"] / replay_cpu),
        "replay_events_per_s": round(made["inputs"] / replay_cpu),
        "core_events_per_s": round(core_rate),
        "core_events_per_s_while_generating": made["core_events_per_s"],
        "core_events_per_s_after": core_after,
        "replay_vs_core": round(made["inputs"] / replay_cpu / core_rate, 3),
        "replay_wall_s": round(replay_wall, 2),
        "verify_cases_per_s": round(checked.cases / verify_cpu),
        "verify_wall_s": round(verify_wall, 2),
        "verify_reproduced": checked.reproduced,
        "verify_diverged": len(checked.divergences),
        "changed_cases": len(answer["changed_cases"]),
        "summary": answer["summary"],
        "db_mb": size_mb,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--cases", type=int, default=100_000)
    ap.add_argument("--events", type=int, default=6, help="story events per case")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    result = run(args.cases, args.events, args.seed)
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"replay: {result['replay_cases_per_s']:,} cases/s "
            f"({result['replay_events_per_s']:,} inputs/s, {result['replay_vs_core']:.0%} of the "
            f"core's {result['core_events_per_s']:,} events/s); verify: "
            f"{result['verify_cases_per_s']:,} cases/s"
        )
    sys.exit(0 if result["verify_diverged"] == 0 else 1)


if __name__ == "__main__":
    main()
