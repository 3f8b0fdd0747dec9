"""Event to webhook: cases opened over HTTP, their level-1 page delivered to a local sink.

    python bench/notify.py --json [--db sqlite|postgres|URL] [--seconds 10] [--drain-cases 5000]
    -> {"p50_ms_at_100": ..., "p99_ms_at_100": ..., "p50_ms_at_1000": ..., "p99_ms_at_1000": ...,
        "deliveries_per_s": ..., "lost": 0, ...}

`rungs serve` (role all) on a fresh database, with a policy whose level-1 target has a webhook
contact pointing at a sink in this process (asyncio, HTTP/1.1 keep-alive). Open loop: `POST
/v1/cases` requests go out on a fixed schedule (100/s, then 1,000/s, `--seconds` each), whatever
the answers do; a delivery's latency is from the instant its request was scheduled to the
instant the signed webhook (the handoff context in its body) has fully arrived at the sink.
Every step is durably committed on the way: the case, its timeline and outbox row in one
transaction, and the delivery's result (`delivered`) in the next.

Maximum sustained deliveries: `--drain-cases` cases are opened on another fresh database by a
`--role api` server (nothing is delivered), which is stopped; a `--role dispatcher` server then
starts on that backlog, and the rate is the number delivered over the time from the first
arrival to the last (each with its result recorded); its CPU per delivery is counted over the
same span (the start-up before it, `server_cpu_s_to_first`, apart).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import (
    Conn,
    OtherLoad,
    Server,
    api_token,
    connect,
    cpu_seconds,
    fresh_db,
    percentile,
    self_cpu_seconds,
    source_revision,
)

SECRET_ENV = "RUNGS_BENCH_WEBHOOK_SECRET"  # a name the deployment's secret prefix allows
TITLE = re.compile(rb'"title":"bench #(\d+)"')
POLICY = """\
version: 1
timezone: UTC
people:
  - id: pat
    name: Pat Pager
    contacts: {{webhook: "http://127.0.0.1:{port}/hook"}}
    notify: [{{via: webhook}}]
customers:
  - {{id: acme, name: Acme, tier: gold, value: 100000}}
matrices:
  - id: default
    levels:
      - {{name: On call, notify: [person:pat]}}
      - {{name: Leads, after: 1h, notify: [person:pat]}}
channels:
  webhook: {{secret_env: {secret}, timeout: 10s}}
links: {{base_url: "http://127.0.0.1:8080", ttl: 24h}}
"""


class Sink:
    """The webhook receiver: records when each case's delivery fully arrived."""

    def __init__(self) -> None:
        self.arrived: dict[int, float] = {}
        self.count = 0
        self.first = self.last = 0.0
        self.bytes = 0
        self.server: asyncio.base_events.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._conn, "127.0.0.1", 0, backlog=1024)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                i = head.lower().find(b"content-length:")
                n = int(head[i + 15 : head.find(b"\r\n", i)]) if i >= 0 else 0
                body = await reader.readexactly(n)
                t = time.perf_counter()
                m = TITLE.search(body)
                if m is not None:
                    seq = int(m.group(1))
                    self.arrived.setdefault(seq, t)
                self.count += 1
                self.bytes += n
                self.first = self.first or t
                self.last = t
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except asyncio.CancelledError:  # the run is over: a kept-alive connection, no error
            pass
        finally:
            writer.close()

    async def wait(self, want: set[int], timeout: float) -> None:
        end = time.monotonic() + timeout
        while not want <= self.arrived.keys() and time.monotonic() < end:
            await asyncio.sleep(0.05)


