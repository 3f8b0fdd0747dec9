"""The dispatcher killed with SIGKILL mid-delivery, then restarted: nothing is lost.

Real `rungs serve` processes on one database: one with `--role api` takes the cases, one with
`--role dispatcher` delivers their webhooks to a sink that holds every answer back for a while,
so deliveries are in flight when the dispatcher is killed. A new dispatcher takes over the
rows whose lease ran out: every notification arrives, duplicates carry the same idempotency
key (and a valid signature), and each one is recorded `delivered` exactly once.
"""

from __future__ import annotations

import hashlib
import hmac
import signal
from collections import Counter
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from rungs.store.db import make_engine
from tests.integration.test_notify import Sink
from tests.procs import Servers, cli_token, wait_until

pytestmark = pytest.mark.slow

SECRET = "crash-test-secret"
CASES = 30
POLICY = """\
version: 1
timezone: UTC
people:
  - id: ann
    contacts: {{webhook: "{hook}"}}
    notify: [{{via: webhook}}]
customers:
  - {{id: acme, name: Acme}}
matrices:
  - id: default
    levels:
      - {{name: L1, notify: [person:ann]}}
channels:
  webhook: {{secret_env: RUNGS_NOTIFY_CRASH_SECRET, timeout: 5s}}
  retry: {{attempts: 5, backoff: 1s, lease: 2s}}
"""


def test_dispatcher_killed_mid_delivery_loses_nothing(db_url: str, tmp_path: Path) -> None:
    secrets = {"RUNGS_NOTIFY_CRASH_SECRET": SECRET}  # what the policy names (RUNGS_ prefix)
    sink = Sink(delay=1.5)  # answers late: deliveries are in flight at the kill
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.format(hook=sink.url("/hook")), encoding="utf-8")
    token = cli_token(db_url)
    db = make_engine(db_url)
    try:
        with Servers(tmp_path) as servers:
            api = servers.start("api", db_url, policy, role="api", secrets=secrets)
            api.wait_healthy()
            first = servers.start(
                "dispatcher-1", db_url, policy, role="dispatcher", secrets=secrets
            )
            first.wait_healthy()
            with httpx.Client(
                base_url=api.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
            ) as client:
                for i in range(CASES):
                    r = client.post("/v1/cases", json={"customer": "acme", "title": f"crash {i}"})
                    assert r.status_code == 201, r.text
            wait_until("deliveries in flight", lambda: len(sink.at("/hook")) >= 5, 30.0, 0.02)
            first.kill()
            assert first.proc.returncode == -signal.SIGKILL
            at_kill = len(sink.at("/hook"))
            sink.delay = 0.0

            second = servers.start(
                "dispatcher-2", db_url, policy, role="dispatcher", secrets=secrets
            )
            second.wait_healthy()

            def settled() -> bool:
                with db.connect() as conn:
                    left = conn.execute(
                        text("SELECT count(*) FROM outbox WHERE status <> 'sent'")
                    ).scalar_one()
                return left == 0

            wait_until("every row sent", settled, 60.0, 0.1)
            # Stopped gracefully, it records what it has in hand before it exits: nothing can
            # arrive at the sink or be recorded after this (a duplicate would be in the counts).
            second.signal(signal.SIGINT)  # as Ctrl-C: `rungs serve` stops the dispatcher, exits 0
            assert second.proc.wait(timeout=30) == 0, second.log_text()
            with db.connect() as conn:
                keys = {r.key for r in conn.execute(text("SELECT key FROM outbox")).all()}
                delivered = Counter(
                    r.case_id
                    for r in conn.execute(
                        text("SELECT case_id FROM timeline WHERE kind = 'delivered'")
                    ).all()
                )
                failed = conn.execute(
                    text("SELECT count(*) FROM timeline WHERE kind = 'delivery_failed'")
                ).scalar_one()
    finally:
        db.dispose()
        sink.close()

    got = sink.at("/hook")
    received = Counter(r.headers["idempotency-key"] for r in got)
    assert len(keys) == CASES
    assert set(received) == keys, "a notification was lost (or one arrived with another key)"
    dupes = {k: n for k, n in received.items() if n > 1}
    assert dupes, f"no delivery was in flight at the kill ({at_kill} had arrived)"
    for r in got:  # every copy is signed, and names the same case as its key
        ts = r.headers["x-rungs-timestamp"]
        mac = hmac.new(SECRET.encode(), ts.encode() + b"." + r.body, hashlib.sha256).hexdigest()
        assert r.headers["x-rungs-signature"] == f"sha256={mac}"
        assert r.json()["key"] == r.headers["idempotency-key"]
        assert r.headers["idempotency-key"].startswith(r.json()["case"]["id"] + ":")
    assert set(delivered.values()) == {1} and len(delivered) == CASES
    assert failed == 0
    print(
        f"[{db_url.split(':')[0]}] {CASES} cases; {at_kill} webhooks had arrived at the kill; "
        f"{len(dupes)} sent again after it with the same key; {len(got)} requests in all"
    )
