"""`/healthz` says whether this process can page, judged on real time, and a write the database
cannot take is answered 503 with Retry-After on every route (issue 12 §7 and §3)."""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from rungs.bootstrap import build
from rungs.engine import Engine
from rungs.store.db import FileLock
from rungs.time.instant import parse_instant
from tests.conftest import ROOT, auth_headers
from tests.procs import wait_until

ACME = ROOT / "src" / "rungs" / "examples" / "acme.yaml"
START = parse_instant("2026-11-24T08:00:00Z")
CASE = {"customer": "initech", "category": "general", "priority": "P2", "title": "t"}
KEYS_POLICY = """\
version: 1
timezone: UTC
people:
  - {id: ann, name: Ann, contacts: {email: ann@acme.test}}
customers:
  - {id: acme, name: Acme}
matrices:
  - id: default
    levels:
      - {name: L1, notify: [person:ann]}
integrations:
  - {id: pd-unset, format: pagerduty, key_env: RUNGS_TEST_UNSET_KEY, defaults: {customer: acme}}
  - {id: pd-set, format: pagerduty, key_env: RUNGS_TEST_SET_KEY, defaults: {customer: acme}}
  - {id: pd-inline, format: pagerduty, key: inline-key-0123456789, defaults: {customer: acme}}
"""

Start = Callable[..., tuple[Engine, TestClient]]


@pytest.fixture
def start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Start]:
    monkeypatch.setenv("RUNGS_ALLOW_VIRTUAL_CLOCK", "1")
    started: list[tuple[Engine, TestClient]] = []

    def run(*, virtual: bool = True, policy: Path = ACME) -> tuple[Engine, TestClient]:
        engine, app = build(
            db_url=f"sqlite:///{tmp_path / 'rungs.db'}",
            policy_file=policy,
            virtual_start=START if virtual else None,
        )
        client = TestClient(app, headers=auth_headers(engine))
        started.append((engine, client))
        return engine, client

    yield run
    for engine, client in started:
        client.close()
        engine.stop()
        engine.db.dispose()


def _hold_writer_lock(engine: Engine) -> int:
    """Another process's writer holding the SQLite file's writer lock (until the fd closes)."""
    fd = os.open(f"{engine.db.url.database}-writer.lock", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def test_writes_the_database_cannot_take_are_503_with_retry_after(start: Start) -> None:
    engine, client = start()
    case = client.post("/v1/cases", json=CASE).json()
    assert isinstance(engine.writer.lock, FileLock)
    engine.writer.lock.timeout = 0.3
    fd = _hold_writer_lock(engine)
    try:
        t0 = time.monotonic()
        opened = client.post("/v1/cases", json=CASE)  # the fast lane
        acted = client.post(f"/v1/cases/{case['id']}/acknowledge", json={"by": "alice"})
        assert time.monotonic() - t0 < 3  # bounded: not queued for minutes
        for r in (opened, acted):
            assert r.status_code == 503, r.text
            assert int(r.headers["retry-after"]) > 0
            assert "writer lock" in r.json()["detail"]
        # nothing was written: the case is as it was
        assert client.get(f"/v1/cases/{case['id']}").json()["status"] == "open"
    finally:
        os.close(fd)
    assert client.post("/v1/cases", json=CASE).status_code in (200, 201)


def test_healthz_names_a_stuck_writer_or_delivery_loop_503(start: Start) -> None:
    engine, client = start(virtual=False)
    ok = client.get("/healthz")
    assert ok.status_code == 200, ok.text
    body = ok.json()
    assert body["status"] == "ok" and body["stuck"] == [] and body["database_error"] is None
    assert body["writer"]["alive"] and body["writer"]["queue"] == 0
    assert body["engine_loop"]["running"] and body["engine_loop"]["alive"]
    assert body["dispatcher"]["running"] and body["dispatcher"]["alive"]

    # a batch that does not finish: the writer is stuck, and says how much waits behind it
    engine.writer.stuck_after = 0.2
    gate, begun = threading.Event(), threading.Event()
    engine.writer.submit(lambda conn: (begun.set(), gate.wait(10)))
    assert begun.wait(5)
    engine.writer.submit(lambda conn: None)  # waits behind it
    stuck = wait_until("a 503", lambda: (r := client.get("/healthz")).status_code == 503 and r, 10)
    assert "writer" in stuck.json()["stuck"] and stuck.json()["status"] == "stuck"
    assert stuck.json()["writer"]["queue"] >= 1 and stuck.json()["writer"]["busy_s"] > 0.2
    gate.set()
    wait_until("200 again", lambda: client.get("/healthz").status_code == 200, 10)

    # the delivery loop held by a blocking call (as a channel that blocks would hold it)
    dispatcher = engine.dispatcher
    assert dispatcher is not None
    dispatcher.stuck_after = 1.0  # above its claim loop's poll (0.5 s)
    held = threading.Event()
    loop = dispatcher.deliverer._loop  # type: ignore[attr-defined]
    loop.call_soon_threadsafe(held.wait, 10)
    stuck = wait_until("a 503", lambda: (r := client.get("/healthz")).status_code == 503 and r, 10)
    assert stuck.json()["stuck"] == ["dispatcher"]
    assert stuck.json()["dispatcher"]["delivery_loop_s"] > 1.0
    held.set()
    wait_until("200 again", lambda: client.get("/healthz").status_code == 200, 10)


def test_healthz_judges_the_virtual_clock_on_real_time(start: Start) -> None:
    engine, client = start(virtual=True)
    assert client.post("/v1/cases", json=CASE).status_code in (200, 201)
    health = client.get("/healthz").json()
    assert health["engine_loop"] == {"running": False, "advance_s": None, "stuck": False}
    engine.writer.stuck_after = engine.loop.stuck_after = 0.2
    gate = threading.Event()
    engine.writer.submit(lambda conn: gate.wait(10))
    # an advance with a timer due waits for the writer: the virtual clock stands still, yet
    # real time passes and both are stuck
    advance = threading.Thread(target=engine.advance, args=(START + 31 * 60_000_000,))
    advance.start()
    stuck = wait_until("a 503", lambda: (r := client.get("/healthz")).status_code == 503 and r, 10)
    wait_until(
        "both stuck",
        lambda: {"writer", "engine_loop"} <= set(client.get("/healthz").json()["stuck"]),
        10,
    )
    assert stuck.json()["virtual_clock"] is True
    gate.set()
    advance.join(10)
    assert not advance.is_alive()
    assert client.get("/healthz").status_code == 200


def test_an_unset_key_env_is_reported_at_start_and_on_healthz(
    start: Start, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("RUNGS_TEST_UNSET_KEY", raising=False)
    monkeypatch.setenv("RUNGS_TEST_SET_KEY", "set-key-0123456789")
    policy = tmp_path / "keys.yaml"
    policy.write_text(KEYS_POLICY, encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="rungs.engine"):
        _, client = start(policy=policy)
    said = [r.getMessage() for r in caplog.records if "RUNGS_TEST_UNSET_KEY" in r.getMessage()]
    assert said == ["integration 'pd-unset' takes no events: $RUNGS_TEST_UNSET_KEY is not set"]
    health = client.get("/healthz")
    assert health.status_code == 200  # paging works: not a reason to leave the pool
    assert health.json()["integrations_without_key"] == [
        {"integration": "pd-unset", "key_env": "RUNGS_TEST_UNSET_KEY"}
    ]
    monkeypatch.setenv("RUNGS_TEST_UNSET_KEY", "now-set-0123456789")
    assert client.get("/healthz").json()["integrations_without_key"] == []
