"""Each sender's body into commands, without HTTP: the pure `to_commands` of every format in
`rungs.api.ingest` (the routes that submit them are tests/integration/test_ingest.py)."""

from __future__ import annotations

import hashlib
import json
from typing import Literal

import pytest

from rungs.api.ingest import (
    Act,
    AlertmanagerAlert,
    AlertmanagerWebhook,
    Beat,
    Invalid,
    OpsgenieAction,
    OpsgenieAlert,
    PagerDutyEvent,
    RungsEvent,
    Trigger,
    Unreadable,
    alertmanager,
    events,
    heartbeat,
    opsgenie,
    pagerduty,
)
from rungs.core.model import Event
from rungs.policy import Policy, load_policy_text
from rungs.policy.model import Integration

POLICY = """\
version: 1
people: [{ id: ann, contacts: { email: ann@example.com } }]
timezone: UTC
customers:
  - { id: acme, name: Acme }
  - { id: globex, name: Globex }
matrices:
  - id: default
    levels:
      - notify: [person:ann]
  - id: infra
    levels:
      - notify: [person:ann]
integrations:
  - { id: pd, format: pagerduty, key: k-pd, defaults: { customer: acme, category: monitoring } }
  - id: pd-mapped
    format: pagerduty
    key: k-pd-mapped
    defaults: { customer: acme }
    matrix: infra
    severity_map: { critical: P2, info: P3 }
  - { id: og, format: opsgenie, key: k-og, defaults: { customer: acme } }
  - { id: am, format: alertmanager, key: k-am, defaults: { customer: acme } }
  - { id: am-group, format: alertmanager, key: k-am-group, dedup: group_key }
  - { id: ev, format: events, key: k-ev, defaults: { customer: acme, priority: P2 } }
  - { id: hb, format: heartbeat, key: k-hb, interval: 10m, defaults: { customer: globex } }
"""


def _policy() -> Policy:
    policy, problems = load_policy_text(POLICY)
    assert policy is not None, problems
    return policy


COMPILED = _policy()
INTEGRATIONS = COMPILED.integrations


def _integ(name: str) -> Integration:
    return INTEGRATIONS[name]


def _fresh() -> str:
    return "fresh-key"


def _no_fresh() -> str:
    raise AssertionError("a key was generated for an alert that came with one")


# PagerDuty ------------------------------------------------------------------------------------

PD_TRIGGER = {
    "routing_key": "k-pd",
    "event_action": "trigger",
    "dedup_key": "disk-1",
    "payload": {
        "summary": "Disk full on db1",
        "source": "db1",
        "severity": "info",
        "timestamp": "2015-07-17T08:42:58.315+0000",
        "component": "postgres",
        "group": "prod",
        "class": "disk",
        "custom_details": {"ping": "1500ms", "site": "fra1", "customer": "globex"},
    },
    "images": [{"src": "https://example.com/i.png", "alt": "graph"}],
    "links": [{"href": "https://example.com/"}],
    "client": "Monitor",
}


def _pd(**over: object) -> PagerDutyEvent:
    return PagerDutyEvent.model_validate({**PD_TRIGGER, **over})


def test_pagerduty_trigger_is_a_case_from_the_payload() -> None:
    (cmd,) = pagerduty.to_commands(_pd(), _integ("pd"), policy=COMPILED, fresh=_no_fresh)
    assert isinstance(cmd, Trigger)
    assert cmd.key == "disk-1"
    assert cmd.repeat == {"source": "db1", "summary": "Disk full on db1"}
    d = cmd.data
    assert d["dedup_key"] == "pd:disk-1"
    assert (d["title"], d["priority"], d["customer"], d["category"]) == (
        "Disk full on db1",
        "P4",  # info
        "globex",  # from custom_details, over the integration's default
        "monitoring",
    )
    assert d["site"] == "fra1"
    assert d["description"] == (
        "source: db1\ncomponent: postgres\ngroup: prod\nclass: disk\n"
        "ping: 1500ms\nsite: fra1\ncustomer: globex"
    )
    f = d["fields"]
    assert (f["integration"], f["format"]) == ("pd", "pagerduty")
    assert f["timestamp"] == "2015-07-17T08:42:58Z"
    assert f["images"] == [{"src": "https://example.com/i.png", "alt": "graph"}]
    assert f["links"] == [{"href": "https://example.com/"}]
    assert f["client"] == "Monitor" and "client_url" not in f  # empty values left out


