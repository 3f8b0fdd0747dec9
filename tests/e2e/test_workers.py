"""`rungs serve --workers 2`: two processes on one port and one database lose nothing.

Cases are opened concurrently over many connections, so both workers answer; every level
timer then comes due in whichever worker claims it, and each must fire exactly once. On
SQLite the two processes' writers take turns on a file lock; on PostgreSQL, row locks and
SKIP LOCKED do it.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_crash import _problems, _total, _write_policy
from tests.procs import Servers, cli_token, wait_until

pytestmark = pytest.mark.slow

CASES, THREADS = 300, 16


def test_two_workers_share_the_port_and_fire_each_timer_once(db_url: str, tmp_path: Path) -> None:
    policy = _write_policy(tmp_path, "2s", "4s")
    headers = {"Authorization": f"Bearer {cli_token(db_url, 'responder')}"}
    with Servers(tmp_path) as servers:
        server = servers.start("workers", db_url, policy, extra=("--workers", "2"))
        server.wait_healthy()

        def open_one(n: int) -> tuple[int, str, int]:
            # a connection of its own, so the kernel may hand it to either worker
            with httpx.Client(base_url=server.url, headers=headers, timeout=30.0) as c:
                r = c.post("/v1/cases", json={"customer": "acme", "title": f"case {n}"})
                pid = c.get("/healthz").json()["pid"]
            return r.status_code, r.json().get("id", r.text), pid

        with ThreadPoolExecutor(THREADS) as pool:
            answers = list(pool.map(open_one, range(CASES)))
        assert [a for a in answers if a[0] != 201] == []
        ids = {a[1] for a in answers}
        assert len(ids) == CASES  # no case number given twice across the processes
        assert len({a[2] for a in answers}) == 2, "one worker answered everything"

        with httpx.Client(base_url=server.url, headers=headers, timeout=30.0) as client:
            assert _total(client) == CASES
            wait_until(
                "every case to reach level 3",
                lambda: _total(client, level=3) == CASES or None,
                timeout=90.0,
                every=0.5,
            )
            problems = []
            for case_id in sorted(ids):
                r = client.get(f"/v1/cases/{case_id}/timeline")
                r.raise_for_status()
                problems += _problems(case_id, r.json())
        assert problems == []


def test_workers_setting_is_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from rungs.cli import app as cli

    monkeypatch.setenv("RUNGS_ALLOW_VIRTUAL_CLOCK", "1")
    db = f"sqlite:///{tmp_path / 'rungs.db'}"
    r = CliRunner().invoke(cli, ["serve", "--workers", "0", "--db", db])
    assert r.exit_code == 1 and "--workers must be at least 1" in r.output
    r = CliRunner().invoke(
        cli, ["serve", "--workers", "2", "--virtual-clock", "2026-11-24T08:00:00Z", "--db", db]
    )
    assert r.exit_code == 1 and "--virtual-clock needs --workers 1" in r.output
    assert not (tmp_path / "rungs.db").exists()  # refused before touching the database


def test_the_sqlite_write_lock_excludes_other_processes(tmp_path: Path) -> None:
    """While one process holds the writer's lock, another's attempt waits for it."""
    import subprocess
    import sys
    import time

    from rungs.store.db import make_engine, write_lock

    db = tmp_path / "rungs.db"
    lock = write_lock(make_engine(f"sqlite:///{db}"))
    probe = (
        "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR);"
        "t = time.monotonic(); fcntl.flock(fd, fcntl.LOCK_EX); print(time.monotonic() - t)"
    )
    with lock:
        other = subprocess.Popen(
            [sys.executable, "-c", probe, f"{db}-writer.lock"], stdout=subprocess.PIPE, text=True
        )
        time.sleep(0.5)
        assert other.poll() is None  # still waiting for the lock
    waited = float(other.communicate(timeout=10)[0])
    lock.close()
    assert waited >= 0.3


def test_workers_stop_when_their_supervisor_is_killed(tmp_path: Path) -> None:
    import os
    import signal

    db = f"sqlite:///{tmp_path / 'rungs.db'}"
    policy = _write_policy(tmp_path, "1h", "2h")
    with Servers(tmp_path) as servers:
        server = servers.start("workers", db, policy, extra=("--workers", "2"))
        server.wait_healthy()

        def pid() -> int:
            with httpx.Client(base_url=server.url, timeout=10.0) as c:
                return int(c.get("/healthz").json()["pid"])

        pids: set[int] = set()

        def both() -> bool:
            pids.add(pid())  # each on a new connection, which either worker may take
            return len(pids) == 2

        wait_until("both workers to answer", both, timeout=30.0, every=0.0)
        assert len(pids) == 2 and server.proc.pid not in pids
        os.kill(server.proc.pid, signal.SIGKILL)  # the supervisor alone
        server.proc.wait(timeout=10)

        def gone() -> bool:
            alive = []
            for p in pids:
                try:
                    os.kill(p, 0)
                    alive.append(p)
                except ProcessLookupError:
                    pass
            return not alive

        wait_until("the workers to exit", gone, timeout=15.0)


@pytest.mark.parametrize(
    ("extra", "imap", "message"),
    [
        (["--verify-every", "1h"], False, "--verify-every needs --workers 1"),
        ([], True, "inbound_email.imap needs --workers 1"),
    ],
)
def test_what_one_process_must_run_is_refused_with_workers(
    tmp_path: Path, extra: list[str], imap: bool, message: str
) -> None:
    """Workers run no IMAP poller, and each would run its own verifier: refused, said why."""
    from tests.mail import POLICY

    policy = tmp_path / "policy.yaml"
    text = POLICY
    if imap:
        text = text.replace(
            "inbound_email:\n",
            "inbound_email:\n  imap: {host: 127.0.0.1, port: 1, tls: none,"
            " user_env: RUNGS_TEST_IMAP_USER, password_env: RUNGS_TEST_IMAP_PASSWORD}\n",
        )
    policy.write_text(text, "utf-8")
    with Servers(tmp_path) as servers:
        s = servers.start(
            "serve", f"sqlite:///{tmp_path / 'r.db'}", policy, extra=["--workers", "2", *extra]
        )
        wait_until("serve to refuse", lambda: not s.alive(), timeout=30)
        assert s.proc.returncode == 1 and message in s.log_text(), s.log_text()
