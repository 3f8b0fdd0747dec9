"""Shared by the live benches: a fresh database, a `rungs serve` subprocess, /proc readings."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
POLICY = ROOT / "src" / "rungs" / "examples" / "acme.yaml"
ADMIN_ENV = "RUNGS_TEST_DATABASE_URL"
ADMIN_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def rungs_exe() -> str:
    """The `rungs` console script of the interpreter running the bench."""
    exe = Path(sys.executable).with_name("rungs")
    if not exe.exists():
        raise SystemExit(f"no rungs console script next to {sys.executable}")
    return str(exe)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (nan when empty)."""
    if not sorted_values:
        return float("nan")
    k = math.ceil(p / 100 * len(sorted_values)) - 1
    return sorted_values[max(0, min(len(sorted_values) - 1, k))]


# the database ------------------------------------------------------------------------------


@dataclass
class FreshDb:
    url: str  # what the server is given
    kind: str  # sqlite | postgresql
    path: Path | None = None  # the SQLite file


@contextlib.contextmanager
def fresh_db(spec: str | None) -> Iterator[FreshDb]:
    """A new, empty database; removed afterwards.

    None or "sqlite": a SQLite file in a temporary directory. "sqlite:///PATH": that file, which
    must not exist yet. "postgres"/"postgresql": a new database on the server at
    $RUNGS_TEST_DATABASE_URL (default postgres@127.0.0.1:5432). A PostgreSQL URL: a new database
    on that server (the URL's own database is only used to run CREATE/DROP DATABASE).
    """
    if spec is None or spec == "sqlite":
        with tempfile.TemporaryDirectory(prefix="rungs-bench-") as d:
            path = Path(d) / "rungs.db"
            yield FreshDb(f"sqlite:///{path}", "sqlite", path)
        return
    if spec.startswith("sqlite:///"):
        path = Path(spec.removeprefix("sqlite:///"))
        if path.exists():
            raise SystemExit(f"{path} exists; the bench needs a fresh database")
        try:
            yield FreshDb(spec, "sqlite", path)
        finally:
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    Path(str(path) + suffix).unlink()
        return
    admin = os.environ.get(ADMIN_ENV, ADMIN_DEFAULT) if spec in ("postgres", "postgresql") else spec
    if not admin.startswith("postgres"):
        raise SystemExit(
            f"--db: use sqlite, sqlite:///PATH, postgres or a PostgreSQL URL, not {spec}"
        )
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from rungs.store.db import make_engine

    admin_url = make_url(make_engine(admin).url)  # normalises the driver name
    name = f"rungs_bench_{os.getpid()}"
    eng = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with eng.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield FreshDb(
            admin_url.set(database=name).render_as_string(hide_password=False), "postgresql"
        )
    finally:
        with eng.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        eng.dispose()


# the server --------------------------------------------------------------------------------


