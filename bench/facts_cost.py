"""What keeping case facts costs the write path: CPU per opened case, with and without.

    python bench/facts_cost.py --json [--cases 3000] [--rounds 3] [--db sqlite|postgres|URL]
    -> {"with_us_per_case": ..., "without_us_per_case": ..., "added_pct": ..., ...}

Opens cases through `Commands.open_in` (the engine's own write path: decide, the case row,
timeline, timers, outbox and `case_facts`) in transactions of 64, as the writer batches them,
on a fresh database per round, alternating with and without facts (`keep_facts` replaced by
a no-op), and takes this process's CPU time: no HTTP, so what is left is the engine's work.
The ingest path's own CPU per case (`bench/ingest.py`) is the denominator for the issue's
"≤ 10 % of ingest"; this bench isolates the numerator on a shared, noisy machine.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

import rungs.store.effects as effects
from _util import POLICY, fresh_db
from rungs.bootstrap import build

CUSTOMERS = ("globex", "initech")
PRIORITIES = ("P1", "P2", "P3", "P4")


def one_round(url: str, policy_file: Path, cases: int, keep: bool) -> float:
    """CPU µs per case opened."""
    real = effects.keep_facts
    if not keep:
        effects.keep_facts = lambda *a, **k: None  # type: ignore[assignment]
    os.environ["RUNGS_ALLOW_VIRTUAL_CLOCK"] = "1"
    service, _ = build(db_url=url, policy_file=policy_file, virtual_start=1_800_000_000_000_000,
                       role="engine")  # fmt: skip
    try:
        cmds = service.commands
        version = service.policies.current_version()
        policy = service.policies.policy(version)
        bodies = itertools.cycle(
            {"customer": c, "category": "network", "priority": p, "title": f"bench {c} {p}"}
            for c, p in itertools.product(CUSTOMERS, PRIORITIES)
        )
        now = 1_800_000_000_000_000
        t0 = time.process_time()
        for start in range(0, cases, 64):
            with service.db.begin() as conn:
                for _ in range(min(64, cases - start)):
                    now += 1000
                    cmds.open_in(conn, dict(next(bodies)), version, policy, now)
        return (time.process_time() - t0) / cases * 1e6
    finally:
        effects.keep_facts = real
        service.stop()
        service.db.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--cases", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--db", default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="rungs-bench-") as tmp:
        data = yaml.safe_load(POLICY.read_text(encoding="utf-8"))
        data.pop("channels", None)  # as bench/ingest.py: pages written and skipped
        policy_file = Path(tmp) / "policy.yaml"
        policy_file.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        with_, without = [], []
        for _ in range(args.rounds):
            for keep, out in ((False, without), (True, with_)):
                with fresh_db(args.db) as db:
                    out.append(one_round(db.url, policy_file, args.cases, keep))
                    kind = db.kind
    w, wo = sorted(with_)[len(with_) // 2], sorted(without)[len(without) // 2]
    result = {
        "with_us_per_case": round(w, 1),
        "without_us_per_case": round(wo, 1),
        "added_us_per_case": round(w - wo, 1),
        "added_pct": round((w - wo) / wo * 100, 1),
        "rounds": {"with": [round(x, 1) for x in with_], "without": [round(x, 1) for x in without]},
        "cases": args.cases,
        "db": kind,
    }
    print(json.dumps(result) if args.json else result)


if __name__ == "__main__":
    main()
