"""`rungs serve` as a real subprocess, for the crash tests: start, wait for health, kill -9.

Each server writes its stdout and stderr to one log file; `Servers` kills every process it
started when its block ends and prints every log (pytest shows the output of failing tests).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import httpx

__all__ = ["RUNGS", "Server", "Servers", "cli_token", "free_port", "wait_until"]

RUNGS = Path(sys.executable).with_name("rungs")  # the console script of this virtualenv
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(what: str, check: Callable[[], T], timeout: float, every: float = 0.1) -> T:
    """Call `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})"
            )
        time.sleep(every)


def cli_token(db: str, role: str = "admin", name: str = "tests") -> str:
    """`rungs token create` on a database (migrating it first): the token, its last line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNGS_")}
    done = subprocess.run(
        [str(RUNGS), "token", "create", "--role", role, "--name", name, "--db", db],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"rungs token create failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout.strip().splitlines()[-1]


class Server:
    """One `rungs serve` process on a free port."""

    def __init__(
        self,
        name: str,
        db: str,
        policy: Path | None,
        role: str,
        log: Path,
        extra: Sequence[str] = (),
        secrets: Mapping[str, str] | None = None,
    ) -> None:
        self.name, self.db, self.policy, self.role, self.log = name, db, policy, role, log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # none of this process's RUNGS_ settings; `secrets`: the ones the policy names
        env = {k: v for k, v in os.environ.items() if not k.startswith("RUNGS_")}
        env.update(secrets or {})
        env["PYTHONUNBUFFERED"] = "1"
        # policy None: the database's stored policy serves (database-managed)
        managed = ["--policy", str(policy)] if policy is not None else []
        args = [str(RUNGS), "serve", *managed, "--db", db,
                "--port", str(self.port), "--role", role, *extra]  # fmt: skip
        with log.open("ab") as out:
            out.write(f"$ {' '.join(args)}\n".encode())
            out.flush()
            self.proc = subprocess.Popen(
                args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                start_new_session=True,
            )  # fmt: skip
        self.started = time.monotonic()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_healthy(self, timeout: float = 60.0) -> float:
        """Wait for GET /healthz to answer 200; returns the seconds it took since start."""

        def healthy() -> bool:
            if not self.alive():
                raise AssertionError(
                    f"{self.name} exited with {self.proc.returncode}:\n{self.log_text()}"
                )
            try:
                return httpx.get(f"{self.url}/healthz", timeout=2.0).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(f"{self.name} /healthz", healthy, timeout, every=0.05)
        return time.monotonic() - self.started

    def signal(self, sig: signal.Signals) -> None:
        if self.alive():
            os.kill(self.proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL to the process and everything it started (its session), then reap it."""
        with contextlib.suppress(ProcessLookupError):  # its workers may outlive it
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""


class Servers:
    """Start servers inside a `with` block; all are killed and their logs printed at its end."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.all: list[Server] = []

    def start(
        self,
        name: str,
        db: str,
        policy: Path | None,
        role: str = "all",
        extra: Sequence[str] = (),
        secrets: Mapping[str, str] | None = None,
    ) -> Server:
        assert RUNGS.exists(), f"{RUNGS} is missing: install the package (pip install -e .)"
        server = Server(name, db, policy, role, self.logs / f"{name}.log", extra, secrets)
        self.all.append(server)
        return server

    def __enter__(self) -> Servers:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for server in self.all:
            try:
                server.kill()
            except Exception as err:  # never hide the test's own failure
                print(f"could not kill {server.name} (pid {server.proc.pid}): {err}")
        for server in self.all:
            print(f"----- {server.name} log ({server.log}) -----")
            print(server.log_text())