def request(port: int, token: str | None, seq: int) -> bytes:
    body = json.dumps(
        {"customer": "acme", "priority": "P2", "title": f"bench #{seq}", "category": "general"}
    ).encode()
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return (
        f"POST /v1/cases HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def open_loop(
    port: int,
    token: str | None,
    sink: Sink,
    rate: float,
    seconds: float,
    start_seq: int,
    drain: float = 120.0,
) -> dict:
    """Send on schedule; latency = webhook arrival at the sink - the request's scheduled time."""
    loop = asyncio.get_running_loop()
    total = int(rate * seconds)
    reqs = [request(port, token, start_seq + i) for i in range(total)]
    pool: list[Conn] = []
    statuses: dict[str, int] = {}
    scheduled: dict[int, float] = {}
    answered: dict[int, float] = {}
    tasks: set[asyncio.Task[None]] = set()

    async def one(i: int) -> None:
        conn = pool.pop() if pool else None
        if conn is None or conn.closed:
            conn = await connect(port)
        try:
            status = str(await conn.request(reqs[i]))
            answered[start_seq + i] = time.perf_counter()
        except ConnectionError:
            status = "conn"
        statuses[status] = statuses.get(status, 0) + 1
        pool.append(conn)

    t0 = time.perf_counter() + 0.05
    for i in range(total):
        at = t0 + i / rate
        delay = at - time.perf_counter()
        if delay > 0.0005:
            await asyncio.sleep(delay)
        scheduled[start_seq + i] = at
        task = loop.create_task(one(i))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.wait(tasks, timeout=drain)
    await sink.wait(set(scheduled), timeout=drain)
    for c in pool:
        if c.transport is not None:
            c.transport.close()
    lat = sorted(sink.arrived[s] - at for s, at in scheduled.items() if s in sink.arrived)
    lost = len(scheduled) - len(lat)
    ans = sorted(answered[s] - at for s, at in scheduled.items() if s in answered)
    return {
        "rate": rate,
        "sent": total,
        "delivered": len(lat),
        "lost": lost,
        "statuses": statuses,
        "p50_ms": round(percentile(lat, 50) * 1000, 2) if lat else None,
        "p90_ms": round(percentile(lat, 90) * 1000, 2) if lat else None,
        "p99_ms": round(percentile(lat, 99) * 1000, 2) if lat else None,
        "max_ms": round(lat[-1] * 1000, 2) if lat else None,
        "answer_p50_ms": round(percentile(ans, 50) * 1000, 2) if ans else None,
        "answer_p99_ms": round(percentile(ans, 99) * 1000, 2) if ans else None,
    }


async def latency_phase(args: argparse.Namespace, folder: Path) -> dict:
    sink = Sink()
    await sink.start()
    policy = folder / "policy.yaml"
    policy.write_text(POLICY.format(port=sink.port, secret=SECRET_ENV), encoding="utf-8")
    out: dict = {}
    with fresh_db(args.db) as db:
        token = api_token(db.url, args.rungs)
        with Server(db.url, policy=policy, log=args.server_log, exe=args.rungs) as server:
            await asyncio.get_running_loop().run_in_executor(None, server.wait_ready)
            await open_loop(server.port, token, sink, 100, args.warmup, 0)  # warm-up
            seq = 1_000_000
            for rate in (100.0, 1000.0):
                await asyncio.sleep(1.0)
                s0, c0, other = cpu_seconds(server.pid), self_cpu_seconds(), OtherLoad(server.pid)
                r = await open_loop(server.port, token, sink, rate, args.seconds, seq, args.drain)
                r["server_cpu_us_per_delivery"] = round(
                    (cpu_seconds(server.pid) - s0) / max(r["delivered"], 1) * 1e6
                )
                r["bench_cpu_us_per_delivery"] = round(
                    (self_cpu_seconds() - c0) / max(r["delivered"], 1) * 1e6
                )
                r["other_processes_cores"] = other.cores()
                out[f"{rate:g}"] = r
                seq += 1_000_000
        out["db"] = db.kind
    sink.server.close()  # type: ignore[union-attr]
    return out


