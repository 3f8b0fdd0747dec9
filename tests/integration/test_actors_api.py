"""Issue 12 §1 and §2 over HTTP: tokens that belong to a person, `actor` and `by` on every
action's entry, `not_sent` in the API's timeline and handoff, the `log` channel of the
example policy, and the migration that adds a token's person. The policy is the auth tests'
(ann on call at START, ben at level 2, no `channels` section)."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from fastapi.testclient import TestClient
from sqlalchemy import inspect, text
from typer.testing import CliRunner

from rungs.bootstrap import build
from rungs.cli import app as cli
from rungs.store.db import MIGRATIONS, make_engine
from rungs.store.tokens import lookup
from rungs.time.instant import parse_instant
from tests.conftest import api_token
from tests.integration.test_auth import KEYS, POLICY, START

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Api:
    service: Any
    client: TestClient
    names: dict[str, str]  # token -> its name

    def token(self, role: str, person: str | None = None) -> str:
        name = f"{role}-{person or 'nobody'}-{uuid.uuid4().hex[:6]}"
        tok = api_token(self.service.db, role, name, person)
        self.names[tok] = name
        return tok

    def post(self, tok: str, url: str, body: Any = None) -> Any:
        return self.client.post(url, json=body, headers={"Authorization": f"Bearer {tok}"})

    def get(self, tok: str, url: str) -> Any:
        return self.client.get(url, headers={"Authorization": f"Bearer {tok}"})

    def new_case(self) -> str:
        r = self.post(self.token("responder"), "/v1/cases", {"customer": "acme", "title": "t"})
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    def entries(self, case_id: str, kind: str) -> list[dict[str, Any]]:
        r = self.get(self.token("viewer"), f"/v1/cases/{case_id}/timeline")
        assert r.status_code == 200, r.text
        return [e for e in r.json() if e["kind"] == kind]


def _serve(tmp_path: Path, policy_text: str) -> tuple[Any, Any]:
    policy = tmp_path / "policy.yaml"
    policy.write_text(policy_text, encoding="utf-8")
    return build(
        db_url=f"sqlite:///{tmp_path / 'rungs.db'}",
        policy_file=policy,
        virtual_start=parse_instant(START),
    )


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    monkeypatch.setenv("RUNGS_ALLOW_VIRTUAL_CLOCK", "1")
    service, app = _serve(tmp_path, POLICY)
    try:
        with TestClient(app) as client:
            yield Api(service, client, {})
    finally:
        service.stop()
        service.db.dispose()


# tokens of a person -------------------------------------------------------------------------


def test_post_tokens_takes_a_person_of_the_policy(api: Api) -> None:
    admin = api.token("admin")
    r = api.post(admin, "/v1/tokens", {"name": "pager-bot", "role": "responder", "person": "ann"})
    assert r.status_code == 201, r.text
    assert r.json()["person"] == "ann"
    listed = {t["name"]: t for t in api.get(admin, "/v1/tokens").json()}
    assert listed["pager-bot"]["person"] == "ann"
    with api.service.db.connect() as conn:
        info = lookup(conn, r.json()["token"])
    assert info is not None and info.person == "ann"
    r = api.post(admin, "/v1/tokens", {"name": "x", "role": "responder", "person": "mallory"})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "person" and "mallory" in r.json()["detail"]
    assert "x" not in {t["name"] for t in api.get(admin, "/v1/tokens").json()}


def test_cli_token_create_with_a_person(tmp_path: Path, api: Api) -> None:
    db = f"sqlite:///{tmp_path / 'rungs.db'}"
    runner = CliRunner()
    create = ["token", "create", "--role", "responder", "--db", db]
    ok = runner.invoke(cli, [*create, "--name", "cli-bot", "--person", "ben"])
    assert ok.exit_code == 0, ok.output
    token = ok.stdout.strip().splitlines()[-1]
    r = api.post(token, f"/v1/cases/{api.new_case()}/acknowledge")
    assert r.status_code == 200, r.text
    listed = runner.invoke(cli, ["token", "list", "--db", db, "--json"])
    assert {t["name"]: t["person"] for t in json.loads(listed.stdout)}["cli-bot"] == "ben"
    bad = runner.invoke(cli, [*create, "--name", "b2", "--person", "zed"])
    assert bad.exit_code != 0 and "zed" in bad.output


# actor and by on every action -----------------------------------------------------------------


def test_an_action_is_the_tokens_person_and_names_the_token(api: Api) -> None:
    tok = api.token("responder", "ann")
    cid = api.new_case()
    r = api.post(tok, f"/v1/cases/{cid}/acknowledge")
    assert r.status_code == 200, r.text
    (ack,) = api.entries(cid, "acknowledged")
    assert ack["by"] == "ann" and ack["actor"] == api.names[tok]


def test_a_token_without_a_person_must_say_by(api: Api) -> None:
    tok = api.token("responder")
    cid = api.new_case()
    r = api.post(tok, f"/v1/cases/{cid}/acknowledge")
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "by"
    assert not api.entries(cid, "acknowledged")
    r = api.post(tok, f"/v1/cases/{cid}/acknowledge", {"by": "ben"})
    assert r.status_code == 200, r.text
    (ack,) = api.entries(cid, "acknowledged")
    assert ack["by"] == "ben" and ack["actor"] == api.names[tok]


def test_by_must_name_a_person_of_the_policy(api: Api) -> None:
    cid = api.new_case()
    r = api.post(api.token("admin"), f"/v1/cases/{cid}/resolve", {"by": "mallory"})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "by" and "mallory" in r.json()["detail"]
    assert not api.entries(cid, "resolved")


def test_only_an_admin_token_acts_as_another_person(api: Api) -> None:
    cid = api.new_case()
    r = api.post(api.token("responder", "ann"), f"/v1/cases/{cid}/acknowledge", {"by": "ben"})
    assert r.status_code == 403, r.text
    assert r.json()["field"] == "by"
    admin = api.token("admin", "ann")
    r = api.post(admin, f"/v1/cases/{cid}/acknowledge", {"by": "ben"})
    assert r.status_code == 200, r.text
    (ack,) = api.entries(cid, "acknowledged")
    assert ack["by"] == "ben" and ack["actor"] == api.names[admin]


def test_reason_and_actor_are_kept_on_every_action(api: Api) -> None:
    tok = api.token("responder", "ann")
    cid = api.new_case()
    steps = [
        ("assign", {"to": "person:ben"}, "assigned"),
        ("set_priority", {"priority": "P1"}, "priority_changed"),
        ("pending", {}, "pending"),
        ("customer_reply", {}, "customer_replied"),
        ("escalate", {}, "escalated"),
        ("acknowledge", {}, "acknowledged"),
        ("respond", {}, "responded"),
        ("resolve", {}, "resolved"),
        ("reopen", {}, "reopened"),
        ("resolve", {}, "resolved"),
        ("close", {}, "closed"),
    ]
    for i, (action, body, kind) in enumerate(steps):
        reason = f"step {i}: {action}"
        r = api.post(tok, f"/v1/cases/{cid}/{action}", {**body, "reason": reason})
        assert r.status_code == 200, (action, r.text)
        mine = [e for e in api.entries(cid, kind) if e.get("reason") == reason]
        assert len(mine) == 1, (action, api.entries(cid, kind))
        assert mine[0]["actor"] == api.names[tok], (action, mine[0])


def test_opened_names_the_token_on_both_paths(api: Api) -> None:
    tok = api.token("responder")
    body = {"customer": "acme", "title": "t"}
    fast = api.post(tok, "/v1/cases", body)  # the fast path: JSON, no query string
    slow = api.client.post(  # a query string sends it through the framework
        "/v1/cases?via=framework", json=body, headers={"Authorization": f"Bearer {tok}"}
    )
    for r in (fast, slow):
        assert r.status_code == 201, r.text
        (opened,) = api.entries(r.json()["id"], "opened")
        assert opened["actor"] == api.names[tok]
        assert "by" not in opened


def test_a_case_an_integration_opened_names_it(api: Api) -> None:
    r = api.client.post(f"/v1/integrations/{KEYS['events']}/events", json={"title": "disk"})
    assert r.status_code == 202, r.text
    (opened,) = api.entries(r.json()["case"], "opened")
    assert opened["actor"] == "integration:ev"


# not_sent through the API --------------------------------------------------------------------


def test_not_sent_is_in_the_timeline_and_the_handoff(api: Api) -> None:
    cid = api.new_case()
    viewer = api.token("viewer")
    kinds = [(e["kind"], e.get("to")) for e in api.get(viewer, f"/v1/cases/{cid}/timeline").json()]
    i = kinds.index(("notified", "ann"))
    assert kinds[i + 1] == ("not_sent", "ann")
    (ns,) = api.entries(cid, "not_sent")
    assert ns["channel"] == "email" and ns["why"] == "the policy has no channels section"
    h = api.get(viewer, f"/v1/cases/{cid}/handoff").json()
    (page,) = h["ladder"][0]["notified"]
    assert page["not_sent"] == "the policy has no channels section"


# the example policy's log channel -------------------------------------------------------------


def test_the_example_policy_pages_into_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("RUNGS_ALLOW_VIRTUAL_CLOCK", "1")
    example = (ROOT / "src" / "rungs" / "examples" / "acme.yaml").read_text(encoding="utf-8")
    service, app = _serve(tmp_path, example)
    try:
        with TestClient(app) as client, caplog.at_level(logging.INFO, logger="rungs.messages"):
            api = Api(service, client, {})
            tok = api.token("responder")
            r = api.post(tok, "/v1/cases", {"customer": "initech", "title": "Cannot log in"})
            assert r.status_code == 201, r.text
            cid = r.json()["id"]
            service.advance(service.clock.now() + 1_000_000)
            delivered = {(e["to"], e["channel"]) for e in api.entries(cid, "delivered")}
            assert delivered == {("alice", "email"), ("bob", "email")}
            assert not api.entries(cid, "not_sent") and not api.entries(cid, "delivery_failed")
    finally:
        service.stop()
        service.db.dispose()
    logged = [r.getMessage() for r in caplog.records if r.name == "rungs.messages"]
    assert len(logged) == 2, logged
    alice = next(m for m in logged if "alice@acme.test" in m)
    assert alice.startswith("email to alice@acme.test") and "Cannot log in" in alice


# the migration -------------------------------------------------------------------------------


def test_migration_0005_adds_the_person_to_existing_tokens(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    db = make_engine(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    try:
        with db.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0004")
            conn.execute(
                text(
                    "INSERT INTO api_tokens (name, active_name, role, hash, created_at)"
                    " VALUES ('old', 'old', 'admin', :h, 0)"
                ),
                {"h": "0" * 64},
            )
        assert "person" not in {c["name"] for c in inspect(db).get_columns("api_tokens")}
        with db.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
        assert "person" in {c["name"] for c in inspect(db).get_columns("api_tokens")}
        with db.connect() as conn:
            row = conn.execute(text("SELECT name, person FROM api_tokens")).one()
        assert (row.name, row.person) == ("old", None)
        with db.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0004")
        assert "person" not in {c["name"] for c in inspect(db).get_columns("api_tokens")}
    finally:
        db.dispose()
