"""Bad input gets a clear 4xx, never a 500 (issue 12 §5): each input that once answered 500,
bodies that are not JSON, unknown filter values, the .ics range cap, and the JSON error shape
(`detail`, and `field` where one field is at fault)."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from rungs.bootstrap import VIRTUAL_CLOCK_ENV, build
from rungs.core.model import Refused
from rungs.engine import Engine
from rungs.store.tables import overrides
from rungs.time.instant import EARLIEST, LATEST, parse_instant
from tests.conftest import api_token
from tests.sync import open_case

START = "2026-03-02T09:00:00Z"
PD_KEY = "pd-0123456789abcdef"
ENV = {VIRTUAL_CLOCK_ENV: "1", "RUNGS_TEST_SMS_ACCOUNT": "AC123", "RUNGS_TEST_SMS_TOKEN": "tok"}
POLICY = f"""\
version: 1
timezone: UTC
people:
  - {{id: ann, contacts: {{email: ann@example.com, sms: "+491701111111"}}}}
  - {{id: ben, contacts: {{email: ben@example.com, sms: "+491702222222"}}}}
schedules:
  - id: primary
    timezone: Europe/Berlin
    layers:
      - {{name: weekly, members: [ann, ben], shift: 1w, start: "2026-03-02T09:00:00+01:00"}}
customers:
  - {{id: acme, name: Acme}}
matrices:
  - id: default
    levels:
      - notify: [schedule:primary]
      - {{after: 30m, notify: [person:ben]}}
integrations:
  - {{id: pd, format: pagerduty, key: {PD_KEY}, defaults: {{customer: acme}}}}
channels:
  sms: {{url: "http://127.0.0.1:9/{{account}}", account_env: RUNGS_TEST_SMS_ACCOUNT,
        token_env: RUNGS_TEST_SMS_TOKEN, sender: "+4930000000"}}
links: {{base_url: "http://testserver", ttl: 24h}}
"""
ENDS = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "9999-12-25T00:00:00Z"]


@dataclass
class Api:
    engine: Engine
    client: TestClient
    case: str  # the id of an open case (two levels)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    saved = {k: os.environ.get(k) for k in ENV}
    os.environ.update(ENV)
    d = tmp_path_factory.mktemp("bad-input")
    policy = Path(d) / "policy.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    url, at = f"sqlite:///{d / 'rungs.db'}", parse_instant(START)
    engine, _ = build(db_url=url, policy_file=policy, virtual_start=at)  # stores the policy
    engine.stop()
    engine.db.dispose()
    engine, app = build(db_url=url, policy_file=None, virtual_start=at)  # PUT may change it
    try:
        case, _ = open_case(engine, {"customer": "acme", "title": "a case"})
        token = api_token(engine.db, "admin", "bad-input-admin")
        with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
            yield Api(engine, client, case.id)
    finally:
        engine.stop()
        engine.db.dispose()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def error(r: Any, status: int, field: str | None) -> str:
    """The answer's `detail`, after checking the status and the error shape."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json"), r.headers
    body = r.json()
    assert isinstance(body["detail"], str) and body["detail"], body
    assert body.get("field") == field, body
    return body["detail"]


# each input that answered 500 -----------------------------------------------------------------


def test_an_offset_beyond_any_database(api: Api) -> None:
    r = api.client.get("/v1/cases", params={"offset": "99999999999999999999"})
    assert "offset" in error(r, 422, "offset")
    r = api.client.get("/v1/cases", params={"offset": str(2**31 - 1)})
    assert r.status_code == 200 and r.json()["items"] == []


def test_a_pagerduty_timestamp_before_year_one_in_utc(api: Api) -> None:
    event = {
        "routing_key": PD_KEY,
        "event_action": "trigger",
        "payload": {
            "summary": "disk full",
            "source": "db1",
            "severity": "critical",
            "timestamp": "0001-01-01T00:00:00+14:00",
        },
    }
    r = api.client.post("/v2/enqueue", json=event)
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["status"] == "invalid event"  # PagerDuty's own error shape
    assert any("payload.timestamp" in e and "out of range" in e for e in body["errors"]), body


