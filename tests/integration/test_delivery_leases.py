"""A slow send is never sent twice, and a send never outlasts its channel's timeout (§7).

Two dispatchers share one database, as `rungs serve --workers N` or a second `--role
dispatcher` process would: while the first one's send is in flight its lease is renewed, so
the second never takes the row over. Apprise, which blocks, is bounded by the channel's
`timeout` like every other channel.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from rungs.bootstrap import build
from rungs.engine import Engine
from rungs.time.clock import SystemClock
from tests import sync
from tests.integration.test_notify import Sink

POLICY = """\
version: 1
timezone: UTC
people: [{{id: ann, contacts: {{{contact}}}, notify: [{{via: {via}}}]}}]
customers: [{{id: acme, name: Acme}}]
matrices: [{{id: default, levels: [{{name: L1, notify: ["person:ann"]}}]}}]
channels:
  webhook: {{secret_env: RUNGS_TEST_LEASE_SECRET, timeout: 10s}}
  apprise: {{timeout: 1s}}
  retry: {{attempts: 5, backoff: 1s, lease: 1s}}
"""
CASE = {"customer": "acme", "category": "general", "priority": "P2", "title": "slow"}


class Processes:
    """`rungs serve` processes as `build` makes them, on one SQLite file; stopped at the end."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.engines: list[Engine] = []

    def serve(self, policy: str, *, role: str = "all", virtual: bool = False) -> Engine:
        path = self.folder / "policy.yaml"
        path.write_text(policy, encoding="utf-8")
        db = f"sqlite:///{self.folder / 'rungs.db'}"
        start = SystemClock().now() if virtual else None
        engine = build(db_url=db, policy_file=path, role=role, virtual_start=start)[0]
        self.engines.append(engine)
        return engine


@pytest.fixture
def procs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Processes]:
    monkeypatch.setenv("RUNGS_TEST_LEASE_SECRET", "lease-secret")
    monkeypatch.setenv("RUNGS_ALLOW_VIRTUAL_CLOCK", "1")
    made = Processes(tmp_path)
    yield made
    for engine in made.engines:
        engine.stop()
        engine.db.dispose()


def _outbox(engine: Engine) -> list[Any]:
    with engine.db.connect() as conn:
        return conn.execute(text("SELECT status, attempts, last_error FROM outbox")).all()


def test_a_send_in_flight_keeps_its_lease_and_is_sent_once(
    procs: Processes, sink_slow: Sink
) -> None:
    policy = POLICY.format(contact=f'webhook: "{sink_slow.url("/hook")}"', via="webhook")
    first = procs.serve(policy)  # decides and delivers what it decides
    procs.serve(policy, role="dispatcher")  # polls the outbox for rows whose lease ran out
    sync.open_case(first, dict(CASE))
    deadline = time.monotonic() + 20
    while [r.status for r in _outbox(first)] != ["sent"]:
        assert time.monotonic() < deadline, _outbox(first)
        time.sleep(0.05)
    # the send took three leases; the second dispatcher never took the row over
    assert len(sink_slow.at("/hook")) == 1
    assert _outbox(first)[0].attempts == 1


def test_apprise_gives_up_at_the_channel_timeout(procs: Processes) -> None:
    sink_slow = Sink(delay=5.0)
    url = f"json://127.0.0.1:{sink_slow.port}/apprise"
    engine = procs.serve(POLICY.format(contact=f'apprise: "{url}"', via="apprise"), virtual=True)
    sync.open_case(engine, dict(CASE))
    t0 = time.monotonic()
    engine.advance(engine.clock.now())  # returns once the attempt is recorded
    took = time.monotonic() - t0
    assert sink_slow.at("/apprise"), "the request reached the server"
    ((status, attempts, error),) = _outbox(engine)
    # the server answers after 5 s, Apprise's own read timeout is 4 s: neither waited for
    assert took < 3.5, took
    assert (status, attempts) == ("pending", 1)  # a transient failure: tried again
    assert "Apprise" in error
    sink_slow.close()


@pytest.fixture
def sink_slow() -> Iterator[Sink]:
    s = Sink(delay=3.0)
    yield s
    s.close()
