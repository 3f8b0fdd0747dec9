"""`rungs import` as people use it: each vendor's fixture is written, validates, and
`rungs oncall` on it names the people of the vendor's own final schedule at every shift
boundary; `--plan` writes nothing and names what cannot be translated; bad input is refused
with the file and where in it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from rungs.cli import app
from rungs.time.instant import format_utc, parse_instant
from tests.conftest import ROOT

FIXTURES = ROOT / "tests" / "fixtures" / "importers"
SINCE = "2026-12-07T00:00:00+01:00"
runner = CliRunner()


def _pd(d: dict[str, Any]) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    emails = {u["id"]: u["email"] for u in d["users"]["users"]}
    entries = d["schedules"][0]["final_schedule"]["rendered_schedule_entries"]
    return emails, [(e["start"], e["end"], e["user"]["id"]) for e in entries]


def _og(d: dict[str, Any]) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    emails = {u["id"]: u["username"] for u in d["users"]}
    (timeline,) = d["timelines"].values()
    rots = timeline["data"]["finalTimeline"]["rotations"]
    return emails, [
        (p["startDate"], p["endDate"], p["recipient"]["id"]) for r in rots for p in r["periods"]
    ]


def _ga(d: dict[str, Any]) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    emails = {u["id"]: u["email"] for u in d["users"]["data"]["users"]["nodes"]}
    shifts = d["schedules"]["data"]["schedules"]["nodes"][0]["shifts"]
    return emails, [(s["start"], s["end"], s["userID"]) for s in shifts]


def _gr(d: dict[str, Any]) -> tuple[dict[str, str], list[tuple[str, str, str]]]:
    emails = {u["id"]: u["email"] for u in d["users"]["results"]}
    (shifts,) = d["final_shifts"].values()
    return emails, [(s["shift_start"], s["shift_end"], s["user_pk"]) for s in shifts["results"]]


# vendor: (fixture, the Rungs schedules standing for its schedule, its final schedule)
CASES = {
    "pagerduty": ("pagerduty.json", ["primary-on-call"], _pd),
    "opsgenie": ("opsgenie.json", ["ops-schedule"], _og),
    "goalert": ("goalert.json", ["primary", "primary-2"], _ga),
    "grafana-oncall": ("grafana_oncall.json", ["sre-web"], _gr),
}


def _import(vendor: str, out: Path, *extra: str) -> Any:
    fixture = FIXTURES / CASES[vendor][0]
    args = ["import", vendor, "--input", str(fixture), "--since", SINCE]
    return runner.invoke(app, [*args, "--out", str(out), *extra])


def _at(policy: Path, schedule: str, at: str) -> set[str]:
    r = runner.invoke(app, ["oncall", str(policy), schedule, "--at", at, "--json"])
    assert r.exit_code == 0, r.output
    return set(json.loads(r.output)["on_call"])


@pytest.mark.parametrize("vendor", CASES)
def test_import_validates_and_oncall_agrees_at_every_boundary(vendor: str, tmp_path: Path) -> None:
    out = tmp_path / "policy.yaml"
    r = _import(vendor, out)
    assert r.exit_code == 0, r.output
    assert "shift check passed" in r.output and f"wrote {out}" in r.output
    v = runner.invoke(app, ["validate", str(out)])
    assert v.exit_code == 0, v.output
    text = out.read_text("utf-8")
    person_of = {
        p["contacts"]["email"]: p["id"] for p in yaml.safe_load(text)["people"]
    }  # keyed by e-mail
    fixture, schedules, final = CASES[vendor]
    emails, entries = final(json.loads((FIXTURES / fixture).read_text("utf-8")))
    for start, _, _ in entries:  # every boundary of the vendor's final schedule
        expected = {
            person_of[emails[who]] for a, b, who in entries if _utc(a) <= _utc(start) < _utc(b)
        }
        found = set().union(*(_at(out, s, start) for s in schedules))
        assert found == expected, (vendor, start)


def _utc(text: str) -> str:
    return format_utc(parse_instant(text))


def test_every_written_entry_names_its_source_id(tmp_path: Path) -> None:
    out = tmp_path / "pd.yaml"
    assert _import("pagerduty", out).exit_code == 0
    text = out.read_text("utf-8")
    for line in (
        '- id: "primary-on-call"  # PagerDuty schedule PSCHED1',
        '- id: "alice-ng"  # PagerDuty user PALICE1',
        '- id: "primary-escalation"  # PagerDuty escalation policy PEP0001',
        '- id: "checkout-api"  # PagerDuty integration PINT001',
        '- id: "platform-team"  # PagerDuty team PTEAM01',
    ):
        assert line in text


@pytest.mark.parametrize(
    ("vendor", "names"),
    [
        ("pagerduty", ["'Primary On-call: Old rotation'", "'Checkout API: Support mailbox'"]),
        ("opsgenie", ["'Ops_escalation step 2'", "'Support email'"]),
        ("goalert", ["'Web app: Deploy hook'", "'Primary EP step 3'"]),
        ("grafana-oncall", ["'SRE web: Holiday cover'", "'Default SRE step 5'"]),
    ],
)
def test_plan_writes_nothing_and_names_what_cannot_be_translated(
    vendor: str, names: list[str], tmp_path: Path
) -> None:
    out = tmp_path / "never.yaml"
    r = _import(vendor, out, "--plan")
    assert r.exit_code == 0, r.output
    assert not out.exists()
    assert "will create:" in r.output and "cannot be translated" in r.output
    assert "integrations to re-point" in r.output
    for name in names:
        assert name in r.output


def test_plan_fails_when_the_shift_check_differs(tmp_path: Path) -> None:
    data = json.loads((FIXTURES / "grafana_oncall.json").read_text("utf-8"))
    data["final_shifts"]["SBM7DV7BKFUYU"]["results"][1]["user_pk"] = "UDAVE04"
    dumped = tmp_path / "changed.json"
    dumped.write_text(json.dumps(data), "utf-8")
    args = ["import", "grafana-oncall", "--input", str(dumped), "--since", SINCE, "--plan"]
    r = runner.invoke(app, args)
    assert r.exit_code == 1
    assert "shift check FAILED" in r.output
    assert "2026-12-07T08:00:00Z..2026-12-07T16:00:00Z: the vendor has dave, Rungs has carol" in (
        r.output
    )
    out = tmp_path / "written.yaml"
    r = runner.invoke(app, [*args[:-1], "--out", str(out)])
    assert r.exit_code == 0 and out.exists()  # written anyway, with the same warning
    assert "shift check FAILED" in r.output


def _run_on(tmp_path: Path, content: str, vendor: str = "pagerduty") -> Any:
    f = tmp_path / "dump.json"
    f.write_text(content, "utf-8")
    return runner.invoke(app, ["import", vendor, "--input", str(f), "--plan"]), f


def test_bad_json_names_the_file_line_and_column(tmp_path: Path) -> None:
    r, f = _run_on(tmp_path, '{"users": [\n  {"id": 1,}\n]}')
    assert r.exit_code == 1
    assert f"{f}:2:12: not valid JSON" in r.output


def test_a_wrong_shape_names_the_file_and_json_path(tmp_path: Path) -> None:
    r, f = _run_on(tmp_path, json.dumps({"users": [{"id": "P1", "name": "Al"}]}))
    assert r.exit_code == 1
    assert f"{f}: $.users[0]: missing 'email'" in r.output
    # another vendor's dump read as Opsgenie: the first thing it needs, located
    pd = (FIXTURES / "pagerduty.json").read_text("utf-8")
    r, f = _run_on(tmp_path, pd, "opsgenie")
    assert r.exit_code == 1 and f"{f}: $.users.users[0]: missing 'username'" in r.output


def test_nothing_usable_is_an_error_and_writes_nothing(tmp_path: Path) -> None:
    r, f = _run_on(tmp_path, json.dumps({"incidents": []}))
    assert r.exit_code == 1 and "nothing usable for pagerduty" in r.output
    missing = tmp_path / "absent.json"
    r = runner.invoke(app, ["import", "goalert", "--input", str(missing), "--plan"])
    assert r.exit_code == 1 and f"cannot read {missing}" in r.output
    r = runner.invoke(app, ["import", "goalert", "--input", str(f)])
    assert r.exit_code == 1 and "give --out FILE" in r.output
