"""Policy changes that stick (issue 12 §4): file- and database-managed modes, a broken file
at start-up, `PUT /v1/policy?dry_run=true`, the 409 on removals in use, and what non-admins
read of the policy (§6)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from rungs.bootstrap import build, prepare
from rungs.cli import app as cli
from rungs.policy import PolicyError
from rungs.time.instant import parse_instant
from tests.conftest import api_token

START = "2026-03-02T09:00:00Z"
EV_KEY = "ev-0123456789abcdef"
POLICY = f"""\
version: 1
timezone: UTC
people:
  ann: {{ contacts: {{ email: ann@example.com }} }}
  ben: {{ contacts: {{ email: ben@example.com }} }}
customers:
  acme: {{ name: Acme }}
  globex: {{ name: Globex }}
  initech: {{ name: Initech }}
matrices:
  default:
    levels: [{{ notify: [person:ann] }}, {{ after: 30m, notify: [person:ben] }}]
  globex:
    match: {{ customer: globex }}
    levels: [{{ notify: [person:ben] }}]
integrations:
  ev: {{ format: events, key: {EV_KEY}, defaults: {{ customer: acme }} }}
  spare: {{ format: events, key_env: RUNGS_SPARE_KEY, defaults: {{ customer: acme }} }}
"""


def _without(text: str, *lines: str) -> str:
    for line in lines:
        assert line in text, line
        text = text.replace(line, "")
    return text


@contextmanager
def _serve(db_url: str, policy_file: Path | None, **kw: Any) -> Iterator[TestClient]:
    service, app = build(
        db_url=db_url, policy_file=policy_file, virtual_start=parse_instant(START), **kw
    )
    try:
        with TestClient(app) as client:
            client.headers["Authorization"] = f"Bearer {api_token(service.db, 'admin')}"
            yield client
    finally:
        service.stop()
        service.db.dispose()


@pytest.fixture(autouse=True)
def _virtual(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNGS_ALLOW_VIRTUAL_CLOCK", "1")


def _file(tmp_path: Path, text: str = POLICY, name: str = "policy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# modes ----------------------------------------------------------------------------------------


def test_file_managed_put_is_409_naming_the_file(tmp_path: Path) -> None:
    path = _file(tmp_path)
    url = f"sqlite:///{tmp_path / 'rungs.db'}"
    with _serve(url, path) as c:
        r = c.put("/v1/policy", content=POLICY.replace("name: Acme", "name: ACME"))
        assert r.status_code == 409, r.text
        assert r.json()["file"] == str(path) and str(path) in r.json()["detail"]
        assert c.get("/v1/policy").headers["x-rungs-policy-version"] == "1"
        # a dry run stores nothing, so it is answered: what the edit would change
        dry = c.put("/v1/policy?dry_run=true", content=POLICY.replace("name: Acme", "name: X"))
        assert dry.status_code == 200 and dry.json()["changes"]["customers"]["changed"] == ["acme"]
        bad = c.put("/v1/policy", content="version: 1\npeople: 3\n")
        assert bad.status_code == 422  # a broken body is still named as such


def test_database_managed_put_survives_a_restart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'rungs.db'}"
    prepare(db_url=url, policy_file=_file(tmp_path))
    edited = POLICY.replace("name: Acme", "name: Acme Corp")
    with _serve(url, None) as c:
        r = c.put("/v1/policy", content=edited)
        assert r.status_code == 200 and r.json() == {"version": 2}
    with _serve(url, None) as c:
        r = c.get("/v1/policy")
        assert r.headers["x-rungs-policy-version"] == "2" and r.text == edited
        assert c.get("/healthz").json()["policy_file_error"] is None


def test_a_broken_file_at_start_keeps_the_stored_version_serving(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'rungs.db'}"
    path = _file(tmp_path)
    prepare(db_url=url, policy_file=path)
    path.write_text(POLICY.replace("after: 30m", "after: 30x"), encoding="utf-8")
    with _serve(url, path) as c:
        health = c.get("/healthz")
        assert health.status_code == 200
        error = health.json()["policy_file_error"]
        assert error.startswith(f"{path}:") and "malformed duration '30x'" in error
        assert c.get("/v1/policy").headers["x-rungs-policy-version"] == "1"
        opened = c.post("/v1/cases", json={"customer": "acme", "title": "still paging"})
        assert opened.status_code == 201 and opened.json()["policy_version"] == 1
        assert c.put("/v1/policy", content=POLICY).status_code == 409  # still file-managed
    with pytest.raises(PolicyError, match="30x"):  # --strict: the exit of CI pipelines
        build(db_url=url, policy_file=path, virtual_start=parse_instant(START), strict=True)
    path.unlink()  # a missing file is broken too
    with _serve(url, path) as c:
        assert "cannot read file" in c.get("/healthz").json()["policy_file_error"]
    path.write_text(POLICY, encoding="utf-8")
    with _serve(url, path) as c:
        assert c.get("/healthz").json()["policy_file_error"] is None


def test_a_broken_file_with_nothing_stored_refuses_to_start(tmp_path: Path) -> None:
    path = _file(tmp_path, POLICY.replace("after: 30m", "after: 30x"))
    url = f"sqlite:///{tmp_path / 'rungs.db'}"
    with pytest.raises(PolicyError, match="30x"):
        build(db_url=url, policy_file=path, virtual_start=parse_instant(START))


def test_serve_strict_exits_with_the_located_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def served(*_: object, **__: object) -> None:
        raise AssertionError("--strict served a broken policy file")

    monkeypatch.setattr("uvicorn.run", served)
    url = f"sqlite:///{tmp_path / 'rungs.db'}"
    path = _file(tmp_path)
    prepare(db_url=url, policy_file=path)
    path.write_text(POLICY.replace("after: 30m", "after: 30x"), encoding="utf-8")
    r = CliRunner().invoke(cli, ["serve", "--policy", str(path), "--db", url, "--strict"])
    assert r.exit_code == 1, r.output
    assert f"{path}:" in r.output and "malformed duration '30x'" in r.output


# dry runs and removals in use ----------------------------------------------------------------


def test_dry_run_shows_the_changes_and_stores_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'rungs.db'}"
    prepare(db_url=url, policy_file=_file(tmp_path))
    new = (
        _without(POLICY, "  initech: { name: Initech }\n").replace(
            "ben@example.com", "ben@example.org"
        )
        + "  third: { format: events, key_env: RUNGS_THIRD, defaults: { customer: acme } }\n"
    )
    new = new.replace("timezone: UTC", "timezone: Europe/Berlin")
    with _serve(url, None) as c:
        r = c.put("/v1/policy", params={"dry_run": "true"}, content=new)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["dry_run"] is True and body["version"] is None
        assert body["current_version"] == 1 and body["in_use"] == {}
        changes = body["changes"]
        assert changes["customers"] == {"added": [], "removed": ["initech"], "changed": []}
        assert changes["people"] == {"added": [], "removed": [], "changed": ["ben"]}
        assert changes["integrations"]["added"] == ["third"]
        assert (
            changes["matrices"]
            == changes["schedules"]
            == {
                "added": [],
                "removed": [],
                "changed": [],
            }
        )
        assert changes["other_sections"] == ["timezone"]
        assert c.get("/v1/policy").headers["x-rungs-policy-version"] == "1"
        empty = "version: 1\ntimezone: UTC\ncustomers: { acme: { name: Acme } }\n"
        warned = c.put("/v1/policy?dry_run=true", content=empty).json()["warnings"]
        assert [w["message"] for w in warned] == [
            "the policy has no matrices: no case is escalated",
            "the policy has no people: nobody can be paged",
        ]


def test_removals_in_use_are_refused_unless_forced(db_url: str, tmp_path: Path) -> None:
    with _db_managed(db_url, tmp_path) as c:
        acme = c.post("/v1/cases", json={"customer": "globex", "title": "a"}).json()
        assert acme["matrix"] == "globex"
        other = c.post("/v1/cases", json={"customer": "acme", "title": "b"}).json()
        r = c.post(f"/v1/cases/{other['id']}/assign", json={"by": "ann", "to": "person:ben"})
        assert r.status_code == 200, r.text
        sent = c.post(f"/v1/integrations/{EV_KEY}/events", json={"title": "disk"})
        assert sent.status_code == 202, sent.text

        gone = _without(
            POLICY,
            "  globex: { name: Globex }\n",
            "  globex:\n    match: { customer: globex }\n    levels: [{ notify: [person:ben] }]\n",
            f"  ev: {{ format: events, key: {EV_KEY}, defaults: {{ customer: acme }} }}\n",
            "  ben: { contacts: { email: ben@example.com } }\n",
        ).replace("[person:ben]", "[person:ann]")
        r = c.put("/v1/policy", content=gone)
        assert r.status_code == 409, r.text
        assert r.json()["in_use"] == {
            "customers": ["globex"],
            "matrices": ["globex"],
            "people": ["ben"],
            "integrations": ["ev"],
        }
        for word in ("globex", "ben", "ev", "force=true"):
            assert word in r.json()["detail"]
        assert c.get("/v1/policy").headers["x-rungs-policy-version"] == "1"
        dry = c.put("/v1/policy?dry_run=true", content=gone).json()
        assert dry["in_use"] == r.json()["in_use"]
        forced = c.put("/v1/policy?force=true", content=gone)
        assert forced.status_code == 200 and forced.json() == {"version": 2}


def test_removals_not_in_use_are_stored(db_url: str, tmp_path: Path) -> None:
    with _db_managed(db_url, tmp_path) as c:
        done = c.post(f"/v1/integrations/{EV_KEY}/events", json={"title": "x", "dedup_key": "k"})
        assert done.status_code == 202
        resolved = c.post(
            f"/v1/integrations/{EV_KEY}/events", json={"action": "resolve", "dedup_key": "k"}
        )
        assert resolved.status_code == 202, resolved.text
        gone = _without(
            POLICY,
            "  initech: { name: Initech }\n",
            f"  ev: {{ format: events, key: {EV_KEY}, defaults: {{ customer: acme }} }}\n",
        )
        # the integration received an event within a day: in use, though its case is resolved
        r = c.put("/v1/policy", content=gone)
        assert r.status_code == 409 and r.json()["in_use"] == {"integrations": ["ev"]}
        c.post("/v1/clock/advance", json={"to": "2026-03-03T10:00:00Z"})
        r = c.put("/v1/policy", content=gone)
        assert r.status_code == 200, r.text  # initech had no open case, ev no event for a day


@contextmanager
def _db_managed(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """A server without --policy, on a database where POLICY is stored as version 1."""
    prepare(db_url=db_url, policy_file=_file(tmp_path, POLICY, "seed.yaml"))
    with _serve(db_url, None) as c:
        yield c


# what non-admins read ------------------------------------------------------------------------

SLACK = "https://hooks.slack.com/services/T0001/B0001/slacksecret123"
HOOK = "https://user:hooksecret456@hooks.example.com/rungs"
RULE = "https://rules.example.com/token/rulesecret789"
APPRISE = "tgram://appr1sesecretbot/12345"
SECRET_POLICY = f"""\
version: 1
timezone: UTC
# the old key was pd-oldsecret000, still valid until Friday
people:
  - id: ann
    contacts: {{ email: ann@example.com, slack: "{SLACK}", apprise: {APPRISE} }}
  - id: ben
    name: &k "pd-\\x73ecretkey0001"
    contacts:
      email: ben@example.com
      webhook: >-
        {HOOK}