def test_pagerduty_trigger_without_a_key_gets_a_fresh_one() -> None:
    (cmd,) = pagerduty.to_commands(_pd(dedup_key=None), _integ("pd"), policy=COMPILED, fresh=_fresh)
    assert isinstance(cmd, Trigger)
    assert (cmd.key, cmd.data["dedup_key"]) == ("fresh-key", "pd:fresh-key")


def test_pagerduty_severity_map_and_matrix() -> None:
    payload = {"summary": "s", "source": "x", "severity": "critical", "custom_details": "text"}
    (cmd,) = pagerduty.to_commands(
        _pd(payload=payload), _integ("pd-mapped"), policy=COMPILED, fresh=_no_fresh
    )
    assert isinstance(cmd, Trigger)
    assert (cmd.data["priority"], cmd.data["matrix"]) == ("P2", "infra")
    assert cmd.data["customer"] == "acme"
    assert cmd.data["description"] == "source: x\ntext"


@pytest.mark.parametrize("action", ["acknowledge", "resolve"])
def test_pagerduty_acts_on_the_dedup_key(action: str) -> None:
    (cmd,) = pagerduty.to_commands(
        _pd(event_action=action, payload=None), _integ("pd"), policy=COMPILED, fresh=_no_fresh
    )
    assert cmd == Act("disk-1", "pd:disk-1", Event(action, by="integration:pd"))


@pytest.mark.parametrize(
    ("over", "message", "field"),
    [
        (
            {"event_action": "acknowledge", "dedup_key": None},
            "required to acknowledge",
            "dedup_key",
        ),
        ({"event_action": "resolve", "dedup_key": None}, "required to resolve", "dedup_key"),
        ({"payload": None}, "'payload' is required to trigger", "payload"),
        (
            {"payload": {"summary": "s", "source": "x", "severity": "info", "timestamp": "soon"}},
            "payload.timestamp: 'soon' is not an ISO 8601 instant",
            "payload.timestamp",
        ),
    ],
)
def test_pagerduty_invalid_actions(over: dict[str, object], message: str, field: str) -> None:
    with pytest.raises(Invalid) as caught:
        pagerduty.to_commands(_pd(**over), _integ("pd"), policy=COMPILED, fresh=_fresh)
    assert message in caught.value.message and caught.value.field == field


# Alertmanager ---------------------------------------------------------------------------------


def _alert(status: Literal["firing", "resolved"], fp: str, **labels: str) -> AlertmanagerAlert:
    notes = {"summary": f"disk {fp}", "description": "almost full"}
    labels = {"alertname": "DiskFull", **labels}
    return AlertmanagerAlert(
        status=status, labels=labels, annotations=notes, generatorURL="http://prom", fingerprint=fp
    )


def _webhook(status: str, *alerts: AlertmanagerAlert, **over: object) -> AlertmanagerWebhook:
    group = {"alertname": "DiskFull"}
    body: dict[str, object] = {"version": "4", "groupKey": '{}:{alertname="DiskFull"}'}
    body |= {"status": status, "receiver": "rungs", "groupLabels": group}
    body |= {"commonLabels": {**group, "team": "db"}, "commonAnnotations": {"runbook": "r"}}
    return AlertmanagerWebhook.model_validate({**body, "alerts": list(alerts), **over})


