"""Ingest over HTTP, each sender in its own format: PagerDuty Events API v2 (replaying the
bodies of PagerDuty's own documentation), Opsgenie's Alert API, Alertmanager's webhook (in
process here; against the real Alertmanager in test_ingest_alertmanager.py), Rungs' own
events and heartbeats (on the virtual clock, and on the real engine loop)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from rungs.bootstrap import build
from rungs.time.instant import parse_instant
from tests.conftest import auth_headers
from tests.procs import wait_until

START = "2026-03-02T09:00:00Z"
PD_KEY = "samplekeyhere"  # the routing key of PagerDuty's documented examples
PD_MAPPED = "pd-mapped-0123456789abcdef"
OG_KEY = "eb243592-faa2-4ba2-a551-1afdf565c889"
AM_KEY = "am-0123456789abcdef"
AM_GROUP = "am-group-0123456789abcdef"
EV_KEY = "ev-0123456789abcdef"
EV_SLOW = "ev-slow-0123456789abcdef"
HB_KEY = "hb-0123456789abcdef"
HB_FAST = "hb-fast-0123456789abcdef"

POLICY = f"""\
version: 1
timezone: UTC
people:
  - id: ann
    contacts: {{ email: ann@example.com }}
  - id: ben
    contacts: {{ email: ben@example.com }}
customers:
  - {{ id: acme, name: Acme }}
  - {{ id: globex, name: Globex }}
matrices:
  - id: default
    levels:
      - notify: [person:ann]
      - after: 30m
        unless: acknowledged
        notify: [person:ben]
  - id: infra
    levels:
      - notify: [person:ben]
integrations:
  - id: pd
    format: pagerduty
    key: {PD_KEY}
    defaults: {{ customer: acme, category: monitoring }}
  - id: pd-mapped
    format: pagerduty
    key: {PD_MAPPED}
    defaults: {{ customer: acme }}
    matrix: infra
    severity_map: {{ critical: P2, info: P3 }}
    rate_limit: {{ per_second: 0.001, burst: 3 }}
  - id: og
    format: opsgenie
    key: {OG_KEY}
    defaults: {{ customer: acme }}
  - id: am
    format: alertmanager
    key: {AM_KEY}
    defaults: {{ customer: acme }}
  - id: am-group
    format: alertmanager
    key: {AM_GROUP}
    dedup: group_key
    defaults: {{ customer: acme }}
  - id: ev
    format: events
    key: {EV_KEY}
    defaults: {{ customer: acme, priority: P2 }}
  - id: ev-slow
    format: events
    key: {EV_SLOW}
    defaults: {{ customer: acme }}
    rate_limit: {{ per_second: 0.001, burst: 2 }}
  - id: hb
    format: heartbeat
    key: {HB_KEY}
    interval: 10m
    defaults: {{ customer: globex, priority: P1 }}
  - id: hb-fast
    format: heartbeat
    key: {HB_FAST}
    interval: 4m
    defaults: {{ customer: acme }}
