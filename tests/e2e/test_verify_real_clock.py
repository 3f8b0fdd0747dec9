"""`rungs verify` on a database a real `rungs serve` wrote on the real clock.

There the loop fires each timer a little after it is due, and decides at that later instant:
the journal keeps the instant each firing was decided at, so the re-run comes out exactly the
same. Four cases escalate after 2 seconds (one is acknowledged first), with deliveries through
the log channel; then the server stops and `rungs verify` reproduces all four.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import httpx
from sqlalchemy import select

from rungs.store.db import make_engine
from rungs.store.tables import journal
from tests.procs import RUNGS, Servers, cli_token, wait_until

POLICY = """\
version: 1
timezone: UTC
channels:
  log: {}
people:
  - {id: ann, contacts: {email: ann@verify.test}}
  - {id: ben, contacts: {email: ben@verify.test}}
customers:
  - {id: wally, name: Wally Corp}
matrices:
  - id: default
    levels:
      - {name: desk, notify: [person:ann]}
      - {name: lead, after: 2s, unless: acknowledged, notify: [person:ben]}
"""


def test_verify_reproduces_what_the_real_clock_decided(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    db = f"sqlite:///{tmp_path / 'rungs.db'}"
    token = cli_token(db)
    auth = {"Authorization": f"Bearer {token}"}
    with Servers(tmp_path) as servers:
        server = servers.start("verify", db, policy)
        server.wait_healthy()
        with httpx.Client(base_url=server.url, headers=auth, timeout=10) as c:
            ids = []
            for n in range(4):
                r = c.post("/v1/cases", json={"customer": "wally", "title": f"case {n}"})
                assert r.status_code == 201, r.text
                ids.append(r.json()["id"])
            r = c.post(f"/v1/cases/{ids[0]}/acknowledge", json={"by": "ann"})
            assert r.status_code == 200, r.text

            def settled() -> bool:
                kinds = [
                    [e["kind"] for e in c.get(f"/v1/cases/{cid}/timeline").json()]
                    for cid in ids[1:]
                ]
                return all("escalated" in k and k.count("delivered") == 2 for k in kinds)

            wait_until("escalations and their deliveries", settled, timeout=30)
        server.signal(signal.SIGTERM)
        server.proc.wait(timeout=30)
    engine = make_engine(db)
    with engine.connect() as conn:
        rows = conn.execute(select(journal.c.at, journal.c.event)).all()
    engine.dispose()
    fired = [(at, json.loads(e)) for at, e in rows if json.loads(e)["kind"] == "timer"]
    assert fired and all(at >= e["due"] for at, e in fired)
    assert any(at > e["due"] for at, e in fired)  # late, as a real loop is
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNGS_")}
    done = subprocess.run(
        [str(RUNGS), "verify", "--db", db], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "4 cases reproduced"
