"""Reports over the live service equal reports over the simulator, on SQLite and PostgreSQL.

The core stories and a reports story are merged into one (`rungs.sim.merge`) and told to a
live service on the virtual clock over HTTP, as `test_api_stories` does. Then:

- every `case_facts` row the engine kept, decision by decision, equals the row derived from
  the simulated timeline of the same case;
- every report section over `GET /v1/reports/...` equals `rungs report --simulate` over the
  same stories (case ids mapped to the stories' names);
- dropping the table and migrating again backfills the same rows from the timelines;
- a bad `from`, `to`, `by` or `format` is a 422 naming it, and a viewer may read reports.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from fastapi.testclient import TestClient
from sqlalchemy import text

from rungs.bootstrap import build
from rungs.cli.report import simulated_report
from rungs.core.facts import derive, terms_for
from rungs.policy import load_policy
from rungs.sim import load_story, run_story
from rungs.sim.merge import merge_stories
from rungs.store.db import MIGRATIONS
from rungs.store.facts import COLUMNS, row_of
from rungs.store.jsonbytes import loads
from rungs.store.views.reports import SECTIONS
from rungs.time.instant import format_utc
from tests.conftest import ROOT, api_token

CORE = ROOT / "tests" / "scenarios" / "core"
POLICY = CORE / "policy.yaml"
STORIES = [
    *(
        p
        for p in sorted(CORE.glob("*.story.yaml"))
        if not p.with_name(p.name.replace(".story.yaml", ".expected-error.txt")).exists()
    ),
    ROOT / "tests" / "fixtures" / "reports" / "assignments.story.yaml",
]


def _normal(value: Any, names: dict[str, str]) -> Any:
    """Live case ids as the stories' names; lists of ids (and of cases) sorted."""
    if isinstance(value, dict):
        return {k: _normal(v, names) for k, v in value.items()}
    if isinstance(value, list):
        items = [_normal(v, names) for v in value]
        if all(isinstance(i, str) for i in items):
            return sorted(items)
        if all(isinstance(i, dict) and "case" in i for i in items):
            return sorted(items, key=lambda i: i["case"])
        return items
    if isinstance(value, str):
        return names.get(value, value)
    return value


def _row_without_id(row: dict[str, Any]) -> dict[str, Any]:
    state = loads(row["state"])
    state.pop("case", None)
    return {**{k: v for k, v in row.items() if k not in ("case_id", "state")}, "state": state}


