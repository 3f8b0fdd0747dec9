"""Reports over a million cases: `case_facts` rows generated straight into the table.

    python bench/report.py --json [--cases 1000000] [--db sqlite|postgres|URL] [--repeat 3]
    -> {"cases": N, "summary_s": ..., "grouped_s": ..., "sla_s": ..., "db": "sqlite"}

Rows are made up (a year of openings in time order, 200 customers in three tiers, 20 teams, a third
escalated with causes and reasons, some reopened, some ping-pong, breaches, pages) and
written by the store's own row layout (`rungs.store.facts.COLUMNS`), then the reports run
over the whole year: `summary` (target ≤ 1 s), `summary --by customer` (the grouped report,
target ≤ 2 s) and `sla --by priority`; best of `--repeat` runs each.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sqlalchemy import text

from _util import fresh_db, source_revision
from rungs.store.db import make_engine, upgrade
from rungs.store.facts import COLUMNS, write_rows
from rungs.store.views.reports import Window, report
from rungs.time.instant import DAY, parse_instant

START = parse_instant("2026-01-01T00:00:00Z")
CAUSES = ("timer", "rule", "manual", "customer")
REASONS = ("customer_request", "sla_at_risk", "technical", "billing", "outage")


def rows(n: int, seed: int = 7) -> Any:
    """`n` made-up facts rows in `COLUMNS` order, in chunks of 10,000."""
    rnd = random.Random(seed)
    chunk = []
    step = 365 * DAY // max(n, 1)
    for i in range(n):
        opened = START + i * step + rnd.randrange(step or 1)  # opened in time order, as live
        esc = rnd.random() < 0.33
        causes = [0, 0, 0, 0]
        reasons = None
        if esc:
            causes[rnd.randrange(4)] += 1 + (rnd.random() < 0.2)
            if causes[2] or causes[3]:
                reasons = json.dumps({rnd.choice(REASONS): causes[2] + causes[3]})
        status = rnd.choice(("open", "acknowledged", "resolved", "resolved", "closed"))
        resolved = opened + rnd.randrange(40 * DAY) if status in ("resolved", "closed") else None
        ack = opened + rnd.randrange(4 * 3600 * 10**6) if rnd.random() < 0.8 else None
        outcome = rnd.choice(("met", "met", "met", "breached", "running", "not_applicable"))
        breached = opened + DAY if outcome == "breached" else None
        pp = rnd.random() < 0.01
        chunk.append(
            (
                opened,
                f"C{i + 1}",
                f"cust{rnd.randrange(200)}",
                rnd.choice(("gold", "silver", "standard")),
                rnd.choice(("general", "network", "billing", "hardware", "access")),
                rnd.choice(("P1", "P2", "P3", "P4")),
                f"team:t{rnd.randrange(20)}" if rnd.random() < 0.7 else None,
                status,
                ack,
                resolved,
                sum(causes),
                *causes,
                int(rnd.random() < 0.05),
                int(pp),
                int(not esc and status in ("resolved", "closed")),
                "business",
                outcome,
                breached,
                "not_applicable",
                None,
                outcome,
                breached,
                reasons,
                json.dumps({f"p{rnd.randrange(60)}": [1, 0, 0]}) if rnd.random() < 0.1 else None,
                '{"holders":["team:a","team:b","team:a"]}' if pp else "{}",
            )
        )
        if len(chunk) == 10_000:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def best(fn: Any, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return round(min(times), 3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--cases", type=int, default=1_000_000)
    ap.add_argument("--db", default=None)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    assert len(next(rows(1))[0]) == len(COLUMNS)
    with fresh_db(args.db) as db:
        engine = make_engine(db.url)
        upgrade(engine)
        t0 = time.perf_counter()
        for chunk in rows(args.cases):
            with engine.begin() as conn:
                write_rows(conn, chunk)
        with engine.begin() as conn:
            conn.execute(text("ANALYZE" if db.kind == "postgresql" else "ANALYZE case_facts"))
        load_s = time.perf_counter() - t0
        whole = Window(START, START + 366 * DAY)
        by_customer = Window(whole.start, whole.end, "customer")
        by_priority = Window(whole.start, whole.end, "priority")
        out: dict[str, Any] = {}
        with engine.connect() as conn:

            def run(section: str, w: Window) -> None:
                out[section] = report(conn, section, w, None, whole.end)

            result = {
                "cases": args.cases,
                "summary_s": best(lambda: run("summary", whole), args.repeat),
                "grouped_s": best(lambda: run("summary", by_customer), args.repeat),
                "sla_by_priority_s": best(lambda: run("sla", by_priority), args.repeat),
                "escalations_s": best(lambda: run("escalations", whole), args.repeat),
                "load_rows_s": round(load_s, 1),
                "counted": out["summary"]["cases"],
                "db": db.kind,
                "source": source_revision(),
            }
        engine.dispose()
    print(json.dumps(result) if args.json else result)


if __name__ == "__main__":
    main()