"""

# PagerDuty's documentation (developer.pagerduty.com, "Send an Alert Event"), verbatim (the
# long source is spliced in at @SOURCE@, and the example's tab indents are written as \t).
PD_SOURCE = "monitoringtool:cloudvendor:central-region-dc-01:852559987:cluster/api-stats-prod-003"
PD_DOC_TRIGGER = """{
  "payload": {
    "summary": "Example alert on host1.example.com",
    "timestamp": "2015-07-17T08:42:58.315+0000",
    "source": "@SOURCE@",
    "severity": "info",
    "component": "postgres",
    "group": "prod-datapipe",
    "class": "deploy",
    "custom_details": {
      "ping time": "1500ms",
      "load avg": 0.75
    }
  },
  "routing_key": "samplekeyhere",
  "dedup_key": "samplekeyhere",
  "images": [{
  \t"src": "https://www.pagerduty.com/wp-content/uploads/2016/05/pagerduty-logo-green.png",
  \t"href": "https://example.com/",
  \t"alt": "Example text"
  }],
  "links": [{
    "href": "https://example.com/",
    "text": "Link text"
  }],
  "event_action": "trigger",
  "client": "Sample Monitoring Service",
  "client_url": "https://monitoring.example.com"
}""".replace("@SOURCE@", PD_SOURCE)
PD_DOC_ACKNOWLEDGE = """{
  "routing_key": "samplekeyhere",
  "dedup_key": "samplekeyhere",
  "event_action": "acknowledge"
}"""
PD_DOC_RESOLVE = """{
  "routing_key": "samplekeyhere",
  "dedup_key": "samplekeyhere",
  "event_action": "resolve"
}"""
# PagerDuty's API_Python_Examples, trigger_without_incident_key.py (the key filled in).
PD_DOC_NO_KEY = """{
  "routing_key": "samplekeyhere",
  "event_action": "trigger",
  "payload": {
    "summary": "Example alert on host1.example.com",
    "source": "@SOURCE@",
    "severity": "critical"
  }
}""".replace("@SOURCE@", PD_SOURCE)
JSON = {"Content-Type": "application/json"}


def _app(
    tmp_path: Path, db_url: str | None = None, virtual: bool = True, text: str = POLICY
) -> Any:
    policy = tmp_path / "policy.yaml"
    policy.write_text(text, encoding="utf-8")
    return build(
        db_url=db_url or f"sqlite:///{tmp_path / 'rungs.db'}",
        policy_file=policy,
        virtual_start=parse_instant(START) if virtual else None,
    )


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("RUNGS_ALLOW_VIRTUAL_CLOCK", "1")
    yield from _client(tmp_path)


@pytest.fixture
def any_db_client(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    """The same, on SQLite and on PostgreSQL."""
    monkeypatch.setenv("RUNGS_ALLOW_VIRTUAL_CLOCK", "1")
    yield from _client(tmp_path, db_url)


def _client(tmp_path: Path, db_url: str | None = None, text: str = POLICY) -> Iterator[TestClient]:
    service, app = _app(tmp_path, db_url, text=text)
    try:
        with TestClient(app) as c:
            c.admin = auth_headers(service)  # type: ignore[attr-defined]
            yield c
    finally:
        service.stop()
        service.db.dispose()


def _cases(c: TestClient, **query: Any) -> list[dict[str, Any]]:
    r = c.get("/v1/cases", params={"limit": 500, **query}, headers=c.admin)  # type: ignore[attr-defined]
    assert r.status_code == 200, r.text
    return r.json()["items"]


def _timeline(c: TestClient, case_id: str) -> list[dict[str, Any]]:
    r = c.get(f"/v1/cases/{case_id}/timeline", headers=c.admin)  # type: ignore[attr-defined]
    assert r.status_code == 200, r.text
    return r.json()


def _one(cases: list[dict[str, Any]], dedup_key: str) -> dict[str, Any]:
    found = [x for x in cases if x["dedup_key"] == dedup_key]
    assert len(found) == 1, (dedup_key, [x["dedup_key"] for x in cases])
    return found[0]


# PagerDuty ----------------------------------------------------------------------------------


def test_pagerduty_documented_bodies(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PagerDuty's own example bodies: trigger, repeat, acknowledge, resolve, trigger again."""
    monkeypatch.setenv("RUNGS_ALLOW_VIRTUAL_CLOCK", "1")
    service, app = _app(tmp_path, db_url)
    try:
        with TestClient(app) as c:
            c.admin = auth_headers(service)  # type: ignore[attr-defined]
            ok = {"status": "success", "message": "Event processed", "dedup_key": PD_KEY}
            r = c.post("/v2/enqueue", content=PD_DOC_TRIGGER, headers=JSON)
            assert (r.status_code, r.json()) == (202, ok)
            (case,) = _cases(c)
            assert case["dedup_key"] == "pd:samplekeyhere" and case["status"] == "open"
            assert case["title"] == "Example alert on host1.example.com"
            assert (case["customer"], case["category"], case["priority"]) == (
                "acme",
                "monitoring",
                "P4",  # info
            )
            f = case["fields"]
            assert f["integration"] == "pd" and f["format"] == "pagerduty"
            assert f["custom_details"] == {"ping time": "1500ms", "load avg": 0.75}
            assert f["timestamp"] == "2015-07-17T08:42:58Z" and f["class"] == "deploy"
            assert f["images"][0]["alt"] == "Example text" and f["links"][0]["text"] == "Link text"
            assert f["client"] == "Sample Monitoring Service"
            assert "component: postgres" in case["description"]

            # the same trigger again adds to the open case
            r = c.post("/v2/enqueue", content=PD_DOC_TRIGGER, headers=JSON)
            assert (r.status_code, r.json()) == (202, ok)
            r = c.post("/v2/enqueue", content=PD_DOC_TRIGGER, headers=JSON)
            assert len(_cases(c)) == 1
            repeats = [e for e in _timeline(c, case["id"]) if e["kind"] == "alert_repeated"]
            assert [e["count"] for e in repeats] == [2, 3]
            assert repeats[0]["summary"] == "Example alert on host1.example.com"

            r = c.post("/v2/enqueue", content=PD_DOC_ACKNOWLEDGE, headers=JSON)
            assert (r.status_code, r.json()) == (202, ok)
            r = c.post("/v2/enqueue", content=PD_DOC_ACKNOWLEDGE, headers=JSON)  # no error twice
            assert r.status_code == 202
            assert _cases(c)[0]["status"] == "acknowledged"
            r = c.post("/v2/enqueue", content=PD_DOC_RESOLVE, headers=JSON)
            assert (r.status_code, r.json()) == (202, ok)
            assert _cases(c)[0]["status"] == "resolved"
            kinds = [(e["kind"], e.get("by")) for e in _timeline(c, case["id"])]
            assert ("acknowledged", "integration:pd") in kinds
            assert kinds[-1] == ("resolved", "integration:pd")

            # after resolve the same key opens a new case
            r = c.post("/v2/enqueue", content=PD_DOC_TRIGGER, headers=JSON)
            assert r.status_code == 202
            cases = _cases(c)
            assert [x["status"] for x in cases] == ["resolved", "open"]
            assert cases[1]["id"] != case["id"]

            # without a dedup_key one is generated and returned
            r = c.post("/v2/enqueue", content=PD_DOC_NO_KEY, headers=JSON)
            assert r.status_code == 202 and r.json()["status"] == "success"
            key = r.json()["dedup_key"]
            assert re.fullmatch(r"[0-9a-f]{32}", key)
            new = _one(_cases(c), f"pd:{key}")
            assert new["priority"] == "P1"  # critical
            # ... and acknowledges and resolves by it
            for action, status in (("acknowledge", "acknowledged"), ("resolve", "resolved")):
                body = {"routing_key": PD_KEY, "dedup_key": key, "event_action": action}
                assert c.post("/v2/enqueue", json=body).status_code == 202
                assert _one(_cases(c), f"pd:{key}")["status"] == status
    finally:
        service.stop()
        service.db.dispose()


