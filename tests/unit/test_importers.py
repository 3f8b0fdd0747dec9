"""The importers' pure translation: each vendor's hand-worked fixture, layer precedence,
delays as each vendor means them, the shift check, and located shape errors."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from rungs.importers import DumpError, Imported, import_dump
from rungs.importers.common import Slugs, restrict_of, slug
from rungs.importers.shiftcheck import people_at, rungs_pieces
from rungs.policy import load_policy_text
from rungs.time.instant import parse_instant
from tests.conftest import ROOT

FIXTURES = ROOT / "tests" / "fixtures" / "importers"
SINCE = parse_instant("2026-12-07T00:00:00+01:00")
VENDORS = {
    "pagerduty": "pagerduty.json",
    "opsgenie": "opsgenie.json",
    "goalert": "goalert.json",
    "grafana-oncall": "grafana_oncall.json",
}


def dump(vendor: str) -> dict[str, Any]:
    return json.loads((FIXTURES / VENDORS[vendor]).read_text("utf-8"))


def run(vendor: str, data: dict[str, Any] | None = None) -> Imported:
    return import_dump(vendor, dump(vendor) if data is None else data, SINCE)


@pytest.mark.parametrize("vendor", VENDORS)
def test_each_fixture_imports_validates_and_matches_its_final_schedule(vendor: str) -> None:
    result = run(vendor)
    assert [p for p in result.problems if p.severity == "error"] == []
    assert result.differences == []
    assert result.draft.finals, "every fixture holds the vendor's final schedule"
    assert result.ok
    policy, _ = load_policy_text(result.text)
    assert policy is not None
    for final in result.draft.finals:  # the comparison covers the whole span, hand-worked
        assert final.end - final.start >= 3 * 86400 * 1_000_000
        assert rungs_pieces(policy, final)


def test_slugs_are_readable_and_unique() -> None:
    assert slug("Primary On-call") == "primary-on-call"
    assert slug("Équipe Réseau / Nuit") == "equipe-reseau-nuit"
    assert slug("!!!", "schedule") == "schedule"
    s = Slugs()
    assert [s.new("schedules", n, "x") for n in ("Primary", "primary", "PRIMARY")] == [
        "primary",
        "primary-2",
        "primary-3",
    ]
    assert s.new("matrices", "Primary", "x") == "primary"  # per section


def test_weekly_windows_become_restrictions_split_at_midnight() -> None:
    assert restrict_of([(d * 1440, 1440) for d in range(7)]) is None  # all week
    assert restrict_of([]) == {}
    # Friday 18:00 for 2 days 15 hours: to Monday 09:00
    assert restrict_of([(4 * 1440 + 18 * 60, 63 * 60)]) == {
        "mon": "00:00-09:00",
        "fri": "18:00-24:00",
        "sat": "00:00-24:00",
        "sun": "00:00-24:00",
    }
    # Sunday 22:00 past the week's end into Monday
    assert restrict_of([(6 * 1440 + 22 * 60, 4 * 60)]) == {
        "mon": "00:00-02:00",
        "sun": "22:00-24:00",
    }


def _layers(result: Imported, schedule: str) -> list[str]:
    return [la.name for la in next(s for s in result.draft.schedules if s.id == schedule).layers]


def test_pagerduty_lists_layers_highest_first() -> None:
    result = run("pagerduty")
    # GET lists "Business hours" first: it is the top layer, so Rungs lists it last
    assert _layers(result, "primary-on-call") == ["Weekly", "Business hours"]
    swapped = dump("pagerduty")
    layers = swapped["schedules"][0]["schedule_layers"]
    layers[0], layers[1] = layers[1], layers[0]  # claim the weekly layer is on top
    wrong = run("pagerduty", swapped)
    assert wrong.differences, "the hand-worked final schedule has business hours on top"
    assert "carol-diaz" in wrong.differences[0] and "Rungs has bob-ortiz" in wrong.differences[0]


def test_grafana_higher_level_wins() -> None:
    result = run("grafana-oncall")
    assert _layers(result, "sre-web") == ["Weekly base", "Business hours"]
    swapped = dump("grafana-oncall")
    shifts = swapped["on_call_shifts"]["results"]
    shifts[0]["level"], shifts[1]["level"] = 1, 0
    assert run("grafana-oncall", swapped).differences


def test_goalert_unions_its_rules_as_parallel_schedules() -> None:
    result = run("goalert")
    final = result.draft.finals[0]
    assert final.schedule_ids == ["primary", "primary-2"]
    policy, _ = load_policy_text(result.text)
    assert policy is not None
    noon = parse_instant("2026-12-09T12:30:00+01:00")
    assert people_at(rungs_pieces(policy, final), noon) == {"carol-diaz", "frank-osei"}
    level1 = result.draft.matrices[0].levels[0]
    assert level1.notify == ["schedule:primary", "schedule:primary-2"]


def test_goalert_replace_override_applies_only_where_the_removed_user_is_on_call() -> None:
    result = run("goalert")
    primary = next(s for s in result.draft.schedules if s.id == "primary")
    replaced = [o for o in primary.overrides if o.source.startswith("o1")]
    # asked for 08:00-12:00 local; carol is on call from 09:00 (bob keeps 08:00-09:00)
    assert [(o.start, o.end, o.who) for o in replaced] == [
        (
            parse_instant("2026-12-09T09:00:00+01:00"),
            parse_instant("2026-12-09T12:00:00+01:00"),
            "erin-shah",
        )
    ]


def test_opsgenie_rotations_that_overlap_are_paged_together() -> None:
    data = dump("opsgenie")
    rotations = data["schedules"]["data"][0]["rotations"]
    del rotations[0]["timeRestriction"]  # Day now overlaps Night every night
    data.pop("timelines")
    result = run("opsgenie", data)
    ids = [s.id for s in result.draft.schedules]
    assert ids == ["ops-schedule", "ops-schedule-2"]
    assert result.draft.matrices[0].levels[0].notify == [f"schedule:{i}" for i in ids]
    assert any("several people on call at once" in u.why for u in result.draft.untranslated)


@pytest.mark.parametrize(
    ("vendor", "afters"),
    [
        ("pagerduty", [0, 15, 35]),  # incremental: 15, then 20 more
        ("opsgenie", [0, 10, 60]),  # cumulative from the alert's creation
        ("goalert", [0, 10, 25]),  # incremental
        ("grafana-oncall", [0, 10, 25]),  # wait steps of 10m and 15m
    ],
)
def test_escalation_delays_as_each_vendor_means_them(vendor: str, afters: list[int]) -> None:
    matrix = run(vendor).draft.matrices[0]
    assert [lv.after for lv in matrix.levels] == afters


def test_repeats_and_conditions() -> None:
    pd = run("pagerduty").draft.matrices[0]
    assert pd.repeat == (65, 2)  # the last rule again a whole cycle later
    og = run("opsgenie").draft.matrices[0]
    assert og.repeat == (70, 2)  # 60m to the last rule + 10m wait
    assert [lv.unless for lv in og.levels] == ["acknowledged", "acknowledged", "resolved"]


def test_people_keyed_by_email_with_their_rules() -> None:
    people = {p.id: p for p in run("pagerduty").draft.people}
    alice = people["alice-ng"]
    assert alice.contacts == {"sms": "+4915100000001"} and alice.email == "alice@example.com"
    assert alice.notify == [(0, "email"), (5, "sms")]
    assert people["bob-ortiz"].notify == [(0, "email"), (10, "voice")]
    data = dump("pagerduty")
    twin = copy.deepcopy(data["users"]["users"][0])
    twin["id"], twin["name"] = "PTWIN99", "Alice N."
    data["users"]["users"].append(twin)
    result = run("pagerduty", data)
    assert [p.id for p in result.draft.people].count("alice-ng") == 1
    assert any(u.name == "Alice N." and "merged" in u.why for u in result.draft.untranslated)


UNSUPPORTED = {
    "pagerduty": [
        "Alice Ng: iPhone",
        "Alice Ng: PNR0003",
        "Empty Team",
        "Primary On-call: Old rotation",
        "Primary Escalation step 3",
        "Checkout API",
        "Checkout API: Support mailbox",
    ],
    "opsgenie": [
        "Alice Ng: mobile",
        "Alice Ng: Acknowledged Alert",
        "Ops_escalation step 2",
        "Support email",
    ],
    "goalert": [
        "Alice Ng: Slack",
        "o2000000-0000-4000-8000-000000000002",
        "Primary EP step 3",
        "Web app: Deploy hook",
    ],
    "grafana-oncall": [
        "alice: notify_by_sms",
        "SRE web: Holiday cover",
        "Default SRE step 5",
        "Alertmanager prod: severity=critical",
        "Deploy webhook",
    ],
}


@pytest.mark.parametrize("vendor", VENDORS)
def test_what_cannot_be_translated_is_named(vendor: str) -> None:
    names = {u.name for u in run(vendor).draft.untranslated}
    assert set(UNSUPPORTED[vendor]) <= names


def test_a_changed_final_schedule_fails_the_check_at_that_shift() -> None:
    data = dump("pagerduty")
    entry = data["schedules"][0]["final_schedule"]["rendered_schedule_entries"][3]
    entry["user"]["id"] = "PALICE1"  # Tuesday 09:00-17:00 was Dave's
    found = run("pagerduty", data).differences
    assert found == [
        "schedule 'Primary On-call' 2026-12-08T08:00:00Z..2026-12-08T16:00:00Z: "
        "the vendor has alice-ng, Rungs has dave-kim"
    ]


@pytest.mark.parametrize(
    ("vendor", "change", "path"),
    [
        (
            "pagerduty",
            lambda d: d["schedules"][0]["schedule_layers"][1].update(
                rotation_turn_length_seconds="a week"
            ),
            "$.schedules[0].schedule_layers[1].rotation_turn_length_seconds",
        ),
        (
            "pagerduty",
            lambda d: d["schedules"][0]["schedule_layers"][0].update(
                rotation_turn_length_seconds=0
            ),
            "$.schedules[0].schedule_layers[0].rotation_turn_length_seconds",
        ),
        (
            "opsgenie",
            lambda d: d["overrides"]["d875alp4-9b4e-4219-alp3-0c26936d18de"]["data"][0].pop(
                "endDate"
            ),
            "$.overrides.d875alp4-9b4e-4219-alp3-0c26936d18de.data[0]",
        ),
        (
            "opsgenie",
            lambda d: d["schedules"]["data"][0]["rotations"][1].update(type="fortnightly"),
            "$.schedules.data[0].rotations[1]",
        ),
        (
            "goalert",
            lambda d: d["schedules"]["data"]["schedules"]["nodes"][0]["targets"][0]["rules"][
                0
            ].update(weekdayFilter=[True]),
            "$.schedules.data.schedules.nodes[0].targets[0].rules[0].weekdayFilter",
        ),
        (
            "grafana-oncall",
            lambda d: d.update(users="everyone"),
            "$.users",
        ),
    ],
)
def test_a_wrong_shape_names_its_json_path(vendor: str, change: Any, path: str) -> None:
    data = dump(vendor)
    change(data)
    with pytest.raises(DumpError) as info:
        run(vendor, data)
    assert info.value.path == path


def test_a_dump_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(DumpError, match="one JSON object"):
        import_dump("pagerduty", [], SINCE)
    assert not import_dump("pagerduty", {}, SINCE).draft.usable()


def test_pagerduty_daily_restriction_applies_every_day() -> None:
    data = dump("pagerduty")
    layer = data["schedules"][0]["schedule_layers"][0]
    layer["restrictions"] = [
        {"type": "daily_restriction", "start_time_of_day": "22:00:00", "duration_seconds": 28800}
    ]
    data["schedules"][0].pop("final_schedule")
    result = run("pagerduty", data)
    restrict = next(la for la in result.draft.schedules[0].layers if la.name == "Business hours")
    assert restrict.restrict == {
        day: "00:00-06:00,22:00-24:00" for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    }


def test_opsgenie_override_of_one_rotation_is_cut_to_its_hours() -> None:
    data = dump("opsgenie")
    (override,) = data["overrides"]["d875alp4-9b4e-4219-alp3-0c26936d18de"]["data"]
    override["rotations"] = [{"id": "rot-night", "name": "Night"}]
    data.pop("timelines")
    sched = run("opsgenie", data).draft.schedules[0]
    # 12:00-20:00 local asked for the Night rotation only: it is on call from 18:00
    assert [(o.start, o.end, o.who) for o in sched.overrides] == [
        (
            parse_instant("2026-12-08T18:00:00+01:00"),
            parse_instant("2026-12-08T20:00:00+01:00"),
            "erin-shah",
        )
    ]
