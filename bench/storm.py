"""An alert storm with grouping on, and a SIGKILL in the middle of it.

    python bench/storm.py --json [--db sqlite|postgres] [--quick] [--rounds 3]
    -> {"alerts": 50000, "groups": 500, "recorded": ..., "cases": ..., "max_pages_per_case": ...,
        "p99_ms": ..., "lost": 0, ...}

With `--rounds N` (N > 1) the storm is run N times, each on a fresh database, and the answer
holds each round (`rounds`) and their `median` (latencies, CPU, outage), with the worst of the
checks (`lost` and `max_pages_per_case` the highest, `recorded` and `cases` the lowest).

`rungs serve` on a fresh database, with a PagerDuty integration that groups by
`custom_details.group` (`group_by: [group]`). An open loop sends `--alerts` alerts (one per
POST, each a new alert) in `--seconds` across `--groups` groups, on a fixed schedule; each
one's latency runs from its scheduled instant to its 202 (no coordinated omission). Half-way
the server is killed with SIGKILL and started again on the same database; alerts refused
meanwhile are sent again, as a monitoring sender does, until taken.

Then the database is read: every alert recorded (a row each), one case per group, at most one
page (`notified` entry) per case, nothing lost. `p99_ms` leaves out the alerts that met the
outage (refused at least once, or scheduled between the kill and one second after the
restart: `met_outage` counts the refused); `p99_ms_all` keeps them. `--quick`:
5,000 alerts in 10 s across 50 groups, for a smoke run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import Conn, Server, connect, fresh_db, percentile, source_revision, tree_cpu_seconds

KEY = "storm-pd-0123456789abcdef"
POLICY = {
    "version": 1,
    "timezone": "UTC",
    "people": [{"id": "pat", "contacts": {"email": "pat@example.com"}}],
    "customers": [{"id": "acme", "name": "Acme"}],
    "matrices": [
        {
            "id": "default",
            "levels": [{"notify": ["person:pat"]}, {"after": "4h", "notify": ["person:pat"]}],
        }
    ],
    "integrations": [
        {
            "id": "storm",
            "format": "pagerduty",
            "key": KEY,
            "defaults": {"customer": "acme"},
            "group_by": ["group"],
        }
    ],
}


def request(port: int, n: int, groups: int) -> bytes:
    body = json.dumps(
        {"routing_key": KEY, "event_action": "trigger", "dedup_key": f"a{n}",
         "payload": {"summary": f"storm #{n}", "source": f"host{n % 997}", "severity": "error",
                     "custom_details": {"group": f"g{n % groups}"}}}
    ).encode()  # fmt: skip
    return (
        f"POST /v2/enqueue HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


class Target:
    """The server under test (the restarted one listens on a new port, which the
    generator follows)."""

    def __init__(self, db_url: str, policy: Path, log: Path | None) -> None:
        self.db_url, self.policy, self.log = db_url, policy, log
        self.server = Server(db_url, policy=policy, log=log)
        self.server.wait_ready()
        self.port = self.server.port
        self.down_at: float | None = None
        self.up_at: float | None = None
        self.cpu = 0.0

    def kill_and_restart(self) -> None:
        self.cpu += tree_cpu_seconds([self.server.pid])
        self.down_at = time.perf_counter()
        os.kill(self.server.pid, signal.SIGKILL)
        self.server.proc.wait()
        self.server = Server(self.db_url, policy=self.policy, log=self.log)
        self.port = self.server.port
        self.server.wait_ready()
        self.up_at = time.perf_counter()


async def storm(target: Target, args: argparse.Namespace) -> dict[str, Any]:
    perf = time.perf_counter
    rate = args.alerts / args.seconds
    pool: list[Conn] = []
    ports: dict[int, int] = {}  # id(conn) -> the port it was opened to
    latencies: dict[int, tuple[float, float]] = {}  # n -> (scheduled, answered)
    retries = 0
    met_outage: set[int] = set()  # alerts refused at least once (the server was down)
    give_up = perf() + args.seconds + 300

    async def conn_now() -> Conn:
        while pool:
            c = pool.pop()
            if not c.closed and ports.get(id(c)) == target.port:
                return c
        c = await connect(target.port)
        ports[id(c)] = target.port
        return c

    async def one(n: int, at: float) -> None:
        nonlocal retries
        wait = 0.05
        while perf() < give_up:
            try:
                c = await conn_now()
                status = await c.request(request(target.port, n, args.groups))
            except (ConnectionError, OSError):
                status = 0
            else:
                pool.append(c)
            if status == 202:
                latencies[n] = (at, perf())
                return
            retries += 1
            met_outage.add(n)
            await asyncio.sleep(wait)
            wait = min(wait * 2, 1.0)  # a sender backs off while the server is down

    tasks = []
    t0 = perf() + 0.1
    kill_at = args.alerts // 2
    for n in range(args.alerts):
        at = t0 + n / rate
        delay = at - perf()
        if delay > 0.0005:
            await asyncio.sleep(delay)
        if n == kill_at and not args.no_kill:  # sending goes on meanwhile, refused
            killer = asyncio.create_task(asyncio.to_thread(target.kill_and_restart))
        tasks.append(asyncio.create_task(one(n, at)))
    await asyncio.gather(*tasks)
    if not args.no_kill:
        await killer
    for c in pool:
        if c.transport is not None:
            c.transport.close()
    lat_all = sorted((done - at) * 1000 for at, done in latencies.values())
    down, up = target.down_at, target.up_at
    calm = sorted(
        (done - at) * 1000
        for n, (at, done) in latencies.items()
        if n not in met_outage and (down is None or up is None or not down <= at <= up + 1.0)
    )
    return {
        "taken": len(latencies),
        "met_outage": len(met_outage),
        "retries": retries,
        "p50_ms": round(percentile(calm, 50), 2),
        "p99_ms": round(percentile(calm, 99), 2),
        "p99_ms_all": round(percentile(lat_all, 99), 2),
        "outage_s": round(up - down, 2) if down and up else 0.0,
        "sent_in_s": round(perf() - t0, 2),
    }


def check(db_url: str) -> dict[str, Any]:
    """What the database holds: alerts, cases, pages per case."""
    from sqlalchemy import create_engine, text

    from rungs.store.db import make_engine

    eng = make_engine(db_url) if db_url.startswith("postgres") else create_engine(db_url)
    with eng.connect() as conn:
        alerts = conn.execute(text("SELECT count(DISTINCT key) FROM alerts")).scalar_one()
        rows = conn.execute(text("SELECT count(*) FROM alerts")).scalar_one()
        cases = conn.execute(text("SELECT count(*) FROM cases")).scalar_one()
        pages = conn.execute(
            text("SELECT case_id, count(*) FROM timeline WHERE kind = 'notified' GROUP BY case_id")
        ).all()
    eng.dispose()
    per_case = [n for _, n in pages]
    return {
        "recorded": int(alerts),
        "alert_rows": int(rows),
        "cases": int(cases),
        "pages": sum(per_case),
        "max_pages_per_case": max(per_case, default=0),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--db", default="sqlite", help="sqlite (default) or postgres")
    ap.add_argument("--alerts", type=int, default=50_000)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--groups", type=int, default=500)
    ap.add_argument("--quick", action="store_true", help="5,000 alerts in 10 s, 50 groups")
    ap.add_argument("--no-kill", action="store_true", help="no SIGKILL half-way")
    ap.add_argument("--server-log", type=Path, default=None)
    ap.add_argument("--rounds", type=int, default=1, help="runs, each on a fresh database")
    args = ap.parse_args()
    if args.quick:
        args.alerts, args.seconds, args.groups = 5_000, 10.0, 50
    rounds = [one_round(args) for _ in range(max(1, args.rounds))]
    result = rounds[0] if len(rounds) == 1 else summary(rounds)
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['recorded']}/{args.alerts} alerts recorded in {result['cases']} cases "
            f"({args.groups} groups), at most {result['max_pages_per_case']} page per case; "
            f"p99 {result['p99_ms']} ms; lost {result['lost']}"
        )


MEDIAN = ("p50_ms", "p99_ms", "p99_ms_all", "outage_s", "sent_in_s", "server_cpu_us_per_alert",
          "met_outage", "retries")  # fmt: skip
WORST_HIGH = ("lost", "max_pages_per_case", "pages")
WORST_LOW = ("recorded", "alert_rows", "cases", "taken")


def summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The rounds' medians and the worst of their checks, beside each round."""
    out = {k: v for k, v in rounds[0].items() if k not in (*MEDIAN, *WORST_HIGH, *WORST_LOW)}
    out["median"] = {k: round(statistics.median(r[k] for r in rounds), 2) for k in MEDIAN}
    out |= {k: max(r[k] for r in rounds) for k in WORST_HIGH}
    out |= {k: min(r[k] for r in rounds) for k in WORST_LOW}
    out |= {k: out["median"][k] for k in MEDIAN}
    out["rounds"] = rounds
    return out


def one_round(args: argparse.Namespace) -> dict[str, Any]:
    """One storm on a fresh database: its figures and what the database holds after."""
    with fresh_db(args.db) as db, tempfile.TemporaryDirectory(prefix="rungs-storm-") as tmp:
        policy = Path(tmp) / "policy.yaml"
        policy.write_text(yaml.safe_dump(POLICY, sort_keys=False), encoding="utf-8")
        target = Target(db.url, policy, args.server_log)
        try:
            result = asyncio.run(storm(target, args))
            target.cpu += tree_cpu_seconds([target.server.pid])
        finally:
            target.server.stop()
        result |= check(db.url)
    result |= {
        "alerts": args.alerts,
        "seconds": args.seconds,
        "groups": args.groups,
        "lost": args.alerts - result["recorded"],
        "server_cpu_us_per_alert": round(target.cpu / args.alerts * 1e6, 1),
        "killed": not args.no_kill,
        "db": db.kind,
        "source": source_revision(),
    }
    print(f"# round: {json.dumps(result)}", file=sys.stderr)
    return result


if __name__ == "__main__":
    main()
