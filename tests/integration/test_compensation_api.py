"""Compensation over the live API on the virtual clock, on SQLite and PostgreSQL: value at
risk before the breaches, a month's suggestions (the same when run again), approve with
another amount and reject, each with a reason, on the ledger and the case's timeline; the
CSV export; the admin role and bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from rungs.bootstrap import build
from rungs.time.instant import parse_instant
from tests.conftest import ROOT, api_token

CORE = ROOT / "tests" / "scenarios" / "core" / "policy.yaml"
SECTION = ROOT / "tests" / "fixtures" / "reports" / "compensation.yaml"
T0 = parse_instant("2026-06-01T10:00:00Z")


def _policy(tmp: Path) -> Path:
    text = CORE.read_text(encoding="utf-8")
    text = text.replace("tier: gold, sla: wall}", "tier: gold, sla: wall, value: 120000}")
    text = text.replace("tier: standard, sla: fine}", "tier: standard, sla: fine, value: 24000}")
    path = tmp / "policy.yaml"
    path.write_text(text + "\n" + SECTION.read_text(encoding="utf-8"), encoding="utf-8")
    return path


def test_compensation_month(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNGS_ALLOW_VIRTUAL_CLOCK", "1")
    service, app = build(db_url=db_url, policy_file=_policy(tmp_path), virtual_start=T0,
                         role="engine")  # fmt: skip
    admin = {"Authorization": f"Bearer {api_token(service.db, 'admin', person='ann')}"}
    viewer = {"Authorization": f"Bearer {api_token(service.db, 'viewer')}"}
    try:
        with TestClient(app, headers=admin) as client:

            def advance(to: str) -> None:
                assert client.post("/v1/clock/advance", json={"to": to}).status_code == 200

            def post(path: str, body: dict[str, object], status: int = 200) -> dict:
                r = client.post(path, json=body)
                assert r.status_code == status, r.text
                return r.json()

            gold = post("/v1/cases", {"customer": "wally", "priority": "P1", "title": "a"}, 201)
            std = post("/v1/cases", {"customer": "omega", "priority": "P2", "title": "b"}, 201)
            advance("2026-06-01T10:10:00Z")
            r = client.get("/v1/reports/value-at-risk", params={"horizon": "30m"}, headers=viewer)
            assert r.status_code == 200, r.text
            risk = r.json()
            assert [c["customer"] for c in risk["customers"]] == ["wally"]
            assert risk["customers"][0]["value"] == 120000
            assert risk["customers"][0]["cases"][0]["due_soon"] == [
                {"metric": "first_response", "due": "2026-06-01T10:20:00Z"}
            ]
            bad = client.get("/v1/reports/value-at-risk", params={"horizon": "soon"})
            assert bad.status_code == 422 and bad.json()["field"] == "horizon"
            advance("2026-06-01T13:00:00Z")
            post(f"/v1/cases/{gold['id']}/resolve", {})
            advance("2026-06-01T15:00:00Z")
            post(f"/v1/cases/{std['id']}/resolve", {})
            early = post("/v1/compensation/run", {"period": "2026-06"}, 409)
            assert early["field"] == "period" and "not over" in early["detail"]
            advance("2026-07-01T00:00:10Z")
            assert post("/v1/compensation/run", {"period": "2026-05"})["new"] == 0
            assert post("/v1/compensation/run", {"period": "2026-06"})["new"] == 4
            first = client.get("/v1/compensation", params={"period": "2026-06"}).json()["items"]
            assert post("/v1/compensation/run", {"period": "2026-06"})["new"] == 0
            again = client.get("/v1/compensation", params={"period": "2026-06"}).json()["items"]
            assert again == first
            got = {(i["case_id"], i["metric"]): i for i in first}
            # wally: 10,000.00 a month; first response (5 %, band 2) first, then resolution
            # (10 %, band 1: 3h against 2h is 50 % over) cut by the 12 % cap to 700.00
            assert got[(gold["id"], "first_response")]["amount"] == "500.00"
            res = got[(gold["id"], "resolution")]
            assert res["amount"] == "700.00" and res["rationale"]["band"] == 1
            assert res["rationale"]["breach"]["overrun_percent"] == 50.0
            assert got[(std["id"], "resolution")]["amount"] == "40.00"  # 2 % of 2,000.00
            assert {i["table_version"] for i in first} == {"2026-06-a"}

            missing = client.post(f"/v1/compensation/{res['id']}/approve", json={})
            assert missing.status_code == 422 and missing.json()["field"] == "reason"
            assert client.post(f"/v1/compensation/{res['id']}/approve", json={"reason": "x"},
                               headers=viewer).status_code == 403  # fmt: skip
            ok = post(f"/v1/compensation/{res['id']}/approve",
                      {"reason": "goodwill, rounded", "amount": 650})  # fmt: skip
            assert (ok["status"], ok["decided_amount"], ok["decided_by"]) == (
                "approved",
                "650.00",
                "ann",
            )
            no = got[(std["id"], "first_response")]
            post(f"/v1/compensation/{no['id']}/reject", {"reason": "customer caused the delay"})
            twice = post(f"/v1/compensation/{res['id']}/reject", {"reason": "again"}, 409)
            assert "already approved" in twice["detail"]
            assert post("/v1/compensation/999999/approve", {"reason": "x"}, 404)

            timeline = client.get(f"/v1/cases/{gold['id']}/timeline").json()
            entries = [e for e in timeline if e["kind"] == "compensation"]
            assert len(entries) == 1
            e = entries[0]
            assert (e["decision"], e["amount"], e["reason"], e["by"]) == (
                "approved",
                "650.00",
                "goodwill, rounded",
                "ann",
            )
            assert e["suggestion"] == res["id"] and e["metric"] == "resolution"

            csv = client.get("/v1/compensation", params={"period": "2026-06", "format": "csv"})
            assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
            lines = csv.text.splitlines()
            assert lines[0].startswith("id,customer,period,case_id,metric") and len(lines) == 5
            assert sum(",approved," in x for x in lines) == 1
            assert sum(",rejected," in x for x in lines) == 1
            assert client.get("/v1/compensation", headers=viewer).status_code == 403
            wrong = client.get("/v1/compensation", params={"period": "June-26"})
            assert wrong.status_code == 422 and wrong.json()["field"] == "period"
    finally:
        service.stop()
        service.db.dispose()


def test_value_at_risk_from_the_command_line(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`rungs report --section value-at-risk`: the API's answer over the open cases now, as
    JSON, CSV or a table; bad options are one line naming the option, exit 1."""
    import json

    from typer.testing import CliRunner

    from rungs.cli import app as cli

    service, app = build(db_url=db_url, policy_file=_policy(tmp_path), role="engine")
    admin = {"Authorization": f"Bearer {api_token(service.db, 'admin', person='ann')}"}
    try:
        with TestClient(app, headers=admin) as client:
            for customer, priority in (("wally", "P1"), ("omega", "P2")):
                r = client.post("/v1/cases", json={"customer": customer, "priority": priority,
                                                   "title": "down"})  # fmt: skip
                assert r.status_code == 201, r.text
            api = client.get("/v1/reports/value-at-risk", params={"horizon": "1d"}).json()
    finally:
        service.stop()
    run = CliRunner().invoke
    args = ["report", "--db", db_url, "--section", "value-at-risk", "--horizon", "1d"]
    res = run(cli, [*args, "--json"])
    assert res.exit_code == 0, res.output
    got = json.loads(res.output)
    assert [c["customer"] for c in got["customers"]] == ["wally", "omega"]  # most valuable first
    assert got["value_at_risk"] == api["value_at_risk"] == 144000
    assert got["customers"] == api["customers"]
    res = run(cli, [*args, "--csv"])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0] == "customer,tier,value,past breach,near breach,cases"
    assert lines[1].startswith("wally,gold,120000,0,1,")
    res = run(cli, args)
    assert res.exit_code == 0 and "value at risk" in res.output and "wally" in res.output
    for bad, says in (
        (["--horizon", "soon"], "--horizon:"),
        (["--horizon", "400d"], "--horizon: at most a year"),
        (["--from", "2026-01-01"], "no --simulate, --from, --to or --by"),
    ):
        res = run(cli, [*args, *bad])
        assert res.exit_code == 1 and says in res.output, (bad, res.output)
