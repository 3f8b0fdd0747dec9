"""Benchmark business-time arithmetic on the acme Berlin calendar (with holidays).

`python bench/business_time.py --json` prints one JSON line with `adds_per_s`; the target is
at least 100,000 `add_us` calls per second on one core.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

try:
    import rungs  # noqa: F401
except ModuleNotFoundError:  # running from a checkout without an installed package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from rungs.time.calendar import Calendar
from rungs.time.instant import DAY, to_us

BERLIN = ZoneInfo("Europe/Berlin")
N_CASES = 100_000
MIN_SECONDS = 2.0


def acme() -> Calendar:
    """The example policy's calendar: Berlin, mon-fri 09:00-17:00, DE/BE plus two dates."""
    return Calendar(
        id="acme",
        timezone="Europe/Berlin",
        hours={d: ((9 * 60, 17 * 60),) for d in range(5)},
        holiday_country="DE",
        holiday_subdivision="BE",
        holiday_dates=frozenset({date(2026, 12, 24), date(2026, 12, 31)}),
    )


def cases(seed: int) -> list[tuple[int, int]]:
    """Random starts over 2026-2027 and random durations up to 30 days, in µs."""
    rng = random.Random(seed)
    lo = to_us(datetime(2026, 1, 1, tzinfo=BERLIN))
    hi = to_us(datetime(2028, 1, 1, tzinfo=BERLIN))
    return [(rng.randrange(lo, hi), rng.randrange(0, 30 * DAY + 1)) for _ in range(N_CASES)]


def cpu_name() -> str:
    """The CPU model for the record, where Linux tells it."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def rate(fn: Callable[[int, int], int], data: list[tuple[int, int]]) -> float:
    """Calls per second over whole passes of `data`, for at least MIN_SECONDS of wall time."""
    calls = 0
    began = time.perf_counter()
    while True:
        for a, b in data:
            fn(a, b)
        calls += len(data)
        spent = time.perf_counter() - began
        if spent >= MIN_SECONDS:
            return calls / spent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args(argv)

    cal = acme()
    data = cases(args.seed)
    ends = [cal.add_us(s, d) for s, d in data]  # warms the per-year caches (2026-2028)
    spans = [(s, e) for (s, _), e in zip(data, ends, strict=True)]
    for s, e in spans[:1000]:
        cal.elapsed_us(s, e)

    adds = rate(cal.add_us, data)
    elapsed = rate(cal.elapsed_us, spans)
    result = {
        "adds_per_s": round(adds),
        "elapsed_per_s": round(elapsed),
        "cases": len(data),
        "python": platform.python_version(),
        "cpu": cpu_name(),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"add_us: {adds:,.0f}/s, elapsed_us: {elapsed:,.0f}/s "
            f"(acme Berlin calendar, durations up to 30 days, Python {result['python']})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