def test_alertmanager_one_command_per_alert_in_order() -> None:
    body = _webhook(
        "firing",
        _alert("firing", "f1", severity="critical", instance="db1:9100", site="fra1"),
        _alert("resolved", "f2"),
        _alert("firing", "f3", severity="unknown", priority="P2", job="node"),
        _alert("firing", "f4", priority="P9"),
    )
    c1, c2, c3, c4 = alertmanager.to_commands(body, _integ("am"), policy=COMPILED)
    assert isinstance(c1, Trigger)
    assert (c1.key, c1.data["dedup_key"], c1.data["priority"]) == ("f1", "am:f1", "P1")
    assert c1.data["title"] == "disk f1" and c1.data["description"] == "almost full"
    assert c1.data["site"] == "fra1"
    assert c1.repeat == {"source": "db1:9100", "summary": "disk f1"}
    assert c1.data["fields"]["labels"]["severity"] == "critical"
    assert c1.data["fields"]["group_key"] == '{}:{alertname="DiskFull"}'
    assert c2 == Act("f2", "am:f2", Event("resolve", by="integration:am"))
    assert isinstance(c3, Trigger) and c3.data["priority"] == "P2"  # the label, unmapped severity
    assert c3.repeat["source"] == "node"
    assert isinstance(c4, Trigger) and c4.data["priority"] == "P3"  # the integration's default
    assert c4.repeat["source"] == "alertmanager"


def test_alertmanager_fingerprint_from_labels_when_missing() -> None:
    (cmd,) = alertmanager.to_commands(
        _webhook("firing", _alert("firing", "")), _integ("am"), policy=COMPILED
    )
    raw = json.dumps([["alertname", "DiskFull"]], separators=(",", ":"))
    assert cmd.key == hashlib.sha256(raw.encode()).hexdigest()[:16]


def test_alertmanager_group_key_folds_the_group_into_one_alert() -> None:
    body = _webhook("firing", _alert("firing", "g1", site="a"), _alert("firing", "g2", site="b"))
    (cmd,) = alertmanager.to_commands(body, _integ("am-group"), policy=COMPILED)
    assert isinstance(cmd, Trigger)
    assert cmd.key == '{}:{alertname="DiskFull"}'
    assert cmd.data["fields"]["labels"] == {"alertname": "DiskFull", "site": "a", "team": "db"}
    assert cmd.data["fields"]["annotations"]["runbook"] == "r"
    assert "fingerprint" not in cmd.data["fields"]
    (cmd,) = alertmanager.to_commands(
        _webhook("resolved", groupKey=""), _integ("am-group"), policy=COMPILED
    )
    assert cmd == Act("group", "am-group:group", Event("resolve", by="integration:am-group"))


def test_alertmanager_other_versions_are_invalid() -> None:
    with pytest.raises(Invalid) as caught:
        alertmanager.to_commands(_webhook("firing", version="3"), _integ("am"), policy=COMPILED)
    assert caught.value.message == "webhook version '3' is not supported (use 4)"
    assert caught.value.field == "version"


# Opsgenie -------------------------------------------------------------------------------------


def test_opsgenie_create() -> None:
    body = OpsgenieAlert.model_validate(
        {
            "message": "Queue stuck",
            "alias": "q-1",
            "description": "no consumer",
            "priority": "P5",
            "tags": ["queue", "queue", "prod"],
            "details": {"customer": "globex", "category": "infra", "device": "mq1"},
            "responders": [{"type": "team", "name": "ops"}],
            "entity": "mq1",
        }
    )
    (cmd,) = opsgenie.to_commands(body, _integ("og"), policy=COMPILED, fresh=_no_fresh)
    assert isinstance(cmd, Trigger)
    d = cmd.data
    assert (d["dedup_key"], d["priority"], d["customer"], d["category"]) == (
        "og:q-1",
        "P4",  # P5
        "globex",
        "infra",
    )
    assert d["tags"] == ["queue", "prod"] and d["device"] == "mq1"
    assert d["fields"]["responders"] == [{"type": "team", "name": "ops"}]
    assert "visible_to" not in d["fields"]
    assert cmd.repeat == {"source": "mq1", "summary": "Queue stuck"}  # entity without source
    (cmd,) = opsgenie.to_commands(
        OpsgenieAlert(message="m"), _integ("og"), policy=COMPILED, fresh=_fresh
    )
    assert isinstance(cmd, Trigger)
    assert (cmd.key, cmd.data["fields"]["alias"]) == ("fresh-key", "fresh-key")