def _pd(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "routing_key": PD_KEY,
        "event_action": "trigger",
        "payload": {"summary": "disk full", "source": "db1", "severity": "warning"},
    }
    body.update(over)
    return body


def test_pagerduty_invalid_events(client: TestClient) -> None:
    def invalid(body: Any, *expect: str) -> None:
        r = (
            client.post("/v2/enqueue", content=body, headers=JSON)
            if isinstance(body, str)
            else client.post("/v2/enqueue", json=body)
        )
        assert r.status_code == 400, r.text
        got = r.json()
        assert got["status"] == "invalid event" and got["message"] == "Event object is invalid"
        for text in expect:
            assert any(text in e for e in got["errors"]), (text, got["errors"])

    invalid(_pd(routing_key="no-such-key"), "Invalid routing key")
    invalid(_pd(routing_key=OG_KEY), "Invalid routing key")  # another format's key
    invalid(_pd(event_action="snooze"), "event_action")
    invalid(_pd(payload=None), "'payload' is required")
    invalid({"routing_key": PD_KEY, "event_action": "resolve"}, "'dedup_key' is required")
    invalid(_pd(dedup_key="k" * 256), "dedup_key", "255")
    invalid(_pd(payload={"summary": "s" * 1025, "source": "x", "severity": "info"}), "1024")
    invalid(_pd(payload={"summary": "s", "source": "x", "severity": "fatal"}), "severity")
    invalid(_pd(payload={"summary": "s", "severity": "info"}), "'payload.source' is missing")
    invalid(_pd(colour="red"), "'colour' is not a known field")
    invalid(_pd(payload={"summary": "s", "source": "x", "severity": "info", "colour": 1}), "colour")
    invalid(_pd(payload={"summary": "s", "source": "x", "severity": "info", "timestamp": "y"}))
    invalid("{not json", "not valid JSON")
    # the limits are PagerDuty's: exactly 255 and 1024 are fine
    ok = _pd(
        dedup_key="k" * 255, payload={"summary": "s" * 1024, "source": "x", "severity": "info"}
    )
    r = client.post("/v2/enqueue", json=ok)
    assert r.status_code == 202 and r.json()["dedup_key"] == "k" * 255
    assert not [x for x in _cases(client) if x["title"] != "s" * 1024]


