"""Alert storms over HTTP, on SQLite and PostgreSQL, on the virtual clock: grouping (attach,
each alert's own status, `group_resolve` all and any, the group window), the storm guard
(threshold, one page, release), maintenance windows (suppressed, nobody paged, no SLA,
escalation at the end, cancel, bad input) and flapping (no page per flap, quiet end)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from rungs.bootstrap import build
from rungs.core.model import Refused
from rungs.engine import maintenance as maintenance_manager
from rungs.engine.integrations import case_data
from rungs.store.alerts import latest
from rungs.store.cases import load_case
from rungs.time.instant import parse_instant
from tests.conftest import auth_headers

START = "2026-03-02T09:00:00Z"
AM = "am-storms-0123456789abcdef"
ANY = "ev-any-0123456789abcdef"
STORM = "ev-storm-0123456789abcdef"
FLAP = "ev-flap-0123456789abcdef"
PLAIN = "ev-plain-0123456789abcdef"
GSTORM = "ev-gstorm-0123456789abcdef"

POLICY = f"""\
version: 1
timezone: UTC
people:
  - id: ann
    contacts: {{ email: ann@example.com }}
  - id: ben
    contacts: {{ email: ben@example.com }}
customers:
  - {{ id: acme, name: Acme, sla: std }}
  - {{ id: globex, name: Globex, sla: std }}
sla_policies:
  std:
    targets:
      P3: {{ first_response: 15m, resolution: 4h }}
matrices:
  - id: default
    levels:
      - notify: [person:ann]
      - after: 30m
        notify: [person:ben]
integrations:
  - id: am
    format: alertmanager
    key: {AM}
    defaults: {{ customer: acme }}
    group_by: [alertname, cluster]
    group_window: 5m
  - id: any
    format: events
    key: {ANY}
    defaults: {{ customer: acme }}
    group_by: [service]
    group_resolve: any
  - id: storm
    format: events
    key: {STORM}
    defaults: {{ customer: acme }}
    storm: {{ cases: 3, window: 1m }}
  - id: flap
    format: events
    key: {FLAP}
    defaults: {{ customer: acme }}
    flap: {{ count: 3, window: 10m }}
  - id: plain
    format: events
    key: {PLAIN}
    defaults: {{ customer: globex }}
  - id: gstorm
    format: events
    key: {GSTORM}
    defaults: {{ customer: acme }}
    group_by: [service]
    group_resolve: any
    group_window: 1m
    storm: {{ cases: 2, window: 10m }}
