"""`rungs validate`: every invalid policy is reported as FILE:LINE:COL: message, at the value.

Each invalid policy is the valid BASE policy with one small edit; the line and column asserted
are those of the offending value (or of the key, for unknown and duplicate keys) in the edited
text. Each edit must produce exactly one error: a mistake must not cascade into others.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rungs.cli import app
from tests.conftest import require_shared

ROOT = Path(__file__).resolve().parents[2]

# A small valid policy. Line numbers in the cases below refer to this text (after each edit).
BASE = """\
version: 1
timezone: Europe/Berlin

calendars:
  office:
    timezone: Europe/Berlin
    hours:
      mon: "09:00-17:00"
      tue: "09:00-17:00"
      wed: "09:00-17:00"
      thu: "09:00-17:00"
      fri: "09:00-17:00"
    holidays:
      country: DE
      subdivision: BE
      dates: ["2026-12-24"]
  always:
    timezone: UTC
    hours: 24x7

people:
  - id: alice
    contacts: {email: alice@example.test, sms: "+4915100000001"}
    notify:
      - {after: 0m, via: email}
      - {after: 5m, via: sms}
  - id: bob
    contacts: {email: bob@example.test}

teams:
  - id: desk
    members: [alice, bob]

customers:
  - id: initech
    tier: standard
    sla: standard

sla_policies:
  standard:
    calendar: office
    warn_at: [75]
    targets:
      P1: {first_response: 1h, resolution: 8h}
      P2: {first_response: 4h, resolution: 24h}

reasons: [customer_request]

matrices:
  - id: default
    levels:
      - name: L1
        notify: [team:desk]
      - name: L2
        after: 30m
        notify: [person:alice]
      - name: L3
        after: 2h
        unless: resolved
        notify: [person:bob]

rules:
  - id: p1-breach
    when: {priority: P1, sla_breached: resolution}
    then:
      - notify: [person:bob]