def test_opsgenie_acknowledge_and_close_by_alias() -> None:
    og = _integ("og")
    (cmd,) = opsgenie.act_commands(
        OpsgenieAction(user="ann"), og, identifier="q-1", action="acknowledge", id_type="alias"
    )
    # the user is kept as the sender's (unchecked) source_user, not as who acted (issue 12)
    assert cmd == Act("q-1", "og:q-1", Event("acknowledge", by="integration:og", source_user="ann"))
    (cmd,) = opsgenie.act_commands(None, og, identifier="q-1", action="resolve", id_type="alias")
    assert cmd == Act("q-1", "og:q-1", Event("resolve", by="integration:og"))
    with pytest.raises(Invalid) as caught:
        opsgenie.act_commands(None, og, identifier="q-1", action="resolve", id_type="id")
    assert caught.value.message == (
        "identifierType 'id' is not supported: use identifierType=alias"
    )


# Rungs' own events ----------------------------------------------------------------------------


def test_events_trigger() -> None:
    body = RungsEvent(
        title="Printer on fire",
        dedup_key="p-1",
        fields={"device": "hp-3", "floor": 2},
        tags=["x"],
        by="sensor",
    )
    (cmd,) = events.to_commands(body, _integ("ev"), policy=COMPILED, fresh=_no_fresh)
    assert isinstance(cmd, Trigger)
    d = cmd.data
    assert (d["dedup_key"], d["priority"], d["customer"], d["device"]) == (
        "ev:p-1",
        "P2",  # the integration's default
        "acme",
        "hp-3",
    )
    assert d["fields"] == {"integration": "ev", "format": "events", "device": "hp-3", "floor": 2}
    assert cmd.repeat == {"source": "sensor", "summary": "Printer on fire"}
    (cmd,) = events.to_commands(RungsEvent(title="t"), _integ("ev"), policy=COMPILED, fresh=_fresh)
    assert cmd.key == "fresh-key"


def test_events_acknowledge_and_what_each_action_needs() -> None:
    ev = _integ("ev")
    body = RungsEvent(action="acknowledge", dedup_key="p-1", by="ann")
    (cmd,) = events.to_commands(body, ev, policy=COMPILED, fresh=_no_fresh)
    assert cmd == Act("p-1", "ev:p-1", Event("acknowledge", by="ann"))
    with pytest.raises(Invalid) as caught:
        events.to_commands(RungsEvent(action="resolve"), ev, policy=COMPILED, fresh=_fresh)
    assert (caught.value.message, caught.value.field) == (
        "'dedup_key' is required to resolve",
        "dedup_key",
    )
    with pytest.raises(Invalid) as caught:
        events.to_commands(RungsEvent(dedup_key="p-2"), ev, policy=COMPILED, fresh=_fresh)
    assert (caught.value.message, caught.value.field) == ("'title' is required to trigger", "title")


def test_long_dedup_keys_are_scoped_by_digest() -> None:
    key = "k" * 255
    (cmd,) = events.to_commands(
        RungsEvent(title="t", dedup_key=key), _integ("ev"), policy=COMPILED, fresh=_fresh
    )
    assert isinstance(cmd, Trigger)
    assert cmd.key == key and cmd.data["dedup_key"].startswith("ev:sha256:")


# Heartbeats -----------------------------------------------------------------------------------


def test_heartbeat_beat_and_its_answers() -> None:
    hb = _integ("hb")
    assert heartbeat.to_commands(hb) == [Beat(hb)]
    state = {"last_beat": 0, "next_due": 600_000_000, "resolved": None}
    assert heartbeat.answer(hb, state).model_dump() == {
        "status": "up",
        "integration": "hb",
        "last_beat": "1970-01-01T00:00:00Z",
        "next_due": "1970-01-01T00:10:00Z",
        "resolved": None,
    }
    missed = {
        "integration": "hb",
        "status": "missed",
        "interval_us": 600_000_000,
        "last_beat": 0,
        "next_due": None,
        "missed_at": 600_000_000,
    }
    assert heartbeat.state_json(missed) == {
        "integration": "hb",
        "status": "missed",
        "interval": "10m",
        "last_beat": "1970-01-01T00:00:00Z",
        "next_due": None,
        "missed_at": "1970-01-01T00:10:00Z",
    }


# Alerts are always addressed (the rules in detail: test_ingest_address.py) ---------------------


