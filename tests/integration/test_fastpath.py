"""The lean path of the ingest routes answers exactly as the FastAPI routes do.

`rungs.api.fastpath` serves the happy path of `POST /v1/cases` and `POST /v2/enqueue`
itself; everything else goes on to FastAPI. Each test sends the same request both ways (a
chunked body carries no Content-Length, so the lean path hands it on) and compares, and
counts which requests the lean path handed on.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from rungs.api.limits import Rate
from rungs.bootstrap import build
from rungs.time.instant import parse_instant
from tests.conftest import auth_headers
from tests.integration.test_ingest import POLICY, _pd

START = "2026-11-24T08:00:00Z"
_JSON = {"Content-Type": "application/json"}


class Counted:
    """Wraps the app the lean path hands requests on to, counting them."""

    def __init__(self, app: Any) -> None:
        self.app, self.calls = app, 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.calls += 1
        await self.app(scope, receive, send)


def _client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **options: Any) -> Iterator[Any]:
    monkeypatch.setenv("RUNGS_ALLOW_VIRTUAL_CLOCK", "1")
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    service, app = build(
        db_url=f"sqlite:///{tmp_path / 'rungs.db'}",
        policy_file=policy,
        virtual_start=parse_instant(START),
        **options,
    )
    try:
        with TestClient(app) as c:
            c.responder = auth_headers(service, "responder")  # type: ignore[attr-defined]
            c.viewer = auth_headers(service, "viewer")  # type: ignore[attr-defined]
            c.framework = app.front.app = Counted(app.front.app)  # type: ignore[attr-defined]
            yield c
    finally:
        service.stop()
        service.db.dispose()


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    yield from _client(tmp_path, monkeypatch)


def _chunked(body: bytes) -> Iterator[bytes]:
    yield body


def _both(c: Any, path: str, body: bytes, headers: dict[str, str]) -> tuple[Any, Any]:
    """The same request through the lean path and through FastAPI (in that order)."""
    headers = {**headers, "Content-Type": "application/json"}
    before = c.framework.calls
    lean = c.post(path, content=body, headers=headers)
    assert c.framework.calls == before, "the lean path handed a plain request on"
    full = c.post(path, content=_chunked(body), headers=headers)
    assert c.framework.calls == before + 1
    return lean, full


def _without_id(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in answer.items() if k != "id"}


def test_open_answers_as_the_framework_does(client: Any) -> None:
    client.get("/v1/cases", headers=client.responder)  # the token is known from here on
    body = b'{"customer": "acme", "priority": "P1", "title": "Down", "fields": {"a": [1]}}'
    lean, full = _both(client, "/v1/cases", body, client.responder)
    assert lean.status_code == full.status_code == 201
    assert lean.headers["content-type"] == full.headers["content-type"] == "application/json"
    assert lean.json()["id"] != full.json()["id"]
    assert _without_id(lean.json()) == _without_id(full.json())
    assert lean.json()["fields"] == {"a": [1]}

    # a refusal by the engine (unknown customer) is answered alike, byte for byte
    body = b'{"customer": "nobody", "title": "t"}'
    lean, full = _both(client, "/v1/cases", body, client.responder)
    assert lean.status_code == full.status_code == 422
    assert lean.content == full.content
    assert lean.json() == {"detail": lean.json()["detail"], "field": "customer"}

    # an open case with the same dedup key: 200 and that case, both ways
    body = b'{"customer": "acme", "title": "t", "dedup_key": "k1"}'
    first = client.post("/v1/cases", content=body, headers={**client.responder, **_JSON})
    lean, full = _both(client, "/v1/cases", body, client.responder)
    assert (first.status_code, lean.status_code, full.status_code) == (201, 200, 200)
    assert lean.json()["id"] == full.json()["id"] == first.json()["id"]


def test_everything_but_the_happy_path_goes_to_the_framework(client: Any) -> None:
    good = {"customer": "acme", "title": "t"}
    calls = client.framework.calls
    r = client.post("/v1/cases", json=good)  # no token
    assert r.status_code == 401 and client.framework.calls == calls + 1
    client.get("/v1/cases", headers=client.viewer)
    r = client.post("/v1/cases", json=good, headers=client.viewer)
    assert r.status_code == 403 and "responder" in r.json()["detail"]
    r = client.post("/v1/cases", json={**good, "colour": "red"}, headers=client.responder)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "colour"
    r = client.post("/v1/cases", content=b"{", headers={**client.responder, **_JSON})
    assert r.status_code == 400 and "not valid JSON" in r.json()["detail"]  # issue 12 §5
    r = client.post(
        "/v1/cases", content=b'{"customer": "acme", "title": "t"}', headers=client.responder
    )  # no JSON content type: FastAPI refuses it (415 since issue 12 §5)
    assert r.status_code == 415, r.text
    assert client.framework.calls == calls + 6
    assert client.get("/v1/cases", headers=client.viewer).json()["items"] == []


def test_token_rate_limit_holds_on_the_lean_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for c in _client(tmp_path, monkeypatch, token_rate=Rate(0.001, 3)):
        c.get("/v1/cases", headers=c.responder)  # spends one of the burst of 3
        body = b'{"customer": "acme", "title": "t"}'
        headers = {**c.responder, **_JSON}
        statuses = [c.post("/v1/cases", content=body, headers=headers) for _ in range(3)]
        assert [r.status_code for r in statuses] == [201, 201, 429]
        assert statuses[2].headers["retry-after"]
        assert len(c.get("/v1/cases", headers=c.viewer).json()["items"]) == 2


def test_pagerduty_answers_as_the_framework_does(client: Any) -> None:
    import json

    def body(**over: Any) -> bytes:
        return json.dumps(_pd(**over)).encode()

    lean, full = _both(client, "/v2/enqueue", body(dedup_key="a"), {})
    assert lean.status_code == full.status_code == 202
    assert (
        lean.json()
        == full.json()
        == {
            "status": "success",
            "message": "Event processed",
            "dedup_key": "a",
        }
    )
    # an unknown routing key is refused by the route itself, both ways alike
    lean, full = _both(client, "/v2/enqueue", body(routing_key="nope"), {})
    assert lean.status_code == full.status_code == 400
    assert lean.content == full.content and "Invalid routing key" in lean.text
    # the second trigger of "a" folded into the open case instead of opening another
    cases = client.get("/v1/cases", headers=client.viewer).json()["items"]
    assert [c["dedup_key"] for c in cases] == ["pd:a"]
    timeline = client.get(f"/v1/cases/{cases[0]['id']}/timeline", headers=client.viewer).json()
    assert [e["kind"] for e in timeline].count("alert_repeated") == 1


def test_a_token_revoked_elsewhere_is_refused_once_its_cache_expires(client: Any) -> None:
    from rungs.store.tokens import revoke_token

    app = client.app
    app.state.auth.tokens.ttl = 0.0  # every answer is stale at once: re-read on each request
    body = b'{"customer": "acme", "title": "t"}'
    headers = {**client.responder, **_JSON}
    calls = client.framework.calls
    assert client.post("/v1/cases", content=body, headers=headers).status_code == 201
    assert client.post("/v1/cases", content=body, headers=headers).status_code == 201
    assert client.framework.calls == calls + 1  # the first read went through FastAPI only
    token = client.responder["Authorization"].removeprefix("Bearer ")
    name = app.state.auth.tokens.get(token).name
    with app.state.auth.tokens.engine.begin() as conn:  # as another process would: no cache clear
        assert revoke_token(conn, name, 0)
    r = client.post("/v1/cases", content=body, headers=headers)
    assert r.status_code == 401 and "revoked" in r.json()["detail"]
    assert len(client.get("/v1/cases", headers=client.viewer).json()["items"]) == 2


def test_content_type_variants_and_query_strings_go_to_the_framework(client: Any) -> None:
    client.get("/v1/cases", headers=client.responder)  # the token is known from here on
    body = b'{"customer": "acme", "title": "t"}'
    calls = client.framework.calls
    r = client.post(
        "/v1/cases", content=body, headers={**client.responder, "Content-Type": "application/jsonx"}
    )
    assert r.status_code == 415  # FastAPI does not take application/jsonx for JSON
    r = client.post("/v1/cases?" + "x" * 9000, content=body, headers={**client.responder, **_JSON})
    assert r.status_code == 414 and r.json()["field"] == "url"
    r = client.post(
        "/v1/cases",
        content=body,
        headers={**client.responder, "Content-Type": "application/json; charset=utf-8"},
    )
    assert r.status_code == 201
    assert client.framework.calls == calls + 2  # the charset parameter stays on the lean path
    assert len(client.get("/v1/cases", headers=client.viewer).json()["items"]) == 1


def test_free_form_fields_are_kept_exactly_and_must_be_json_numbers(client: Any) -> None:
    client.get("/v1/cases", headers=client.responder)  # the token is known from here on
    big = 18446744073709551616  # beyond 64 bits
    body = b'{"customer": "acme", "title": "t", "fields": {"n": %d, "s": "\\u00e9"}}' % big
    lean, full = _both(client, "/v1/cases", body, client.responder)
    for answer in (lean, full):
        assert answer.status_code == 201
        stored = client.get(f"/v1/cases/{answer.json()['id']}", headers=client.viewer).json()
        assert stored["fields"] == {"n": big, "s": "é"}
    for bad in (b"NaN", b"Infinity", b"[1, -Infinity]"):
        body = b'{"customer": "acme", "title": "t", "fields": {"n": %s}}' % bad
        r = client.post("/v1/cases", content=body, headers={**client.responder, **_JSON})
        assert r.status_code == 422 and r.json()["errors"][0]["field"].startswith("fields.n")
        assert "NaN and Infinity" in r.text
    assert len(client.get("/v1/cases", headers=client.viewer).json()["items"]) == 2