@pytest.mark.parametrize("at", ENDS)
def test_oncall_at_the_ends_of_the_calendar(api: Api, at: str) -> None:
    detail = error(api.client.get("/v1/oncall", params={"at": at}), 422, "at")
    assert "out of range" in detail and "9000-01-01" in detail


@pytest.mark.parametrize("route", ["/v1/schedules/primary/shifts", "/v1/schedules/primary.ics"])
def test_shifts_and_ics_near_year_9999(api: Api, route: str) -> None:
    for start in ENDS:
        error(api.client.get(route, params={"from": start}), 422, "from")
    r = api.client.get(route, params={"from": "8999-12-01T00:00:00Z", "to": "9999-12-31T00:00:00Z"})
    error(r, 422, "to")
    # the last days Rungs takes still have shifts (their handoffs, local times: dates)
    r = api.client.get(route, params={"from": "8998-12-01T00:00:00Z", "to": "8999-12-31T23:00:00Z"})
    assert r.status_code == 200, r.text
    assert ("8999-12-" in r.text) if route.endswith("shifts") else ("DTSTART:89991" in r.text)


def test_ics_range_is_capped_like_shifts(api: Api) -> None:
    for route in ("/v1/schedules/primary/shifts", "/v1/schedules/primary.ics"):
        r = api.client.get(
            route, params={"from": "2026-01-01T00:00:00Z", "to": "2027-02-05T00:00:01Z"}
        )
        assert "at most 400 days" in error(r, 422, "to")
        r = api.client.get(
            route, params={"from": "2026-01-01T00:00:00Z", "to": "2027-02-05T00:00:00Z"}
        )
        assert r.status_code == 200, r.text


def test_handoff_for_a_level_the_matrix_does_not_have(api: Api) -> None:
    r = api.client.get(f"/v1/cases/{api.case}/handoff", params={"level": 100})
    assert error(r, 422, "level") == "level 100 is not a level of matrix 'default' (1..2)"
    error(api.client.get(f"/v1/cases/{api.case}/handoff", params={"level": 3}), 422, "level")
    error(api.client.get(f"/v1/cases/{api.case}/handoff", params={"level": 101}), 422, "level")
    r = api.client.get(f"/v1/cases/{api.case}/handoff", params={"level": 2})
    assert r.status_code == 200 and r.json()["for_level"]["number"] == 2, r.text


def test_a_non_ascii_twilio_signature_is_a_failed_check(api: Api) -> None:
    form = {"From": "+491701111111", "Body": "ACK 1", "To": "+4930000000"}
    for sig in ("é✓".encode(), b"\xff\xfe", "sig\u00e9".encode("latin-1")):
        r = api.client.post("/inbound/sms", data=form, headers={"X-Twilio-Signature": sig})
        assert r.status_code == 403 and "Signature check failed" in r.text, r.text


DEEP = [
    "version: 1\npeople: " + "[" * 50_000 + "]" * 50_000 + "\n",
    "version: 1\ncustomers: " + "{a: " * 2_000 + "1" + "}" * 2_000 + "\n",
    "version: 1\npeople: &a [*a]\n",
    "version: 1\nx0: &x0 [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n"
    + "".join(f"x{i}: &x{i} [{', '.join([f'*x{i - 1}'] * 10)}]\n" for i in range(1, 9)),
]


@pytest.mark.parametrize("text", DEEP, ids=["lists", "mappings", "recursive-alias", "laughs"])
def test_deeply_nested_yaml_policy(api: Api, text: str) -> None:
    before = api.engine.policies.current_version()
    r = api.client.put(
        "/v1/policy", content=text.encode(), headers={"Content-Type": "application/yaml"}
    )
    detail = error(r, 422, "body")
    assert detail.startswith("PUT /v1/policy:") and "YAML document" in detail, detail
    assert api.engine.policies.current_version() == before


def _override_rows(engine: Engine) -> int:
    with engine.db.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(overrides)).scalar_one())