"""


@pytest.fixture
def c(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("RUNGS_ALLOW_VIRTUAL_CLOCK", "1")
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY, "utf-8")
    service, app = build(db_url=db_url, policy_file=policy, virtual_start=parse_instant(START))
    try:
        with TestClient(app) as client:
            client.admin = auth_headers(service)  # type: ignore[attr-defined]
            client.viewer = auth_headers(service, "viewer")  # type: ignore[attr-defined]
            client.service = service  # type: ignore[attr-defined]
            yield client
    finally:
        service.stop()
        service.db.dispose()


def _cases(c: TestClient) -> list[dict[str, Any]]:
    r = c.get("/v1/cases", params={"limit": 500}, headers=c.admin)  # type: ignore[attr-defined]
    assert r.status_code == 200, r.text
    return r.json()["items"]


def _case(c: TestClient, case_id: str) -> dict[str, Any]:
    r = c.get(f"/v1/cases/{case_id}", headers=c.admin)  # type: ignore[attr-defined]
    assert r.status_code == 200, r.text
    return r.json()


def _timeline(c: TestClient, case_id: str) -> list[dict[str, Any]]:
    r = c.get(f"/v1/cases/{case_id}/timeline", headers=c.admin)  # type: ignore[attr-defined]
    assert r.status_code == 200, r.text
    return r.json()


def _kinds(c: TestClient, case_id: str) -> list[str]:
    return [e["kind"] for e in _timeline(c, case_id)]


def _advance(c: TestClient, to: str) -> None:
    r = c.post("/v1/clock/advance", json={"to": to}, headers=c.admin)  # type: ignore[attr-defined]
    assert r.status_code == 200, r.text


def _event(
    c: TestClient, key: str, action: str, dedup: str, customer: str | None = None, **fields: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"action": action, "dedup_key": dedup}
    if action == "trigger":
        body |= {"title": f"alert {dedup}", "fields": fields}
    if customer is not None:
        body["customer"] = customer
    r = c.post(f"/v1/integrations/{key}/events", json=body)
    assert r.status_code == 202, r.text
    return r.json()


def _am(status: str, *alerts: tuple[str, str, str]) -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": "{}:{}",
        "status": status,
        "receiver": "rungs",
        "alerts": [
            {
                "status": status,
                "labels": {"alertname": name, "cluster": cluster, "instance": inst},
                "annotations": {"summary": f"{name} on {inst}"},
                "fingerprint": f"fp-{name}-{cluster}-{inst}",
            }
            for name, cluster, inst in alerts
        ],
    }


def _post_am(c: TestClient, status: str, *alerts: tuple[str, str, str]) -> dict[str, Any]:
    r = c.post(f"/v1/integrations/{AM}/alertmanager", json=_am(status, *alerts))
    assert r.status_code == 202, r.text
    return r.json()


# grouping -----------------------------------------------------------------------------------


def test_grouping_attaches_and_resolves_when_all_have(c: TestClient) -> None:
    down = [("DiskFull", "eu", f"h{i}") for i in range(3)]
    answer = _post_am(c, "firing", *down, ("DiskFull", "us", "h9"))
    assert answer["taken"] == 4
    cases = _cases(c)
    assert len(cases) == 2  # one per (alertname, cluster)
    eu = next(
        x for x in cases if x["fields"]["group"] == {"alertname": "DiskFull", "cluster": "eu"}
    )
    one = _case(c, eu["id"])
    assert one["alert_count"] == 3
    assert [(a["key"], a["status"]) for a in one["alerts"]] == [
        (f"am:fp-DiskFull-eu-h{i}", "firing") for i in range(3)
    ]
    kinds = _kinds(c, eu["id"])
    assert kinds.count("notified") == 1  # one page per group, not per alert
    assert kinds.count("alert_attached") == 2

    _post_am(c, "resolved", down[0], down[1])
    one = _case(c, eu["id"])
    assert one["status"] == "open"
    assert [a["status"] for a in one["alerts"]] == ["resolved", "resolved", "firing"]
    left = [e["firing"] for e in _timeline(c, eu["id"]) if e["kind"] == "alert_resolved"]
    assert left == [2, 1]
    handoff = c.get(f"/v1/cases/{eu['id']}/handoff", headers=c.admin).json()  # type: ignore[attr-defined]
    assert [(a["alert"], a["status"]) for a in handoff["alerts"]] == [
        ("am:fp-DiskFull-eu-h0", "resolved"),
        ("am:fp-DiskFull-eu-h1", "resolved"),
        ("am:fp-DiskFull-eu-h2", "firing"),
    ]
    _post_am(c, "resolved", down[2])
    assert _case(c, eu["id"])["status"] == "resolved"
    assert _kinds(c, eu["id"])[-1] == "resolved"

    # the same group after the case resolved opens a new case, paged again
    _post_am(c, "firing", ("DiskFull", "eu", "h5"))
    assert len(_cases(c)) == 3


def test_group_window_ends_attaching(c: TestClient) -> None:
    _post_am(c, "firing", ("CPU", "eu", "a"))
    _advance(c, "2026-03-02T09:04:00Z")
    _post_am(c, "firing", ("CPU", "eu", "b"))  # within 5m of the group's opening: attaches
    assert len(_cases(c)) == 1
    _advance(c, "2026-03-02T09:06:00Z")
    _post_am(c, "firing", ("CPU", "eu", "c"))  # past the window: a case of its own
    cases = _cases(c)
    assert len(cases) == 2
    assert [_case(c, x["id"])["alert_count"] for x in cases] == [2, 1]


def test_group_resolve_any(c: TestClient) -> None:
    _event(c, ANY, "trigger", "a1", service="db")
    _event(c, ANY, "trigger", "a2", service="db")
    _event(c, ANY, "trigger", "a3", service="web")
    cases = _cases(c)
    assert len(cases) == 2
    db = next(x for x in cases if x["fields"]["group"] == {"service": "db"})
    assert _case(c, db["id"])["alert_count"] == 2
    answer = _event(c, ANY, "resolve", "a1")
    assert answer["applied"] is True and answer["case"] == db["id"]
    assert _case(c, db["id"])["status"] == "resolved"  # any one resolves the case
    # the other alert resolving later is no error, and changes nothing
    assert _event(c, ANY, "resolve", "a2")["applied"] is False


# storm guard --------------------------------------------------------------------------------


def test_storm_guard_one_case_one_page_then_release(c: TestClient) -> None:
    for i in range(3):
        _event(c, STORM, "trigger", f"s{i}")
    assert len(_cases(c)) == 3  # up to the threshold: a case each
    for i in range(3, 10):
        _event(c, STORM, "trigger", f"s{i}")
    cases = _cases(c)
    assert len(cases) == 4  # the rest joined one storm case
    storm = next(x for x in cases if x["fields"].get("storm"))
    assert storm["title"].startswith("Alert storm: integration 'storm'")
    kinds = _kinds(c, storm["id"])
    assert kinds.count("notified") == 1  # one page saying so
    assert kinds.count("storm_started") == 1 and kinds.count("alert_attached") == 6
    assert _case(c, storm["id"])["alert_count"] == 7
    started = next(e for e in _timeline(c, storm["id"]) if e["kind"] == "storm_started")
    assert (started["cases"], started["threshold"], started["window"]) == (3, 3, 60)
    handoff = c.get(f"/v1/cases/{storm['id']}/handoff", headers=c.admin).json()  # type: ignore[attr-defined]
    assert handoff["alerts"][0] == {"alert": "storm:s3", "summary": "alert s3", "status": "firing"}

    _advance(c, "2026-03-02T09:02:00Z")  # the rate falls: alerts open their own cases again
    _event(c, STORM, "trigger", "s-late")
    assert len(_cases(c)) == 5
    assert _kinds(c, storm["id"])[-1] == "storm_ended"
    # resolving the storm's alerts resolves the storm case once all have
    for i in range(3, 10):
        _event(c, STORM, "resolve", f"s{i}")
    assert _case(c, storm["id"])["status"] == "resolved"


def test_an_alert_the_core_refuses_leaves_the_storm_as_it_was(c: TestClient) -> None:
    """The storm's end is written only once the alert that ends it is not refused: the
    writer does not roll `Refused` back, so a refused alert must leave nothing behind."""
    for i in range(5):
        _event(c, STORM, "trigger", f"s{i}")
    storm = next(x for x in _cases(c) if x["fields"].get("storm"))
    _advance(c, "2026-03-02T09:02:00Z")  # the rate has fallen: the next alert ends the storm
    service = c.service  # type: ignore[attr-defined]
    integ = service.policies.current().integrations["storm"]
    # ingest addresses every alert; a policy changed between addressing and deciding could
    # still leave it without a customer the core can open a case for
    data = case_data(integ, dedup_key="s-refused", title="refused", customer="nobody")
    with pytest.raises(Refused, match="unknown customer"):
        asyncio.run(service.commands.trigger(data, {"summary": "refused"}))
    assert "storm_ended" not in _kinds(c, storm["id"])
    assert len(_cases(c)) == 4

    # in one transaction with an alert that opens (an Alertmanager group): the refused one is
    # left out, the other ends the storm, once
    good = case_data(integ, dedup_key="s-late", title="late")
    refused, taken = asyncio.run(
        service.commands.alerts_at_once(
            [("trigger", data, {"summary": "refused"}), ("trigger", good, {"summary": "late"})]
        )
    )
    assert isinstance(refused, Refused) and not isinstance(taken, Exception)
    assert _kinds(c, storm["id"]).count("storm_ended") == 1
    assert len(_cases(c)) == 5


def test_a_storm_case_resolves_when_all_its_alerts_have_whatever_the_groups_do(
    c: TestClient,
) -> None:
    """`group_resolve: any` is for an integration's group cases; its storm case resolves
    when all its alerts have, so one resolving mid-storm costs no second storm page."""
    for i in range(4):  # two cases, then the storm case (s2) and one more in it (s3)
        _event(c, GSTORM, "trigger", f"g{i}", service=f"s{i}")
    storm = next(x for x in _cases(c) if x["fields"].get("storm"))
    _event(c, GSTORM, "resolve", "g3")
    assert _case(c, storm["id"])["status"] == "open"  # g2 still fires
    assert _event(c, GSTORM, "trigger", "g4", service="s4")["case"] == storm["id"]
    assert len([x for x in _cases(c) if x["fields"].get("storm")]) == 1
    assert _kinds(c, storm["id"]).count("notified") == 1
    for key in ("g2", "g4"):
        _event(c, GSTORM, "resolve", key)
    assert _case(c, storm["id"])["status"] == "resolved"


def test_past_its_group_window_an_alert_joins_the_storm_not_its_old_group(c: TestClient) -> None:
    first = _event(c, GSTORM, "trigger", "x1", service="x")["case"]
    _event(c, GSTORM, "trigger", "y1", service="y")
    storm = _event(c, GSTORM, "trigger", "z1", service="z")["case"]  # over the threshold
    assert _case(c, storm)["fields"].get("storm")
    _advance(c, "2026-03-02T09:02:00Z")  # x's group case is past its 1m window
    assert _event(c, GSTORM, "trigger", "x2", service="x")["case"] == storm
    assert _case(c, first)["alert_count"] == 1


def test_an_alert_resolving_after_its_case_resolved_is_resolved_too(c: TestClient) -> None:
    case = _event(c, ANY, "trigger", "r1", service="db")["case"]
    _event(c, ANY, "trigger", "r2", service="db")
    _event(c, ANY, "resolve", "r1")  # `any`: the case resolves here
    assert _case(c, case)["status"] == "resolved"
    _event(c, ANY, "resolve", "r2")
    assert [a["status"] for a in _case(c, case)["alerts"]] == ["resolved", "resolved"]


def test_a_storm_that_goes_on_stays_one_storm_case(c: TestClient) -> None:
    """The alerts the storm case takes count toward the rate: while they keep coming faster
    than the threshold, the storm neither ends nor starts again each window."""
    for i in range(50):  # one every 6 s for 5 minutes: 10 a minute against 3 a minute
        _advance(c, f"2026-03-02T09:{i * 6 // 60:02d}:{i * 6 % 60:02d}Z")
        _event(c, STORM, "trigger", f"steady{i}")
    cases = _cases(c)
    storms = [x for x in cases if x["fields"].get("storm")]
    assert len(storms) == 1 and len(cases) == 4  # 3 cases, then the storm case
    assert "storm_ended" not in _kinds(c, storms[0]["id"])
    assert _case(c, storms[0]["id"])["alert_count"] == 47
    _advance(c, "2026-03-02T09:07:00Z")  # the rate falls: the next alert ends the storm
    _event(c, STORM, "trigger", "calm")
    assert _kinds(c, storms[0]["id"]).count("storm_ended") == 1


# maintenance --------------------------------------------------------------------------------


def test_maintenance_suppresses_then_escalates_at_the_end(c: TestClient) -> None:
    body = {
        "integrations": ["plain"],
        "from": "2026-03-02T09:00:00Z",
        "to": "2026-03-02T10:00:00Z",
        "reason": "database upgrade",
    }
    r = c.post("/v1/maintenance", json=body, headers=c.viewer)  # type: ignore[attr-defined]
    assert r.status_code == 403
    r = c.post("/v1/maintenance", json=body, headers=c.admin)  # type: ignore[attr-defined]
    assert r.status_code == 201, r.text
    window = r.json()
    assert (window["state"], window["reason"], window["to"]) == (
        "active",
        "database upgrade",
        "2026-03-02T10:00:00Z",
    )
    listed = c.get("/v1/maintenance", headers=c.viewer).json()  # type: ignore[attr-defined]
    assert [w["id"] for w in listed] == [window["id"]]

    held = _event(c, PLAIN, "trigger", "m1")["case"]
    _event(c, PLAIN, "trigger", "m1")
    gone = _event(c, PLAIN, "trigger", "m2")["case"]
    _advance(c, "2026-03-02T09:30:00Z")
    _event(c, PLAIN, "resolve", "m2")
    assert _kinds(c, held) == ["suppressed", "suppressed"]  # recorded, nobody paged
    assert _case(c, held)["sla"] == {}  # no SLA runs
    assert _kinds(c, gone) == ["suppressed", "resolved"]

    _advance(c, "2026-03-02T11:00:00Z")
    timeline = _timeline(c, held)
    at_end = [e["kind"] for e in timeline if e["at"] == "2026-03-02T10:00:00Z"]
    assert at_end[:2] == ["maintenance_ended", "opened"] and "notified" in at_end
    assert _case(c, held)["opened_at"] == "2026-03-02T10:00:00Z"  # as if it had just arrived
    # and it escalates from there: level 2 thirty minutes after the window's end
    esc = next(e for e in timeline if e["kind"] == "escalated")
    assert esc["at"] == "2026-03-02T10:30:00Z"
    assert "notified" not in _kinds(c, gone)
    assert c.get("/v1/maintenance", headers=c.viewer).json()[0]["state"] == "ended"  # type: ignore[attr-defined]


def test_a_held_case_paged_by_hand_runs_on_from_where_it_is_at_the_end(c: TestClient) -> None:
    """During the window someone escalated one held case (paging level 2), assigned another
    (paging ben), and resolved and reopened a third (paging level 1). At the window's end
    none is opened anew at level 1 or paged again: each ladder runs on from the level it
    reached, and their SLA clocks start. The window's other held case is opened as usual."""
    body = {"integrations": ["plain"], "from": START, "to": "2026-03-02T10:00:00Z", "reason": "x"}
    r = c.post("/v1/maintenance", json=body, headers=c.admin)  # type: ignore[attr-defined]
    assert r.status_code == 201, r.text
    escalated, assigned, reopened, other = (
        _event(c, PLAIN, "trigger", f"e{i}")["case"] for i in range(4)
    )
    for case_id, actions in ((escalated, [("escalate", {"reason": "x"})]),
                             (assigned, [("assign", {"to": "person:ben"})]),
                             (reopened, [("resolve", {}), ("reopen", {})])):  # fmt: skip
        for what, extra in actions:
            r = c.post(f"/v1/cases/{case_id}/{what}", json={"by": "ann", **extra},
                       headers=c.admin)  # type: ignore[attr-defined]  # fmt: skip
            assert r.status_code == 200, r.text
    pages = {x: _kinds(c, x).count("notified") for x in (escalated, assigned, reopened)}
    assert all(pages.values())  # (the reopened case's ladder escalates it at 09:30)
    _advance(c, "2026-03-02T10:00:00Z")
    assert _kinds(c, other)[:3] == ["suppressed", "maintenance_ended", "opened"]
    assert "notified" in _kinds(c, other)
    for case_id in (escalated, assigned, reopened):
        kinds = _kinds(c, case_id)
        assert "opened" not in kinds, kinds
        assert _case(c, case_id)["status"] == "open"
    for case_id in (escalated, assigned):  # nobody paged again at the window's end
        assert _kinds(c, case_id).count("notified") == pages[case_id]
    for case_id in (escalated, assigned, reopened):  # from the window's end: SLA clocks run
        assert "maintenance_ended" in _kinds(c, case_id)
        assert _case(c, case_id)["sla"], _case(c, case_id)
    _advance(c, "2026-03-02T10:30:00Z")  # the assigned case's ladder: level 2 after 30m
    assert [e["level"] for e in _timeline(c, assigned) if e["kind"] == "escalated"] == [2]
    assert c.get("/v1/maintenance", headers=c.viewer).json()[0]["state"] == "ended"  # type: ignore[attr-defined]


