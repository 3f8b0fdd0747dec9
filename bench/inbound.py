"""Mail into the SMTP listener: mails per second, each committed as a case before its `250`.

    python bench/inbound.py --json [--db sqlite|postgres|URL] [--mails 3000] [--clients 8]
    -> {"mails_per_s": ..., "server_cpu_ms_per_mail": ..., "p50_ms": ..., "p99_ms": ...,
        "cases": 3000, "lost": 0, ...}

`rungs serve --smtp-port` (role all) on a fresh database, with a policy whose customer owns
the senders' domain. `--clients` SMTP connections (smtplib, one thread each) send `--mails`
new mails between them, each from its own sender (so each is answered: the answer's outbox
row is written in the same transaction), each session sending one mail after another. A
mail's latency is from the start of its DATA to the `250`, which the listener sends only
once the case, its timeline and the answer are committed. Afterwards every `250` must name
its case and the database must hold one case per mail (`lost` counts the difference).
The machine is shared: `other_load_cores` says how busy the rest of it was meanwhile.
"""

from __future__ import annotations

import argparse
import email.policy
import json
import os
import platform
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from email.message import EmailMessage
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _util import (
    ROOT,
    OtherLoad,
    cpu_seconds,
    free_port,
    fresh_db,
    percentile,
    rungs_exe,
    source_revision,
)

POLICY = """\
version: 1
timezone: UTC
people:
  - {id: pat, name: Pat Desk, contacts: {email: pat@acme.test}}
customers:
  - {id: globex, name: Globex, domains: [globex.test]}
matrices:
  - id: default
    levels: [{notify: [person:pat]}]
inbound_email:
  addresses:
    support@acme.test: {category: general, priority: P3}
"""


def message(n: int) -> bytes:
    m = EmailMessage()
    m["From"] = f"user{n}@globex.test"
    m["To"] = "support@acme.test"
    m["Subject"] = f"bench #{n}: the portal is slow"
    m["Message-ID"] = f"<bench-{n}-{os.getpid()}@globex.test>"
    m.set_content(
        "Hello,\n\nthe portal takes 30 seconds per page since this morning.\n\n"
        "Regards,\nA user\n\nOn Mon, Dec 1, 2026 at 10:00 AM Support wrote:\n> earlier text\n"
    )
    return m.as_bytes(policy=email.policy.SMTP)


class Client(threading.Thread):
    def __init__(self, port: int, numbers: list[int], start: threading.Event) -> None:
        super().__init__(daemon=True)
        self.port, self.numbers, self.start_evt = port, numbers, start
        self.raws = {n: message(n) for n in numbers}  # built before the clock starts
        self.latencies: list[float] = []
        self.replies: list[tuple[int, str]] = []
        self.error: str | None = None

    def run(self) -> None:
        try:
            with smtplib.SMTP("127.0.0.1", self.port, timeout=120) as s:
                s.ehlo()
                self.start_evt.wait()
                for n in self.numbers:
                    raw = self.raws[n]
                    s.mail(f"user{n}@globex.test")
                    s.rcpt("support@acme.test")
                    t0 = time.perf_counter()
                    code, reply = s.data(raw)
                    self.latencies.append((time.perf_counter() - t0) * 1000)
                    self.replies.append((code, reply.decode()))
        except Exception as exc:  # reported in the result
            self.error = f"{type(exc).__name__}: {exc}"


def serve(db_url: str, policy: Path, port: int, smtp_port: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    for var in ("RUNGS_DATABASE_URL", "RUNGS_POLICY", "RUNGS_SMTP_PORT"):
        env.pop(var, None)
    cmd = [rungs_exe(), "serve", "--policy", str(policy), "--db", db_url, "--host",
           "127.0.0.1", "--port", str(port), "--smtp-port", str(smtp_port),
           "--log-level", "warning"]  # fmt: skip
    out = open(log, "ab")  # noqa: SIM115
    return subprocess.Popen(cmd, stdout=out, stderr=out, env=env)


def wait_ready(base: str, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit(f"rungs serve exited with {proc.returncode} while starting")
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("rungs serve did not answer /healthz in time")


def count_cases(db_url: str) -> int:
    from sqlalchemy import text

    from rungs.store.db import make_engine

    eng = make_engine(db_url)
    try:
        with eng.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM cases")).scalar() or 0)
    finally:
        eng.dispose()


def run(args: argparse.Namespace) -> dict[str, object]:
    with fresh_db(args.db) as db, tempfile.TemporaryDirectory(prefix="rungs-inbound-") as d:
        policy = Path(d) / "policy.yaml"
        policy.write_text(POLICY)
        port, smtp_port = free_port(), free_port()
        proc = serve(db.url, policy, port, smtp_port, Path(d) / "serve.log")
        try:
            wait_ready(f"http://127.0.0.1:{port}", proc)
            warm = Client(smtp_port, list(range(1_000_000, 1_000_020)), threading.Event())
            warm.start_evt.set()
            warm.run()  # start-up costs (first parse, first commit) outside the measure
            numbers = list(range(args.mails))
            go = threading.Event()
            clients = [Client(smtp_port, numbers[i :: args.clients], go)
                       for i in range(args.clients)]  # fmt: skip
            for c in clients:
                c.start()
            time.sleep(0.5)  # every session greeted
            other = OtherLoad(proc.pid, os.getpid())
            other.start()
            cpu0, t0 = cpu_seconds(proc.pid), time.perf_counter()
            go.set()
            for c in clients:
                c.join()
            elapsed = time.perf_counter() - t0
            cpu = cpu_seconds(proc.pid) - cpu0
            load = other.cores()
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        errors = [c.error for c in clients if c.error]
        replies = [r for c in clients for r in c.replies]
        ok = sum(1 for code, text in replies if code == 250 and " OK C" in text)
        cases = count_cases(db.url) - len(warm.replies)
        lat = sorted(x for c in clients for x in c.latencies)
        return {
            "bench": "inbound",
            "db": db.kind,
            "mails": args.mails,
            "clients": args.clients,
            "mails_per_s": round(ok / elapsed, 1),
            "target_mails_per_s": 200,
            "elapsed_s": round(elapsed, 3),
            "server_cpu_ms_per_mail": round(cpu * 1000 / max(ok, 1), 3),
            "p50_ms": round(percentile(lat, 50), 2) if lat else None,
            "p99_ms": round(percentile(lat, 99), 2) if lat else None,
            "answered_250": ok,
            "cases": cases,
            "lost": args.mails - cases,
            "errors": errors[:3],
            "other_load_cores": round(load, 2),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "revision": source_revision(),
            "note": "shared 2-core machine: other helpers' work ran meanwhile",
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--db", default=None, help="sqlite (default), postgres, or a URL")
    ap.add_argument("--mails", type=int, default=3000)
    ap.add_argument("--clients", type=int, default=8)
    args = ap.parse_args()
    out = run(args)
    if args.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k}: {v}")


if __name__ == "__main__":
    main()
