"""The first hour with the `rungs` command: version, help, on-call now, tables that never cut
an instant, SLA targets with their clock, breaches with how far overdue, no Python `None`,
and one-line answers for a database or a port that can't be used."""

from __future__ import annotations

import io
import json
import logging
import socket
from pathlib import Path
from zoneinfo import ZoneInfo

from rich.console import Console
from typer.testing import CliRunner

import rungs
from rungs.cli import app
from rungs.policy import load_policy
from rungs.sim import load_story, run_story
from rungs.sim.explain import explain_case, render_explain
from rungs.sim.oncall import at_report, render_oncall
from rungs.sim.output import timeline_json, timeline_table
from rungs.time.instant import format_local, parse_instant
from tests.conftest import ROOT

EXAMPLES = ROOT / "src" / "rungs" / "examples"
ACME, STORY = EXAMPLES / "acme.yaml", EXAMPLES / "acme-story.yaml"
runner = CliRunner()


def _render(width: int, draw) -> str:  # type: ignore[no-untyped-def]
    console = Console(file=io.StringIO(), width=width, color_system=None)
    draw(console)
    return console.file.getvalue()  # type: ignore[attr-defined]


def test_version_and_help_without_bool_metavars() -> None:
    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and r.output.strip() == f"rungs {rungs.__version__}"
    for command in (["simulate", "--help"], ["serve", "--help"], ["--help"]):
        r = runner.invoke(app, command)
        assert r.exit_code == 0, r.output
        assert "<bool>" not in r.output, r.output
    assert "--json" in runner.invoke(app, ["simulate", "--help"]).output


def test_simulate_table_never_cuts_an_instant() -> None:
    policy = load_policy(ACME)
    sim = run_story(policy, load_story(STORY))
    entries = timeline_json(sim.timeline)
    tz = ZoneInfo("Europe/Berlin")
    for width in (70, 99, 100, 160):
        text = _render(
            width,
            lambda c: c.print(timeline_table("t", sim.timeline, entries, "Europe/Berlin", c.width)),
        )
        for raw, e in zip(sim.timeline, entries, strict=True):
            assert format_local(raw["at"], tz) in text, (width, e)  # whole, never cut
            if width >= 100:
                assert e["at"] in text, (width, e)
        assert ("UTC" in text) == (width >= 100), width
        assert "None" not in text and "…" not in text


def test_explain_says_the_clock_and_how_far_overdue() -> None:
    policy = load_policy(ACME)
    sim = run_story(policy, load_story(STORY))
    report = explain_case(sim, "B-12")
    resolution = next(m for m in report["metrics"] if m["metric"] == "resolution")
    assert report["clock"] == "business" and resolution["breached"] is True
    assert resolution["overdue"] and resolution["overdue"] != "0s"
    text = _render(120, lambda c: render_explain(report, c))
    assert "target 80h business" in text and f"({resolution['overdue']} overdue)" in text
    assert "None" not in text
    gold = explain_case(sim, "OUT-7")
    assert gold["clock"] == "calendar"
    assert "target 4h calendar" in _render(120, lambda c: render_explain(gold, c))


def test_oncall_now_and_the_fallback_that_is_paged() -> None:
    r = runner.invoke(app, ["oncall", str(ACME), "network-oncall", "--json"])
    assert r.exit_code == 0, r.output
    now = json.loads(r.output)
    assert now["fallback"] == "person:frank" and now["paged"]
    policy = load_policy(ACME)
    night = parse_instant("2026-11-25T23:30:00+01:00")  # outside the layer's 07:00-22:00
    report = at_report(policy, ["network-oncall"], night)
    assert report["network-oncall"]["on_call"] == []
    assert report["network-oncall"]["paged"] == ["person:frank"]
    text = _render(120, lambda c: render_oncall(policy, report, c))
    assert "nobody: person:frank is paged" in text and "None" not in text
    day = at_report(policy, ["network-oncall"], parse_instant("2026-11-25T20:00:00+01:00"))
    assert day["network-oncall"]["paged"] == day["network-oncall"]["on_call"] != []
    r = runner.invoke(app, ["oncall", str(ACME), "network-oncall"])
    assert r.exit_code == 0 and "frank" in r.output and "None" not in r.output


def test_token_create_says_it_created_the_database(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    r = runner.invoke(app, ["token", "create", "--role", "admin", "--name", "me", "--db",
                            f"sqlite:///{db}"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert f"created a new database at {db}" in r.output and db.exists()
    r = runner.invoke(app, ["token", "list", "--db", f"sqlite:///{db}"])
    assert r.exit_code == 0 and "created a new database" not in r.output


def test_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql+psycopg://rungs:s3cret@127.0.0.1:{port}/x"
    for args in (["token", "list", "--db", url], ["db", "upgrade", "--db", url]):
        r = runner.invoke(app, args)
        assert r.exit_code == 1, r.output
        lines = r.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: cannot use the database at"), lines
        assert "s3cret" not in r.output and "Traceback" not in r.output
    missing = tmp_path / "no" / "such" / "dir" / "rungs.db"
    r = runner.invoke(app, ["token", "list", "--db", f"sqlite:///{missing}"])
    assert r.exit_code == 1 and len(r.output.strip().splitlines()) == 1, r.output


def test_a_busy_port_names_the_setting(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = runner.invoke(app, ["serve", "--policy", str(ACME), "--db",
                                f"sqlite:///{tmp_path / 'r.db'}", "--port", str(port)])  # fmt: skip
    assert r.exit_code == 1, r.output
    assert f"cannot listen on 127.0.0.1:{port}" in r.output
    assert "--port or RUNGS_PORT" in r.output and len(r.output.strip().splitlines()) == 1
    assert not (tmp_path / "r.db").exists()  # refused before anything started


def test_serve_on_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql+psycopg://rungs:s3cret@127.0.0.1:{closed}/x"
    try:
        r = runner.invoke(app, ["serve", "--policy", str(ACME), "--db", url, "--port", str(port)])
    finally:
        logging.getLogger("rungs").handlers.clear()  # serve's, bound to the runner's stderr
    assert r.exit_code == 1, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot use the database at"), lines
    assert "***" in lines[0] and "s3cret" not in r.output
