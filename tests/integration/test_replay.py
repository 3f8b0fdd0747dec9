"""`rungs verify` and `rungs replay` on a database the live service wrote (SQLite, PostgreSQL).

Three cases run through the API on the virtual clock, with deliveries (the log channel), so
the journal holds openings, actions, timer firings and delivery results. Then: verify
reproduces every case; one edited timeline entry makes it fail naming that case; the same
inputs under a draft whose level 2 comes after 15 minutes instead of 30 give one more
escalation, and the JSON names the two cases whose timelines change.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from typer.testing import CliRunner

from rungs.bootstrap import build
from rungs.cli import app as cli
from rungs.store.tables import journal, timeline
from rungs.time.instant import MINUTE, format_utc, parse_instant
from tests.conftest import api_token

T0 = parse_instant("2026-11-02T09:00:00Z")
POLICY = """\
version: 1
timezone: UTC
channels:
  log: {}
people:
  - {id: ann, contacts: {email: ann@replay.test}}
  - {id: ben, contacts: {email: ben@replay.test}}
  - {id: cy, contacts: {email: cy@replay.test}}
customers:
  - {id: wally, name: Wally Corp, sla: quick}
  - {id: omega, name: Omega AG, sla: quick}
calendars:
  always: {timezone: UTC, hours: 24x7}
sla_policies:
  quick:
    calendar: always
    warn_at: [50]
    targets:
      P2: {first_response: 25m, resolution: 8h}
matrices:
  - id: default
    levels:
      - {name: desk, notify: [person:ann]}
      - {name: lead, after: 30m, unless: acknowledged, notify: [person:ben]}
      - {name: head, after: 2h, unless: resolved, notify: [person:cy]}
"""
DRAFT = POLICY.replace("after: 30m", "after: 15m")

# (minutes after T0, case, action, body)
STORY = [
    (0, "A", "open", {"customer": "wally", "priority": "P2", "title": "acked at 20m"}),
    (5, "B", "open", {"customer": "omega", "priority": "P2", "title": "resolved early"}),
    (7, "B", "acknowledge", {"by": "ann"}),
    (12, "B", "resolve", {"by": "ben"}),
    (20, "A", "acknowledge", {"by": "ann"}),
    (60, "A", "resolve", {"by": "ann"}),
    (120, "C", "open", {"customer": "wally", "priority": "P2", "title": "acked late"}),
    (160, "C", "acknowledge", {"by": "ben"}),
    (300, "C", "resolve", {"by": "cy"}),
]


@pytest.fixture
def lived(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict]:
    """The story run live; the database URL and the service's case ids."""
    monkeypatch.setenv("RUNGS_ALLOW_VIRTUAL_CLOCK", "1")
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    service, app = build(db_url=db_url, policy_file=policy, virtual_start=T0, role="all")
    ids: dict[str, str] = {}
    try:
        token = api_token(service.db, "admin", person="ann")
        with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
            for minutes, case, do, body in STORY:
                at = format_utc(T0 + minutes * MINUTE)
                assert client.post("/v1/clock/advance", json={"to": at}).status_code == 200
                if do == "open":
                    r = client.post("/v1/cases", json=body)
                    assert r.status_code == 201, r.text
                    ids[case] = r.json()["id"]
                else:
                    r = client.post(f"/v1/cases/{ids[case]}/{do}", json=body)
                    assert r.status_code == 200, r.text
            end = format_utc(T0 + 400 * MINUTE)
            assert client.post("/v1/clock/advance", json={"to": end}).status_code == 200
            kinds = {e["kind"] for e in client.get(f"/v1/cases/{ids['C']}/timeline").json()}
            assert "delivered" in kinds  # delivery results are journaled inputs too
    finally:
        service.stop()
        service.db.dispose()
    yield {"db": db_url, "ids": ids, "draft": tmp_path / "draft.yaml", "tmp": tmp_path}


