"""The `rungs due`, `simulate --explain` and `simulate` commands, as people use them."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from rungs.cli import app
from tests.conftest import ROOT, require_shared

ACME = ROOT / "src" / "rungs" / "examples" / "acme.yaml"
runner = CliRunner()


def _due(calendar: str, start: str, after: str, *extra: str):  # type: ignore[no-untyped-def]
    args = ["due", str(ACME), "--calendar", calendar, "--from", start, "--after", after]
    return runner.invoke(app, [*args, *extra])


def test_due_json_in_utc_and_local() -> None:
    r = _due("berlin-office", "2026-11-20T16:00:00+01:00", "4h", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output) == {
        "due": "2026-11-23T11:00:00Z",
        "local": "2026-11-23T12:00:00+01:00",
    }


def test_due_skips_christmas_and_company_holidays() -> None:
    r = _due("berlin-office", "2026-12-23T16:30:00+01:00", "1h", "--json")
    assert json.loads(r.output)["local"] == "2026-12-28T09:30:00+01:00"


def test_due_errors_name_the_problem() -> None:
    r = _due("nope", "2026-11-20T16:00:00+01:00", "4h")
    assert r.exit_code == 1 and "unknown calendar 'nope'" in r.output
    r = _due("always", "2026-11-20T16:00:00", "4h")
    assert r.exit_code == 1 and "no UTC offset" in r.output
    r = _due("always", "2026-11-20T16:00:00Z", "15x")
    assert r.exit_code == 1 and "malformed duration '15x'" in r.output


def test_explain_b12_lists_holidays_pause_and_adds_up() -> None:
    shared = require_shared()
    acme = shared / "acme"
    r = runner.invoke(
        app,
        [
            "simulate",
            str(acme / "policy.yaml"),
            str(acme / "03-billing-holidays-pending.story.yaml"),
            "--explain",
            "B-12",
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    resolution = next(m for m in report["metrics"] if m["metric"] == "resolution")
    reasons = [s["reason"] for s in resolution["not_counted"]]
    assert any(x.startswith("holiday:") and "2026-12-25" in x for x in reasons)
    assert any(x.startswith("holiday:") and "2026-12-26" in x for x in reasons)
    assert any("company holiday (2026-12-24)" in x for x in reasons)
    assert "paused (pending)" in reasons
    pause = next(s for s in resolution["not_counted"] if s["reason"] == "paused (pending)")
    assert (pause["from"], pause["to"]) == ("2026-12-28T10:00:00Z", "2026-12-30T09:00:00Z")
    assert resolution["counted_total_us"] == resolution["elapsed_us"]
    assert resolution["target"] == "80h" and resolution["breached"] is True
    assert resolution["due"] == "2027-01-14T13:00:00Z"
    assert [(e["kind"], e["at"]) for e in resolution["events"]] == [
        ("sla_warning", "2027-01-12T09:00:00Z"),
        ("sla_breached", "2027-01-14T13:00:00Z"),
    ]
    text = runner.invoke(
        app,
        [
            "simulate",
            str(acme / "policy.yaml"),
            str(acme / "03-billing-holidays-pending.story.yaml"),
            "--explain",
            "B-12",
        ],
    )
    assert "paused (pending)" in text.output and "Weihnachtstag" in text.output


def test_simulate_table_and_refusal(tmp_path: Path) -> None:
    story = tmp_path / "s.story.yaml"
    story.write_text(
        'until: "2026-11-21T00:00:00Z"\nevents:\n'
        '  - {at: "2026-11-20T10:00:00Z", case: X, do: open, with: {customer: initech, title: t}}\n'
        '  - {at: "2026-11-20T10:01:00Z", case: X, do: escalate, by: bob, reason: whim}\n'
    )
    r = runner.invoke(app, ["simulate", str(ACME), str(story)])
    assert r.exit_code == 1
    assert "unknown reason 'whim'" in r.output and f"{story}:4:" in r.output
    r = runner.invoke(
        app, ["simulate", str(ACME), str(ROOT / "src/rungs/examples/acme-story.yaml")]
    )
    assert r.exit_code == 0 and "escalated" in r.output
