"""The console's reads over stored rows, on SQLite and PostgreSQL: policy versions with who
stored them and what each changed; integrations with their last event and health; the cases
a person holds."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from rungs.bootstrap import build
from rungs.core.model import Event
from rungs.engine import Engine as Service
from rungs.engine.integrations import case_data
from rungs.time.instant import parse_instant
from tests import sync

ACME = (Path(__file__).resolve().parents[2] / "src/rungs/examples/acme.yaml").read_text()
HEARTBEAT = """
  - id: cron
    format: heartbeat
    key: cron-key-for-tests
    interval: 5m
    defaults: {customer: initech}
"""
START = parse_instant("2026-11-30T10:00:00+01:00")
MINUTE = 60 * 1_000_000


@pytest.fixture
def service(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Service]:
    monkeypatch.setenv("RUNGS_ALLOW_VIRTUAL_CLOCK", "1")
    monkeypatch.setenv("RUNGS_PROMETHEUS_KEY", "prom-key")
    monkeypatch.setenv("RUNGS_PAGERDUTY_KEY", "pd-key")
    monkeypatch.delenv("RUNGS_BACKUPS_KEY", raising=False)
    path = tmp_path / "acme.yaml"
    path.write_text(ACME.replace("\nrules:", HEARTBEAT + "\nrules:"))
    engine, _ = build(db_url=db_url, policy_file=path, virtual_start=START)
    yield engine
    engine.stop()
    engine.db.dispose()


def test_policy_history_names_who_stored_each_version_and_its_changes(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNGS_ALLOW_VIRTUAL_CLOCK", "1")
    path = tmp_path / "acme.yaml"
    path.write_text(ACME)
    build(db_url=db_url, policy_file=path, virtual_start=START)[0].stop()
    engine, _ = build(db_url=db_url, policy_file=None, virtual_start=START + MINUTE)
    try:
        edited = (
            ACME.replace("name: Initech", "name: Initech Ltd")
            .replace(
                "  - id: gina\n    name: Gina Rossi\n    contacts: {email: gina@acme.test}\n", ""
            )
            .replace("members: [gina]", "members: [erin]")
        )
        change = asyncio.run(engine.commands.change_policy(edited, "web:alice"))
        assert change.version == 2
        rows, total = engine.views.policy_history()
        assert total == 2 and [r["version"] for r in rows] == [2, 1]
        assert rows[0]["stored_by"] == "alice" and rows[1]["stored_by"] == f"file {path}"
        assert rows[0]["created_us"] == START + MINUTE
        diff = engine.views.policy_diff(2)
        assert diff is not None and diff["previous"] == 1
        assert diff["lines"] == ["~ customer initech", "- person gina", "~ section teams"]
        first = engine.views.policy_diff(1)
        assert first is not None and first["previous"] is None
        assert engine.views.policy_diff(3) is None
        assert engine.views.policy_history(limit=1)[0][0]["version"] == 2
    finally:
        engine.stop()
        engine.db.dispose()


def test_integrations_show_their_last_event_and_health(service: Service) -> None:
    states = {s["id"]: s for s in service.views.integration_states(service.keys_unset())}
    assert states["backups"]["health"] == "no key", "RUNGS_BACKUPS_KEY is unset"
    assert states["prometheus"]["health"] == "no events"
    assert states["cron"]["health"] == "no events"
    integ = service.policies.current().integrations["prometheus"]
    data = case_data(integ, dedup_key="disk-full", title="Disk full")
    case, _ = asyncio.run(service.commands.trigger(data, {}))
    asyncio.run(service.commands.beat(service.policies.current().integrations["cron"]))
    states = {s["id"]: s for s in service.views.integration_states(service.keys_unset())}
    assert states["prometheus"]["health"] == "ok"
    assert states["prometheus"]["last_case"] == case.id
    assert states["prometheus"]["last_event"] == "2026-11-30T09:00:00Z"
    assert states["pagerduty"]["last_case"] is None, "another integration's case is not its"
    assert (states["cron"]["health"], states["cron"]["last_beat"]) == ("ok", "2026-11-30T09:00:00Z")
    service.advance(START + 6 * MINUTE)  # the beat is overdue: a case opens
    states = {s["id"]: s for s in service.views.integration_states(service.keys_unset())}
    assert states["cron"]["health"] == "missed"


def test_a_person_holds_the_cases_assigned_or_paging_them(service: Service) -> None:
    opened = []
    for customer, category in (("globex", "network"), ("initech", "billing"), ("globex", "x")):
        case, _ = sync.open_case(
            service, {"customer": customer, "category": category, "priority": "P2", "title": "t"}
        )
        opened.append(case.id)
    net, billing, desk = opened
    held = {c["id"]: c for c in service.views.held_cases("dave")}
    assert list(held) == [net], "paged at level 1 of globex-network"
    assert held[net]["assigned"] is False and held[net]["customer"] == "globex"
    sync.act(service, desk, Event("assign", by="alice", to="person:dave"))
    assert [c["id"] for c in service.views.held_cases("dave")] == [net, desk]
    sync.act(service, net, Event("resolve", by="dave"))
    assert [c["id"] for c in service.views.held_cases("dave")] == [desk], "resolved: not held"
    assert [c["id"] for c in service.views.held_cases("alice")][:1] == [billing]
    assert service.views.held_cases("nobody") == []
