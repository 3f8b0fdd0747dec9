"""`rungs init`: writes the commented starter policy, which validates; never overwrites silently."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rungs.cli import app
from rungs.policy import load_policy

runner = CliRunner()
STARTER = files("rungs").joinpath("examples/starter.yaml").read_text("utf-8")


def test_init_writes_the_starter_policy(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    result = runner.invoke(app, ["init", str(path)])
    assert result.exit_code == 0, result.output
    assert path.read_text("utf-8") == STARTER
    squeezed = "".join(result.output.split())  # the console may wrap a long path anywhere
    assert f"wrote{path}" in squeezed
    assert f"rungsvalidate{path}" in squeezed


def test_written_policy_validates_without_errors_or_warnings(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    assert runner.invoke(app, ["init", str(path)]).exit_code == 0
    result = runner.invoke(app, ["validate", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == []


def test_init_defaults_to_rungs_yaml_in_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["init"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "rungs.yaml").read_text("utf-8") == STARTER


def test_init_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("# my own policy\n", encoding="utf-8")
    result = runner.invoke(app, ["init", str(path)])
    assert result.exit_code != 0
    assert "--force" in result.output
    assert "exists" in result.output
    assert path.read_text("utf-8") == "# my own policy\n"


def test_init_overwrites_with_force(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("# my own policy\n", encoding="utf-8")
    result = runner.invoke(app, ["init", str(path), "--force"])
    assert result.exit_code == 0, result.output
    assert path.read_text("utf-8") == STARTER


def test_starter_is_commented() -> None:
    comments = [line for line in STARTER.splitlines() if line.lstrip().startswith("#")]
    assert len(comments) >= 15
    assert STARTER.startswith("# Rungs starter policy")
    assert "rungs validate" in STARTER


def test_starter_covers_the_policy_format(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(STARTER, encoding="utf-8")
    policy = load_policy(path)

    office = policy.calendars["office"]
    assert office.holiday_country == "DE"
    assert office.holiday_subdivision == "BE"
    assert office.holiday_dates
    assert policy.calendars["always"].hours is None

    assert len(policy.people) >= 3
    assert any(len(p.notify) > 1 for p in policy.people.values())
    for person in policy.people.values():
        assert {step.via for step in person.notify} <= set(person.contacts)

    assert policy.teams
    (customer,) = policy.customers.values()
    assert customer.sla in policy.sla_policies
    sla = policy.sla_policies[customer.sla]
    assert sla.calendar is office
    assert set(sla.targets) == {"P1", "P2", "P3", "P4"}

    (default,) = [m for m in policy.matrices if m.id == "default"]
    assert default.match == {}
    assert len(default.levels) == 3
    assert [lv.after for lv in default.levels] == sorted({lv.after for lv in default.levels})

    assert policy.rules
    assert policy.reasons


def test_starter_escalates_in_a_simulation(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    assert runner.invoke(app, ["init", str(policy)]).exit_code == 0
    story = tmp_path / "story.yaml"
    story.write_text(
        'until: "2026-11-24T00:00:00+01:00"\n'
        "events:\n"
        '  - at: "2026-11-23T10:00:00+01:00"\n'
        "    case: C1\n"
        "    do: open\n"
        "    with: {customer: initech, category: general, priority: P2, title: Printer}\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["simulate", str(policy), str(story), "--json"])
    assert result.exit_code == 0, result.output
    timeline = json.loads(result.stdout)
    escalations = [(e["at"], e["level"]) for e in timeline if e["kind"] == "escalated"]
    assert escalations[:1] == [("2026-11-23T09:30:00Z", 2)]
    assert ("2026-11-23T09:00:00Z", "alice", "email") in {
        (e["at"], e["to"], e["channel"]) for e in timeline if e["kind"] == "notified"
    }
