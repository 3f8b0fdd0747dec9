"""The timer engine under a large open book: RSS, lateness and CPU per fired timer.

    python bench/timers.py --json [--open 1000000] [--rate 1000] [--seconds 60] [--compare 10000]
    -> {"open_cases": N, "rss_mb_max": ..., "lateness_p50_ms": ..., "lateness_p99_ms": ...,
        "cpu_us_per_fired": ..., "cpu_us_per_fired_at_10000": ..., ...}

On a fresh SQLite file:
1. `--open` background cases, open, with their pending timers, are bulk-inserted directly
   (executemany, big transactions). Their rows are clones of real `decide()` output: one case
   opened per customer x category x priority, 400 days ahead, so every one of their timers is far
   in the future (spread over ~12 more days so the due index is not a handful of values).
2. `rungs serve --role engine` starts on that file (a subprocess: its RSS and CPU are the
   server's alone).
3. A stream of `--rate` x `--seconds` more cases is inserted the same way, each opened by the real
   `decide()` at the instant that makes its first timer come due at its place in the window
   (evenly spaced, starting a few seconds later), so the engine's `decide` does real work:
   a notification step, an SLA warning or a level escalation, with their timeline and outbox rows.
4. While the engine fires them: the server's VmRSS (max, sampled every 0.2 s), its CPU time
   (utime+stime over the window, divided by the timers fired), and afterwards each stream
   case's lateness, from the `at` of the first timeline row the firing wrote (the engine's
   `now` when it ran decide) minus the timer's due. The engine's own histogram
   (`rungs_engine_lateness_hist_seconds` on /metrics) is read once at the end as a check.

With `--compare N` (default 10000) the whole run is repeated with N background cases, to show
what the size of the book costs per fired timer (`cpu_us_per_fired_at_N`).

The engine needs most of a core at 1,000 timers/s, so other work on the machine shows up as
lateness: `other_processes_cores` is how many cores the rest of the machine kept busy during
the window (`--wait-quiet S` first waits up to S seconds for it to go quiet). CPU per fired
timer falls as the rate rises (each engine tick has a fixed cost), so compare it at one rate.
A quick check: `--open 20000 --seconds 10 --compare 0`.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import platform
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import (
    POLICY,
    OtherLoad,
    Server,
    add_server_args,
    bucket_quantile,
    cpu_seconds,
    histogram_from_metrics,
    percentile,
    proc_status_kb,
    source_revision,
    wait_quiet,
)
from rungs.core.decide import decide
from rungs.core.facts import steps, terms_for
from rungs.core.model import CancelTimers, Case, Event, Notify, Record, ScheduleTimer
from rungs.engine import Engine
from rungs.policy import Policy, load_policy
from rungs.store import cases as case_rows
from rungs.store.db import make_engine, upgrade
from rungs.store.facts import COLUMNS as FACT_COLUMNS
from rungs.store.facts import row_of
from rungs.time.clock import SystemClock

CUSTOMERS = ("globex", "initech")
CATEGORIES = ("general", "network", "billing")
PRIORITIES = ("P1", "P2", "P3", "P4")
COMBOS = list(itertools.product(CUSTOMERS, CATEGORIES, PRIORITIES))
PLACEHOLDER = "__CASE_ID__"
DAY_US = 86_400_000_000
VERSION = 1

CASE_SQL = (
    "INSERT INTO cases (id, status, customer, priority, level, assignee, open_key, "
    "policy_version, state, opened_at, updated_at, title, sla_due) "
    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
FACTS_SQL = (
    "INSERT INTO case_facts (" + ", ".join(FACT_COLUMNS) + ") "
    "VALUES (" + ", ".join("?" * len(FACT_COLUMNS)) + ")"
)
TIMER_SQL = "INSERT INTO timers (case_id, key, due, payload) VALUES (?,?,?,?)"
TIMELINE_SQL = "INSERT INTO timeline (case_id, at, kind, policy_version, entry) VALUES (?,?,?,?,?)"
OUTBOX_SQL = (
    "INSERT INTO outbox (case_id, kind, key, payload, status, attempts, next_attempt, "
    "created_at) VALUES (?,?,?,?,?,?,?,?)"
)
_dumps = json.JSONEncoder(separators=(",", ":")).encode


def now_us() -> int:
    return SystemClock().now()


class Rows:
    """The rows one opened case writes, as the case and effect writers would."""

    def __init__(self, case: Case, effects: list[Any], now: int, policy: Policy) -> None:
        r = case_rows._row(case, VERSION, policy)
        self.case = (
            case.id,
            r["status"],
            r["customer"],
            r["priority"],
            r["level"],
            r["assignee"],
            r["open_key"],
            VERSION,
            r["state"],
            case.opened_at,
            r["updated_at"],
            r["title"],
            r["sla_due"],
        )
        # its `case_facts` row, as the effect writer keeps it (a firing continues it)
        records = [e.entry for e in effects if type(e) is Record]
        terms = terms_for(policy, case.customer)
        facts = steps(None, records, terms)
        self.facts = row_of(facts, terms) if facts is not None else None
        timers: dict[str, tuple[Any, ...]] = {}
        self.timeline: list[tuple[Any, ...]] = []
        self.outbox: list[tuple[Any, ...]] = []
        for eff in effects:
            if type(eff) is ScheduleTimer:
                timers[eff.key] = (eff.case, eff.key, eff.due, _dumps(list(eff.payload)))
            elif type(eff) is CancelTimers:
                timers = {k: v for k, v in timers.items() if not k.startswith(eff.prefix)}
            elif type(eff) is Record:
                e = eff.entry
                self.timeline.append((e["case"], e["at"], e["kind"], VERSION, _dumps(e)))
            elif type(eff) is Notify:
                body = {
                    "person": eff.person,
                    "channel": eff.channel,
                    "level": eff.level,
                    "reason": eff.reason,
                }
                self.outbox.append(
                    (eff.case, "notify", eff.key, _dumps(body), "pending", 0, now, now)
                )
        self.timers = list(timers.values())
        self.first_due = min((t[2] for t in self.timers), default=0)


def open_rows(policy: Policy, combo: tuple[str, str, str], case_id: str, now: int) -> Rows:
    cust, cat, prio = combo
    data = {
        "customer": cust,
        "category": cat,
        "priority": prio,
        "title": f"bench {cust} {cat} {prio}",
    }
    case, effects = decide(None, Event("open", data=data), now, policy, case_id=case_id)
    return Rows(case, effects, now, policy)


class Template:
    """One decided case whose rows are cloned under new ids (string substitution)."""

    def __init__(self, rows: Rows) -> None:
        self.case = rows.case
        self.timers = rows.timers
        self.timeline = rows.timeline
        self.outbox = rows.outbox
        self.facts = rows.facts

    def clone(
        self, cid: str, shift: int
    ) -> tuple[tuple, list[tuple], list[tuple], list[tuple], list[tuple]]:
        quoted = f'"{cid}"'
        c = self.case
        case = (cid, *c[1:8], c[8].replace(f'"{PLACEHOLDER}"', quoted), *c[9:])
        timers = [(cid, k, due + shift, p) for _, k, due, p in self.timers]
        timeline = [
            (cid, at, kind, v, e.replace(f'"{PLACEHOLDER}"', quoted))
            for _, at, kind, v, e in self.timeline
        ]
        outbox = [
            (cid, kind, key.replace(PLACEHOLDER, cid), *rest) for _, kind, key, *rest in self.outbox
        ]
        f = self.facts
        facts = [] if f is None else [(f[0], cid, *f[2:])]
        return case, timers, timeline, outbox, facts


def connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, timeout=60)
    db.execute("PRAGMA synchronous=OFF")  # a bulk load: durability of this loader is not measured
    db.execute("PRAGMA cache_size=-262144")
    return db


def insert_many(db: sqlite3.Connection, rows: Iterator[tuple], history: bool, chunk: int) -> int:
    """Insert cloned cases in transactions of `chunk` cases; returns the number of cases."""
    n = 0
    while True:
        cases, timers, timeline, outbox, facts = [], [], [], [], []
        for case, t, tl, ob, fa in itertools.islice(rows, chunk):
            cases.append(case)
            timers.extend(t)
            facts.extend(fa)
            if history:
                timeline.extend(tl)
                outbox.extend(ob)
        if not cases:
            return n
        db.execute("BEGIN")
        db.executemany(CASE_SQL, cases)
        db.executemany(TIMER_SQL, timers)
        db.executemany(FACTS_SQL, facts)
        if history:
            db.executemany(TIMELINE_SQL, timeline)
            db.executemany(OUTBOX_SQL, outbox)
        db.execute("COMMIT")
        n += len(cases)


def background(policy: Policy, n: int, t_open: int) -> Iterator[tuple]:
    """n clones of the 24 template cases, ids C1..Cn, timers 1 s apart per case."""
    templates = [Template(open_rows(policy, combo, PLACEHOLDER, t_open)) for combo in COMBOS]
    for i in range(1, n + 1):
        yield templates[i % len(templates)].clone(f"C{i}", i * 1_000_000)


def stream_rows(
    policy: Policy, first_id: int, count: int, t0: int, span_us: int
) -> tuple[list[tuple], dict[str, int]]:
    """`count` cases decided for real, the first timer of case j due at t0 + j*span/count."""
    probe = now_us()
    offsets = [open_rows(policy, c, "probe", probe).first_due - probe for c in COMBOS]
    rows, due = [], {}
    for j in range(count):
        k = j % len(COMBOS)
        d = t0 + j * span_us // count
        cid = f"C{first_id + j}"
        r = open_rows(policy, COMBOS[k], cid, d - offsets[k])
        if r.first_due != d:
            raise SystemExit(f"stream case {cid}: first timer due {r.first_due}, wanted {d}")
        rows.append((r.case, r.timers, r.timeline, r.outbox, [] if r.facts is None else [r.facts]))
        due[cid] = d
    return rows, due


class RssSampler(threading.Thread):
    def __init__(self, pid: int, every: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid, self.every, self.max_kb, self._stop_ev = pid, every, 0, threading.Event()

    def run(self) -> None:
        while not self._stop_ev.is_set():
            with contextlib.suppress(OSError):
                self.max_kb = max(self.max_kb, proc_status_kb(self.pid, "VmRSS"))
            self._stop_ev.wait(self.every)

    def stop(self) -> int:
        self._stop_ev.set()
        self.join()
        return self.max_kb


def log(msg: str) -> None:
    print(f"[timers {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run_one(n_open: int, args: argparse.Namespace) -> dict[str, Any]:
    policy = load_policy(POLICY)
    stream_n = int(args.rate * args.seconds)
    with tempfile.TemporaryDirectory(prefix="rungs-timers-", dir=args.tmp) as d:
        path = Path(d) / "rungs.db"
        url = f"sqlite:///{path}"
        engine = make_engine(url)
        upgrade(engine)
        svc = Engine(engine, SystemClock())
        svc.policies.store(POLICY.read_text(encoding="utf-8"), str(POLICY))  # what serve stores
        svc.stop()
        engine.dispose()

        db = connect(path)
        t_load = time.perf_counter()
        far = now_us() + 400 * DAY_US
        loaded = insert_many(db, background(policy, n_open, far), args.history, args.chunk)
        load_s = time.perf_counter() - t_load
        db.execute("INSERT INTO case_numbers (n) VALUES (?)", (n_open + stream_n,))
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        log(
            f"{loaded:,} background cases loaded in {load_s:.1f} s "
            f"({path.stat().st_size / 2**20:,.0f} MiB)"
        )

        result: dict[str, Any] = {
            "open_cases": n_open,
            "stream_timers": stream_n,
            "load_s": round(load_s, 1),
        }
        if args.wait_quiet:
            result["other_processes_cores_before"] = wait_quiet(args.wait_quiet)
        with Server(url, role="engine", log=args.server_log, exe=args.rungs) as server:
            rss = RssSampler(server.pid)
            rss.start()
            server.wait_ready()
            result["rss_mb_ready"] = round(proc_status_kb(server.pid, "VmRSS") / 1024, 1)
            # time the decide() of the stream to choose how far ahead the window starts
            t = time.perf_counter()
            open_rows(policy, COMBOS[0], "probe", now_us())
            for c in COMBOS * 20:
                open_rows(policy, c, "probe", now_us())
            per = (time.perf_counter() - t) / (len(COMBOS) * 20 + 1)
            lead = per * stream_n * 1.3 + stream_n / 20_000 + args.lead
            t0 = now_us() + int(lead * 1e6)
            span = int(args.seconds * 1e6)
            rows, due = stream_rows(policy, n_open + 1, stream_n, t0, span)
            insert_many(db, iter(rows), True, len(rows) or 1)
            del rows
            slack = (t0 - now_us()) / 1e6
            log(f"stream of {stream_n:,} timers inserted; window starts in {slack:.1f} s")
            if slack < 1:
                result["warning"] = f"the stream was inserted only {slack:.1f} s before it came due"
            while now_us() < t0 - 300_000:
                time.sleep(0.05)
            cpu0, wall0 = cpu_seconds(server.pid), time.perf_counter()
            other = OtherLoad(server.pid)
            end = t0 + span
            # wait for the window, then for the last due timer to be gone (or a deadline)
            while now_us() < end:
                time.sleep(0.2)
            deadline = time.monotonic() + args.grace
            left = -1
            while time.monotonic() < deadline:
                left = db.execute("SELECT count(*) FROM timers WHERE due <= ?", (end,)).fetchone()[
                    0
                ]
                if left == 0:
                    break
                time.sleep(0.1)
            cpu1, wall1 = cpu_seconds(server.pid), time.perf_counter()
            result["other_processes_cores"] = other.cores()
            metrics = server.get("/metrics")
            rss_max = rss.stop()
            hwm = proc_status_kb(server.pid, "VmHWM")

        buckets, lsum, fired = histogram_from_metrics(metrics, "rungs_engine_lateness_hist_seconds")
        ids = list(due)
        firsts: dict[str, int] = {}
        lo, hi = t0 - 1_000_000, end + int((args.grace + 60) * 1e6)
        for cid, at in db.execute(
            "SELECT case_id, min(at) FROM timeline WHERE at BETWEEN ? AND ? GROUP BY case_id",
            (lo, hi),
        ):
            firsts[cid] = at
        series = [(due[c], (firsts[c] - due[c]) / 1000) for c in ids if c in firsts]
        late = sorted(x for _, x in series)
        if args.dump_lateness:
            with open(f"{args.dump_lateness}.{n_open}.csv", "w") as f:
                f.write("due_s,lateness_ms\n")
                f.writelines(f"{(d - t0) / 1e6:.4f},{x:.3f}\n" for d, x in series)
        db.close()
        result.update(
            {
                "fired": int(fired),
                "unfired_at_end": left,
                "stream_without_timeline_row": len(ids) - len(late),
                "rss_mb_max": round(rss_max / 1024, 1),
                "rss_mb_hwm": round(hwm / 1024, 1),
                "lateness_p50_ms": round(percentile(late, 50), 2),
                "lateness_p99_ms": round(percentile(late, 99), 2),
                "lateness_max_ms": round(percentile(late, 100), 2),
                "engine_lateness_mean_ms": round(lsum / fired * 1000, 2) if fired else None,
                "engine_lateness_p99_bucket_s": bucket_quantile(buckets, 0.99),
                "cpu_s": round(cpu1 - cpu0, 2),
                "cpu_util": round((cpu1 - cpu0) / (wall1 - wall0), 3),
                "cpu_us_per_fired": round((cpu1 - cpu0) / fired * 1e6, 1) if fired else None,
            }
        )
        return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--open", type=int, default=1_000_000, help="background open cases")
    ap.add_argument("--rate", type=float, default=1000.0, help="timers coming due per second")
    ap.add_argument("--seconds", type=float, default=60.0, help="length of the stream")
    ap.add_argument(
        "--compare",
        type=int,
        default=10_000,
        help="repeat with this many background cases (0: don't)",
    )
    ap.add_argument(
        "--history",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also load the background cases' timeline and outbox rows",
    )
    ap.add_argument("--chunk", type=int, default=50_000, help="cases per load transaction")
    ap.add_argument("--lead", type=float, default=3.0, help="extra seconds before the window")
    ap.add_argument("--grace", type=float, default=60.0, help="seconds to wait for stragglers")
    ap.add_argument("--tmp", default=None, help="directory for the database file")
    add_server_args(ap)
    ap.add_argument(
        "--dump-lateness",
        metavar="PREFIX",
        default=None,
        help="write PREFIX.OPEN.csv: due (s into the window), lateness (ms)",
    )
    args = ap.parse_args()
    result = run_one(args.open, args)
    if args.compare and args.compare != args.open:
        other = run_one(args.compare, args)
        result[f"cpu_us_per_fired_at_{args.compare}"] = other["cpu_us_per_fired"]
        result[f"lateness_p50_ms_at_{args.compare}"] = other["lateness_p50_ms"]
        result[f"lateness_p99_ms_at_{args.compare}"] = other["lateness_p99_ms"]
        result[f"rss_mb_max_at_{args.compare}"] = other["rss_mb_max"]
        result["compare"] = other
    result["python"] = platform.python_version()
    result["source"] = source_revision()
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['open_cases']:,} open cases: RSS max {result['rss_mb_max']} MB, lateness "
            f"p50 {result['lateness_p50_ms']} ms p99 {result['lateness_p99_ms']} ms, "
            f"{result['cpu_us_per_fired']} us CPU per fired timer"
            + (
                f" ({result[f'cpu_us_per_fired_at_{args.compare}']} us with {args.compare:,})"
                if f"cpu_us_per_fired_at_{args.compare}" in result
                else ""
            )
        )
    sys.exit(0)


if __name__ == "__main__":
    main()