def test_pagerduty_severity_map_matrix_and_rate_limit(client: TestClient) -> None:
    for i, sev in enumerate(("critical", "info", "error")):
        body = _pd(routing_key=PD_MAPPED, dedup_key=f"m{i}")
        body["payload"]["severity"] = sev
        r = client.post("/v2/enqueue", json=body)
        assert r.status_code == 202, r.text
    cases = _cases(client)
    assert [x["priority"] for x in cases] == ["P2", "P3", "P2"]  # mapped, mapped, default
    assert {x["matrix"] for x in cases} == {"infra"}
    r = client.post("/v2/enqueue", json=_pd(routing_key=PD_MAPPED, dedup_key="m9"))
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    assert r.json()["status"] == "throttle event"
    assert client.post("/v2/enqueue", json=_pd()).status_code == 202  # other keys unaffected


# Opsgenie -----------------------------------------------------------------------------------

OG_DOC_CREATE = {  # Opsgenie's create-alert example, with a source and user
    "message": "An example alert message",
    "alias": "Life is too short for no alias",
    "description": "Every alert needs a description",
    "responders": [
        {"id": "4513b7ea-3b91-438f-b7e4-e3e54af9147c", "type": "team"},
        {"name": "NOC", "type": "team"},
        {"username": "trinity@opsgenie.com", "type": "user"},
    ],
    "visibleTo": [{"name": "rocket_team", "type": "team"}],
    "actions": ["Restart", "AnExampleAction"],
    "tags": ["OverwriteQuietHours", "Critical"],
    "details": {"key1": "value1", "key2": "value2"},
    "entity": "An example entity",
    "priority": "P1",
    "source": "AWS Lambda",
    "user": "Monitoring Script",
    "note": "Alert created",
}


def _og(client: TestClient, path: str, body: Any = None, key: str = OG_KEY) -> Any:
    headers = {"Authorization": f"GenieKey {key}"} if key else {}
    return client.post(path, json=body, headers=headers)


