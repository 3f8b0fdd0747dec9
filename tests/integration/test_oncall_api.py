"""`rungs oncall --json`, the API and the .ics export agree with `shifts()`; API overrides are
stored, change who is paged, and are named in the timeline of the cases they affect."""

from __future__ import annotations

import json
from pathlib import Path

import icalendar
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from rungs.bootstrap import build
from rungs.cli import app as cli
from rungs.policy import load_policy
from rungs.schedules.oncall import shifts
from rungs.time.instant import format_utc, parse_instant
from tests.conftest import auth_headers

POLICY = """
version: 1
people:
  - {id: alice, contacts: {email: alice@acme.test}}
  - {id: carol, contacts: {email: carol@acme.test}}
  - {id: dave, contacts: {email: dave@acme.test}}
  - {id: erin, contacts: {email: erin@acme.test}}
  - {id: frank, contacts: {email: frank@acme.test}}
schedules:
  - id: network-oncall
    timezone: Europe/Berlin
    layers:
      - {name: weekly, members: [dave, carol], shift: 1w, start: "2026-11-02T09:00:00+01:00"}
      - name: office-india
        timezone: Asia/Kolkata
        members: [alice]
        shift: 1d
        start: "2026-11-02T10:00:00+05:30"
        restrict: {mon: "10:00-18:00", tue: "10:00-18:00", wed: "10:00-18:00",
                   thu: "10:00-18:00", fri: "10:00-18:00"}
    overrides:
      - {from: "2026-11-25T18:00:00+01:00", to: "2026-11-26T09:00:00+01:00", who: erin}
    fallback: person:frank
teams:
  - {id: network, schedule: network-oncall}
customers:
  - {id: acme, name: Acme}
matrices:
  - id: default
    levels:
      - {notify: [team:network]}
      - {after: 30m, notify: ["schedule:network-oncall"]}
"""
A, B = "2026-11-20T00:00:00Z", "2026-12-04T00:00:00Z"


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    p = tmp_path / "policy.yaml"
    p.write_text(POLICY)
    return p


def _expected(policy_file: Path) -> list[dict]:
    schedule = load_policy(policy_file).schedules["network-oncall"]
    return [
        {
            "start": format_utc(s.start),
            "end": format_utc(s.end),
            "person": s.person,
            "source": s.source,
        }
        for s in shifts(schedule, parse_instant(A), parse_instant(B))
    ]


def test_cli_oncall_json_agrees_with_shifts(policy_file: Path) -> None:
    r = CliRunner().invoke(
        cli, ["oncall", str(policy_file), "network-oncall", "--from", A, "--to", B, "--json"]
    )
    assert r.exit_code == 0, r.output
    got = json.loads(r.output)
    assert got == _expected(policy_file)
    assert {"person": "erin", "source": "override"}.items() <= next(
        s for s in got if s["source"] == "override"
    ).items()
    r = CliRunner().invoke(
        cli,
        [
            "oncall",
            str(policy_file),
            "network-oncall",
            "--at",
            "2026-11-25T20:00:00+01:00",
            "--json",
        ],
    )
    assert json.loads(r.output) == {
        "schedule": "network-oncall",
        "at": "2026-11-25T19:00:00Z",
        "on_call": ["erin"],
        "source": "override",
        "fallback": "person:frank",
        "paged": ["erin"],
    }


def test_api_shifts_ics_and_overrides(
    policy_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNGS_ALLOW_VIRTUAL_CLOCK", "1")
    start = parse_instant("2026-11-23T04:00:00+01:00")  # 08:30 in Kolkata: before the office layer
    service, app = build(
        db_url=f"sqlite:///{tmp_path / 'r.db'}", policy_file=policy_file, virtual_start=start
    )
    try:
        with TestClient(app, headers=auth_headers(service)) as client:
            r = client.get("/v1/schedules/network-oncall/shifts", params={"from": A, "to": B})
            assert r.status_code == 200
            assert r.json() == _expected(policy_file)
            ics = client.get("/v1/schedules/network-oncall.ics", params={"from": A, "to": B})
            assert ics.headers["content-type"].startswith("text/calendar")
            cal = icalendar.Calendar.from_ical(ics.content)
            events = sorted(
                (e.decoded("dtstart"), e.decoded("dtend"), str(e["summary"]))
                for e in cal.walk("VEVENT")
            )
            assert [(format_utc(int(s.timestamp() * 1e6)), p) for s, _, p in events] == [
                (x["start"], f"On call: {x['person']} (network-oncall)")
                for x in _expected(policy_file)
            ]
            mine = icalendar.Calendar.from_ical(
                client.get(
                    "/v1/schedules/network-oncall.ics",
                    params={"from": A, "to": B, "person": "carol"},
                ).content
            )
            assert {str(e["summary"]) for e in mine.walk("VEVENT")} == {
                "On call: carol (network-oncall)"
            }
            now = client.get("/v1/oncall").json()
            assert now == [
                {
                    "schedule": "network-oncall",
                    "at": "2026-11-23T03:00:00Z",
                    "on_call": ["dave"],
                    "source": "weekly",
                }
            ]
            # a temporary override through the API: stored, used for paging, named in the timeline
            r = client.post(
                "/v1/schedules/network-oncall/overrides",
                json={
                    "from": "2026-11-23T04:00:00+01:00",
                    "to": "2026-11-23T12:00:00+01:00",
                    "who": "alice",
                },
            )
            assert r.status_code == 201, r.text
            assert client.get("/v1/oncall").json()[0]["on_call"] == ["alice"]
            bad = client.post(
                "/v1/schedules/network-oncall/overrides",
                json={"from": "2026-11-23T08:00:00Z", "to": "2026-11-23T07:00:00Z", "who": "alice"},
            )
            assert bad.status_code == 422 and bad.json()["field"] == "to"
            assert (
                client.post(
                    "/v1/schedules/nope/overrides", json={"from": A, "to": B, "who": "alice"}
                ).status_code
                == 404
            )
            case = client.post("/v1/cases", json={"customer": "acme", "title": "link down"}).json()
            timeline = client.get(f"/v1/cases/{case['id']}/timeline").json()
            assert [e["to"] for e in timeline if e["kind"] == "notified"] == ["alice"]
            assert any(
                e["kind"] == "override_used" and e["schedule"] == "network-oncall" for e in timeline
            )
    finally:
        service.stop()
