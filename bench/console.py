"""The console's queue with 10,000 open cases, and the SSE update after a commit.

    python bench/console.py --json [--cases 10000] [--loads 50] [--sse 30]
    -> {"cases": 10000, "queue_ms_median": ..., "queue_ms_p99": ..., "queue_rows": 200,
        "sse_event_ms_median": ..., "sse_event_ms_p99": ...,
        "sse_page_ms_median": ..., "sse_page_ms_p99": ..., ...}

One `rungs` app (bootstrap.build, SQLite in a temporary folder, the example policy without its
channels) served by uvicorn on a thread; the client is httpx on loopback, so the times are
server time plus one local HTTP exchange (an upper bound of server time).

- queue: `GET /` signed in, default view (every case not resolved or closed, soonest breach
  first, the first 200 rows), `--loads` times after one warm-up;
- SSE: with `/events` open, a case is opened through `POST /v1/cases`; "event" is from the
  201 answer (sent after the commit) to the `cases` event naming it, "page" adds the htmx
  refetch of the queue rows (`GET /` with `HX-Request`), as the browser does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import POLICY, free_port, percentile, source_revision

PASSWORD = "bench password"
PRIORITIES = ("P1", "P2", "P3", "P4")
CUSTOMERS = ("globex", "initech")


def policy_text() -> str:
    doc = yaml.safe_load(POLICY.read_text("utf-8"))
    doc.pop("channels", None)  # nobody paged: the bench measures the console
    doc.pop("integrations", None)
    doc["people"][0]["console_role"] = "admin"
    return yaml.safe_dump(doc, sort_keys=False)


async def fill(engine: Any, n: int) -> float:
    """Open `n` cases through the engine's commands, 500 at a time; seconds taken."""
    t0 = time.perf_counter()
    for start in range(0, n, 500):
        batch = [
            engine.commands.open(
                {
                    "customer": CUSTOMERS[i % 2],
                    "priority": PRIORITIES[i % 4],
                    "category": "general",
                    "title": f"Case number {i} of the bench",
                }
            )
            for i in range(start, min(n, start + 500))
        ]
        await asyncio.gather(*batch)
    return time.perf_counter() - t0


def serve(app: Any, port: int) -> Any:
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning", access_log=False))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server


def sign_in(client: httpx.Client) -> None:
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)
    r = client.post("/login", data={"username": "alice", "password": PASSWORD, "csrf": token})
    assert r.status_code == 200 and "Queue" in r.text, r.text[:200]


def queue_loads(client: httpx.Client, loads: int) -> tuple[list[float], int]:
    client.get("/")  # warm-up
    times = []
    rows = 0
    for _ in range(loads):
        t0 = time.perf_counter()
        r = client.get("/")
        times.append((time.perf_counter() - t0) * 1000)
        assert r.status_code == 200
        rows = r.text.count("<tr data-case=")
    return sorted(times), rows


def sse_latency(
    client: httpx.Client, url: str, token: str, n: int
) -> tuple[list[float], list[float]]:
    """(event ms, page ms) per case opened while /events is open."""
    events: list[float] = []
    pages: list[float] = []
    auth = {"Authorization": f"Bearer {token}"}
    with client.stream("GET", "/events", timeout=30) as stream:
        lines = stream.iter_lines()
        for line in lines:  # the hello event: subscribed
            if line.startswith("data:"):
                break
        for i in range(n):
            r = httpx.post(url + "/v1/cases", json={"customer": "globex", "title": f"live {i}"},
                           headers=auth, timeout=10)  # fmt: skip
            answered = time.perf_counter()
            case_id = r.json()["id"]
            event = None
            for line in lines:
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif (
                    line.startswith("data:")
                    and event == "cases"
                    and case_id in line.split(":", 1)[1].strip().split(",")
                ):
                    break
            got = time.perf_counter()
            client.get("/", headers={"HX-Request": "true"})
            done = time.perf_counter()
            events.append((got - answered) * 1000)
            pages.append((done - answered) * 1000)
    return sorted(events), sorted(pages)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--cases", type=int, default=10_000)
    ap.add_argument("--loads", type=int, default=50)
    ap.add_argument("--sse", type=int, default=30)
    args = ap.parse_args()

    from rungs.bootstrap import build, settle_heap
    from rungs.store.credentials import set_password
    from rungs.store.tokens import create_token

    with tempfile.TemporaryDirectory() as tmp:
        policy = Path(tmp) / "policy.yaml"
        policy.write_text(policy_text(), "utf-8")
        os.environ.pop("RUNGS_WEB_SECRET", None)
        engine, app = build(db_url=f"sqlite:///{tmp}/bench.db", policy_file=policy)
        try:
            fill_s = asyncio.run(fill(engine, args.cases))
            with engine.db.begin() as conn:
                set_password(conn, "alice", PASSWORD, 0)
                token = create_token(conn, "bench", "responder", 0, "alice")
            settle_heap()  # as `rungs serve` does before serving
            port = free_port()
            server = serve(app, port)
            url = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=url, timeout=30, follow_redirects=True) as client:
                sign_in(client)
                queue, rows = queue_loads(client, args.loads)
                events, pages = sse_latency(client, url, token, args.sse)
            server.should_exit = True
        finally:
            engine.stop()

    out = {
        "cases": args.cases,
        "fill_s": round(fill_s, 1),
        "queue_loads": args.loads,
        "queue_rows": rows,
        "queue_ms_median": round(statistics.median(queue), 1),
        "queue_ms_p99": round(percentile(queue, 99), 1),
        "queue_ms_slowest": [round(x, 1) for x in queue[-3:]],
        "sse_updates": args.sse,
        "sse_event_ms_median": round(statistics.median(events), 1),
        "sse_event_ms_p99": round(percentile(events, 99), 1),
        "sse_page_ms_median": round(statistics.median(pages), 1),
        "sse_page_ms_p99": round(percentile(pages, 99), 1),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "revision": source_revision(),
    }
    if args.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k:>22}: {v}")


if __name__ == "__main__":
    main()