def test_verify_reproduces_and_names_an_edited_case(lived: dict) -> None:
    runner = CliRunner()
    r = runner.invoke(cli, ["verify", "--db", lived["db"]])
    assert r.exit_code == 0, r.output
    assert r.output.strip() == "3 cases reproduced"

    from rungs.store.db import make_engine

    engine = make_engine(lived["db"])
    b = lived["ids"]["B"]
    with engine.begin() as conn:
        kinds = [j[0] for j in conn.execute(select(journal.c.event).where(journal.c.case_id == b))]
        assert [json.loads(k)["kind"] for k in kinds][:2] == ["open", "delivery"]
        row = conn.execute(
            select(timeline.c.id, timeline.c.entry).where(
                timeline.c.case_id == b, timeline.c.kind == "acknowledged"
            )
        ).one()
        edited = {**json.loads(row.entry), "by": "ben"}
        conn.execute(
            update(timeline).where(timeline.c.id == row.id).values(entry=json.dumps(edited))
        )
    engine.dispose()

    r = runner.invoke(cli, ["verify", "--db", lived["db"]])
    assert r.exit_code == 1, r.output
    lines = r.output.strip().splitlines()
    assert lines[0].startswith(f"case {b}: entry ")
    assert '"by": "ben"' in lines[0] and '"by": "ann"' in lines[0]
    assert lines[-1] == "1 of 3 cases diverge from the stored timeline"


def test_replay_under_a_shorter_level_timeout(lived: dict) -> None:
    runner = CliRunner()
    same = lived["tmp"] / "same.yaml"
    same.write_text(POLICY)
    r = runner.invoke(cli, ["replay", "--db", lived["db"], "--policy", str(same), "--json"])
    assert r.exit_code == 0, r.output
    unchanged = json.loads(r.output)
    assert unchanged["cases"] == 3 and unchanged["changed_cases"] == []

    lived["draft"].write_text(DRAFT)
    r = runner.invoke(
        cli, ["replay", "--db", lived["db"], "--policy", str(lived["draft"]), "--json"]
    )
    assert r.exit_code == 0, r.output
    got = json.loads(r.output)
    ids = lived["ids"]
    assert set(got) == {"cases", "changed_cases", "summary", "by_customer"}
    assert got["cases"] == 3
    assert got["changed_cases"] == sorted([ids["A"], ids["C"]])
    esc = got["summary"]["escalations"]
    assert esc == {"before": 2, "after": 3}  # A now escalates before its acknowledgement
    assert got["summary"]["pages"]["after"] == got["summary"]["pages"]["before"] + 1
    assert got["by_customer"]["wally"]["escalations"] == {"before": 2, "after": 3}
    assert got["by_customer"]["omega"]["escalations"] == {"before": 0, "after": 0}
    assert got["summary"]["sla_breaches"] == unchanged["summary"]["sla_breaches"]

    # --to: only the cases opened by then, each re-run up to it
    early = format_utc(T0 + 30 * MINUTE)
    r = runner.invoke(
        cli,
        ["replay", "--db", lived["db"], "--policy", str(lived["draft"]), "--to", early, "--json"],
    )
    assert json.loads(r.output)["changed_cases"] == [ids["A"]]

    r = runner.invoke(cli, ["replay", "--db", lived["db"], "--policy", str(lived["draft"])])
    assert r.exit_code == 0, r.output
    assert "3 cases replayed, 2 changed" in r.output
    assert f"case {ids['A']}" in r.output and "escalated" in r.output


