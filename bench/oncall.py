"""Benchmark on-call look-ups: `on_call` at random instants over a year.

The schedule has three layers (12h, weekly, daily restricted to office hours) and 50 random
overrides, some overlapping, which is the shape the pager resolves on every escalation step.
`--json` prints one line for CI: {"lookups_per_s": N, ...}.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from pathlib import Path

try:
    import rungs  # noqa: F401
except ImportError:  # running from a checkout without an installed package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from rungs.schedules.oncall import Layer, Override, Schedule, on_call, shifts
from rungs.time.hours import parse_hours
from rungs.time.instant import DAY, HOUR, MINUTE, parse_instant

YEAR_START = parse_instant("2026-01-01T00:00:00Z")
YEAR = 365 * DAY


def build_schedule(rng: random.Random, n_overrides: int = 50) -> Schedule:
    """Three layers in three zones plus random overrides; every tenth override overlaps the
    previous one so the flattened override timeline has real work to do."""
    office = parse_hours({d: "10:00-18:00" for d in ("mon", "tue", "wed", "thu", "fri")})
    # Bottom to top: the 12h layer is hidden under the weekly one, and the restricted layer is
    # on top, so a typical look-up pays for the restriction check and then a calendar (d/w)
    # shift index: the slowest path through the layers.
    layers = (
        Layer(
            "nights",
            ("nina", "noah"),
            "12h",
            parse_instant("2026-06-01T20:00:00-04:00"),
            "America/New_York",
        ),
        Layer(
            "weekly",
            ("dave", "carol", "bob"),
            "1w",
            parse_instant("2026-11-02T09:00:00+01:00"),
            "Europe/Berlin",
        ),
        Layer(
            "office-india",
            ("alice", "amit"),
            "1d",
            parse_instant("2026-11-02T10:00:00+05:30"),
            "Asia/Kolkata",
            office,
        ),
    )
    overrides: list[Override] = []
    for i in range(n_overrides):
        if i % 10 == 9:
            prev = overrides[-1]
            start = prev.start + (prev.end - prev.start) // 2
        else:
            start = YEAR_START + rng.randrange(YEAR // MINUTE) * MINUTE
        end = start + rng.randrange(1, 72) * HOUR
        overrides.append(Override(start, end, rng.choice(("erin", "fred", "gina"))))
    return Schedule("bench", "Europe/Berlin", layers, tuple(overrides), "person:frank")


def measure(schedule: Schedule, instants: list[int], min_seconds: float) -> tuple[int, float]:
    """Whole passes over `instants` until at least `min_seconds` have elapsed."""
    count = 0
    t0 = time.perf_counter()
    while True:
        for at in instants:
            on_call(schedule, at)
        count += len(instants)
        elapsed = time.perf_counter() - t0
        if elapsed >= min_seconds:
            return count, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    parser.add_argument("--seconds", type=float, default=2.0, help="minimum measured time")
    parser.add_argument("--seed", type=int, default=20261102)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    schedule = build_schedule(rng)
    instants = [YEAR_START + rng.randrange(YEAR) for _ in range(100_000)]

    t0 = time.perf_counter()
    on_call(schedule, instants[0])  # compiles the schedule's tables
    compile_ms = (time.perf_counter() - t0) * 1000
    sources = Counter(on_call(schedule, at).source for at in instants)  # warm-up pass

    count, elapsed = measure(schedule, instants, args.seconds)
    t0 = time.perf_counter()
    year = shifts(schedule, YEAR_START, YEAR_START + YEAR)
    shifts_ms = (time.perf_counter() - t0) * 1000

    result = {
        "lookups_per_s": round(count / elapsed),
        "lookups": count,
        "seconds": round(elapsed, 3),
        "layers": len(schedule.layers),
        "overrides": len(schedule.overrides),
        "compile_ms": round(compile_ms, 3),
        "year_shifts": len(year),
        "year_shifts_ms": round(shifts_ms, 1),
        "sources": {str(k): v for k, v in sorted(sources.items(), key=lambda kv: str(kv[0]))},
    }
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>15}: {value}")


if __name__ == "__main__":
    main()
