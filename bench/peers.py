"""Rungs beside Prometheus Alertmanager, under the same load, in one run.

    python bench/peers.py --json [--db sqlite|postgres] [--rounds 3] [--seconds 10]
                          [--open-seconds 5]
    -> {"median": {"alertmanager": {...}, "rungs": {...}}, "ratio": {...}, "rounds": [...]}

Alertmanager is Debian's `/usr/bin/prometheus-alertmanager` (in memory, nothing durable);
Rungs is `rungs serve` on a fresh database (every case committed before the answer). They run
in turn, never together, in alternating order, `--rounds` times; each figure is the median of
the rounds, and the ratio is Rungs' over Alertmanager's. The loads:

- `one_per_post`: closed loop, `wrk -t2 -c8`, one alert per POST, each a new alert
  (Alertmanager: `POST /api/v2/alerts`; Rungs: PagerDuty's `POST /v2/enqueue`).
- `hundred_per_post`: the same with 100 alerts per POST (Rungs: its Alertmanager webhook).
- `event_to_webhook_100` / `_1000`: open loop at 100/s and 1,000/s, one alert per POST; the
  latency runs from the instant each alert was scheduled to the instant its webhook (Rungs:
  the level-1 page; Alertmanager: the notification, `group_wait: 0s`) has fully arrived at a
  sink in this process.

wrk drives the closed loops (as in issue 17's figures): a C client costs the shared cores
little, where a Python one would cap Alertmanager's rate. The open loops are this process's
asyncio client (a fixed schedule, no coordinated omission), the same for both. Server CPU per
alert is read from /proc for each closed loop. Without Alertmanager or wrk installed the bench
says so and exits 2.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import (
    POLICY,
    Server,
    connect,
    free_port,
    fresh_db,
    percentile,
    process_tree,
    source_revision,
    tree_cpu_seconds,
)

AM_EXE = "/usr/bin/prometheus-alertmanager"
PD_KEY = "peers-pd-0123456789abcdef"
AM_KEY = "peers-am-0123456789abcdef"
SEQ = re.compile(rb'(?:"n":"|bench #)(\d+)')

# wrk request scripts: every request a new alert (thread number and counter in its key)
LUA_HEAD = """
local n = 0
thread_id = 0
local k = 0
function setup(thread) thread:set("thread_id", k); k = k + 1 end
"""
LUA = {
    ("alertmanager", 1): """
function request()
  n = n + 1
  local body = string.format('[{"labels":{"alertname":"bench","n":"%d-%d"},'
    .. '"annotations":{"summary":"bench"}}]', thread_id, n)
  return wrk.format("POST", "/api/v2/alerts", {["Content-Type"]="application/json"}, body)
end
""",
    ("alertmanager", 100): """
function request()
  n = n + 1
  local parts = {}
  for i = 1, 100 do
    parts[i] = string.format('{"labels":{"alertname":"bench","n":"%d-%d-%d"},'
      .. '"annotations":{"summary":"bench"}}', thread_id, n, i)
  end
  local body = "[" .. table.concat(parts, ",") .. "]"
  return wrk.format("POST", "/api/v2/alerts", {["Content-Type"]="application/json"}, body)
end
""",
    ("rungs", 1): f"""
function request()
  n = n + 1
  local body = string.format('{{"routing_key":"{PD_KEY}","event_action":"trigger",'
    .. '"dedup_key":"w%d-%d","payload":{{"summary":"bench","source":"host",'
    .. '"severity":"error"}}}}', thread_id, n)
  return wrk.format("POST", "/v2/enqueue", {{["Content-Type"]="application/json"}}, body)
end
""",
    ("rungs", 100): f"""
function request()
  n = n + 1
  local parts = {{}}
  for i = 1, 100 do
    parts[i] = string.format('{{"status":"firing","labels":{{"alertname":"bench",'
      .. '"n":"%d-%d-%d"}},"annotations":{{"summary":"bench"}},'
      .. '"fingerprint":"f%d-%d-%d"}}', thread_id, n, i, thread_id, n, i)
  end
  local body = '{{"version":"4","groupKey":"g","status":"firing","receiver":"rungs",'
    .. '"alerts":[' .. table.concat(parts, ",") .. ']}}'
  return wrk.format("POST", "/v1/integrations/{AM_KEY}/alertmanager",
    {{["Content-Type"]="application/json"}}, body)
