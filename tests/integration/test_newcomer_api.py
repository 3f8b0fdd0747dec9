"""What a newcomer sees of the running service: `/docs` without the internet, one log line per
request (never a key or a token), `/metrics` that say where messages go, change events."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from rungs.bootstrap import build
from rungs.time.instant import parse_instant
from tests.conftest import ROOT, auth_headers

ACME = ROOT / "src" / "rungs" / "examples" / "acme.yaml"
START = "2026-11-24T08:00:00Z"
KEY = "backups-key-0123456789"


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("RUNGS_ALLOW_VIRTUAL_CLOCK", "1")
    monkeypatch.setenv("RUNGS_BACKUPS_KEY", KEY)
    service, app = build(
        db_url=f"sqlite:///{tmp_path / 'rungs.db'}",
        policy_file=ACME,
        virtual_start=parse_instant(START),
    )
    try:
        with TestClient(app, headers=auth_headers(service)) as c:
            yield c
    finally:
        service.stop()
        service.db.dispose()


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
    lines = [r.getMessage() for r in caplog.records if r.name == "rungs.access"]
    assert len(lines) == 4, lines
    assert lines[0].startswith("POST /v1/integrations/{key}/events 202 ")
    assert lines[1].startswith("POST /v1/cases 201 ")  # the fast lane: its own literal path
    assert lines[2].startswith("GET /v1/cases 200 ")
    assert lines[3].startswith("GET (no route) 404 ")
    assert all(line.endswith("ms") for line in lines)
    text = "\n".join(lines)
    assert KEY not in text and token not in text and "secret-ish" not in text
    assert "status=open" not in text
