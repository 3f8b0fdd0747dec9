"""What a newcomer sees of the running service: `/docs` without the internet, one log line per
request (never a key or a token), `/metrics` that say where messages go, change events."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from tests.integration import test_api

KEY = "backups-key-0123456789"
PD_KEY = "pagerduty-key-0123456789"

# the API tests' client: the example policy on SQLite and PostgreSQL, at 2026-11-24T08:00Z on
# a virtual clock, with an admin token
client = test_api.client


@pytest.fixture(autouse=True)
def _keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """The example policy's integration keys (its `key_env`s), set before the client starts."""
    monkeypatch.setenv("RUNGS_BACKUPS_KEY", KEY)
    monkeypatch.setenv("RUNGS_PAGERDUTY_KEY", PD_KEY)


def test_docs_are_served_without_the_internet(client: TestClient) -> None:
    page = client.get("/docs", headers={"Authorization": ""})
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    html = page.text
    assert "/docs/static/swagger-ui-bundle.js" in html and "/docs/static/swagger-ui.css" in html
    assert "cdn." not in html and "https://" not in html.replace("https://swagger.io", "")
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"):
        r = client.get(f"/docs/static/{asset}")
        assert r.status_code == 200 and len(r.content) > 500, asset
    assert client.get("/docs/oauth2-redirect").status_code == 200
    assert client.get("/redoc").status_code == 404  # its script would come from a CDN
    assert client.get("/openapi.json").status_code == 200


def test_one_log_line_per_request_without_keys_or_tokens(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="rungs.access")
    token = client.headers["Authorization"].removeprefix("Bearer ")
    body = {"title": "Backup failed on db1", "dedup_key": "backup-db1"}
    assert client.post(f"/v1/integrations/{KEY}/events", json=body).status_code == 202
    opened = client.post("/v1/cases", json={"customer": "initech", "title": "t"})
    assert opened.status_code == 201
    assert client.get("/v1/cases?status=open").status_code == 200
    assert client.get("/no/such/path/secret-ish").status_code == 404
    assert client.get("/docs/static/swagger-ui.css").status_code == 200
    lines = [r.getMessage() for r in caplog.records if r.name == "rungs.access"]
    assert len(lines) == 5, lines
    assert lines[4].startswith("GET /docs/static/{path} 200 ")
    assert lines[0].startswith("POST /v1/integrations/{key}/events 202 ")
    assert lines[1].startswith("POST /v1/cases 201 ")  # the fast lane: its own literal path
    assert lines[2].startswith("GET /v1/cases 200 ")
    assert lines[3].startswith("GET (no route) 404 ")
    assert all(line.endswith("ms") for line in lines)
    text = "\n".join(lines)
    assert KEY not in text and token not in text and "secret-ish" not in text
    assert "status=open" not in text


def _change(summary: str, **details: object) -> dict[str, object]:
    payload: dict[str, object] = {"summary": summary, "source": "ci"}
    if details:
        payload["custom_details"] = details
    links = [{"href": "https://ci.example/build/7", "text": "build 7"}]
    return {"routing_key": PD_KEY, "payload": payload, "links": links}


def test_change_events_show_in_the_handoff_of_cases_that_open_soon_after(
    client: TestClient,
) -> None:
    r = client.post("/v2/change/enqueue", json=_change("Deploy api 1.2 to fra1"))
    assert r.status_code == 202, r.text
    assert r.json() == {"status": "success", "message": "Change event processed"}
    other = _change("Billing cron moved", customer="initech")
    assert client.post("/v2/change/enqueue", json=other).status_code == 202
    # refused in PagerDuty's own shape: a wrong key, a missing summary, an unreadable timestamp
    bad = client.post("/v2/change/enqueue", json={**_change("x"), "routing_key": "nope"})
    assert bad.status_code == 400 and bad.json()["errors"] == ["Invalid routing key"]
    missing = _change("x")
    missing["payload"] = {"source": "ci"}
    r = client.post("/v2/change/enqueue", json=missing)
    assert r.status_code == 400 and r.json()["status"] == "invalid event", r.text
    late = _change("x")
    late["payload"] = {"summary": "x", "timestamp": "yesterday"}
    r = client.post("/v2/change/enqueue", json=late)
    assert r.status_code == 400 and "timestamp" in r.json()["errors"][0], r.text

    def opened(customer: str, category: str) -> str:
        body = {"customer": customer, "category": category, "priority": "P2", "title": "t"}
        r = client.post("/v1/cases", json=body)
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    def changes(case: str) -> list[dict[str, object]]:
        h = client.get(f"/v1/cases/{case}/handoff")
        assert h.status_code == 200, h.text
        return list(h.json()["recent_changes"])

    client.post("/v1/clock/advance", json={"to": "2026-11-24T08:30:00Z"})
    globex = changes(opened("globex", "network"))
    assert [c["summary"] for c in globex] == ["Deploy api 1.2 to fra1"]  # not initech's
    assert globex[0]["before_opening"] == "30m" and globex[0]["integration"] == "pagerduty"
    assert globex[0]["links"] == [{"href": "https://ci.example/build/7", "text": "build 7"}]
    initech = changes(opened("initech", "general"))
    assert [c["summary"] for c in initech] == ["Billing cron moved"]
    client.post("/v1/clock/advance", json={"to": "2026-11-24T10:30:00Z"})  # 2h30m after
    assert changes(opened("globex", "network")) == []