end
""",
}


# the two systems ------------------------------------------------------------------------------


class Alertmanager:
    """`prometheus-alertmanager` on a free port; `sink` None: a receiver that sends nothing."""

    name = "alertmanager"

    def __init__(self, folder: Path, sink: int | None) -> None:
        self.port = free_port()
        receiver: dict[str, Any] = {"name": "out"}
        if sink is not None:
            receiver["webhook_configs"] = [
                {"url": f"http://127.0.0.1:{sink}/hook", "send_resolved": False}
            ]
        config = {
            "route": {
                "receiver": "out",
                "group_by": ["..."],  # every alert its own group: a notification each
                "group_wait": "0s",
                "group_interval": "1m",
                "repeat_interval": "4h",
            },
            "receivers": [receiver],
        }
        cfg = folder / "alertmanager.yml"
        cfg.write_text(yaml.safe_dump(config), encoding="utf-8")
        data = Path(tempfile.mkdtemp(prefix="am-", dir=folder))
        self.proc = subprocess.Popen(
            [AM_EXE, f"--config.file={cfg}", f"--storage.path={data}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address="],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.pid = self.proc.pid
        end = time.monotonic() + 60
        while time.monotonic() < end:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2):
                    return
            except OSError:
                time.sleep(0.1)
        raise SystemExit("alertmanager did not get ready")

    def one_request(self, seq: int) -> bytes:
        body = json.dumps([{"labels": {"alertname": "bench", "n": str(seq)}}]).encode()
        return _post(self.port, "/api/v2/alerts", body)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=15)


class Rungs:
    """`rungs serve` on a fresh database, its example policy with a PagerDuty and an
    Alertmanager integration; with `sink`, level 1 is paged by webhook at the sink."""

    name = "rungs"

    def __init__(self, folder: Path, sink: int | None, db: str, log: Path | None) -> None:
        self._db = fresh_db(db)
        self.db = self._db.__enter__()
        policy = yaml.safe_load(POLICY.read_text(encoding="utf-8"))
        policy.pop("channels", None)  # pages are written and skipped: ingest is measured
        policy.setdefault("integrations", []).extend(
            [
                {"id": "peers-pd", "format": "pagerduty", "key": PD_KEY,
                 "defaults": {"customer": "initech"}},
                {"id": "peers-am", "format": "alertmanager", "key": AM_KEY,
                 "defaults": {"customer": "initech"}},
            ]
        )  # fmt: skip
        if sink is not None:  # one person, paged by webhook at the sink
            os.environ["RUNGS_BENCH_WEBHOOK_SECRET"] = "peers-secret-0123456789abcdef"
            policy["people"] = [
                {"id": "pat", "contacts": {"webhook": f"http://127.0.0.1:{sink}/hook"},
                 "notify": [{"via": "webhook"}]}
            ]  # fmt: skip
            policy["teams"], policy["schedules"], policy["rules"] = [], [], []
            policy["matrices"] = [{"id": "default", "levels": [{"notify": ["person:pat"]}]}]
            policy["channels"] = {
                "webhook": {"secret_env": "RUNGS_BENCH_WEBHOOK_SECRET", "timeout": "10s"}
            }
            for c in policy.get("customers", []):
                c.pop("matrix", None)
        path = folder / f"rungs-{time.monotonic_ns()}.yaml"
        path.write_text(yaml.safe_dump(policy, sort_keys=False), encoding="utf-8")
        self.server = Server(self.db.url, policy=path, log=log)
        self.server.wait_ready()
        self.port, self.pid = self.server.port, self.server.pid

    def one_request(self, seq: int) -> bytes:
        body = json.dumps(
            {"routing_key": PD_KEY, "event_action": "trigger", "dedup_key": f"e{seq}",
             "payload": {"summary": f"bench #{seq}", "source": "host", "severity": "error"}}
        ).encode()  # fmt: skip
        return _post(self.port, "/v2/enqueue", body)

    def stop(self) -> None:
        self.server.stop()
        self._db.__exit__(None, None, None)


def _post(port: int, path: str, body: bytes) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


# the loads ------------------------------------------------------------------------------------


def wrk(system: Any, per_post: int, seconds: float, folder: Path) -> dict[str, Any]:
    """A closed loop of `wrk -t2 -c8`: alerts per second, latency per POST, CPU per alert."""
    script = folder / f"{system.name}-{per_post}.lua"
    script.write_text(LUA_HEAD + LUA[(system.name, per_post)], encoding="utf-8")
    pids = process_tree(system.pid)
    c0 = tree_cpu_seconds(pids)
    done = subprocess.run(
        ["wrk", "-t2", "-c8", f"-d{seconds:g}s", "--latency", "-s", str(script),
         f"http://127.0.0.1:{system.port}"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    cpu = tree_cpu_seconds(pids) - c0
    out = done.stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    late = re.search(r"timeout (\d+)", out)  # answers slower than wrk's 2 s are not timed
    return {
        "alerts_per_s": round(rate * per_post, 1),
        "p50_ms_per_post": _wrk_ms(out, "50%"),
        "p99_ms_per_post": _wrk_ms(out, "99%"),
        "server_cpu_us_per_alert": round(cpu / max(requests * per_post, 1) * 1e6, 1),
        "errors": int(bad.group(1)) if bad else 0,
        "timeouts": int(late.group(1)) if late else 0,
    }


def _wrk_ms(out: str, pct: str) -> float | None:
    m = re.search(rf"^\s+{re.escape(pct)}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    if m is None or float(m.group(1)) == 0:  # none timed: every answer took over 2 s
        return None
    return round(float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)], 3)


class Sink:
    """The webhook receiver: when each alert's notification fully arrived."""

    def __init__(self) -> None:
        self.arrived: dict[int, float] = {}
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._conn, "127.0.0.1", self.port or 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                i = head.lower().find(b"content-length:")
                n = int(head[i + 15 : head.find(b"\r\n", i)]) if i >= 0 else 0
                body = await reader.readexactly(n)
                t = time.perf_counter()
                for m in SEQ.finditer(body):
                    self.arrived.setdefault(int(m.group(1)), t)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