def test_reports_live_equal_reports_simulated(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNGS_ALLOW_VIRTUAL_CLOCK", "1")
    policy = load_policy(POLICY)
    story = merge_stories([load_story(p) for p in STORIES])
    sim = run_story(policy, story)
    files = [str(POLICY), *map(str, STORIES)]
    simulated = {s: simulated_report(files[0], files[1:], s) for s in SECTIONS}
    grouped = {
        ("summary", "tier"): simulated_report(files[0], files[1:], "summary", "tier"),
        ("sla", "priority"): simulated_report(files[0], files[1:], "sla", "priority"),
    }
    window = {"from": simulated["summary"]["from"], "to": simulated["summary"]["to"]}
    service, app = build(
        db_url=db_url, policy_file=POLICY, virtual_start=story.events[0].at, role="engine"
    )
    ids: dict[str, str] = {}
    token = api_token(service.db, "admin", person="ann")
    viewer = api_token(service.db, "viewer")
    try:
        with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
            for ev in story.events:
                r = client.post("/v1/clock/advance", json={"to": format_utc(ev.at)})
                assert r.status_code == 200, r.text
                if ev.do == "open":
                    r = client.post("/v1/cases", json=ev.params)
                    assert r.status_code == 201, r.text
                    ids[ev.case] = r.json()["id"]
                else:
                    r = client.post(f"/v1/cases/{ids[ev.case]}/{ev.do}", json=ev.params)
                    assert r.status_code == 200, r.text
            assert story.until is not None
            r = client.post("/v1/clock/advance", json={"to": format_utc(story.until)})
            assert r.status_code == 200, r.text
            names = {cid: name for name, cid in ids.items()}
            as_viewer = {"Authorization": f"Bearer {viewer}"}
            for section in SECTIONS:
                r = client.get(f"/v1/reports/{section}", params=window, headers=as_viewer)
                assert r.status_code == 200, r.text
                assert _normal(r.json(), names) == _normal(simulated[section], {}), section
            for (section, by), expected in grouped.items():
                r = client.get(f"/v1/reports/{section}", params={**window, "by": by})
                assert r.status_code == 200, r.text
                assert _normal(r.json(), names) == _normal(expected, {}), (section, by)
            _bad_input(client)
            _cli_reads_the_same(db_url, window, simulated["summary"], names)
            kept = _facts_rows(service.db)
        _facts_equal_derived(kept, names, sim.timeline, policy)
        assert kept, "no facts kept"
        _backfill_gives_the_same_rows(service.db, kept)
    finally:
        service.stop()
        service.db.dispose()


def _bad_input(client: TestClient) -> None:
    for params, field in (
        ({"from": "yesterday", "to": "2026-06-02"}, "from"),
        ({"from": "2026-06-02", "to": "2026-06-01"}, "to"),
        ({"from": "2026-06-01", "to": "2026-06-02", "by": "planet"}, "by"),
        ({"from": "2026-06-01", "to": "2026-06-02", "format": "xml"}, "format"),
        ({"from": "1900-01-01", "to": "2026-06-02"}, "to"),
    ):
        r = client.get("/v1/reports/summary", params=params)
        assert r.status_code == 422, (params, r.text)
        assert r.json()["field"] == field, (params, r.text)
    r = client.get(
        "/v1/reports/sla", params={"from": "2026-06-01", "to": "2026-06-03", "format": "csv"}
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.text.splitlines()[0].startswith("metric,priority,clock,met,breached")


def _cli_reads_the_same(
    db_url: str, window: dict[str, str], expected: dict[str, Any], names: dict[str, str]
) -> None:
    """`rungs report --db` prints the same summary as JSON; `--csv` its table; a bad `--by`
    is named."""
    import json

    from typer.testing import CliRunner

    from rungs.cli import app

    args = ["report", "--db", db_url, "--from", window["from"], "--to", window["to"]]
    res = CliRunner().invoke(app, [*args, "--json"])
    assert res.exit_code == 0, res.output
    assert _normal(json.loads(res.output), names) == _normal(expected, {})
    csv = CliRunner().invoke(app, [*args, "--csv", "--by", "priority"])
    assert csv.exit_code == 0 and csv.output.startswith("group,cases,escalated_cases")
    bad = CliRunner().invoke(app, [*args, "--by", "planet"])
    assert bad.exit_code == 1 and "--by: unknown grouping 'planet'" in bad.output


def _facts_rows(db: Any) -> dict[str, dict[str, Any]]:
    with db.connect() as conn:
        rows = conn.execute(text("SELECT * FROM case_facts")).mappings().all()
    return {r["case_id"]: dict(r) for r in rows}


def _facts_equal_derived(
    kept: dict[str, dict[str, Any]], names: dict[str, str], timeline: list[Any], policy: Any
) -> None:
    per_case: dict[str, list[Any]] = {}
    for e in timeline:
        per_case.setdefault(e["case"], []).append(e)
    assert sorted(names[c] for c in kept) == sorted(per_case)
    for cid, row in kept.items():
        entries = per_case[names[cid]]
        terms = terms_for(policy, entries[0]["customer"])
        f = derive(entries, terms)
        assert f is not None
        derived = dict(zip(COLUMNS, row_of(f, terms), strict=True))
        assert _row_without_id(row) == _row_without_id(derived), names[cid]


def _backfill_gives_the_same_rows(db: Any, kept: dict[str, dict[str, Any]]) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with db.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0007")
    with db.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    assert _facts_rows(db) == kept


def test_simulated_report_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    """`rungs report --simulate POLICY STORY --json`: the pinned keys at the top level."""
    import json

    from typer.testing import CliRunner

    from rungs.cli import app

    story = ROOT / "tests" / "fixtures" / "reports" / "assignments.story.yaml"
    res = CliRunner().invoke(app, ["report", "--simulate", str(POLICY), str(story), "--json"])
    assert res.exit_code == 0, res.output
    got = json.loads(res.output)
    assert got["ping_pong_cases"] == ["PP-1"]
    assert got["cases"] == 4 and got["reopened_cases"] == 1 and got["right_first_time"] == 1
    assert got["escalations_by_reason"] == {"customer_request": 1, "technical": 1}
    assert got["escalations_by_cause"]["manual"] == 1
    assert got["escalations_by_cause"]["customer"] == 1
    assert set(got["definitions"]) >= {"cases", "escalation_rate", "ping_pong_cases"}
    assert Path(story).exists()


def test_simulated_sla_times_exclude_the_unacknowledged() -> None:
    """MTTA leaves out (and counts) cases never acknowledged; percentiles by nearest rank."""
    story = ROOT / "tests" / "fixtures" / "reports" / "assignments.story.yaml"
    got = simulated_report(str(POLICY), [str(story)], "sla")
    # acknowledged after 30m (MV-1) and 5m (RF-1); PP-1 and RO-1 never
    assert got["mtta"] == {"n": 2, "mean_s": 1050.0, "median_s": 300.0, "p90_s": 1800.0,
                           "unacknowledged": 2}  # fmt: skip
    # resolved for good after 90m (MV-1) and 20m (RF-1); RO-1 was reopened, PP-1 is open
    assert got["mttr"] == {"n": 2, "mean_s": 3300.0, "median_s": 1200.0, "p90_s": 5400.0}
    first = {r["priority"]: r for r in got["achievement"] if r["metric"] == "first_response"}
    assert (first["P2"]["met"], first["P2"]["breached"], first["P2"]["achievement"]) == (1, 1, 0.5)
