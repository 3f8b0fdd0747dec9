"""Ingest through the live API: `POST /v1/cases` against `rungs serve` on a fresh database.

    python bench/ingest.py --json [--db sqlite|postgres|URL] [--seconds 30] [--concurrency 64]
                           [--source v1|pagerduty]
    -> {"cases_per_s": N, "p50_ms": ..., "p99_ms": ..., "p50_ms_at_1000": ...,
        "p99_ms_at_1000": ..., "errors": ..., "db": "sqlite"}

Phase 1 (closed loop): `--concurrency` keep-alive connections each send a case and wait for
the answer, for `--seconds`. Phase 2 (open loop): requests go out on a fixed schedule of
`--rate` per second for `--open-seconds` whatever the answers do; each one's latency is
measured from the instant it was scheduled, so a server that falls behind shows it (no
coordinated omission). Only answers that opened a case count as successes (201 from
`/v1/cases`, 202 from `/v2/enqueue`).

`--source pagerduty` sends PagerDuty Events API v2 triggers to `POST /v2/enqueue` instead, each
with a new dedup key (so each opens a case), through an integration added to the example policy.

The client is deliberately cheap (asyncio protocols writing pre-built HTTP/1.1 requests),
because it shares the machine's cores with the server; its CPU time per request is reported
(`client_cpu_us_per_req`) next to the server's (`server_cpu_us_per_req`).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import platform
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import (
    POLICY,
    Conn,
    OtherLoad,
    Server,
    add_server_args,
    api_token,
    connect,
    fresh_db,
    percentile,
    proc_status_kb,
    process_tree,
    self_cpu_seconds,
    source_revision,
    tree_cpu_seconds,
    wait_quiet,
)

CUSTOMERS = ("globex", "initech")
CATEGORIES = ("general", "network", "billing")
PRIORITIES = ("P1", "P2", "P3", "P4")


def build_requests(port: int, token: str | None, variants: int = 4) -> list[bytes]:
    """Complete HTTP/1.1 requests, one per customer x category x priority x title variant."""
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    out = []
    for cust, cat, prio, v in itertools.product(CUSTOMERS, CATEGORIES, PRIORITIES, range(variants)):
        body = json.dumps(
            {
                "customer": cust,
                "category": cat,
                "priority": prio,
                "title": f"bench {cust} {cat} {prio} #{v}",
            }
        ).encode()
        head = (
            f"POST /v1/cases HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"{auth}Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        out.append(head.encode() + body)
    return out


class UniquePagerDuty:
    """PagerDuty Events API v2 triggers for `POST /v2/enqueue`, each with a new dedup key.

    Indexable like the list of `/v1/cases` requests (any index gives the next event), so the
    same loops drive both; severities and customers vary as the `/v1/cases` bodies do.
    """

    SEVERITIES = ("critical", "error", "warning", "info")

    def __init__(self, port: int, key: str) -> None:
        self.head = (
            f"POST /v2/enqueue HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Content-Type: application/json\r\nContent-Length: "
        ).encode()
        self.key = key
        self.n = itertools.count()

    def __len__(self) -> int:
        return 1 << 62

    def __getitem__(self, _: int) -> bytes:
        n = next(self.n)
        cust = CUSTOMERS[n % len(CUSTOMERS)]
        body = json.dumps(
            {
                "routing_key": self.key,
                "event_action": "trigger",
                "dedup_key": f"bench-{n}",
                "payload": {
                    "summary": f"bench {cust} #{n}",
                    "source": f"host{n % 16}.bench",
                    "severity": self.SEVERITIES[n % 4],
                    "custom_details": {"customer": cust},
                },
            }
        ).encode()
        return self.head + str(len(body)).encode() + b"\r\n\r\n" + body


def ingest_policy(folder: Path, routing_key: str | None) -> Path:
    """The example policy as the workload: without its `channels` section (pages are written
    and skipped, so the figure is ingest's, not delivery's: `bench/notify.py` measures that),
    with a PagerDuty integration whose routing key is `routing_key` when given."""
    data = yaml.safe_load(POLICY.read_text(encoding="utf-8"))
    data.pop("channels", None)
    if routing_key is not None:
        data.setdefault("integrations", []).append(
            {
                "id": "bench-pagerduty",
                "format": "pagerduty",
                "key": routing_key,
                "defaults": {"customer": "initech", "category": "network"},
            }
        )
    path = folder / "policy.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


OK = (201, 202)  # a case opened: /v1/cases answers 201, /v2/enqueue 202


class Tally:
    def __init__(self) -> None:
        self.latencies: list[float] = []  # seconds, successes only
        self.statuses: dict[str, int] = {}
        self.errors = 0

    def add(self, status: int | str, latency: float) -> None:
        if status in OK:
            self.latencies.append(latency)
        else:
            self.errors += 1
            self.statuses[str(status)] = self.statuses.get(str(status), 0) + 1


async def closed_loop(
    port: int, reqs: list[bytes], conns: list[Conn], seconds: float, tally: Tally
) -> float:
    """Each connection sends, waits, sends again until the deadline; returns elapsed seconds."""
    perf = time.perf_counter
    t0 = perf()
    deadline = t0 + seconds
    n = len(reqs)

    async def worker(k: int) -> None:
        i = k * 7
        while perf() < deadline:
            conn = conns[k]
            if conn.closed:
                conns[k] = conn = await connect(port)
            t = perf()
            try:
                status: int | str = await conn.request(reqs[i % n])
            except ConnectionError:
                status = "conn"
            tally.add(status, perf() - t)
            i += 1

    await asyncio.gather(*(worker(k) for k in range(len(conns))))
    return perf() - t0


async def open_loop(
    port: int,
    reqs: list[bytes],
    idle: list[Conn],
    rate: float,
    seconds: float,
    tally: Tally,
    max_conns: int,
    drain: float,
) -> dict:
    """Send `rate` requests per second on schedule; latency counts from the scheduled instant."""
    loop = asyncio.get_running_loop()
    perf = time.perf_counter
    total = int(rate * seconds)
    pool: asyncio.LifoQueue[Conn] = asyncio.LifoQueue()
    for c in idle:
        pool.put_nowait(c)
    opened = len(idle)
    send_lag: list[float] = []
    pending: set[asyncio.Task[None]] = set()

    async def one(i: int, at: float) -> None:
        nonlocal opened
        if pool.empty() and opened < max_conns:
            opened += 1
            conn = await connect(port)
        else:
            conn = await pool.get()
        if conn.closed:
            conn = await connect(port)
        send_lag.append(perf() - at)
        try:
            status: int | str = await conn.request(reqs[i % len(reqs)])
        except ConnectionError:
            status = "conn"
        tally.add(status, perf() - at)
        pool.put_nowait(conn)

    t0 = perf() + 0.05
    for i in range(total):
        at = t0 + i / rate
        delay = at - perf()
        if delay > 0.0005:
            await asyncio.sleep(delay)
        task = loop.create_task(one(i, at))
        pending.add(task)
        task.add_done_callback(pending.discard)
    sent_by = perf() - t0
    _, not_done = await asyncio.wait(pending, timeout=drain) if pending else (set(), set())
    for task in not_done:
        task.cancel()
        tally.add("timeout", 0.0)
    lag = sorted(send_lag)
    return {
        "scheduled": total,
        "schedule_s": round(sent_by, 3),
        "connections": opened,
        "send_lag_p99_ms": round(percentile(lag, 99) * 1000, 2),
        "timeouts": len(not_done),
        "elapsed_s": perf() - t0,
    }


def ms(sorted_lat: list[float], p: float) -> float | None:
    return round(percentile(sorted_lat, p) * 1000, 2) if sorted_lat else None


async def drive(server: Server, args: argparse.Namespace) -> dict:
    port = server.port
    reqs: Any = (
        UniquePagerDuty(port, args.routing_key)
        if args.source == "pagerduty"
        else build_requests(port, args.token)
    )
    conns = [await connect(port) for _ in range(args.concurrency)]
    # warm-up: imports, caches and the policy in the server's memory
    await closed_loop(port, reqs, conns, args.warmup, Tally())

    tally = Tally()
    pids = process_tree(server.pid)  # with --workers N, the workers are its children
    s0, c0, other = tree_cpu_seconds(pids), self_cpu_seconds(), OtherLoad(*pids)
    elapsed = await closed_loop(port, reqs, conns, args.seconds, tally)
    s1, c1 = tree_cpu_seconds(pids), self_cpu_seconds()
    other1 = other.cores()
    rss_kb = sum(proc_status_kb(p, "VmRSS") for p in pids)
    lat = sorted(tally.latencies)
    done = len(lat) + tally.errors

    await asyncio.sleep(1.0)  # let the writer queue empty
    tally2 = Tally()
    s2, c2 = tree_cpu_seconds(pids), self_cpu_seconds()
    other.start()
    ol = await open_loop(
        port,
        reqs,
        [c for c in conns if not c.closed],
        args.rate,
        args.open_seconds,
        tally2,
        args.max_conns,
        args.drain,
    )
    s3, c3 = tree_cpu_seconds(pids), self_cpu_seconds()
    other2 = other.cores()
    lat2 = sorted(tally2.latencies)
    done2 = len(lat2) + tally2.errors
    for c in conns:
        if c.transport is not None:
            c.transport.close()
    return {
        "cases_per_s": round(len(lat) / elapsed, 1),
        "p50_ms": ms(lat, 50),
        "p99_ms": ms(lat, 99),
        f"p50_ms_at_{args.rate:g}": ms(lat2, 50),
        f"p99_ms_at_{args.rate:g}": ms(lat2, 99),
        "errors": tally.errors + tally2.errors,
        "db": args.db_kind,
        "closed_loop": {
            "seconds": round(elapsed, 2),
            "concurrency": args.concurrency,
            "ok": len(lat),
            "errors": tally.errors,
            "statuses": tally.statuses,
            "p90_ms": ms(lat, 90),
            "max_ms": ms(lat, 100),
            "server_cpu_us_per_req": round((s1 - s0) / max(done, 1) * 1e6),
            "client_cpu_us_per_req": round((c1 - c0) / max(done, 1) * 1e6),
            "server_cpu_util": round((s1 - s0) / elapsed, 2),
            "client_cpu_util": round((c1 - c0) / elapsed, 2),
            "server_rss_mb": round(rss_kb / 1024, 1),
            "other_processes_cores": other1,
        },
        "open_loop": {
            "rate": args.rate,
            "ok": len(lat2),
            "errors": tally2.errors,
            "statuses": tally2.statuses,
            "achieved_per_s": round(len(lat2) / ol["elapsed_s"], 1),
            "p90_ms": ms(lat2, 90),
            "max_ms": ms(lat2, 100),
            "server_cpu_us_per_req": round((s3 - s2) / max(done2, 1) * 1e6),
            "client_cpu_us_per_req": round((c3 - c2) / max(done2, 1) * 1e6),
            "other_processes_cores": other2,
            **{k: v for k, v in ol.items() if k != "elapsed_s"},
        },
        "python": platform.python_version(),
        "source": source_revision(),
        "ingest": "POST /v2/enqueue" if args.source == "pagerduty" else "POST /v1/cases",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--json", action="store_true")
    ap.add_argument(
        "--db",
        default=None,
        help="sqlite (default, a temporary file), sqlite:///NEW_FILE, postgres "
        "(a new database on $RUNGS_TEST_DATABASE_URL), or a PostgreSQL URL "
        "whose server gets a new database",
    )
    ap.add_argument("--seconds", type=float, default=30.0, help="closed-loop phase")
    ap.add_argument("--source", choices=("v1", "pagerduty"), default="v1")
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--rate", type=float, default=1000.0, help="open-loop requests per second")
    ap.add_argument("--open-seconds", type=float, default=10.0)
    ap.add_argument("--max-conns", type=int, default=1024, help="open-loop connection cap")
    ap.add_argument(
        "--drain", type=float, default=120.0, help="open loop: wait this long for answers"
    )
    ap.add_argument("--warmup", type=float, default=2.0)
    add_server_args(ap)
    args = ap.parse_args()
    quiet = wait_quiet(args.wait_quiet) if args.wait_quiet else None
    with fresh_db(args.db) as db, tempfile.TemporaryDirectory(prefix="rungs-bench-") as tmp:
        args.db_kind = db.kind
        routing_key = None
        if args.source == "pagerduty":
            routing_key = secrets.token_hex(16)  # 32 characters, like PagerDuty's keys
        args.routing_key = routing_key
        policy = ingest_policy(Path(tmp), routing_key)
        args.token = api_token(db.url, args.rungs)
        with Server(
            db.url, policy=policy, log=args.server_log, exe=args.rungs, workers=args.workers
        ) as server:
            server.wait_ready()
            result = asyncio.run(drive(server, args))
            if quiet is not None:
                result["other_processes_cores_before"] = quiet
            if server.proc.poll() is not None:
                result["server_exit"] = server.proc.returncode
    if args.json:
        print(json.dumps(result))
    else:
        r, at = result, f"{args.rate:g}"
        print(
            f"{r['cases_per_s']:,} cases/s (p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, "
            f"{args.concurrency} in flight); open loop at {at}/s: p50 {r[f'p50_ms_at_{at}']} ms, "
            f"p99 {r[f'p99_ms_at_{at}']} ms; {r['errors']} errors ({r['db']})"
        )
    sys.exit(0)


if __name__ == "__main__":
    main()