async def event_to_webhook(
    system: Any, sink: Sink, rate: float, seconds: float, first: int
) -> dict[str, Any]:
    """Open loop at `rate`: latency from each alert's scheduled instant to its webhook."""
    perf, total = time.perf_counter, int(rate * seconds)
    pool = [await connect(system.port) for _ in range(16)]
    free: asyncio.Queue[Any] = asyncio.Queue()
    for c in pool:
        free.put_nowait(c)
    scheduled: dict[int, float] = {}
    tasks = []

    async def one(seq: int) -> None:
        conn = await free.get()
        if conn.closed:
            conn = await connect(system.port)
        try:
            await conn.request(system.one_request(seq))
        except ConnectionError:
            conn = await connect(system.port)
        free.put_nowait(conn)

    t0 = perf() + 0.05
    for i in range(total):
        at = t0 + i / rate
        delay = at - perf()
        if delay > 0.0005:
            await asyncio.sleep(delay)
        scheduled[first + i] = at
        tasks.append(asyncio.create_task(one(first + i)))
    await asyncio.gather(*tasks)
    end = time.monotonic() + 60
    while not scheduled.keys() <= sink.arrived.keys() and time.monotonic() < end:
        await asyncio.sleep(0.05)
    lat = sorted((sink.arrived[s] - at) * 1000 for s, at in scheduled.items() if s in sink.arrived)
    for c in pool:
        if c.transport is not None:
            c.transport.close()
    return {
        "p50_ms": round(percentile(lat, 50), 2),
        "p99_ms": round(percentile(lat, 99), 2),
        "lost": total - len(lat),
    }