def test_opsgenie_create_acknowledge_close(client: TestClient) -> None:
    r = _og(client, "/v2/alerts", OG_DOC_CREATE)
    assert r.status_code == 202, r.text
    got = r.json()
    assert got["result"] == "Request will be processed" and isinstance(got["took"], float)
    assert re.fullmatch(r"[0-9a-f-]{36}", got["requestId"])
    (case,) = _cases(client)
    assert case["dedup_key"] == "og:Life is too short for no alias"
    assert (case["title"], case["priority"]) == ("An example alert message", "P1")
    assert case["description"] == "Every alert needs a description"
    assert case["tags"] == ["OverwriteQuietHours", "Critical"]
    assert case["fields"]["details"] == {"key1": "value1", "key2": "value2"}
    assert case["fields"]["entity"] == "An example entity"
    assert _og(client, "/v2/alerts", OG_DOC_CREATE).status_code == 202  # same alias: repeat
    assert [e["count"] for e in _timeline(client, case["id"]) if e["kind"] == "alert_repeated"] == [
        2
    ]

    alias = "Life%20is%20too%20short%20for%20no%20alias"
    action = {"user": "Monitoring Script", "source": "AWS Lambda", "note": "Action executed"}
    r = _og(client, f"/v2/alerts/{alias}/acknowledge?identifierType=alias", action)
    assert r.status_code == 202 and r.json()["result"] == "Request will be processed"
    assert _cases(client)[0]["status"] == "acknowledged"
    r = _og(client, f"/v2/alerts/{alias}/close?identifierType=alias")  # no body at all
    assert r.status_code == 202
    assert _cases(client)[0]["status"] == "resolved"
    by = [(e["kind"], e.get("by")) for e in _timeline(client, case["id"])]
    # issue 12: Opsgenie's user is kept as the unchecked source_user, its note as the reason;
    # who acted is the integration (was: by == "Monitoring Script")
    assert ("acknowledged", "integration:og") in by and by[-1] == ("resolved", "integration:og")
    (ack,) = [e for e in _timeline(client, case["id"]) if e["kind"] == "acknowledged"]
    assert (ack["source_user"], ack["reason"]) == ("Monitoring Script", "Action executed")

    # P5 is Rungs' P4; an alert without alias gets its own case every time
    for _ in range(2):
        assert _og(client, "/v2/alerts", {"message": "low", "priority": "P5"}).status_code == 202
    low = [x for x in _cases(client) if x["title"] == "low"]
    assert [x["priority"] for x in low] == ["P4", "P4"] and len({x["id"] for x in low}) == 2


def test_opsgenie_errors(client: TestClient) -> None:
    r = _og(client, "/v2/alerts", {"message": "x"}, key="")
    assert r.status_code == 401 and "requestId" in r.json()
    assert _og(client, "/v2/alerts", {"message": "x"}, key="wrong").status_code == 401
    assert _og(client, "/v2/alerts", {"message": "x"}, key=PD_KEY).status_code == 403
    r = _og(client, "/v2/alerts", {"message": "", "colour": "red"})
    assert r.status_code == 422
    errors = r.json()["errors"]
    assert "message" in errors and errors["colour"] == "'colour' is not a known field"
    assert _og(client, "/v2/alerts", {"message": "m" * 131}).status_code == 422  # Opsgenie's 130
    assert _og(client, "/v2/alerts", {"message": "x", "priority": "P6"}).status_code == 422
    r = _og(client, "/v2/alerts/abc/close")  # identifierType defaults to id: not supported
    assert r.status_code == 422 and "identifierType=alias" in r.json()["message"]
    assert _og(client, "/v2/alerts/never-seen/close?identifierType=alias").status_code == 202


# Alertmanager (in process; the real one is in test_ingest_alertmanager.py) -------------------


def _am(status: str, *alerts: dict[str, Any], group: str = '{}:{alertname="X"}') -> dict:
    return {
        "version": "4",
        "groupKey": group,
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "rungs",
        "groupLabels": {"alertname": "X"},
        "commonLabels": {"alertname": "X"},
        "commonAnnotations": {},
        "externalURL": "http://am.example:9093",
        "alerts": list(alerts),
    }


def _alert(status: str, fp: str, **labels: str) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": "X", **labels},
        "annotations": {"summary": f"X on {labels.get('instance', '?')}", "description": "d"},
        "startsAt": "2026-03-02T08:59:00.123456789Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example/graph",
        "fingerprint": fp,
    }