def test_pagerduty_unknown_customer_opens_with_the_default_and_says_so() -> None:
    payload = {"summary": "s", "source": "x", "severity": "error", "custom_details": {}}
    payload["custom_details"] = {"customer": "acmee"}
    (cmd,) = pagerduty.to_commands(
        _pd(payload=payload), _integ("pd"), policy=COMPILED, fresh=_fresh
    )
    assert isinstance(cmd, Trigger)
    assert (cmd.data["customer"], cmd.data["priority"]) == ("acme", "P2")
    assert cmd.data["corrections"] == [{"field": "customer", "received": "acmee", "used": "acme"}]
    (cmd,) = pagerduty.to_commands(_pd(), _integ("pd"), policy=COMPILED, fresh=_fresh)
    assert "corrections" not in cmd.data  # a known customer: nothing to say


def test_alertmanager_batch_takes_each_alert_on_its_own() -> None:
    good = _alert("firing", "a1", customer="nobody", severity="page")
    bad = {"status": "pending", "labels": {"alertname": "X"}, "fingerprint": "a2"}
    gone = {"status": "resolved", "fingerprint": "a3"}  # no labels
    body = _webhook("firing", good, bad, _alert("resolved", "a4"), gone)
    c1, c2, c3, c4 = alertmanager.to_commands(body, _integ("am"), policy=COMPILED)
    assert isinstance(c1, Trigger) and (c1.data["customer"], c1.data["priority"]) == ("acme", "P3")
    assert c1.data["corrections"] == [
        {"field": "customer", "received": "nobody", "used": "acme"},
        {"field": "priority", "received": "page", "used": "P3"},  # an unmapped severity
    ]
    assert isinstance(c2, Unreadable) and c2.field == "alerts.1.status"
    assert c2.message.startswith("alerts.1.status: Input should be 'firing' or 'resolved'")
    assert c3 == Act("a4", "am:a4", Event("resolve", by="integration:am"))
    assert c4 == Unreadable("alerts.3.labels", "'alerts.3.labels' is missing")
    # the group (dedup: group_key) is built from the readable alerts; the others are answered
    group = _webhook("firing", bad, _alert("firing", "g1", site="a"))
    cmd, unread = alertmanager.to_commands(group, _integ("am-group"), policy=COMPILED)
    assert isinstance(cmd, Trigger) and cmd.data["fields"]["labels"]["site"] == "a"
    assert isinstance(unread, Unreadable) and unread.field == "alerts.0.status"


def test_alertmanager_priority_label_unknown_is_corrected() -> None:
    body = _webhook("firing", _alert("firing", "f4", priority="P9"))
    (cmd,) = alertmanager.to_commands(body, _integ("am"), policy=COMPILED)
    assert isinstance(cmd, Trigger) and cmd.data["priority"] == "P3"
    assert cmd.data["corrections"] == [{"field": "priority", "received": "P9", "used": "P3"}]


def test_opsgenie_unknown_customer_and_the_note_and_user_of_an_action() -> None:
    body = OpsgenieAlert(message="m", details={"customer": "initech"})
    (cmd,) = opsgenie.to_commands(body, _integ("og"), policy=COMPILED, fresh=_fresh)
    assert isinstance(cmd, Trigger) and cmd.data["customer"] == "acme"
    assert cmd.data["corrections"] == [{"field": "customer", "received": "initech", "used": "acme"}]
    action = OpsgenieAction(user="Monitoring Script", note="restarted the consumer")
    (cmd,) = opsgenie.act_commands(
        action, _integ("og"), identifier="q-1", action="resolve", id_type="alias"
    )
    assert cmd.event == Event(
        "resolve",
        by="integration:og",
        reason="restarted the consumer",
        source_user="Monitoring Script",
    )


def test_events_unknown_customer_and_priority_are_corrected() -> None:
    body = RungsEvent(title="t", customer="nobody", priority="P7", category="backup")
    (cmd,) = events.to_commands(body, _integ("ev"), policy=COMPILED, fresh=_fresh)
    assert isinstance(cmd, Trigger)
    d = cmd.data
    assert (d["customer"], d["priority"], d["category"]) == ("acme", "P2", "backup")
    assert d["corrections"] == [
        {"field": "customer", "received": "nobody", "used": "acme"},
        {"field": "priority", "received": "P7", "used": "P2"},  # the integration's default
    ]
