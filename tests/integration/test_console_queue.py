"""The queue's read (`Views.queue`) on SQLite and PostgreSQL: soonest SLA breach first from
the stored `sla_due`, breached ones first of all, tabs and search; and the console's other
stored pieces: `rungs user password` and `console_role` in the policy."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from rungs.cli import app as cli
from rungs.core.model import Event
from rungs.policy import load_policy_text
from rungs.time.instant import parse_instant
from tests.console import console_app, console_policy, sign_in
from tests.sync import act, open_case

OPEN = ("open", "acknowledged", "pending")


def test_the_queue_orders_by_next_breach_with_tabs_and_search(db_url: str, tmp_path: Path) -> None:
    engine, app = console_app(db_url, tmp_path)
    try:

        def opened(priority: str, title: str, customer: str = "globex") -> str:
            data = {"customer": customer, "priority": priority, "title": title}
            return open_case(engine, data)[0].id

        p3 = opened("P3", "slow reports")  # gold P3: first response in 4h
        p1 = opened("P1", "checkout down")  # gold P1: first response in 15m
        p2 = opened("P2", "search 100% broken")  # gold P2: in 1h
        ended = opened("P1", "already fixed")
        act(engine, ended, Event("resolve", by="bob"))
        rows, total = engine.views.queue(statuses=OPEN)
        assert [r.id for r in rows] == [p1, p2, p3] and total == 3
        start = parse_instant("2026-12-02T09:00:00Z")
        assert rows[0].sla_due == start + 15 * 60_000_000
        assert rows[0].holder == "alice, bob"  # level 1 pages the service desk

        engine.advance(start + 20 * 60_000_000)  # P1's first response is breached
        act(engine, p3, Event("assign", by="alice", to="person:alice"))
        rows, _ = engine.views.queue(statuses=OPEN)
        assert rows[0].id == p1 and rows[0].sla_due < engine.clock.now()
        assert [
            r.id for r in engine.views.queue(statuses=OPEN, assignees=("person:alice",))[0]
        ] == [p3]
        assert [r.id for r in engine.views.queue(statuses=OPEN, search="100%")[0]] == [p2]
        assert engine.views.queue(statuses=OPEN, search="_")[1] == 0  # a literal, not a wildcard
        assert [r.id for r in engine.views.queue(statuses=("resolved",))[0]] == [ended]

        c = TestClient(app)
        sign_in(c, "alice")
        page = c.get("/").text
        assert "breached</strong>" in page and "checkout down" in page
        mine = c.get("/?tab=mine").text
        assert "slow reports" in mine and "checkout down" not in mine
        teams = c.get("/?tab=teams").text  # alice's team, service-desk: alice and bob
        assert "slow reports" in teams
        bad = c.get("/?tab=nope&status=gone")
        assert bad.status_code == 200 and "unknown tab" in bad.text
    finally:
        engine.stop()


def test_user_password_reads_stdin_and_checks_the_person(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'u.db'}"
    engine, _ = console_app(db, tmp_path, passwords=False)
    engine.stop()
    runner = CliRunner()
    done = runner.invoke(
        cli, ["user", "password", "carol@acme.test", "--db", db], input="s3cret-pass\n"
    )
    assert done.exit_code == 0, done.output
    from rungs.store.credentials import verify_password
    from rungs.store.db import make_engine
    from rungs.store.tables import credentials

    eng = make_engine(db)
    with eng.connect() as conn:
        row = conn.execute(credentials.select()).one()
    eng.dispose()
    assert row.person == "carol" and row.hash.startswith("$argon2id$")
    assert verify_password(row.hash, "s3cret-pass") and not verify_password(row.hash, "nope")
    done = runner.invoke(cli, ["user", "password", "mallory", "--db", db], input="s3cret-pass\n")
    assert done.exit_code == 1 and "unknown person 'mallory'" in done.output
    done = runner.invoke(cli, ["user", "password", "carol", "--db", db], input="short\n")
    assert done.exit_code == 1 and "8 to 1024 characters" in done.output


@pytest.mark.parametrize("role", ["viewer", "responder", "admin"])
def test_console_role_is_read_from_people(role: str) -> None:
    text = console_policy().replace("console_role: admin", f"console_role: {role}")
    policy, problems = load_policy_text(text, "p.yaml")
    assert not problems and policy is not None
    assert policy.people["alice"].console_role == role
    assert policy.people["bob"].console_role == "responder"  # the default


def test_an_unknown_console_role_is_a_located_error() -> None:
    text = console_policy().replace("console_role: admin", "console_role: boss")
    policy, problems = load_policy_text(text, "p.yaml")
    assert policy is None
    [p] = [p for p in problems if "console_role" in p.message]
    line = text.splitlines().index("    console_role: boss") + 1
    assert (p.file, p.line) == ("p.yaml", line)
    assert "viewer, responder, admin" in p.message and "'boss'" in p.message


def test_changes_name_the_cases_a_commit_wrote(tmp_path: Path) -> None:
    """The SSE feed's source: in one process, the ids of the cases each commit wrote."""
    engine, _ = console_app(f"sqlite:///{tmp_path / 'c.db'}", tmp_path, passwords=False)

    async def run() -> tuple[str, set[str]]:
        async with engine.changes.subscribe() as sub:
            case, _ = await engine.commands.open({"customer": "globex", "title": "x"})
            await asyncio.wait_for(sub.wait(), 5)
            return case.id, sub.take()

    try:
        case_id, told = asyncio.run(run())
        assert told == {case_id}
    finally:
        engine.stop()


def test_another_process_writing_reaches_the_console_on_postgresql(
    pg_url: str, tmp_path: Path
) -> None:
    """An engine node's write (another process) is NOTIFYed: the API node's feed says ANY."""
    from rungs.engine.changes import ANY
    from tests.conftest import reset_database

    reset_database(pg_url)
    api, _ = console_app(pg_url, tmp_path, passwords=False)
    (tmp_path / "other").mkdir()
    other, _ = console_app(pg_url, tmp_path / "other", passwords=False)

    async def run() -> set[str]:
        async with api.changes.subscribe() as sub:
            await asyncio.sleep(0.5)  # the listener (started with the engine) has connected
            sub.take()
            await other.commands.open({"customer": "globex", "title": "elsewhere"})
            await asyncio.wait_for(sub.wait(), 5)
            return sub.take()

    try:
        assert asyncio.run(run()) == set(ANY)
    finally:
        other.stop()
        api.stop()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--trusted-header", "X-Forwarded-Email"], "--trusted-header needs --trusted-proxy"),
        (["--trusted-proxy", "10.0.0.1"], "--trusted-proxy is used with --trusted-header"),
        (["--trusted-header", "X-Email", "--trusted-proxy", "proxy.lan"], "not an IP address"),
        (["--trusted-header", "X Email", "--trusted-proxy", "10.0.0.1"], "not a header name"),
    ],
)
def test_serve_refuses_a_half_configured_trusted_header(
    args: list[str], message: str, tmp_path: Path
) -> None:
    done = CliRunner().invoke(cli, ["serve", "--db", f"sqlite:///{tmp_path / 's.db'}", *args])
    assert done.exit_code == 1 and message in done.output, done.output
    assert not (tmp_path / "s.db").exists()  # refused before anything started