def test_replay_route_and_the_engine_verifying_itself(lived: dict) -> None:
    """`POST /v1/policy/replay` answers the CLI's JSON; `--verify-every` under the virtual
    clock verifies at its instant, and `/metrics` shows the result."""
    runner = CliRunner()
    lived["draft"].write_text(DRAFT)
    window = ["--from", format_utc(T0), "--to", format_utc(T0 + 400 * MINUTE)]
    r = runner.invoke(
        cli, ["replay", "--db", lived["db"], "--policy", str(lived["draft"]), *window, "--json"]
    )
    by_cli = json.loads(r.output)
    policy = lived["tmp"] / "policy.yaml"
    later = T0 + 400 * MINUTE
    service, app = build(
        db_url=lived["db"], policy_file=policy, virtual_start=later, verify_every=60 * MINUTE
    )
    try:
        admin = {"Authorization": f"Bearer {api_token(service.db, 'admin')}"}
        responder = {"Authorization": f"Bearer {api_token(service.db, 'responder')}"}
        with TestClient(app) as c:
            query = {"from": format_utc(T0), "to": format_utc(later)}
            url = "/v1/policy/replay"
            r = c.post(url, params=query, content=DRAFT, headers=admin)
            assert r.status_code == 200, r.text
            assert r.json() == by_cli
            assert c.post(url, params=query, content=DRAFT, headers=responder).status_code == 403
            bad = c.post(url, params=query, content="matrices: [", headers=admin)
            assert bad.status_code == 422 and bad.json()["field"] == "body"
            assert "POST /v1/policy/replay:1:" in bad.json()["detail"]
            wide = {"from": "2026-01-01T00:00:00Z", "to": format_utc(later)}
            r = c.post(url, params=wide, content=DRAFT, headers=admin)
            assert r.status_code == 422 and r.json()["field"] == "from"
            r = c.post(url, params={"to": "yesterday"}, content=DRAFT, headers=admin)
            assert r.status_code == 422 and r.json()["field"] == "to"
            r = c.post(url, content=b"#" * 1_000_001, headers=admin)
            assert r.status_code == 413

            assert "rungs_verify_ok" not in c.get("/metrics").text  # none has run yet
            at = format_utc(later + 61 * MINUTE)
            assert c.post("/v1/clock/advance", json={"to": at}, headers=admin).status_code == 200
            metrics = c.get("/metrics").text
            assert 'rungs_verify_cases{result="reproduced"} 3.0' in metrics
            assert "rungs_verify_ok 1.0" in metrics
            line = next(x for x in metrics.splitlines() if x.startswith("rungs_verify_last_run"))
            assert float(line.split()[1]) == (later + 60 * MINUTE) / 1e6  # at its instant
    finally:
        service.stop()
        service.db.dispose()


def test_cases_stored_before_the_journal_are_not_replayable(tmp_path: Path) -> None:
    """Migration 0010 marks the cases it finds; verify counts them apart, and passes."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import insert

    from rungs.store.db import MIGRATIONS, make_engine, upgrade
    from rungs.store.tables import cases

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0006")
    with engine.begin() as conn:
        conn.execute(
            insert(cases).values(
                id="C1",
                status="open",
                customer="wally",
                priority="P2",
                level=1,
                policy_version=1,
                state="{}",
                opened_at=T0,
                updated_at=T0,
            )
        )
    upgrade(engine)
    with engine.connect() as conn:
        marks = conn.execute(select(journal.c.case_id, journal.c.event)).all()
    engine.dispose()
    assert [(c, json.loads(e)) for c, e in marks] == [("C1", {"kind": "not_replayable"})]
    r = CliRunner().invoke(cli, ["verify", "--db", url])
    assert r.exit_code == 0, r.output
    assert r.output.splitlines() == [
        "0 cases reproduced",
        "1 cases not replayable (stored before the input journal)",
    ]


@pytest.mark.parametrize("every", ["5s", "soon"])
def test_verify_every_is_a_duration_of_a_minute_or_more(every: str) -> None:
    r = CliRunner().invoke(cli, ["serve", "--verify-every", every])
    assert r.exit_code == 1
    assert "--verify-every" in r.output


def test_the_replay_route_parses_the_draft_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A megabyte of YAML would stall every other request while it parses on the loop."""
    import asyncio

    from rungs.api.routes import replay

    parsed_on: list[bool] = []
    real = replay.load_policy_text

    def spy(*args: Any, **kw: Any) -> Any:  # the real parse, noting whether a loop runs here
        try:
            asyncio.get_running_loop()
            parsed_on.append(True)
        except RuntimeError:
            parsed_on.append(False)
        return real(*args, **kw)

    monkeypatch.setattr(replay, "load_policy_text", spy)
    monkeypatch.setenv("RUNGS_ALLOW_VIRTUAL_CLOCK", "1")
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    service, app = build(db_url=f"sqlite:///{tmp_path / 'r.db'}", policy_file=policy,
                         virtual_start=T0)  # fmt: skip
    try:
        admin = {"Authorization": f"Bearer {api_token(service.db, 'admin')}"}
        with TestClient(app) as c:
            r = c.post("/v1/policy/replay", content=DRAFT, headers=admin)
        assert r.status_code == 200, r.text
        assert parsed_on == [False]
    finally:
        service.stop()
        service.db.dispose()