async def drain_phase(args: argparse.Namespace, folder: Path) -> dict:
    sink = Sink()
    await sink.start()
    policy = folder / "drain.yaml"
    policy.write_text(POLICY.format(port=sink.port, secret=SECRET_ENV), encoding="utf-8")
    loop = asyncio.get_running_loop()
    n = args.drain_cases
    with fresh_db(args.db) as db:
        token = api_token(db.url, args.rungs)
        with Server(db.url, role="api", policy=policy, log=args.server_log, exe=args.rungs) as api:
            await loop.run_in_executor(None, api.wait_ready)
            conns = [await connect(api.port) for _ in range(32)]
            queue = list(range(n))

            async def worker(c: Conn) -> None:
                while queue:
                    seq = queue.pop()
                    await c.request(request(api.port, token, seq))

            t0 = time.perf_counter()
            await asyncio.gather(*(worker(c) for c in conns))
            opened_s = time.perf_counter() - t0
            for c in conns:
                c.transport.close()  # type: ignore[union-attr]
        assert not sink.arrived, "the api role delivered"
        t_start = time.perf_counter()
        with Server(
            db.url, role="dispatcher", policy=policy, log=args.server_log, exe=args.rungs
        ) as disp:
            other = OtherLoad(disp.pid)
            s0 = cpu_seconds(disp.pid)
            end = time.monotonic() + 600
            while not sink.count and time.monotonic() < end:
                await asyncio.sleep(0.001)
            s1, c1 = cpu_seconds(disp.pid), sink.count  # from the first arrival on, as the rate
            await sink.wait(set(range(n)), timeout=600)
            s2 = cpu_seconds(disp.pid)
            cores = other.cores()
    got = len(sink.arrived)
    span = sink.last - sink.first if got > 1 else float("nan")
    sink.server.close()  # type: ignore[union-attr]
    return {
        "cases": n,
        "opened_in_s": round(opened_s, 2),
        "delivered": got,
        "deliveries_per_s": round((got - 1) / span, 1) if got > 1 else None,
        "first_after_start_s": round(sink.first - t_start, 2) if got else None,
        "server_cpu_s_to_first": round(s1 - s0, 2),  # start-up: imports, migrations, policy
        "server_cpu_us_per_delivery": round((s2 - s1) / max(sink.count - c1, 1) * 1e6),
        "body_bytes_avg": round(sink.bytes / max(sink.count, 1)),
        "other_processes_cores": cores,
    }


async def main_async(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="rungs-bench-notify-") as d:
        lat = await latency_phase(args, Path(d))
        drain = await drain_phase(args, Path(d)) if args.drain_cases else None
    r100, r1000 = lat["100"], lat["1000"]
    return {
        "p50_ms_at_100": r100["p50_ms"],
        "p99_ms_at_100": r100["p99_ms"],
        "p50_ms_at_1000": r1000["p50_ms"],
        "p99_ms_at_1000": r1000["p99_ms"],
        "deliveries_per_s": drain["deliveries_per_s"] if drain else None,
        "lost": r100["lost"]
        + r1000["lost"]
        + (drain["cases"] - drain["delivered"] if drain else 0),
        "db": lat["db"],
        "at_100": r100,
        "at_1000": r1000,
        "drain": drain,
        "python": platform.python_version(),
        "source": source_revision(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--db", default=None, help="sqlite (default), postgres, or a URL")
    ap.add_argument("--seconds", type=float, default=10.0, help="each open-loop rate")
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--drain", type=float, default=120.0, help="wait this long for deliveries")
    ap.add_argument("--drain-cases", type=int, default=5000, help="0 skips the throughput phase")
    ap.add_argument("--server-log", type=Path, default=None)
    ap.add_argument("--rungs", default=None, help="the rungs executable (default: beside Python)")
    args = ap.parse_args()
    os.environ[SECRET_ENV] = "bench-secret"
    result = asyncio.run(main_async(args))
    if args.json:
        print(json.dumps(result))
    else:
        r = result
        print(
            f"event -> webhook: p50 {r['p50_ms_at_100']} ms, p99 {r['p99_ms_at_100']} ms at 100/s; "
            f"p50 {r['p50_ms_at_1000']} ms, p99 {r['p99_ms_at_1000']} ms at 1,000/s; "
            f"{r['deliveries_per_s']} deliveries/s sustained; {r['lost']} lost ({r['db']})"
        )


if __name__ == "__main__":
    main()
