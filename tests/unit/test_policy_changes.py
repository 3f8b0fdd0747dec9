"""Pure parts of issue 12 §4 and §6: what a policy change changes (`rungs policy diff`),
warnings for a policy that pages nobody (`rungs validate`), and the policy with its secrets
removed."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from rungs.cli import app as cli
from rungs.policy import load_policy_text
from rungs.policy.advice import advice
from rungs.policy.diff import diff_texts, render_diff
from rungs.policy.redact import public_yaml

OLD = """\
version: 1
timezone: UTC
people:
  - { id: ann, contacts: { email: ann@example.com } }
  - { id: ben, contacts: { email: ben@example.com } }
customers: [{ id: acme, name: Acme }, { id: globex, name: Globex }]
matrices:
  - id: default
    levels: [{ notify: [person:ann] }]
integrations:
  - { id: ev, format: events, key_env: RUNGS_EV, defaults: { customer: acme } }
"""

NEW = """\
version: 1
timezone: Europe/Berlin
people:
  ann: { contacts: { email: ann@example.com } }     # the mapping form: the same person
  ben: { contacts: { email: ben@example.org } }
  cat: { contacts: { email: cat@example.com } }
customers:
  - id: acme
    name: Acme
matrices:
  - id: default
    levels: [{ notify: [person:ann] }]
  - id: night
    match: { customer: acme }
    levels:
      - notify: [person:cat]
"""


def test_diff_names_what_was_added_removed_and_changed() -> None:
    d = diff_texts(OLD, NEW)
    assert d.as_dict() == {
        "customers": {"added": [], "removed": ["globex"], "changed": []},
        "matrices": {"added": ["night"], "removed": [], "changed": []},
        "integrations": {"added": [], "removed": ["ev"], "changed": []},
        "schedules": {"added": [], "removed": [], "changed": []},
        "people": {"added": ["cat"], "removed": [], "changed": ["ben"]},
        "other_sections": ["timezone"],
    }
    assert render_diff(d) == [
        "- customer globex",
        "+ matrix night",
        "- integration ev",
        "+ person cat",
        "~ person ben",
        "~ section timezone",
    ]
    assert not d.empty


def test_a_reformatted_policy_changes_nothing() -> None:
    flowed = OLD.replace(
        "matrices:\n  - id: default\n    levels: [{ notify: [person:ann] }]\n",
        "matrices: [{id: default, levels: [{notify: ['person:ann']}]}]  # same\n",
    )
    assert flowed != OLD
    d = diff_texts(OLD, flowed)
    assert d.empty and render_diff(d) == ["no changes"]


def test_advice_warns_of_a_policy_that_pages_nobody() -> None:
    text = "version: 1\ntimezone: UTC\nmatrices: []\ncustomers:\n  - { id: acme, name: Acme }\n"
    policy, problems = load_policy_text(text, "p.yaml")
    assert policy is not None, problems
    found = [(p.line, p.col, p.severity, p.message) for p in advice(text, "p.yaml", policy)]
    assert found == [
        (3, 1, "warning", "the policy has no matrices: no case is escalated"),
        (1, 1, "warning", "the policy has no people: nobody can be paged"),
    ]
    policy, _ = load_policy_text(OLD, "old.yaml")
    assert policy is not None and advice(OLD, "old.yaml", policy) == []


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_cli_policy_diff(tmp_path: Path) -> None:
    old, new = _write(tmp_path, "old.yaml", OLD), _write(tmp_path, "new.yaml", NEW)
    r = CliRunner().invoke(cli, ["policy", "diff", str(old), str(new)])
    assert r.exit_code == 0, r.output
    assert r.output.splitlines() == render_diff(diff_texts(OLD, NEW))
    r = CliRunner().invoke(cli, ["policy", "diff", str(old), str(new), "--json"])
    assert json.loads(r.output)["customers"]["removed"] == ["globex"]
    broken = _write(tmp_path, "broken.yaml", OLD.replace("timezone: UTC", "timezone: Mars/Base"))
    r = CliRunner().invoke(cli, ["policy", "diff", str(old), str(broken)])
    assert r.exit_code == 1 and f"{broken}:2:" in r.output


def test_cli_validate_warns_and_exits_zero(tmp_path: Path) -> None:
    empty = _write(tmp_path, "empty.yaml", "version: 1\ntimezone: UTC\n")
    r = CliRunner().invoke(cli, ["validate", str(empty)])
    assert r.exit_code == 0, r.output
    assert f"{empty}:1:1: warning: the policy has no matrices" in r.output
    assert f"{empty}:1:1: warning: the policy has no people" in r.output
    r = CliRunner().invoke(cli, ["validate", str(empty), "--json"])
    assert r.exit_code == 0 and {p["severity"] for p in json.loads(r.output)} == {"warning"}


SECRETS = """\
version: 1
timezone: UTC
# pd key rotated from pd-commentsecret1 last week
people:
  ann:
    name: Ann
    contacts:
      email: ann@example.com
      slack: 'https://hooks.slack.com/services/T1/B1/slack-secret-1'
      webhook: "https://hooks.example.com/\\u0077ebhook-secret-2"
      apprise: mailto://user:apprise-secret-3@example.com
customers:
  - { id: acme, name: "pd-key-secret-4 customer" }
matrices:
  - id: default
    levels:
      - notify: [person:ann]
rules:
  - id: ping
    when: { priority: P1 }
    then:
      - webhook: https://rules.example.com/rule-secret-5
integrations:
  pd:
    format: pagerduty
    key: !!str pd-key-secret-4
    defaults: { customer: acme }
channels:
  sms: { url: "https://sms.example.com/{account}/x", account_env: RUNGS_SMS_ACCOUNT,
         token_env: RUNGS_SMS_TOKEN, sender: "+4930000000" }
"""


def test_public_yaml_removes_every_secret_however_written() -> None:
    policy, problems = load_policy_text(SECRETS, "s.yaml")
    assert policy is not None, problems
    text = public_yaml(SECRETS, policy)
    for secret in (
        "commentsecret1",
        "slack-secret-1",
        "webhook-secret-2",
        "apprise-secret-3",
        "pd-key-secret-4",
        "rule-secret-5",
        "RUNGS_SMS",
        "sms.example.com",
    ):
        assert secret not in text, secret
    data = yaml.safe_load(text)
    assert data["integrations"]["pd"]["key"] == "<redacted>"
    assert data["customers"][0]["name"] == "<redacted> customer"  # a copy of the key, too
    assert data["people"]["ann"]["contacts"]["email"] == "ann@example.com"
    assert data["channels"] == "<redacted>"
    assert data["rules"][0]["then"] == [{"webhook": "<redacted>"}]
    assert data["matrices"] == yaml.safe_load(SECRETS)["matrices"]