def test_alertmanager_webhook_fingerprints_and_group_key(client: TestClient) -> None:
    url = f"/v1/integrations/{AM_KEY}/alertmanager"
    a1 = _alert("firing", "aaaa", instance="db1", severity="critical", site="fra")
    a2 = _alert("firing", "bbbb", instance="db2", severity="warning", customer="globex")
    r = client.post(url, json=_am("firing", a1, a2))
    assert r.status_code == 202, r.text
    assert [(a["dedup_key"], a["new"]) for a in r.json()["alerts"]] == [
        ("aaaa", True),
        ("bbbb", True),
    ]
    c1, c2 = _one(_cases(client), "am:aaaa"), _one(_cases(client), "am:bbbb")
    assert (c1["priority"], c1["customer"], c1["title"]) == ("P1", "acme", "X on db1")
    assert (c2["priority"], c2["customer"]) == ("P3", "globex")
    assert c1["fields"]["labels"]["instance"] == "db1" and c1["fields"]["site"] == "fra"
    assert c1["fields"]["annotations"] == {"summary": "X on db1", "description": "d"}
    assert c1["description"] == "d"
    # Alertmanager re-sends the group: a repeat, not a new case; then one resolves
    r = client.post(url, json=_am("firing", a1, {**a2, "status": "resolved"}))
    assert [(a["action"], a["new"], a["applied"]) for a in r.json()["alerts"]] == [
        ("trigger", False, True),
        ("resolve", False, True),
    ]
    assert _one(_cases(client), "am:bbbb")["status"] == "resolved"
    assert _one(_cases(client), "am:aaaa")["status"] == "open"
    # group_key: the whole group is one case
    gurl = f"/v1/integrations/{AM_GROUP}/alertmanager"
    assert client.post(gurl, json=_am("firing", a1, a2, group="g1")).status_code == 202
    assert client.post(gurl, json=_am("firing", a1, group="g1")).status_code == 202
    g = _one(_cases(client), "am-group:g1")
    assert g["status"] == "open" and g["title"] == "X on db1"
    assert client.post(gurl, json=_am("resolved", a1, a2, group="g1")).status_code == 202
    assert _one(_cases(client), "am-group:g1")["status"] == "resolved"
    # errors: unknown fields by name, other versions, unknown keys, other formats' keys
    r = client.post(url, json={**_am("firing", a1), "colour": 1})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "colour"
    r = client.post(url, json={**_am("firing", a1), "version": "3"})
    assert r.status_code == 422 and r.json()["field"] == "version"
    assert client.post("/v1/integrations/nope/alertmanager", json=_am("firing")).status_code == 401
    r = client.post(f"/v1/integrations/{EV_KEY}/alertmanager", json=_am("firing"))
    assert r.status_code == 403


# Rungs' own events ----------------------------------------------------------------------------