class Server:
    """`rungs serve` as a subprocess on a free loopback port."""

    def __init__(
        self,
        db_url: str,
        *,
        role: str = "all",
        policy: Path = POLICY,
        log: Path | None = None,
        exe: str | None = None,
        workers: int = 1,
    ) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self._log = open(log or os.devnull, "ab")  # noqa: SIM115
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        for var in ("RUNGS_DATABASE_URL", "RUNGS_POLICY", "RUNGS_HOST", "RUNGS_PORT", "RUNGS_ROLE"):
            env.pop(var, None)
        self.proc = subprocess.Popen(
            [
                exe or rungs_exe(),
                "serve",
                "--policy",
                str(policy),
                "--db",
                db_url,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--role",
                role,
                *(["--workers", str(workers)] if workers > 1 else []),
            ],
            stdout=self._log,
            stderr=self._log,
            env=env,
        )
        self.pid = self.proc.pid

    def wait_ready(self, timeout: float = 120.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise SystemExit(f"rungs serve exited with {self.proc.returncode} while starting")
            try:
                with urllib.request.urlopen(self.base + "/healthz", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise SystemExit("rungs serve did not answer /healthz in time")

    def get(self, path: str, timeout: float = 120.0) -> str:
        with urllib.request.urlopen(self.base + path, timeout=timeout) as r:
            return r.read().decode()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def api_token(db_url: str, exe: str | None = None, role: str = "responder") -> str | None:
    """A fresh API token on the database, for a `rungs` that has `rungs token create`
    (it migrates the database first); None for one without API tokens."""
    cmd = [exe or rungs_exe(), "token", "create", "--role", role, "--name", "bench", "--db", db_url]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        if "No such command" in done.stderr:
            return None
        raise SystemExit(f"rungs token create failed: {done.stderr.strip()}")
    return done.stdout.strip().splitlines()[-1]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads) from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def process_tree(pid: int) -> list[int]:
    """A process and all its descendants (the workers of `rungs serve --workers N`)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, ()))
    return out


def tree_cpu_seconds(pids: Sequence[int]) -> float:
    """`cpu_seconds` summed over processes (those gone meanwhile count nothing)."""
    total = 0.0
    for p in pids:
        with contextlib.suppress(OSError):
            total += cpu_seconds(p)
    return total


def proc_status_kb(pid: int, key: str) -> int:
    """A kB figure from /proc/PID/status (VmRSS, VmHWM, ...); 0 when absent."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def self_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def histogram_from_metrics(text: str, name: str) -> tuple[list[tuple[float, float]], float, float]:
    """Cumulative buckets [(le, count)], sum and count of a Prometheus histogram."""
    buckets: list[tuple[float, float]] = []
    total = count = 0.0
    for line in text.splitlines():
        if line.startswith(name + "_bucket{"):
            le = line[line.index('le="') + 4 :].split('"', 1)[0]
            buckets.append((float("inf") if le == "+Inf" else float(le), float(line.split()[-1])))
        elif line.startswith(name + "_sum "):
            total = float(line.split()[-1])
        elif line.startswith(name + "_count "):
            count = float(line.split()[-1])
    return buckets, total, count


def bucket_quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """Upper bound of the bucket holding quantile q (the histogram's own resolution)."""
    if not buckets or buckets[-1][1] == 0:
        return None
    want = q * buckets[-1][1]
    for le, c in buckets:
        if c >= want:
            return le
    return None


def machine_busy_seconds() -> float:
    """CPU seconds spent busy by the whole machine (all cores) so far, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / CLK_TCK


class OtherLoad:
    """How busy the rest of the machine was meanwhile: busy CPU not spent by `pids` or us."""

    def __init__(self, *pids: int) -> None:
        self.pids = pids
        self.start()

    def start(self) -> None:
        self.t = time.perf_counter()
        self.busy = machine_busy_seconds()
        self.ours = self_cpu_seconds() + tree_cpu_seconds(self.pids)

    def cores(self) -> float:
        """Average number of cores the other processes kept busy since start()."""
        busy = machine_busy_seconds() - self.busy
        ours = self_cpu_seconds() + tree_cpu_seconds(self.pids) - self.ours
        return round(max(0.0, busy - ours) / (time.perf_counter() - self.t), 2)


def wait_quiet(max_wait: float, threshold: float = 0.3, window: float = 3.0) -> float:
    """Wait (up to max_wait s) until other processes keep fewer than `threshold` cores busy
    over `window` s; returns the last reading. Other work on a 2-core machine skews every figure."""
    end = time.monotonic() + max_wait
    while True:
        load = OtherLoad()
        time.sleep(window)
        cores = load.cores()
        if cores < threshold or time.monotonic() >= end:
            return cores


def source_revision() -> str:
    """The commit the bench ran against, with '+dirty' when src/ has uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "src"],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def add_server_args(ap: argparse.ArgumentParser) -> None:
    """The options every bench that starts `rungs serve` takes."""
    ap.add_argument("--server-log", type=Path, default=None)
    ap.add_argument(
        "--rungs",
        default=None,
        help="the rungs executable to serve with (default: next to this Python)",
    )
    ap.add_argument(
        "--workers",
        type=int,
        default=1,
        help="rungs serve --workers N: processes serving the port (default 1)",
    )
    ap.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="S",
        help="first wait up to S seconds for other processes to go quiet",
    )


class Conn(asyncio.Protocol):
    """One keep-alive connection: one request in flight at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.waiter is None:
            return
        buf = self.buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(buf[:end]).lower()
        i = head.find(b"\r\ncontent-length:")
        if i < 0:
            self._fail(ConnectionError("answer without content-length"))
            return
        j = head.find(b"\r\n", i + 2)
        length = int(head[i + 17 : j if j >= 0 else len(head)])
        total = end + 4 + length
        if len(buf) < total:
            return
        status = int(head[9:12])
        del buf[:total]
        w, self.waiter = self.waiter, None
        if not w.done():
            w.set_result(status)

    def _fail(self, exc: Exception) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()
        w, self.waiter = self.waiter, None
        if w is not None and not w.done():
            w.set_exception(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(ConnectionError(f"connection lost: {exc}"))

    def request(self, data: bytes) -> asyncio.Future[int]:
        assert self.transport is not None and self.waiter is None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self.waiter


async def connect(port: int) -> Conn:
    _, proto = await asyncio.get_running_loop().create_connection(Conn, "127.0.0.1", port)
    return proto