"""

runner = CliRunner()


def edit(old: str, new: str) -> str:
    assert BASE.count(old) == 1, f"the edit must hit exactly one place: {old!r}"
    return BASE.replace(old, new)


def write(tmp_path: Path, text: str, name: str = "policy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def validate(*args: str | Path):
    return runner.invoke(app, ["validate", *map(str, args)])


def error_lines(output: str, path: Path) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(f"{path}:")]


# (id, old text, new text, line, col, words the message must hold)
CASES = [
    # unknown ids
    ("team-member", "members: [alice, bob]", "members: [alice, zed]", 32, 22,
     ["unknown person 'zed'", "team 'desk'"]),
    ("target-person", "notify: [person:alice]", "notify: [person:zed]", 56, 18,
     ["unknown person 'zed'", "person:zed"]),
    ("target-team", "notify: [team:desk]", "notify: [team:nope]", 53, 18,
     ["unknown team 'nope'"]),
    ("target-kind", "notify: [team:desk]", "notify: [group:desk]", 53, 18,
     ["unknown target kind 'group'"]),
    ("calendar", "calendar: office", "calendar: offfice", 41, 15,
     ["unknown calendar 'offfice'", "did you mean 'office'"]),
    ("sla-policy", "sla: standard", "sla: platinum", 37, 10,
     ["unknown SLA policy 'platinum'", "customer 'initech'"]),
    ("partner", "    sla: standard\n", "    sla: standard\n    partner: acme-msp\n", 38, 14,
     ["unknown partner 'acme-msp'", "customer 'initech'"]),
    ("match-customer", "  - id: default\n", "  - id: default\n    match: {customer: umbrella}\n",
     51, 23, ["unknown customer 'umbrella'"]),
    ("assign-team", "- notify: [person:bob]", "- assign: team:nope", 66, 17,
     ["unknown team 'nope'"]),
    # durations
    ("duration-level", "after: 30m", "after: 15x", 55, 16, ["malformed duration '15x'"]),
    ("duration-sla", "P1: {first_response: 1h,", "P1: {first_response: 1hour,", 44, 28,
     ["malformed duration '1hour'"]),
    ("duration-step", "{after: 5m, via: sms}", "{after: soon, via: sms}", 26, 17,
     ["malformed duration 'soon'"]),
    # hours
    ("hours-malformed", 'tue: "09:00-17:00"', 'tue: "9-17"', 9, 12,
     ["malformed hours '9-17'", "HH:MM-HH:MM"]),
    ("hours-time", 'tue: "09:00-17:00"', 'tue: "09:00-25:00"', 9, 12,
     ["'09:00-25:00' is not a time of day"]),
    ("hours-overlap", 'tue: "09:00-17:00"', 'tue: "09:00-12:00,11:00-17:00"', 9, 12,
     ["overlapping spans"]),
    ("hours-past-midnight", 'mon: "09:00-17:00"', 'mon: "22:00-10:00"', 8, 12,
     ["mon runs past midnight into tue", "overlaps"]),
    ("hours-weekday", 'tue: "09:00-17:00"', 'tues: "09:00-17:00"', 9, 7,
     ["unknown weekday 'tues'"]),
    ("hours-never-open", 'mon: "09:00-17:00"\n      tue: "09:00-17:00"\n      wed: "09:00-17:00"\n'
     '      thu: "09:00-17:00"\n      fri: "09:00-17:00"\n', "mon: closed\n", 8, 7,
     ["calendar 'office' has no business hours"]),
    # holidays
    ("holiday-country", "country: DE", "country: XX", 14, 16, ["unknown holiday country 'XX'"]),
    ("holiday-subdivision", "subdivision: BE", "subdivision: ZZ", 15, 20,
     ["unknown subdivision 'ZZ'", "country 'DE'"]),
    ("holiday-date", 'dates: ["2026-12-24"]', 'dates: ["2026-12-32"]', 16, 15,
     ["holiday date '2026-12-32' is not a date"]),
    ("holiday-date-unquoted", 'dates: ["2026-12-24"]', "dates: [2026-13-01]", 16, 15,
     ["holiday date '2026-13-01' is not a date"]),
    # levels
    ("level-not-later", "after: 2h", "after: 30m", 58, 16,
     ["level 3 'after' (30m) must be later than level 2's (30m)"]),
    ("level-earlier", "after: 2h", "after: 20m", 58, 16,
     ["level 3 'after' (20m) must be later than level 2's (30m)"]),
    ("level-2-at-zero", "after: 30m", "after: 0m", 55, 16,
     ["level 2 'after' must be longer than zero"]),
    ("level-1-after", "      - name: L1\n", "      - name: L1\n        after: 5m\n", 53, 16,
     ["level 1", "takes no 'after'"]),
    ("level-missing-after", "        after: 30m\n", "", 54, 9, ["level 2 is missing 'after'"]),
    ("level-unless", "unless: resolved", "unless: closed", 59, 17,
     ["unless must be 'acknowledged' or 'resolved'", "'closed'"]),
    # duplicates
    ("duplicate-person", "    contacts: {email: bob@example.test}\n",
     "    contacts: {email: bob@example.test}\n  - id: bob\n    contacts: {email: b@x.test}\n",
     29, 9, ["duplicate id 'bob' in 'people'", "first at line 27"]),
    ("duplicate-matrix", "\nrules:",
     "  - id: default\n    levels: [{notify: [team:desk]}]\n\nrules:", 61, 9,
     ["duplicate id 'default' in 'matrices'", "first at line 50"]),
    ("duplicate-calendar-key", "  always:\n", "  office:\n", 17, 3,
     ["duplicate key 'office'", "first at line 5"]),
    ("duplicate-key", "    tier: standard\n", "    tier: standard\n    tier: gold\n", 37, 5,
     ["duplicate key 'tier'", "first at line 36"]),
    ("duplicate-reason", "reasons: [customer_request]",
     "reasons: [customer_request, customer_request]", 47, 29,
     ["duplicate reason 'customer_request'"]),
    # unknown sections and fields
    ("unknown-section", "reasons: [customer_request]", "reasons: [customer_request]\nescalate: []",
     48, 1, ["unknown section 'escalate'"]),
    ("unknown-field-person", "  - id: bob\n", "  - id: bob\n    phone: 123\n", 28, 5,
     ["unknown field 'phone' in person 'bob'"]),
    ("unknown-field-level", "unless: resolved", "unles: resolved", 59, 9,
     ["unknown field 'unles' in level 3", "did you mean 'unless'"]),
    ("unknown-field-holidays", "country: DE", "contry: DE", 14, 7,
     ["unknown field 'contry' in holidays", "did you mean 'country'"]),
    ("unknown-condition", "{priority: P1,", "{prio: P1,", 64, 12, ["unknown condition 'prio'"]),
    ("unknown-action", "- notify: [person:bob]", "- page: [person:bob]", 66, 9,
     ["unknown action 'page'"]),
    # notification steps and contacts
    ("step-no-contact", "{after: 5m, via: sms}", "{after: 5m, via: voice}", 26, 26,
     ["person 'alice' has no 'voice' contact", "contacts: email, sms"]),
    ("step-unknown-channel", "{after: 5m, via: sms}", "{after: 5m, via: pager}", 26, 26,
     ["unknown channel 'pager'"]),
    ("step-missing-via", "{after: 5m, via: sms}", "{after: 5m}", 26, 9,
     ["notification step is missing 'via'"]),
    ("notify-empty",
     "    notify:\n      - {after: 0m, via: email}\n      - {after: 5m, via: sms}\n",
     "    notify: []\n", 24, 13, ["person 'alice' has an empty notify list"]),
    ("no-email-for-default", "contacts: {email: bob@example.test}", "contacts: {sms: '+1555'}",
     27, 5, ["person 'bob' has no email contact for the default rule"]),
    ("unknown-contact-method", "contacts: {email: bob@example.test}",
     "contacts: {email: bob@example.test, fax: '1'}", 28, 41, ["unknown contact method 'fax'"]),
    # time zones
    ("timezone-calendar", "timezone: UTC", "timezone: Mars/Olympus", 18, 15,
     ["unknown time zone 'Mars/Olympus'"]),
    ("timezone-top", "timezone: Europe/Berlin\n\n", "timezone: Europe/Berln\n\n", 2, 11,
     ["unknown time zone 'Europe/Berln'", "did you mean 'Europe/Berlin'"]),
    ("timezone-not-string", "timezone: UTC", "timezone: 5", 18, 15,
     ["time zone must be a string"]),
    # priorities and metrics
    ("priority-sla", "P2: {first_response", "P5: {first_response", 45, 7,
     ["unknown priority 'P5'"]),
    ("priority-when", "{priority: P1,", "{priority: P7,", 64, 22, ["unknown priority 'P7'"]),
    ("priority-when-list", "{priority: P1,", "{priority: [P1, urgent],", 64, 27,
     ["unknown priority 'urgent'"]),
    ("priority-set", "- notify: [person:bob]", "- set_priority: P9", 66, 23,
     ["unknown priority 'P9'"]),
    ("metric", "sla_breached: resolution", "sla_breached: resolve", 64, 40,
     ["unknown SLA metric 'resolve'"]),
    ("warn-at", "warn_at: [75]", "warn_at: [75, 150]", 42, 19,
     ["warn_at entries must be whole percentages", "150"]),
    # rules against the matrices
    ("escalate-too-low", "- notify: [person:bob]", "- escalate: {to_level: 1}", 66, 19,
     ["to_level must be a level number of at least 2"]),
    ("escalate-past-last", "- notify: [person:bob]", "- escalate: {to_level: 9}", 66, 30,
     ["escalates to level 9", "no matrix has more than 3 levels"]),
    # structure and YAML itself
    ("missing-id", "  - id: initech\n", "  - name: initech\n", 35, 5,
     ["an entry of 'customers' is missing 'id'"]),
    ("version", "version: 1", "version: 2", 1, 10, ["unsupported policy version 2"]),
    ("yaml-unsupported-tag", "tier: standard", "tier: !!python/object:os.system standard", 36, 11,
     ["unsupported YAML value"]),
    ("yaml-unclosed-list", "members: [alice, bob]", "members: [alice, bob", 32, 14,
     ["YAML syntax error", "flow sequence is not closed", "line 34, column 10"]),
    ("yaml-tab", "    tier: standard\n", "\ttier: standard\n", 36, 1,
     ["YAML syntax error", "'\\t'"]),
    ("yaml-indentation", "    tier: standard\n", "      tier: standard\n", 36, 11,
     ["YAML syntax error", "mapping values are not allowed here"]),
]  # fmt: skip


def test_base_policy_is_valid(tmp_path: Path) -> None:
    result = validate(write(tmp_path, BASE))
    assert result.exit_code == 0, result.output
    assert "1 policy file(s) valid" in result.output


@pytest.mark.parametrize(
    ("old", "new", "line", "col", "words"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_invalid_policy_reports_the_offending_value(
    tmp_path: Path, old: str, new: str, line: int, col: int, words: list[str]
) -> None:
    path = write(tmp_path, edit(old, new))
    result = validate(path)
    assert result.exit_code == 1, result.output
    errors = error_lines(result.output, path)
    assert len(errors) == 1, "\n".join(errors)
    assert errors[0].startswith(f"{path}:{line}:{col}: "), errors[0]
    for word in words:
        assert word in errors[0], errors[0]
    assert ": warning: " not in errors[0]


def test_enough_invalid_policies() -> None:
    assert len(CASES) >= 24
    assert len({case[0] for case in CASES}) == len(CASES)


def test_three_separate_errors_are_all_reported(tmp_path: Path) -> None:
    text = edit("members: [alice, bob]", "members: [alice, zed]")
    text = text.replace('tue: "09:00-17:00"', 'tue: "09:00-17:0"')
    text = text.replace("after: 2h", "after: 2hours")
    path = write(tmp_path, text)
    result = validate(path)
    assert result.exit_code == 1
    errors = error_lines(result.output, path)
    assert [e.split(": ", 1)[0] for e in errors] == [
        f"{path}:9:12",
        f"{path}:32:22",
        f"{path}:58:16",
    ]
    assert "malformed hours '09:00-17:0'" in errors[0]
    assert "unknown person 'zed'" in errors[1]
    assert "malformed duration '2hours'" in errors[2]


def test_json_lists_every_problem(tmp_path: Path) -> None:
    text = edit("after: 30m", "after: 15x").replace("country: DE", "country: XX")
    path = write(tmp_path, text)
    result = validate(path, "--json")
    assert result.exit_code == 1
    problems = json.loads(result.stdout)
    assert problems == [
        {
            "file": str(path),
            "line": 14,
            "col": 16,
            "message": "unknown holiday country 'XX'",
            "severity": "error",
        },
        {
            "file": str(path),
            "line": 55,
            "col": 16,
            "message": problems[1]["message"],
            "severity": "error",
        },
    ]
    assert problems[1]["message"].startswith("malformed duration '15x'")


def test_json_for_a_valid_policy_is_an_empty_list(tmp_path: Path) -> None:
    result = validate(write(tmp_path, BASE), "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == []


def test_several_files_at_once(tmp_path: Path) -> None:
    good = write(tmp_path, BASE, "good.yaml")
    bad1 = write(tmp_path, edit("sla: standard", "sla: gold"), "bad1.yaml")
    bad2 = write(tmp_path, edit("version: 1", "version: 3"), "bad2.yaml")
    result = validate(good, bad1, bad2, "--json")
    assert result.exit_code == 1
    found = [(p["file"], p["line"], p["col"]) for p in json.loads(result.stdout)]
    assert found == [(str(bad1), 37, 10), (str(bad2), 1, 10)]

    text = validate(good, bad1, bad2)
    assert error_lines(text.output, good) == []
    assert error_lines(text.output, bad1)[0].startswith(f"{bad1}:37:10: unknown SLA policy 'gold'")
    assert error_lines(text.output, bad2)[0].startswith(f"{bad2}:1:10: unsupported policy version")


def test_several_valid_files_exit_zero(tmp_path: Path) -> None:
    result = validate(write(tmp_path, BASE, "a.yaml"), write(tmp_path, BASE, "b.yaml"))
    assert result.exit_code == 0, result.output
    assert "2 policy file(s) valid" in result.output


def test_acme_policy_is_valid() -> None:
    result = validate(require_shared() / "acme" / "policy.yaml")
    assert result.exit_code == 0, result.output
    assert "1 policy file(s) valid" in result.output


def test_missing_file_is_a_clean_error(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    result = validate(path)
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    errors = error_lines(result.output, path)
    assert len(errors) == 1
    assert errors[0].startswith(f"{path}:1:1: cannot read file")


def test_empty_file(tmp_path: Path) -> None:
    path = write(tmp_path, "# nothing yet\n")
    result = validate(path)
    assert result.exit_code == 1
    assert error_lines(result.output, path) == [f"{path}:1:1: the policy is empty"]


def test_policy_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "- people\n- teams\n")
    result = validate(path)
    assert result.exit_code == 1
    errors = error_lines(result.output, path)
    assert errors == [f"{path}:1:1: a policy must be a mapping of sections, not a list"]


def test_unclosed_quote_points_at_the_quote(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + 'reasons_note: "abc\n')
    result = validate(path)
    assert result.exit_code == 1
    errors = error_lines(result.output, path)
    assert len(errors) == 1
    assert errors[0].startswith(
        f"{path}:67:15: YAML syntax error: this quoted scalar is not closed"
    )


def test_warning_does_not_fail(tmp_path: Path) -> None:
    """A schedule with no fallback is a warning, shown at the level that pages it."""
    text = edit("notify: [person:alice]", "notify: [schedule:primary]") + (
        "\nschedules:\n"
        "  - id: primary\n"
        "    layers:\n"
        "      - members: [alice, bob]\n"
        "        shift: 1w\n"
        '        start: "2026-01-05T09:00:00+01:00"\n'
    )
    path = write(tmp_path, text)
    result = validate(path, "--json")
    assert result.exit_code == 0, result.output
    (problem,) = json.loads(result.stdout)
    assert problem["severity"] == "warning"
    assert (problem["line"], problem["col"]) == (56, 17)
    assert "schedule 'primary' with no fallback" in problem["message"]


@pytest.mark.parametrize(
    ("old", "new", "line", "col", "words"),
    [
        pytest.param("shift: 1w", "shift: 0h", 74, 16, ["shift '0h' is zero"], id="zero-shift"),
        pytest.param("members: [alice, bob]\n        shift", "members: [alice, zed]\n        shift",
                     73, 26, ["unknown person 'zed'", "schedule 'primary'"], id="layer-member"),
        pytest.param("members: [alice, bob]\n        shift", "members: []\n        shift",
                     73, 18, ["a layer needs at least one member"], id="layer-empty"),
        pytest.param('start: "2026-01-05T09:00:00+01:00"', 'start: "2026-01-05 09:00"', 75, 16,
                     ["has no UTC offset"], id="layer-start"),
        pytest.param("who: bob}", "who: zed}", 77, 83, ["unknown person 'zed' in override"],
                     id="override-who"),
        pytest.param('to: "2026-02-02T00:00:00+01:00"', 'to: "2026-01-02T00:00:00+01:00"', 77, 49,
                     ["'to' must be later than 'from'"], id="override-order"),
        pytest.param("members: [alice, bob]\n\n", "schedule: primry\n\n", 32, 15,
                     ["unknown schedule 'primry'", "did you mean 'primary'"], id="team-schedule"),
    ],
)  # fmt: skip
def test_schedule_errors(
    tmp_path: Path, old: str, new: str, line: int, col: int, words: list[str]
) -> None:
    text = BASE + (
        "\nschedules:\n"
        "  - id: primary\n"
        "    timezone: Europe/Berlin\n"
        "    layers:\n"
        "      - name: weekly\n"
        "        members: [alice, bob]\n"
        "        shift: 1w\n"
        '        start: "2026-01-05T09:00:00+01:00"\n'
        "    overrides:\n"
        '      - {from: "2026-02-01T00:00:00+01:00", to: "2026-02-02T00:00:00+01:00", who: bob}\n'
        "    fallback: person:alice\n"
    )
    assert validate(write(tmp_path, text, "ok.yaml")).exit_code == 0
    assert text.count(old) == 1
    path = write(tmp_path, text.replace(old, new))
    result = validate(path)
    assert result.exit_code == 1
    errors = error_lines(result.output, path)
    assert len(errors) == 1, "\n".join(errors)
    assert errors[0].startswith(f"{path}:{line}:{col}: "), errors[0]
    for word in words:
        assert word in errors[0], errors[0]