# the run --------------------------------------------------------------------------------------


def one_round(args: argparse.Namespace, order: list[str], folder: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in order:
        figures: dict[str, Any] = {}
        system = _start(name, folder, None, args)
        try:
            figures["one_per_post"] = wrk(system, 1, args.seconds, folder)
            figures["hundred_per_post"] = wrk(system, 100, args.seconds, folder)
        finally:
            system.stop()
        figures.update(asyncio.run(_open_loops(name, folder, args)))
        out[name] = figures
        print(f"# {name}: {json.dumps(figures)}", file=sys.stderr)
    return out


async def _open_loops(name: str, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    sink = Sink()
    await sink.start()
    system = await asyncio.to_thread(_start, name, folder, sink.port, args)
    try:
        await event_to_webhook(system, sink, 50, 1, 10**8)  # warm-up
        out = {
            "event_to_webhook_100": await event_to_webhook(system, sink, 100, args.open_seconds, 0),
            "event_to_webhook_1000": await event_to_webhook(
                system, sink, 1000, args.open_seconds, 10**6
            ),
        }
    finally:
        await asyncio.to_thread(system.stop)
        sink.server.close()
    return out


def _start(name: str, folder: Path, sink: int | None, args: argparse.Namespace) -> Any:
    if name == "alertmanager":
        return Alertmanager(folder, sink)
    return Rungs(folder, sink, args.db, args.server_log)


FIGURES = (
    ("one_per_post", "alerts_per_s"),
    ("one_per_post", "server_cpu_us_per_alert"),
    ("hundred_per_post", "alerts_per_s"),
    ("hundred_per_post", "p50_ms_per_post"),
    ("hundred_per_post", "server_cpu_us_per_alert"),
    ("event_to_webhook_100", "p50_ms"),
    ("event_to_webhook_100", "p99_ms"),
    ("event_to_webhook_1000", "p50_ms"),
    ("event_to_webhook_1000", "p99_ms"),
)


def summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    median: dict[str, dict[str, float | None]] = {}
    for name in ("alertmanager", "rungs"):
        median[name] = {}
        for load, fig in FIGURES:
            got = [r[name][load][fig] for r in rounds if r[name][load][fig] is not None]
            median[name][f"{load}.{fig}"] = statistics.median(got) if got else None
    ratio = {}
    for k, ours in median["rungs"].items():
        theirs = median["alertmanager"][k]
        if ours is not None and theirs:
            ratio[k] = round(ours / theirs, 3)
    return {"median": median, "ratio": ratio}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--db", default="sqlite", help="sqlite (default) or postgres")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=10.0, help="each closed loop (wrk -d)")
    ap.add_argument("--open-seconds", type=float, default=5.0, help="each open loop")
    ap.add_argument("--server-log", type=Path, default=None)
    args = ap.parse_args()
    for need in (AM_EXE, shutil.which("wrk")):
        if not need or not Path(need).exists():
            print(
                "bench/peers.py needs Debian's prometheus-alertmanager and wrk "
                "(apt-get install -y prometheus-alertmanager wrk)",
                file=sys.stderr,
            )
            sys.exit(2)
    rounds = []
    with tempfile.TemporaryDirectory(prefix="rungs-peers-") as tmp:
        for i in range(args.rounds):
            order = ["alertmanager", "rungs"] if i % 2 == 0 else ["rungs", "alertmanager"]
            rounds.append(one_round(args, order, Path(tmp)))
    result = {
        **summary(rounds),
        "rounds": rounds,
        "db": args.db,
        "generator": "wrk -t2 -c8 (closed loops); asyncio open loop (event to webhook)",
        "cores": os.cpu_count(),
        "source": source_revision(),
    }
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result["ratio"].items():
            am, ru = result["median"]["alertmanager"][k], result["median"]["rungs"][k]
            print(f"{k:40} alertmanager {am:>10} rungs {ru:>10} ratio {v}")


if __name__ == "__main__":
    main()