def test_events_webhook(client: TestClient) -> None:
    url = f"/v1/integrations/{EV_KEY}/events"
    r = client.post(
        url,
        json={
            "title": "backup failed",
            "dedup_key": "backup-db1",
            "description": "nightly backup exited 2",
            "fields": {"host": "db1", "device": "db1"},
            "tags": ["backup"],
        },
    )
    assert r.status_code == 202, r.text
    assert r.json() == {
        "status": "accepted",
        "action": "trigger",
        "dedup_key": "backup-db1",
        "case": r.json()["case"],
        "new": True,
        "applied": True,
    }
    case = _one(_cases(client), "ev:backup-db1")
    assert (case["priority"], case["customer"], case["tags"]) == ("P2", "acme", ["backup"])
    assert case["fields"]["host"] == "db1" and case["fields"]["device"] == "db1"
    r = client.post(url, json={"title": "again", "dedup_key": "backup-db1", "by": "cron"})
    assert r.json()["new"] is False and r.json()["case"] == case["id"]
    r = client.post(url, json={"action": "acknowledge", "dedup_key": "backup-db1", "by": "ops"})
    assert r.status_code == 202 and r.json()["applied"] is True
    r = client.post(url, json={"action": "acknowledge", "dedup_key": "backup-db1"})
    assert r.status_code == 202 and r.json()["applied"] is False  # already acknowledged
    r = client.post(url, json={"action": "resolve", "dedup_key": "backup-db1"})
    assert r.json()["applied"] is True
    assert _one(_cases(client), "ev:backup-db1")["status"] == "resolved"
    r = client.post(url, json={"action": "resolve", "dedup_key": "never"})
    assert r.status_code == 202 and r.json()["case"] is None
    # explicit customer, category and priority; a generated key
    r = client.post(
        url, json={"title": "t", "customer": "globex", "category": "network", "priority": "P1"}
    )
    key = r.json()["dedup_key"]
    c = _one(_cases(client), f"ev:{key}")
    assert (c["customer"], c["category"], c["priority"]) == ("globex", "network", "P1")
    # errors name the field
    for body, field in (
        ({"title": "t", "colour": "red"}, "colour"),
        ({"title": "x" * 1025}, "title"),
        ({"title": "t", "dedup_key": "k" * 256}, "dedup_key"),
        ({"action": "resolve"}, "dedup_key"),
        ({"description": "no title"}, "title"),
    ):
        r = client.post(url, json=body)
        assert r.status_code == 422, (body, r.text)
        got = r.json()
        assert got.get("field") == field or got["errors"][0]["field"] == field, (body, got)
    assert client.post("/v1/integrations/nope/events", json={"title": "t"}).status_code == 401
    assert client.post(f"/v1/integrations/{HB_KEY}/events", json={"title": "t"}).status_code == 403
    slow = f"/v1/integrations/{EV_SLOW}/events"
    assert [client.post(slow, json={"title": "t"}).status_code for _ in range(3)] == [202, 202, 429]
    r = client.post(slow, json={"title": "t"})
    assert r.headers["Retry-After"].isdigit() and "rate limit" in r.json()["detail"]


# heartbeats -----------------------------------------------------------------------------------


def test_heartbeats_on_the_virtual_clock(any_db_client: TestClient) -> None:
    client = any_db_client
    admin = client.admin  # type: ignore[attr-defined]
    r = client.post(f"/v1/heartbeats/{HB_KEY}")
    assert r.status_code == 202, r.text
    assert r.json() == {
        "status": "up",
        "integration": "hb",
        "last_beat": "2026-03-02T09:00:00Z",
        "next_due": "2026-03-02T09:10:00Z",
        "resolved": None,
    }
    assert client.post(f"/v1/heartbeats/{HB_FAST}", content=b"ignored").status_code == 202
    # a case whose level-2 timer (09:30) falls between the two missed heartbeats' cases
    r = client.post("/v1/cases", json={"customer": "acme", "title": "other"}, headers=admin)
    other = r.json()["id"]
    client.post("/v1/clock/advance", json={"to": "2026-03-02T09:03:00Z"}, headers=admin)
    assert client.post(f"/v1/heartbeats/{HB_FAST}").status_code == 202  # next due 09:07
    r = client.post("/v1/clock/advance", json={"to": "2026-03-02T10:00:00Z"}, headers=admin)
    assert r.status_code == 200
    states = {s["integration"]: s for s in client.get("/v1/heartbeats", headers=admin).json()}
    assert (
        states["hb"]["status"] == "missed" and states["hb"]["missed_at"] == "2026-03-02T09:10:00Z"
    )
    assert states["hb-fast"]["missed_at"] == "2026-03-02T09:07:00Z"
    fast, slow = _one(_cases(client), "hb-fast:heartbeat"), _one(_cases(client), "hb:heartbeat")
    # opened exactly when due, in due order among the timers
    assert (fast["opened_at"], slow["opened_at"]) == (
        "2026-03-02T09:07:00Z",
        "2026-03-02T09:10:00Z",
    )
    assert (slow["customer"], slow["priority"]) == ("globex", "P1")
    assert "Heartbeat 'hb' missed" in slow["title"] and slow["fields"]["interval"] == "10m"
    assert [e["at"] for e in _timeline(client, other) if e["kind"] == "escalated"] == [
        "2026-03-02T09:30:00Z"
    ]
    assert [e["at"] for e in _timeline(client, slow["id"]) if e["kind"] == "escalated"] == [
        "2026-03-02T09:40:00Z"  # its own level timer, 30m after the miss
    ]
    # a later beat resolves the case and monitoring resumes; the next miss is a new case
    r = client.post(f"/v1/heartbeats/{HB_KEY}")
    assert r.json()["resolved"] == slow["id"] and r.json()["next_due"] == "2026-03-02T10:10:00Z"
    assert _one(_cases(client), "hb:heartbeat")["status"] == "resolved"
    client.post("/v1/clock/advance", json={"to": "2026-03-02T10:20:00Z"}, headers=admin)
    hb = [x for x in _cases(client) if x["dedup_key"] == "hb:heartbeat"]
    assert [x["status"] for x in hb] == ["resolved", "open"]
    assert client.post("/v1/heartbeats/nope").status_code == 401
    assert client.post(f"/v1/heartbeats/{EV_KEY}").status_code == 403


