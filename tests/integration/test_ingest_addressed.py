"""Alerts are always addressed (issue 12), over HTTP for each monitoring sender: an alert whose
customer, category or priority the policy does not know opens a case anyway, with the
integration's defaults (or the documented fallbacks), its timeline saying each correction as
an `input_corrected` entry right after `opened`; the sender gets its usual success. An
Alertmanager batch takes each alert on its own. On SQLite, and on PostgreSQL where the sender's
main test in test_ingest.py runs on both."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.integration.test_ingest import (
    AM_KEY,
    EV_KEY,
    POLICY,
    _alert,
    _am,
    _cases,
    _client,
    _og,
    _one,
    _pd,
    _timeline,
)

EV_BARE = "ev-bare-0123456789abcdef"
# the ingest policy, routing on a category, with an integration that has no defaults at all
ADDRESSED = POLICY.replace(
    "  - id: infra\n",
    "  - id: network\n    match: { category: [network] }\n    levels:\n"
    "      - notify: [person:ben]\n  - id: infra\n",
) + (f"  - id: ev-bare\n    format: events\n    key: {EV_BARE}\n")


@pytest.fixture
def client(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """A served app on the ingest policy; SQLite and PostgreSQL."""
    monkeypatch.setenv("RUNGS_ALLOW_VIRTUAL_CLOCK", "1")
    yield from _client(tmp_path, db_url, ADDRESSED)


def _opened(c: TestClient, dedup_key: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The case of a dedup key and what its timeline says right after `opened`."""
    case = _one(_cases(c), dedup_key)
    timeline = _timeline(c, case["id"])
    assert timeline[0]["kind"] == "opened", timeline
    said = [e for e in timeline if e["kind"] == "input_corrected"]
    assert timeline[1 : 1 + len(said)] == said, "the corrections follow `opened` at once"
    assert all(e["at"] == timeline[0]["at"] for e in said)
    return case, [{k: e.get(k) for k in ("field", "received", "used")} for e in said]


def test_pagerduty_unknown_customer(client: TestClient) -> None:
    body = _pd(dedup_key="p1")
    body["payload"]["custom_details"] = {"customer": "acmee"}
    r = client.post("/v2/enqueue", json=body)
    assert (r.status_code, r.json()["status"]) == (202, "success")
    case, said = _opened(client, "pd:p1")
    assert (case["customer"], case["category"], case["priority"]) == ("acme", "monitoring", "P3")
    assert said == [{"field": "customer", "received": "acmee", "used": "acme"}]
    # a known customer: no entry
    assert client.post("/v2/enqueue", json=_pd(dedup_key="p2")).status_code == 202
    assert _opened(client, "pd:p2")[1] == []


def test_opsgenie_unknown_customer_and_category(client: TestClient) -> None:
    body = {"message": "m", "alias": "o1", "details": {"customer": "initech", "category": "dns"}}
    r = _og(client, "/v2/alerts", body)
    assert (r.status_code, r.json()["result"]) == (202, "Request will be processed")
    case, said = _opened(client, "og:o1")
    assert (case["customer"], case["category"]) == ("acme", "general")
    assert said == [
        {"field": "customer", "received": "initech", "used": "acme"},
        {"field": "category", "received": "dns", "used": "general"},
    ]
    # its close keeps the note as the reason and the user as the (unchecked) source_user
    note = {"user": "nobody-we-know", "note": "fixed upstream"}
    r = _og(client, "/v2/alerts/o1/close?identifierType=alias", note)
    assert r.status_code == 202
    resolved = _timeline(client, case["id"])[-1]
    assert (resolved["kind"], resolved["by"]) == ("resolved", "integration:og")
    assert (resolved["reason"], resolved["source_user"]) == ("fixed upstream", "nobody-we-know")


def test_events_unknown_values_and_no_defaults_at_all(client: TestClient) -> None:
    url = f"/v1/integrations/{EV_KEY}/events"
    body = {"title": "t", "dedup_key": "e1", "customer": "nobody", "priority": "P7"}
    r = client.post(url, json={**body, "category": "network"})
    assert r.status_code == 202 and r.json()["new"] is True
    case, said = _opened(client, "ev:e1")
    assert (case["customer"], case["priority"], case["matrix"]) == ("acme", "P2", "network")
    assert said == [
        {"field": "customer", "received": "nobody", "used": "acme"},
        {"field": "priority", "received": "P7", "used": "P2"},
    ]
    # no defaults and no customer: the policy's first customer (said; no `received` given)
    r = client.post(f"/v1/integrations/{EV_BARE}/events", json={"title": "t", "dedup_key": "e2"})
    assert r.status_code == 202, r.text
    case, said = _opened(client, "ev-bare:e2")
    assert (case["customer"], case["priority"]) == ("acme", "P3")
    assert said == [{"field": "customer", "received": None, "used": "acme"}]


def test_alertmanager_mixed_batch(client: TestClient) -> None:
    url = f"/v1/integrations/{AM_KEY}/alertmanager"
    typo = _alert("firing", "m1", instance="db1", customer="acmee", severity="page")
    unreadable = {**_alert("firing", "m2"), "status": "pending"}
    fine = _alert("firing", "m3", instance="db3", severity="critical", customer="globex")
    r = client.post(url, json=_am("firing", typo, unreadable, fine))
    assert r.status_code == 202, r.text
    got = r.json()
    assert (got["status"], got["taken"]) == ("accepted", 2)
    assert [(a["dedup_key"], a["new"]) for a in got["alerts"]] == [("m1", True), ("m3", True)]
    assert [e["field"] for e in got["errors"]] == ["alerts.1.status"]
    assert "'firing' or 'resolved'" in got["errors"][0]["message"]
    case, said = _opened(client, "am:m1")
    assert (case["customer"], case["priority"]) == ("acme", "P3")
    assert said == [
        {"field": "customer", "received": "acmee", "used": "acme"},
        {"field": "priority", "received": "page", "used": "P3"},
    ]
    case, said = _opened(client, "am:m3")
    assert (case["customer"], case["priority"], said) == ("globex", "P1", [])
    assert [x["dedup_key"] for x in _cases(client)] == ["am:m1", "am:m3"]
    # a batch with nothing readable takes nothing: refused, naming each alert
    r = client.post(url, json=_am("firing", unreadable, {"status": "firing"}))
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["alerts.0.status", "alerts.1.labels"]
    assert r.json()["accepted"] == [] and len(_cases(client)) == 2
    # a clean batch answers as before, with its count
    r = client.post(url, json=_am("firing", fine))
    assert (r.status_code, r.json()["taken"], r.json()["errors"]) == (202, 1, [])
