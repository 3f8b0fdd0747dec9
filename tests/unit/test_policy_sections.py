"""The policy compiler in parts: one section module per top-level key, one reader, typed
channels and integration options."""

from __future__ import annotations

import importlib

import pytest

from rungs.policy import load_policy_text
from rungs.policy.channels import NO_CHANNELS, Channels, WebhookConfig, channels_of
from rungs.policy.compile import SECTIONS
from rungs.policy.model import AlertmanagerOptions, HeartbeatOptions, IntegrationOptions
from rungs.policy.rate import Rate
from rungs.policy.reader import hint, kind_of

PEOPLE = """\
people:
  - {id: alice, contacts: {email: alice@example.test}}
customers: [{id: acme}]
"""

INTEGRATIONS = """\
integrations:
  - {id: pd, format: pagerduty, key: pd-key-0123456789ab, severity_map: {critical: P2}}
  - {id: og, format: opsgenie, key: og-key-0123456789ab, rate_limit: {per_second: 2}}
  - {id: ev, format: events, key: ev-key-0123456789ab, rate_limit: {per_second: 0.1}}
  - {id: am, format: alertmanager, key: am-key-0123456789ab}
  - {id: amg, format: alertmanager, key: amg-key-0123456789a, dedup: group_key,
     rate_limit: {per_second: 5, burst: 7}}
  - {id: hb, format: heartbeat, key: hb-key-0123456789ab, interval: 4m,
     defaults: {customer: acme}}
"""


def compile_(text: str):
    policy, problems = load_policy_text(text, "p.yaml")
    assert [str(p) for p in problems] == []
    assert policy is not None
    return policy


def test_every_top_level_key_has_its_section_module() -> None:
    for key in SECTIONS:
        module = importlib.import_module(f"rungs.policy.sections.{key}")
        assert callable(getattr(module, f"compile_{key}")), key


def test_integration_options_are_typed_by_format() -> None:
    found = compile_(PEOPLE + INTEGRATIONS).integrations
    assert type(found["pd"].options) is IntegrationOptions
    assert found["pd"].options.severity_map == {"critical": "P2"}
    assert found["pd"].options.rate_limit is None
    # burst defaults to twice the rate, at least 1
    assert found["og"].options.rate_limit == Rate(2.0, 4.0)
    assert found["ev"].options.rate_limit == Rate(0.1, 1.0)
    assert found["am"].options == AlertmanagerOptions(dedup="fingerprint")
    assert found["amg"].options == AlertmanagerOptions(dedup="group_key", rate_limit=Rate(5.0, 7.0))
    assert found["hb"].options == HeartbeatOptions(interval=240_000_000)


def test_options_of_another_format_are_errors_not_fields() -> None:
    text = PEOPLE + INTEGRATIONS.replace(
        "format: pagerduty, key: pd-key-0123456789ab,",
        "format: pagerduty, key: pd-key-0123456789ab, dedup: group_key, interval: 1m,",
    )
    policy, problems = load_policy_text(text, "p.yaml")
    assert policy is None
    assert [p.message for p in problems] == [
        "'dedup' is for alertmanager integrations",
        "'interval' is for heartbeat integrations",
    ]


def test_channels_are_typed_with_or_without_a_section() -> None:
    quiet = compile_(PEOPLE)
    assert isinstance(quiet.channels, Channels) and not quiet.channels.declared
    assert channels_of(quiet) is quiet.channels
    assert channels_of(None) is NO_CHANNELS
    email = "email: {host: smtp.example.test, sender: rungs@example.test}"
    declared = compile_(PEOPLE + f"channels: {{{email}, webhook: {{secret_env: RUNGS_HOOK}}}}\n")
    assert declared.channels.declared
    assert declared.channels["webhook"] == WebhookConfig("RUNGS_HOOK")


def test_channel_hints_name_the_choices_when_nothing_is_close() -> None:
    _, problems = load_policy_text(PEOPLE + "channels: {pigeon: {}}\n", "p.yaml")
    assert [p.message for p in problems if p.severity == "error"] == [
        "unknown channel or setting 'pigeon' (use email, webhook, sms, voice, slack, apprise, "
        "log, retry, bundle, rate_limits, handled_notice)"
    ]


@pytest.mark.parametrize(
    ("name", "choices", "expected"),
    [
        ("peple", ["people", "teams"], " (did you mean 'people'?)"),
        ("zzz", ["people", "teams"], ""),
    ],
)
def test_one_hint_for_every_section(name: str, choices: list[str], expected: str) -> None:
    assert hint(name, choices) == expected


def test_kind_of_names_values_in_an_authors_words() -> None:
    assert [kind_of(v) for v in (None, {}, [], "x", True, 3)] == [
        "nothing",
        "a mapping",
        "a list",
        "a string",
        "a boolean",
        "a int",
    ]


@pytest.mark.parametrize(("who", "kind"), [("[alice]", "a list"), ("{id: alice}", "a mapping")])
def test_an_override_whose_who_is_not_an_id_is_reported_not_a_crash(who: str, kind: str) -> None:
    text = PEOPLE + (
        "schedules:\n"
        "  - id: s\n"
        "    layers: [{members: [alice], shift: 1w, start: '2026-01-05T09:00:00Z'}]\n"
        "    overrides:\n"
        f"      - {{from: '2026-01-06T00:00:00Z', to: '2026-01-07T00:00:00Z', who: {who}}}\n"
    )
    policy, problems = load_policy_text(text, "p.yaml")
    assert policy is None
    assert [str(p) for p in problems] == [f"p.yaml:8:73: 'who' must be a person's id, not {kind}"]