def test_an_override_from_before_year_one_is_refused_before_it_is_stored(api: Api) -> None:
    before = _override_rows(api.engine)
    for start, to, field in (
        ("0001-01-01T00:00:00+14:00", "2026-03-03T00:00:00Z", "from"),
        ("2026-03-03T00:00:00Z", "9999-12-31T23:59:59-14:00", "to"),
        ("2026-03-03T00:00:00Z", "2026-03-02T00:00:00Z", "to"),
    ):
        body = {"from": start, "to": to, "who": "ann"}
        error(api.client.post("/v1/schedules/primary/overrides", json=body), 422, field)
    body = {"from": "2026-03-03T00:00:00Z", "to": "2026-03-04T00:00:00Z", "who": "nobody"}
    error(api.client.post("/v1/schedules/primary/overrides", json=body), 422, "who")
    assert _override_rows(api.engine) == before
    r = api.client.get("/v1/schedules/primary/shifts", params={"from": "2026-03-02T09:00:00Z"})
    assert r.status_code == 200 and all(s["source"] != "override" for s in r.json())


@pytest.mark.parametrize(
    ("start", "end", "who", "status", "field"),
    [
        (EARLIEST - 1, EARLIEST + 1, "ann", 422, "from"),
        (LATEST - 1, LATEST, "ann", 422, "to"),
        (-(2**62), 2**62, "ann", 422, "from"),
        (EARLIEST + 2, EARLIEST + 1, "ann", 422, "to"),
        (EARLIEST, EARLIEST + 1, "nobody", 422, "who"),
    ],
)
def test_the_override_command_checks_before_writing(
    api: Api, start: int, end: int, who: str, status: int, field: str
) -> None:
    """The command itself refuses (not only the route): nothing is committed, then fails."""
    before = _override_rows(api.engine)
    with pytest.raises(Refused) as refused:
        asyncio.run(api.engine.commands.add_override("primary", start, end, who, None))
    assert (refused.value.status, refused.value.field) == (status, field)
    with pytest.raises(Refused) as refused:
        asyncio.run(api.engine.commands.add_override("nope", EARLIEST, EARLIEST + 1, "ann", None))
    assert (refused.value.status, refused.value.field) == (404, "id")
    assert _override_rows(api.engine) == before


# bodies that are not JSON -------------------------------------------------------------------


CASE = {"customer": "acme", "title": "from a script"}


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "application/yaml"]
)
def test_a_json_route_refuses_another_media_type_with_415(api: Api, content_type: str) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    for route in ("/v1/cases", f"/v1/cases/{api.case}/escalate"):
        r = api.client.post(route, content=json.dumps(CASE).encode(), headers=headers)
        detail = error(r, 415, None)
        assert "application/json" in detail and (content_type or "no Content-Type") in detail


def test_malformed_json_is_400_with_its_position_in_detail(api: Api) -> None:
    headers = {"Content-Type": "application/json"}
    r = api.client.post("/v1/cases", content=b'{"customer": "acme",', headers=headers)
    detail = error(r, 400, None)
    assert detail.startswith("the body is not valid JSON: ") and "line 1, column 21" in detail
    text = '{\n  "customer": "acme"\n  "title": "x"\n}'
    r = api.client.post(f"/v1/cases/{api.case}/escalate", content=text.encode(), headers=headers)
    assert "line 3, column 3" in error(r, 400, None)
    assert "errors" not in r.json()


def test_one_field_at_fault_is_named_several_are_listed(api: Api) -> None:
    r = api.client.post("/v1/cases", json={"customer": "acme"})
    assert error(r, 422, "title") == "title: Field required"
    r = api.client.post("/v1/cases", json={"customer": "acme", "title": "x", "priority": "P9"})
    error(r, 422, "priority")
    r = api.client.post("/v1/cases", json={"title": "", "bogus": 1})
    error(r, 422, None)
    assert {e["field"] for e in r.json()["errors"]} >= {"customer", "title", "bogus"}


def test_an_error_echoing_a_lone_surrogate_is_still_json(api: Api) -> None:
    text = json.dumps({"customer": "\ud800", "title": "\ud800 \x00\x1b"})  # ASCII escapes
    r = api.client.post(
        "/v1/cases", content=text.encode(), headers={"Content-Type": "application/json"}
    )
    assert r.status_code < 500, r.text
    assert "detail" in r.json()