customers: {{ acme: {{ name: Acme }} }}
matrices: [{{ id: default, levels: [{{ notify: [person:ann] }}] }}]
rules:
  - id: tell
    when: {{ priority: P1 }}
    then:
      - webhook: {{ url: "{RULE}" }}
integrations:
  - id: pd
    format: pagerduty
    key: *k
    defaults: {{ customer: acme }}
channels:
  webhook: {{ secret_env: RUNGS_WEBHOOK_SECRET }}
  slack: {{}}
"""


def test_non_admins_read_the_policy_without_any_secret(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'rungs.db'}"
    with _serve(url, _file(tmp_path, SECRET_POLICY)) as c:
        admin = c.get("/v1/policy")
        assert admin.text == SECRET_POLICY
        c.headers["Authorization"] = f"Bearer {api_token(url, 'viewer')}"
        viewer = c.get("/v1/policy")
        assert viewer.status_code == 200
        for secret in (
            "pd-secretkey0001",
            "slacksecret123",
            "hooksecret456",
            "rulesecret789",
            "appr1sesecret",
            "pd-oldsecret000",
            "RUNGS_WEBHOOK_SECRET",
        ):
            assert secret not in viewer.text, secret
        data = yaml.safe_load(viewer.text)
        assert data["channels"] == "<redacted>"
        assert data["integrations"][0]["key"] == "<redacted>"
        assert data["people"][1]["name"] == "<redacted>"  # the alias of the key, too
        assert data["people"][0]["contacts"] == {
            "email": "ann@example.com",
            "slack": "<redacted>",
            "apprise": "<redacted>",
        }
        assert data["people"][1]["contacts"]["webhook"] == "<redacted>"
        assert data["rules"][0]["then"] == [{"webhook": {"url": "<redacted>"}}]
        assert data["matrices"] == yaml.safe_load(SECRET_POLICY)["matrices"]