def test_a_held_case_back_from_pending_is_paged_at_the_window_end(c: TestClient) -> None:
    """Set pending and brought back by the customer's reply during the window, nobody was
    paged for it: at the end its level is paged and its clocks start."""
    _window(c, integrations=["plain"], **{"from": START, "to": "2026-03-02T10:00:00Z"},
            reason="x")  # fmt: skip
    held = _event(c, PLAIN, "trigger", "p1")["case"]
    for what in ("pending", "customer_reply"):
        r = c.post(f"/v1/cases/{held}/{what}", json={"by": "ann"}, headers=c.admin)  # type: ignore[attr-defined]
        assert r.status_code == 200, r.text
    assert "notified" not in _kinds(c, held)
    _advance(c, "2026-03-02T10:00:00Z")
    kinds = _kinds(c, held)
    assert "maintenance_ended" in kinds and "notified" in kinds, kinds
    assert _case(c, held)["sla"]


def test_a_database_error_at_a_window_end_is_tried_again_not_dropped(
    c: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    _window(c, integrations=["plain"], **{"from": START, "to": "2026-03-02T10:00:00Z"},
            reason="x")  # fmt: skip
    held = _event(c, PLAIN, "trigger", "t1")["case"]
    release = maintenance_manager.core.release

    def unavailable(*args: Any) -> Any:
        raise OperationalError("SELECT", {}, sqlite3.OperationalError("database is locked"))

    monkeypatch.setattr(maintenance_manager.core, "release", unavailable)
    r = c.post("/v1/clock/advance", json={"to": "2026-03-02T10:05:00Z"}, headers=c.admin)  # type: ignore[attr-defined]
    assert r.status_code == 503, r.text  # the tick fails, rolled back whole: try again
    assert _kinds(c, held) == ["suppressed"]
    monkeypatch.setattr(maintenance_manager.core, "release", release)
    _advance(c, "2026-03-02T10:06:00Z")  # the next tick tries again
    kinds = _kinds(c, held)
    assert kinds[:3] == ["suppressed", "maintenance_ended", "opened"] and "notified" in kinds


def test_a_released_group_case_takes_its_group_for_a_window_from_its_release(
    c: TestClient,
) -> None:
    """Opened anew at the window's end as if its alert had just arrived: the group window
    (5m) runs from then, so an alert of its group 30 s later attaches, unpaged."""
    body = {"integrations": ["am"], "from": START, "to": "2026-03-02T10:00:00Z", "reason": "x"}
    r = c.post("/v1/maintenance", json=body, headers=c.admin)  # type: ignore[attr-defined]
    assert r.status_code == 201, r.text
    _post_am(c, "firing", ("Disk", "eu", "a"))
    (case,) = _cases(c)
    _advance(c, "2026-03-02T10:00:30Z")
    assert _case(c, case["id"])["opened_at"] == "2026-03-02T10:00:00Z"
    _post_am(c, "firing", ("Disk", "eu", "b"))
    assert [x["id"] for x in _cases(c)] == [case["id"]]
    assert _case(c, case["id"])["alert_count"] == 2


def test_a_window_for_one_customer_holds_no_other_customers_alert_of_its_group(
    c: TestClient,
) -> None:
    body = {"customers": ["globex"], "from": START, "to": "2026-03-02T12:00:00Z", "reason": "x"}
    r = c.post("/v1/maintenance", json=body, headers=c.admin)  # type: ignore[attr-defined]
    assert r.status_code == 201, r.text

    def trigger(dedup: str, customer: str) -> str:
        return str(_event(c, ANY, "trigger", dedup, customer, service="db")["case"])

    held = trigger("w1", "globex")
    own = trigger("w2", "acme")  # same group, but no window covers acme
    assert own != held
    assert _kinds(c, held) == ["suppressed"]
    assert "notified" in _kinds(c, own) and _case(c, own)["customer"] == "acme"
    assert trigger("w3", "acme") == own  # the group's case is acme's now
    _advance(c, "2026-03-02T12:05:00Z")  # globex's case is opened at the window's end...
    assert "maintenance_ended" in _kinds(c, held)
    assert trigger("w4", "acme") == own  # ...but the group's newer case stays the group's


def test_an_alert_no_window_covers_opens_a_storm_case_of_its_own_beside_a_held_one(
    c: TestClient,
) -> None:
    """The storm case opened while a window held its first alert's customer: an alert of
    another customer starts a storm case of its own (one page), and the next join it."""
    body = {"customers": ["globex"], "from": START, "to": "2026-03-02T12:00:00Z", "reason": "x"}
    r = c.post("/v1/maintenance", json=body, headers=c.admin)  # type: ignore[attr-defined]
    assert r.status_code == 201, r.text

    def trigger(dedup: str, customer: str) -> str:
        return str(_event(c, STORM, "trigger", dedup, customer)["case"])

    for i in range(3):
        trigger(f"a{i}", "acme")
    held = trigger("g0", "globex")  # over the threshold: the storm case, held
    assert _case(c, held)["fields"].get("storm") and _kinds(c, held)[0] == "suppressed"
    acme = [trigger(f"a{i}", "acme") for i in range(3, 8)]
    assert len(set(acme)) == 1 and acme[0] != held
    assert _case(c, acme[0])["fields"].get("storm")
    assert _kinds(c, acme[0]).count("notified") == 1  # one page for acme's storm
    assert len(_cases(c)) == 5


def test_a_window_end_and_an_alert_of_its_held_case_lock_in_one_order(c: TestClient) -> None:
    """A trigger or resolve of a held alert locks its row, then its case; the window's end
    locks the case's alert rows before the case too: no deadlock between them (PostgreSQL's
    row locks; on SQLite the other connection only reads, and the window ends as well)."""
    body = {"integrations": ["plain"], "from": START, "to": "2026-03-02T10:00:00Z", "reason": "x"}
    r = c.post("/v1/maintenance", json=body, headers=c.admin)  # type: ignore[attr-defined]
    assert r.status_code == 201, r.text
    case = _event(c, PLAIN, "trigger", "d1")["case"]
    db = c.service.db  # type: ignore[attr-defined]
    answers: list[int] = []

    def window_end() -> None:
        r = c.post("/v1/clock/advance", json={"to": "2026-03-02T10:05:00Z"}, headers=c.admin)  # type: ignore[attr-defined]
        answers.append(r.status_code)

    with db.connect() as other, other.begin():
        latest(other, "plain:d1")()  # another engine's trigger of d1: its row first
        ending = threading.Thread(target=window_end)
        ending.start()
        time.sleep(0.5)  # the window's end now waits for that row
        assert load_case(other, case, lock=True) is not None  # then its case
    ending.join(20)
    assert answers == [200]
    assert "maintenance_ended" in _kinds(c, case)


@pytest.fixture
def api(c: TestClient, db_url: str, tmp_path: Path) -> Iterator[tuple[Any, TestClient]]:
    """A second process on the same database, serving the API only (`--role api`): no loop."""
    service, app = build(db_url=db_url, policy_file=tmp_path / "policy.yaml",
                         virtual_start=parse_instant(START), role="api")  # fmt: skip
    try:
        with TestClient(app) as client:
            yield service, client
    finally:
        service.stop()
        service.db.dispose()


def _window(c: TestClient, **body: Any) -> int:
    r = c.post("/v1/maintenance", json=body, headers=c.admin)  # type: ignore[attr-defined]
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def test_a_process_serving_the_api_only_sees_new_windows(
    c: TestClient, api: tuple[Any, TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    """It runs no loop: the router reads the windows again (at most every `REFRESH_S`)."""
    _, other = api  # started before the window was added
    _window(c, integrations=["plain"], **{"from": START, "to": "2026-03-02T12:00:00Z"},
            reason="x")  # fmt: skip
    monkeypatch.setattr(maintenance_manager, "REFRESH_S", 0.0)  # as if a second had passed
    held = _event(other, PLAIN, "trigger", "n1")["case"]
    assert _kinds(c, held) == ["suppressed"]  # held, nobody paged


def test_a_case_held_by_a_window_another_process_had_ended_is_released(
    c: TestClient, api: tuple[Any, TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process whose list of windows was a moment behind holds an alert against a window
    another process has cancelled and ended: the engine releases it at its next look."""
    wid = _window(c, integrations=["plain"], **{"from": START, "to": "2026-03-02T12:00:00Z"},
                  reason="x")  # fmt: skip
    service, other = api
    with service.db.connect() as conn:
        service.maintenance.refresh(conn)  # it knows the window
    monkeypatch.setattr(maintenance_manager, "REFRESH_S", 3600.0)  # and reads no more
    r = c.delete(f"/v1/maintenance/{wid}", headers=c.admin)  # type: ignore[attr-defined]
    assert r.status_code == 200, r.text
    _advance(c, "2026-03-02T09:00:01Z")  # this engine ends it, releasing what it held
    held = _event(other, PLAIN, "trigger", "n2")["case"]
    assert _kinds(c, held) == ["suppressed"]  # held against the ended window
    monkeypatch.setattr(maintenance_manager, "REFRESH_S", 0.2)
    time.sleep(0.3)
    _event(c, PLAIN, "trigger", "n3")  # a trigger here reads the windows again, but not...
    _advance(c, "2026-03-02T09:00:02Z")  # ...the held alerts: the engine's next look does
    kinds = _kinds(c, held)
    assert kinds[:3] == ["suppressed", "maintenance_ended", "opened"] and "notified" in kinds


def test_a_held_case_that_fails_to_open_does_not_stop_the_window_ending(
    c: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One case failing at the window's end is logged and no longer held; the others are
    opened, and the window ends (it used to fail at every tick after)."""
    _window(c, integrations=["plain"], **{"from": START, "to": "2026-03-02T10:00:00Z"},
            reason="x")  # fmt: skip
    bad, good = (_event(c, PLAIN, "trigger", f"b{i}")["case"] for i in range(2))
    release = maintenance_manager.core.release

    def failing(case: Any, *args: Any) -> Any:
        if case.id == bad:
            raise RuntimeError("cannot open it")
        return release(case, *args)

    monkeypatch.setattr(maintenance_manager.core, "release", failing)
    _advance(c, "2026-03-02T10:05:00Z")
    assert "notified" in _kinds(c, good)
    assert _kinds(c, bad) == ["suppressed"]
    with c.service.db.connect() as conn:  # type: ignore[attr-defined]
        held = conn.execute(text("SELECT held_by FROM alerts WHERE case_id = :c"), {"c": bad})
        assert [r[0] for r in held] == [None]  # no longer held: not retried at every tick
    assert c.get("/v1/maintenance", headers=c.viewer).json()[0]["state"] == "ended"  # type: ignore[attr-defined]
    _advance(c, "2026-03-02T10:10:00Z")  # nothing left to release: no error, no retry
    assert _kinds(c, bad) == ["suppressed"]


def test_maintenance_by_customer_and_cancel(c: TestClient) -> None:
    body = {"customers": ["globex"], "from": START, "to": "2026-03-03T09:00:00Z", "reason": "x"}
    mid = c.post("/v1/maintenance", json=body, headers=c.admin).json()["id"]  # type: ignore[attr-defined]
    held = _event(c, PLAIN, "trigger", "k1")["case"]  # plain's customer is globex
    other = _event(c, STORM, "trigger", "k2")["case"]  # acme: not covered
    assert "notified" not in _kinds(c, held) and "notified" in _kinds(c, other)
    r = c.delete(f"/v1/maintenance/{mid}", headers=c.admin)  # type: ignore[attr-defined]
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    _advance(c, START)
    assert "notified" in _kinds(c, held)  # released at once, still firing
    r = c.delete(f"/v1/maintenance/{mid}", headers=c.admin)  # type: ignore[attr-defined]
    assert r.status_code == 404 and r.json()["field"] == "mid"


BAD_WINDOWS = [
    ({"to": "2026-03-02T08:00:00Z"}, "to"),
    ({"integrations": ["nope"]}, "integrations.0"),
    ({"customers": ["nobody"], "integrations": []}, "customers.0"),
    ({"integrations": []}, "integrations"),
    ({"to": "2026-05-02T08:00:00Z"}, "to"),
    ({"from": "tomorrow"}, "from"),
    ({"reason": ""}, "reason"),
    ({"reason": "  \t "}, "reason"),
    ({"extra": 1}, "extra"),
]


def test_maintenance_refuses_bad_windows(c: TestClient) -> None:
    body = {"integrations": ["plain"], "from": START, "to": "2026-03-02T10:00:00Z", "reason": "r"}
    for change, field in BAD_WINDOWS:
        r = c.post("/v1/maintenance", json={**body, **change}, headers=c.admin)  # type: ignore[attr-defined]
        assert r.status_code == 422, (change, r.text)
        assert r.json()["field"] == field, change
    assert c.get("/v1/maintenance", headers=c.admin).json() == []  # type: ignore[attr-defined]


# flapping -----------------------------------------------------------------------------------


def test_flapping_alert_stays_open_without_a_page_per_flap(c: TestClient) -> None:
    case = _event(c, FLAP, "trigger", "f")["case"]
    flaps = ("resolve", "trigger", "resolve", "trigger", "resolve", "trigger", "resolve")
    for minute, action in enumerate(flaps, start=1):
        _advance(c, f"2026-03-02T09:{minute:02d}:00Z")
        assert _event(c, FLAP, action, "f")["case"] == case  # one case throughout
    kinds = _kinds(c, case)
    # 4 changes make it flapping (more than 3): from then on, one entry per flap, no page
    assert kinds.count("flapping") == 4
    first_flap = kinds.index("flapping")
    assert "notified" not in kinds[first_flap + 1 :]
    assert _case(c, case)["status"] == "open"  # its last word was "resolved", yet it stays
    assert _case(c, case)["alerts"][0]["flapping"] is True
    _advance(c, "2026-03-02T09:16:59Z")  # not yet quiet for a whole window
    assert "flap_ended" not in _kinds(c, case)
    _advance(c, "2026-03-02T09:20:00Z")  # quiet for the window: 10m after its last change
    ended = [(e["kind"], e["at"]) for e in _timeline(c, case)][-2:]
    assert ended == [("flap_ended", "2026-03-02T09:17:00Z"), ("resolved", "2026-03-02T09:17:00Z")]
    assert _case(c, case)["status"] == "resolved"


def test_the_change_that_makes_an_alert_flapping_pages_nobody(c: TestClient) -> None:
    """Its case resolved at the change before; this one (the fourth in the window, over
    `count: 3`) reopens it as flapping, without a page."""
    case = _event(c, FLAP, "trigger", "ft")["case"]
    for minute, action in enumerate(("resolve", "trigger", "resolve", "trigger"), start=1):
        _advance(c, f"2026-03-02T09:{minute:02d}:00Z")
        _event(c, FLAP, action, "ft")
    at_4 = [e for e in _timeline(c, case) if e["at"] == "2026-03-02T09:04:00Z"]
    assert [e["kind"] for e in at_4] == ["reopened", "flapping"]
    assert at_4[0]["flapping"] is True
    assert _case(c, case)["status"] == "open"


def test_a_flapping_alert_whose_case_was_closed_opens_a_new_one(c: TestClient) -> None:
    """Within the flap window a resolved case reopens; a closed one is final, so the alert
    firing again opens a case of its own instead of being refused (and lost)."""
    first = _event(c, FLAP, "trigger", "fc")["case"]
    _event(c, FLAP, "resolve", "fc")
    r = c.post(f"/v1/cases/{first}/close", json={"by": "ann"}, headers=c.admin)  # type: ignore[attr-defined]
    assert r.status_code == 200, r.text
    _advance(c, "2026-03-02T09:01:00Z")  # well within the 10m flap window
    again = _event(c, FLAP, "trigger", "fc")["case"]
    assert again != first
    assert _case(c, first)["status"] == "closed"
    assert _case(c, again)["status"] == "open" and "notified" in _kinds(c, again)


def test_a_flapping_alert_whose_case_cannot_reopen_opens_a_new_one(c: TestClient) -> None:
    """A resolved case whose matrix the policy in force no longer has cannot reopen (409 to a
    person); the alert firing again within the flap window opens a case of its own."""
    first = _event(c, FLAP, "trigger", "fm")["case"]
    _event(c, FLAP, "resolve", "fm")
    service = c.service  # type: ignore[attr-defined]
    service.policies.store(POLICY.replace("  - id: default\n", "  - id: main\n"), "test")
    r = c.post(f"/v1/cases/{first}/reopen", json={"by": "ann"}, headers=c.admin)  # type: ignore[attr-defined]
    assert r.status_code == 409, r.text
    assert "matrix 'default'" in r.json()["detail"]
    _advance(c, "2026-03-02T09:01:00Z")  # within the 10m flap window
    again = _event(c, FLAP, "trigger", "fm")["case"]
    assert again != first
    assert _case(c, first)["status"] == "resolved"
    assert _case(c, again)["status"] == "open" and "notified" in _kinds(c, again)


def test_a_held_case_is_released_under_its_own_version_when_the_policy_cannot(
    c: TestClient,
) -> None:
    """A window's end opens its held cases under the policy in force; one that policy can no
    longer open (its matrix renamed meanwhile) opens under the version that held it, and
    the window's other held cases are released all the same."""
    body = {"integrations": ["plain"], "from": START, "to": "2026-03-02T10:00:00Z", "reason": "x"}
    r = c.post("/v1/maintenance", json=body, headers=c.admin)  # type: ignore[attr-defined]
    assert r.status_code == 201, r.text
    held = [_event(c, PLAIN, "trigger", f"h{i}")["case"] for i in range(2)]
    service = c.service  # type: ignore[attr-defined]
    held_by = service.policies.current_version()
    renamed = POLICY.replace("  - id: default\n", "  - id: main\n")
    assert renamed != POLICY
    newer, _ = service.policies.store(renamed, "test")  # the case's matrix 'default' is gone
    _advance(c, "2026-03-02T10:30:00Z")
    for case_id in held:
        kinds = _kinds(c, case_id)
        assert kinds[:3] == ["suppressed", "maintenance_ended", "opened"], kinds
        assert "notified" in kinds
        assert _case(c, case_id)["status"] == "open"
    assert newer != held_by
    assert c.get("/v1/maintenance", headers=c.viewer).json()[0]["state"] == "ended"  # type: ignore[attr-defined]


# one transaction per Alertmanager group -------------------------------------------------------


def test_a_nul_in_an_alert_summary_or_a_window_reason_is_stored_as_on_a_title(
    c: TestClient,
) -> None:
    """PostgreSQL's text takes no NUL: shown as U+FFFD, as a case's title is, on both
    databases, instead of failing the whole Alertmanager group (a 500)."""
    body = _am("firing", ("Nul", "eu", "a"), ("Nul", "eu", "b"), ("Other", "us", "c"))
    body["alerts"][1]["annotations"]["summary"] = "disk\x00full"
    r = c.post(f"/v1/integrations/{AM}/alertmanager", json=body)
    assert r.status_code == 202, r.text
    assert r.json()["taken"] == 3
    grouped = next(x for x in _cases(c) if _case(c, x["id"])["alert_count"] == 2)
    summaries = [a["summary"] for a in _case(c, grouped["id"])["alerts"]]
    assert "disk\ufffdfull" in summaries
    window = {"integrations": ["plain"], "from": START, "to": "2026-03-02T10:00:00Z",
              "reason": "db\x00upgrade"}  # fmt: skip
    r = c.post("/v1/maintenance", json=window, headers=c.admin)  # type: ignore[attr-defined]
    assert r.status_code == 201, r.text
    assert r.json()["reason"] == "db\ufffdupgrade"


def test_alertmanager_group_is_taken_at_once_without_its_refused_alert(c: TestClient) -> None:
    body = _am("firing", ("Net", "eu", "a"), ("Net", "eu", "b"), ("Net", "us", "c"))
    body["alerts"][1]["fingerprint"] = "bad\x00key"  # no database column can hold it
    r = c.post(f"/v1/integrations/{AM}/alertmanager", json=body)
    assert r.status_code == 202, r.text
    got = r.json()
    assert got["taken"] == 2
    assert [e["field"] for e in got["errors"]] == ["alerts.bad\x00key"]
    cases = _cases(c)
    assert len(cases) == 2  # the refused alert wrote nothing; its neighbours are in
    assert sorted(_case(c, x["id"])["alert_count"] for x in cases) == [1, 1]


def test_a_flapping_alert_during_maintenance_is_held_not_reopened(c: TestClient) -> None:
    first = _event(c, FLAP, "trigger", "fm")["case"]
    _advance(c, "2026-03-02T09:01:00Z")
    _event(c, FLAP, "resolve", "fm")
    body = {"integrations": ["flap"], "from": "2026-03-02T09:02:00Z",
            "to": "2026-03-02T10:00:00Z", "reason": "r"}  # fmt: skip
    assert c.post("/v1/maintenance", json=body, headers=c.admin).status_code == 201  # type: ignore[attr-defined]
    _advance(c, "2026-03-02T09:03:00Z")
    again = _event(c, FLAP, "trigger", "fm")["case"]
    assert again != first and _case(c, first)["status"] == "resolved"
    assert _kinds(c, again) == ["suppressed"]


def test_an_alert_joining_its_group_costs_few_round_trips(c: TestClient, db_url: str) -> None:
    """PostgreSQL: an alert attaching to its group's case sends its locks and look-ups
    together (its own and its group's lock, its latest row and the group's case in one round
    trip; the case and its window holder in another), not each in a round trip of its own,
    and reads no open case by its key ahead: during a storm the writer waited on those round
    trips, seconds behind (`bench/storm.py --db postgres`). With the batch's BEGIN and the
    end of its pipeline, four waits for the server (nine before), and then the COMMIT."""
    trips: list[str] = []
    _event(c, ANY, "trigger", "first", service="db")  # opens the group's case
    with pytest.MonkeyPatch.context() as mp:
        if db_url.startswith("postgresql"):  # SQLite has no round trips: the attach alone
            from psycopg._pipeline_base import BasePipeline

            fetch = BasePipeline._fetch_gen  # each call waits for the server's results

            def counted(self: Any, *a: Any, **kw: Any) -> Any:
                trips.append(next(f.name for f in reversed(traceback.extract_stack())
                                  if "/rungs/" in f.filename))  # fmt: skip
                return fetch(self, *a, **kw)

            mp.setattr(BasePipeline, "_fetch_gen", counted)
        _event(c, ANY, "trigger", "second", service="db")
    (case,) = _cases(c)
    assert _case(c, case["id"])["alert_count"] == 2
    assert len(trips) <= 4, trips


def test_an_alert_whose_group_case_ended_meanwhile_opens_its_own(c: TestClient) -> None:
    """Another engine may resolve the group's case between this one's read of the group and
    its lock on the case: the alert then opens a case of its own (and pages), not one
    attached to the resolved case, where nobody would be paged."""
    from rungs.core.grouping import GroupSeen
    from rungs.store import alerts

    first = _event(c, ANY, "trigger", "first", service="db")
    _event(c, ANY, "resolve", "first")
    (gone,) = _cases(c)
    assert gone["status"] == "resolved"
    stale = GroupSeen(gone["id"], parse_instant(gone["opened_at"]), True, False)
    with pytest.MonkeyPatch.context() as mp:  # the group as read before the resolve landed
        mp.setattr(alerts, "group_case", lambda conn, key: lambda: stale)
        second = _event(c, ANY, "trigger", "second", service="db")
    assert first["case"] == gone["id"] != second["case"]
    assert _case(c, gone["id"])["alert_count"] == 1
    fresh = _case(c, second["case"])
    assert fresh["status"] != "resolved" and fresh["alert_count"] == 1
    assert "notified" in _kinds(c, second["case"])