def test_heartbeat_missed_on_the_real_engine(tmp_path: Path) -> None:
    """The engine loop (real clock) opens the case when the beat is late; a beat resolves it."""
    policy = POLICY.replace("interval: 4m", "interval: 1s")
    (tmp_path / "policy.yaml").write_text(policy, encoding="utf-8")
    service, app = build(
        db_url=f"sqlite:///{tmp_path / 'r.db'}", policy_file=tmp_path / "policy.yaml"
    )
    try:
        with TestClient(app, headers=auth_headers(service, "viewer")) as c:
            assert c.post(f"/v1/heartbeats/{HB_FAST}").status_code == 202

            def opened() -> list[dict[str, Any]]:
                items = c.get("/v1/cases").json()["items"]
                return [x for x in items if x["dedup_key"] == "hb-fast:heartbeat"]

            (case,) = wait_until("the missed heartbeat's case", opened, timeout=15.0)
            assert case["status"] == "open"
            r = c.post(f"/v1/heartbeats/{HB_FAST}")
            assert r.json()["resolved"] == case["id"]
            assert opened()[0]["status"] == "resolved"
    finally:
        service.stop()
        service.db.dispose()


def test_policy_checks_integrations() -> None:
    """`rungs validate` reports every mistake in an integration, located."""
    from rungs.policy import load_policy_text

    bad = POLICY.split("integrations:")[0] + (
        "integrations:\n"
        "  - {id: a, format: pagerduty, key: same-key-0123456789, defaults: {customer: acme},\n"
        "     severity_map: {critical: P0, fatal: P1}}\n"
        "  - {id: b, format: alertmanager, key: same-key-0123456789, dedup: labels}\n"
        "  - {id: c, format: events, key: k, rate_limit: {per_second: 0, burst: 0.5}, dedup: x}\n"
        "  - {id: d, format: heartbeat, key: hb-key-0123456789abc}\n"
        "  - {id: e, format: heartbeat, key: hb-key-0123456789abd, interval: 0s,\n"
        "     defaults: {customer: nobody}}\n"
        "  - {id: f, format: smoke-signals, key_env: RUNGS_F_KEY}\n"
    )
    policy, problems = load_policy_text(bad, "p.yaml")
    assert policy is None
    text = "\n".join(str(p) for p in problems)
    for expected in (
        "unknown priority 'P0'",
        "unknown field 'fatal' in severity_map",
        "integration 'b' has the key of 'a'",
        "unknown dedup 'labels'",
        "'per_second' must be a number above 0",
        "'burst' must be a number of at least 1",
        "'dedup' is for alertmanager integrations",
        "warning: integration 'c' has a short key",
        "heartbeat integration 'd' needs an 'interval'",
        "heartbeat integration 'd' needs 'defaults: {customer: ...}'",
        "a heartbeat interval is at least 1s",
        "unknown customer 'nobody'",
        "unknown integration format 'smoke-signals'",
    ):
        assert expected in text, f"{expected!r} not in:\n{text}"
    assert all(p.file == "p.yaml" and p.line > 0 for p in problems)
