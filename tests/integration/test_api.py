"""The REST API's contract: status codes, errors naming fields, policy versions, dedup, filters."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from rungs.bootstrap import build, prepare
from rungs.time.instant import parse_instant
from tests.conftest import ROOT, auth_headers

ACME = ROOT / "src" / "rungs" / "examples" / "acme.yaml"
START = "2026-11-24T08:00:00Z"


@pytest.fixture
def client(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("RUNGS_ALLOW_VIRTUAL_CLOCK", "1")
    prepare(db_url=db_url, policy_file=ACME)  # stored once, then database-managed: PUT stores
    service, app = build(db_url=db_url, policy_file=None, virtual_start=parse_instant(START))
    try:
        with TestClient(app, headers=auth_headers(service)) as c:
            yield c
    finally:
        service.stop()
        service.db.dispose()


def _open(client: TestClient, **extra: object) -> dict:
    body = {"customer": "initech", "category": "general", "priority": "P2", "title": "t", **extra}
    r = client.post("/v1/cases", json=body)
    assert r.status_code in (200, 201), r.text
    return r.json()


def test_open_read_and_act(client: TestClient) -> None:
    case = _open(client)
    assert case["status"] == "open" and case["level"] == 1 and case["policy_version"] == 1
    assert case["sla"]["first_response"]["due"] == "2026-11-24T12:00:00Z"  # 09:00 Berlin + 4h
    assert client.get(f"/v1/cases/{case['id']}").json()["id"] == case["id"]
    r = client.post(f"/v1/cases/{case['id']}/acknowledge", json={"by": "alice"})
    assert r.status_code == 200 and r.json()["status"] == "acknowledged"
    again = client.post(f"/v1/cases/{case['id']}/acknowledge", json={"by": "bob"})
    assert again.status_code == 409 and "already acknowledged" in again.json()["detail"]
    r = client.post(f"/v1/cases/{case['id']}/resolve", json={"by": "alice"})
    assert r.json()["status"] == "resolved"
    r = client.post(f"/v1/cases/{case['id']}/pending", json={"by": "alice"})
    assert r.status_code == 409 and "resolved" in r.json()["detail"]
    kinds = [e["kind"] for e in client.get(f"/v1/cases/{case['id']}/timeline").json()]
    assert kinds[:1] == ["opened"] and "acknowledged" in kinds and kinds[-1] == "resolved"


def test_errors_name_the_field(client: TestClient) -> None:
    r = client.post("/v1/cases", json={"customer": "nobody", "title": "t"})
    assert r.status_code == 422 and r.json()["field"] == "customer"
    assert "nobody" in r.json()["detail"]
    r = client.post("/v1/cases", json={"customer": "initech", "title": "t", "colour": "red"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "colour"
    r = client.post("/v1/cases", json={"customer": "initech", "title": "t", "priority": "P9"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "priority"
    r = client.post("/v1/cases", json={"customer": "initech", "title": "x" * 2000})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "title"
    case = _open(client)
    r = client.post(f"/v1/cases/{case['id']}/escalate", json={"by": "bob", "reason": "whim"})
    assert r.status_code == 422 and r.json()["field"] == "reason" and "whim" in r.json()["detail"]
    r = client.post(f"/v1/cases/{case['id']}/assign", json={"by": "bob", "to": "team:nope"})
    assert r.status_code == 422 and r.json()["field"] == "to"
    r = client.post(f"/v1/cases/{case['id']}/launch", json={})
    assert r.status_code == 404 and r.json()["field"] == "action"
    assert client.get("/v1/cases/C999999").status_code == 404
    assert client.post("/v1/cases/C999999/acknowledge", json={}).status_code == 404
    # nothing above changed the case
    assert [e["kind"] for e in client.get(f"/v1/cases/{case['id']}/timeline").json()].count(
        "escalated"
    ) == 0


def test_dedup_key_returns_the_open_case(client: TestClient) -> None:
    first = _open(client, dedup_key="disk-full-db1")
    r = client.post(
        "/v1/cases", json={"customer": "initech", "title": "again", "dedup_key": "disk-full-db1"}
    )
    assert r.status_code == 200 and r.json()["id"] == first["id"]
    client.post(f"/v1/cases/{first['id']}/resolve", json={"by": "bob"})
    third = _open(client, dedup_key="disk-full-db1")
    assert third["id"] != first["id"]


def test_list_filters_and_paging(client: TestClient) -> None:
    ids = [_open(client, priority=p)["id"] for p in ("P1", "P2", "P2", "P3")]
    client.post(f"/v1/cases/{ids[1]}/acknowledge", json={"by": "bob"})
    page = client.get("/v1/cases", params={"priority": "P2"}).json()
    assert page["total"] == 2 and [c["id"] for c in page["items"]] == ids[1:3]
    assert client.get("/v1/cases", params={"status": "acknowledged"}).json()["total"] == 1
    page = client.get("/v1/cases", params={"limit": 2, "offset": 2}).json()
    assert page["total"] == 4 and [c["id"] for c in page["items"]] == ids[2:]
    assert client.get("/v1/cases", params={"limit": 0}).status_code == 422


def test_policy_versions_and_adoption(client: TestClient) -> None:
    old = _open(client)
    r = client.get("/v1/policy")
    assert r.headers["x-rungs-policy-version"] == "1" and "matrices:" in r.text
    bad = client.put("/v1/policy", content=r.text.replace("after: 30m", "after: 30x"))
    assert bad.status_code == 422
    assert any("malformed duration '30x'" in e["message"] for e in bad.json()["errors"])
    assert client.get("/v1/policy").headers["x-rungs-policy-version"] == "1"  # nothing changed
    faster = r.text.replace("after: 30m", "after: 10m")
    assert client.put("/v1/policy", content=faster).json() == {"version": 2}
    new = _open(client)
    assert (
        new["policy_version"] == 2
        and client.get(f"/v1/cases/{old['id']}").json()["policy_version"] == 1
    )
    client.post("/v1/clock/advance", json={"to": "2026-11-24T08:15:00Z"})
    old_t = client.get(f"/v1/cases/{old['id']}/timeline").json()
    new_t = client.get(f"/v1/cases/{new['id']}/timeline").json()
    assert not any(e["kind"] == "escalated" for e in old_t)  # v1: level 2 after 30m
    assert any(e["kind"] == "escalated" and e["policy_version"] == 2 for e in new_t)
    adopted = client.post(f"/v1/cases/{old['id']}/adopt_policy").json()
    assert adopted["policy_version"] == 2 and adopted["level"] == 1


def test_handoff_health_metrics(client: TestClient) -> None:
    case = _open(client, customer="globex", category="network", priority="P1")
    client.post("/v1/clock/advance", json={"to": "2026-11-24T08:20:00Z"})
    h = client.get(f"/v1/cases/{case['id']}/handoff").json()
    assert h["customer"]["tier"] == "gold" and h["case"]["level"] == 2
    assert client.get("/healthz").json()["status"] == "ok"
    m = client.get("/metrics").text
    assert 'rungs_cases{status="open"} 1.0' in m and "rungs_timers_pending" in m
    assert "rungs_engine_lateness_seconds" in m and "rungs_api_latency_seconds" in m


def test_virtual_clock_needs_permission(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RUNGS_ALLOW_VIRTUAL_CLOCK", raising=False)
    with pytest.raises(PermissionError):
        build(db_url=f"sqlite:///{tmp_path / 'x.db'}", policy_file=ACME, virtual_start=0)