# unknown filter values ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "bogus"}, "status"),
        ({"status": "OPEN"}, "status"),
        ({"customer": "acmee"}, "customer"),
        ({"assignee": "nobody"}, "assignee"),
        ({"priority": "P9"}, "priority"),
        ({"level": "0"}, "level"),
        ({"limit": "0"}, "limit"),
    ],
)
def test_unknown_filter_values_are_422(api: Api, params: dict[str, str], field: str) -> None:
    error(api.client.get("/v1/cases", params=params), 422, field)


def test_known_filter_values_list(api: Api) -> None:
    for params in ({"status": "open"}, {"customer": "acme"}, {"assignee": "ben"}, {}):
        r = api.client.get("/v1/cases", params=params)
        assert r.status_code == 200, r.text
    assert api.client.get("/v1/cases", params={"status": "closed"}).json()["items"] == []
    assert api.client.get("/v1/cases", params={"customer": "acme"}).json()["total"] >= 1


def test_a_customer_removed_from_the_policy_still_lists_its_cases(api: Api) -> None:
    """ "Unknown" is known to neither the policy nor any stored case. (Last in this module: it
    changes the policy, then puts the first one back.)"""
    beta = POLICY.replace(
        "  - {id: acme, name: Acme}", "  - {id: acme, name: Acme}\n  - {id: beta}"
    )
    headers = {"Content-Type": "application/yaml"}
    r = api.client.put("/v1/policy", content=beta.encode(), headers=headers)
    assert r.status_code == 200, r.text
    open_case(api.engine, {"customer": "beta", "title": "a beta case"})
    r = api.client.put("/v1/policy?force=true", content=POLICY.encode(), headers=headers)
    assert r.status_code == 200, r.text
    assert "beta" not in api.engine.policies.current().customers
    r = api.client.get("/v1/cases", params={"customer": "beta"})
    assert r.status_code == 200 and r.json()["total"] == 1, r.text
    error(api.client.get("/v1/cases", params={"customer": "gamma"}), 422, "customer")


# what the extended fuzz test found ----------------------------------------------------------


def test_a_lone_surrogate_in_free_form_fields_is_refused_before_anything_is_stored(
    api: Api,
) -> None:
    total = api.client.get("/v1/cases").json()["total"]
    for fields, field in (
        ({"k": "\ud800"}, "fields.k"),
        ({"k": {"\udfff": 1}}, "fields.k"),
        ({"k": [{"deep": "a\ud800b"}]}, "fields.k"),
        ({"\udfff": 1}, "fields."),  # the key itself: pydantic's own str check
    ):
        text = json.dumps({"customer": "acme", "title": "t", "fields": fields})
        r = api.client.post(
            "/v1/cases", content=text.encode(), headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 422 and r.json()["field"].startswith(field), r.text
    assert api.client.get("/v1/cases").json()["total"] == total  # and the list still answers


def test_nul_characters_that_no_database_column_could_hold(api: Api) -> None:
    for url in (f"/v1/cases/{api.case}%00", "/v1/cases?customer=acme%00", "/v1/tokens/a%00b"):
        assert "NUL" in error(api.client.get(url), 400, "url")
    r = api.client.post("/v1/cases", json={"customer": "acme", "title": "t", "dedup_key": "a\x00"})
    assert "NUL" in error(r, 422, "dedup_key")
    body = {"from": "2026-03-03T00:00:00Z", "to": "2026-03-04T00:00:00Z", "who": "ann"}
    r = api.client.post("/v1/schedules/primary/overrides", json={**body, "note": "a\x00"})
    assert "NUL" in error(r, 422, "note")


def test_ics_for_an_unknown_person(api: Api) -> None:
    r = api.client.get("/v1/schedules/primary.ics", params={"person": "x\r\nX-Injected: 1"})
    assert error(r, 422, "person").startswith("unknown person")
    r = api.client.get("/v1/schedules/primary.ics", params={"person": "ann"})
    assert r.status_code == 200 and "SUMMARY:On call: ann (primary)" in r.text
