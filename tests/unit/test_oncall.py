"""On-call resolution: rotations across DST, restrictions, overrides, shifts() and iCal export."""

from __future__ import annotations

from bisect import bisect_right
from datetime import timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from icalendar import Calendar

from rungs.schedules.ical import to_ical
from rungs.schedules.oncall import (
    Layer,
    OnCall,
    Override,
    Schedule,
    Shift,
    layer_error,
    on_call,
    shifts,
)
from rungs.time.hours import Hours, parse_hours
from rungs.time.instant import (
    DAY,
    EPOCH,
    HOUR,
    MINUTE,
    SECOND,
    format_local,
    format_utc,
    from_us,
    parse_instant,
)

BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"
KOLKATA = "Asia/Kolkata"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")


def u(text: str) -> int:
    """An instant (µs) from ISO 8601 text with an offset."""
    return parse_instant(text)


def table(found: list[Shift]) -> list[tuple[str, str, str, str]]:
    """Shifts as readable UTC rows, so expectations can be written out literally."""
    return [(format_utc(s.start), format_utc(s.end), s.person, s.source) for s in found]


def who(schedule: Schedule, at: str) -> tuple[tuple[str, ...], str | None]:
    answer = on_call(schedule, u(at))
    return answer.people, answer.source


def single(layer: Layer, overrides: tuple[Override, ...] = ()) -> Schedule:
    return Schedule("s", layer.timezone, (layer,), overrides)


def office(hours: str = "09:00-17:00") -> Hours | None:
    return parse_hours({d: hours for d in WEEKDAYS})


# --- calendar rotations keep their wall-clock handoff across DST ----------------------------


WEEKLY = Layer("weekly", ("ann", "bob"), "1w", u("2026-03-23T09:00:00+01:00"), BERLIN)


def test_weekly_berlin_handoff_across_spring_forward() -> None:
    found = shifts(single(WEEKLY), u("2026-03-23T00:00:00Z"), u("2026-04-07T00:00:00Z"))
    assert table(found) == [
        ("2026-03-23T00:00:00Z", "2026-03-23T08:00:00Z", "bob", "weekly"),
        ("2026-03-23T08:00:00Z", "2026-03-30T07:00:00Z", "ann", "weekly"),
        ("2026-03-30T07:00:00Z", "2026-04-06T07:00:00Z", "bob", "weekly"),
        ("2026-04-06T07:00:00Z", "2026-04-07T00:00:00Z", "ann", "weekly"),
    ]


def test_weekly_berlin_handoff_across_fall_back() -> None:
    found = shifts(single(WEEKLY), u("2026-10-12T00:00:00Z"), u("2026-11-03T00:00:00Z"))
    assert table(found) == [
        ("2026-10-12T00:00:00Z", "2026-10-12T07:00:00Z", "ann", "weekly"),
        ("2026-10-12T07:00:00Z", "2026-10-19T07:00:00Z", "bob", "weekly"),
        ("2026-10-19T07:00:00Z", "2026-10-26T08:00:00Z", "ann", "weekly"),
        ("2026-10-26T08:00:00Z", "2026-11-02T08:00:00Z", "bob", "weekly"),
        ("2026-11-02T08:00:00Z", "2026-11-03T00:00:00Z", "ann", "weekly"),
    ]
    assert who(single(WEEKLY), "2026-10-26T07:59:59Z") == (("ann",), "weekly")
    assert who(single(WEEKLY), "2026-10-26T08:00:00Z") == (("bob",), "weekly")


def test_weekly_handoffs_all_year_are_monday_0900_berlin() -> None:
    found = shifts(single(WEEKLY), u("2026-01-01T00:00:00Z"), u("2027-01-01T00:00:00Z"))
    starts = [format_local(s.start, ZoneInfo(BERLIN)) for s in found[1:]]
    assert len(starts) == 52
    assert {s[11:] for s in starts} == {"09:00:00+01:00", "09:00:00+02:00"}
    assert all(
        (parse_instant(s) - u("2026-01-05T09:00:00+01:00")) % (7 * DAY) in (0, 7 * DAY - HOUR)
        for s in starts
    )
    assert starts[0] == "2026-01-05T09:00:00+01:00"
    assert starts[12] == "2026-03-30T09:00:00+02:00"
    assert starts[-1] == "2026-12-28T09:00:00+01:00"
    # 2026-01-05 is 11 weeks before start: shift -11 is bob's, the one before it ann's
    assert [s.person for s in found[:4]] == ["ann", "bob", "ann", "bob"]


DAILY_NY = Layer("daily", ("a", "b", "c"), "1d", u("2026-03-05T09:00:00-05:00"), NEW_YORK)


def test_daily_new_york_across_spring_forward() -> None:
    found = shifts(single(DAILY_NY), u("2026-03-07T00:00:00Z"), u("2026-03-10T00:00:00Z"))
    assert table(found) == [
        ("2026-03-07T00:00:00Z", "2026-03-07T14:00:00Z", "b", "daily"),
        ("2026-03-07T14:00:00Z", "2026-03-08T13:00:00Z", "c", "daily"),
        ("2026-03-08T13:00:00Z", "2026-03-09T13:00:00Z", "a", "daily"),
        ("2026-03-09T13:00:00Z", "2026-03-10T00:00:00Z", "b", "daily"),
    ]


def test_daily_new_york_across_fall_back() -> None:
    found = shifts(single(DAILY_NY), u("2026-10-31T00:00:00Z"), u("2026-11-03T00:00:00Z"))
    assert table(found) == [
        ("2026-10-31T00:00:00Z", "2026-10-31T13:00:00Z", "c", "daily"),
        ("2026-10-31T13:00:00Z", "2026-11-01T14:00:00Z", "a", "daily"),
        ("2026-11-01T14:00:00Z", "2026-11-02T14:00:00Z", "b", "daily"),
        ("2026-11-02T14:00:00Z", "2026-11-03T00:00:00Z", "c", "daily"),
    ]


def test_twelve_hour_rotation_is_elapsed_time_across_dst() -> None:
    layer = Layer("12h", ("a", "b"), "12h", u("2026-03-28T20:00:00+01:00"), BERLIN)
    found = shifts(single(layer), u("2026-03-28T19:00:00Z"), u("2026-03-30T19:00:00Z"))
    assert table(found) == [
        ("2026-03-28T19:00:00Z", "2026-03-29T07:00:00Z", "a", "12h"),
        ("2026-03-29T07:00:00Z", "2026-03-29T19:00:00Z", "b", "12h"),
        ("2026-03-29T19:00:00Z", "2026-03-30T07:00:00Z", "a", "12h"),
        ("2026-03-30T07:00:00Z", "2026-03-30T19:00:00Z", "b", "12h"),
    ]
    local = [format_local(s.start, ZoneInfo(BERLIN)) for s in found]
    assert local == [
        "2026-03-28T20:00:00+01:00",
        "2026-03-29T09:00:00+02:00",  # was 08:00 before the change: the wall time moved
        "2026-03-29T21:00:00+02:00",
        "2026-03-30T09:00:00+02:00",
    ]


def test_nonexistent_handoff_time_uses_fold_0() -> None:
    """02:30 does not exist on 2026-03-29 in Berlin: read with +01:00, i.e. 03:30 CEST."""
    layer = Layer("night", ("a", "b", "c"), "1d", u("2026-03-27T02:30:00+01:00"), BERLIN)
    found = shifts(single(layer), u("2026-03-28T00:00:00Z"), u("2026-03-31T00:00:00Z"))
    assert table(found) == [
        ("2026-03-28T00:00:00Z", "2026-03-28T01:30:00Z", "a", "night"),
        ("2026-03-28T01:30:00Z", "2026-03-29T01:30:00Z", "b", "night"),
        ("2026-03-29T01:30:00Z", "2026-03-30T00:30:00Z", "c", "night"),
        ("2026-03-30T00:30:00Z", "2026-03-31T00:00:00Z", "a", "night"),
    ]


def test_ambiguous_handoff_time_uses_first_occurrence() -> None:
    layer = Layer("night", ("a", "b", "c"), "1d", u("2026-10-23T02:30:00+02:00"), BERLIN)
    found = shifts(single(layer), u("2026-10-24T00:00:00Z"), u("2026-10-27T00:00:00Z"))
    assert table(found) == [
        ("2026-10-24T00:00:00Z", "2026-10-24T00:30:00Z", "a", "night"),
        ("2026-10-24T00:30:00Z", "2026-10-25T00:30:00Z", "b", "night"),
        ("2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z", "c", "night"),  # 02:30 CEST, not CET
        ("2026-10-26T01:30:00Z", "2026-10-27T00:00:00Z", "a", "night"),
    ]


# --- before start: the rotation runs backwards too ------------------------------------------


@pytest.mark.parametrize(
    ("shift", "step"),
    [("12h", 12 * HOUR), ("1w", 7 * DAY)],
)
def test_instants_before_start_use_negative_shift_index(shift: str, step: int) -> None:
    start = u("2026-12-07T08:00:00Z")  # no DST change within three weeks before
    layer = Layer("r", ("a", "b", "c"), shift, start, BERLIN)
    s = single(layer)
    assert on_call(s, start) == OnCall(("a",), "r")
    assert on_call(s, start - 1) == OnCall(("c",), "r")
    assert on_call(s, start - step) == OnCall(("c",), "r")
    assert on_call(s, start - step - 1) == OnCall(("b",), "r")
    assert on_call(s, start - 3 * step) == OnCall(("a",), "r")
    assert on_call(s, start - 3 * step - 1) == OnCall(("c",), "r")


def test_weekly_before_start_across_fall_back() -> None:
    layer = Layer("weekly", ("dave", "carol"), "1w", u("2026-11-02T09:00:00+01:00"), BERLIN)
    found = shifts(single(layer), u("2026-10-15T00:00:00Z"), u("2026-11-03T00:00:00Z"))
    assert table(found) == [
        ("2026-10-15T00:00:00Z", "2026-10-19T07:00:00Z", "carol", "weekly"),
        ("2026-10-19T07:00:00Z", "2026-10-26T08:00:00Z", "dave", "weekly"),
        ("2026-10-26T08:00:00Z", "2026-11-02T08:00:00Z", "carol", "weekly"),
        ("2026-11-02T08:00:00Z", "2026-11-03T00:00:00Z", "dave", "weekly"),
    ]


# --- restrictions and layering --------------------------------------------------------------


def follow_the_sun() -> Schedule:
    start = u("2026-01-05T00:00:00Z")
    return Schedule(
        "sun",
        "UTC",
        (
            Layer("india", ("ira",), "1d", start, KOLKATA, office()),
            Layer("berlin", ("bea",), "1d", start, BERLIN, office()),
            Layer("newyork", ("ned",), "1d", start, NEW_YORK, office()),
        ),
    )


def test_follow_the_sun_in_winter() -> None:
    found = shifts(follow_the_sun(), u("2026-11-04T00:00:00Z"), u("2026-11-05T00:00:00Z"))
    assert table(found) == [
        ("2026-11-04T03:30:00Z", "2026-11-04T08:00:00Z", "ira", "india"),
        ("2026-11-04T08:00:00Z", "2026-11-04T14:00:00Z", "bea", "berlin"),
        ("2026-11-04T14:00:00Z", "2026-11-04T22:00:00Z", "ned", "newyork"),
    ]


def test_follow_the_sun_in_summer() -> None:
    found = shifts(follow_the_sun(), u("2026-07-01T00:00:00Z"), u("2026-07-02T00:00:00Z"))
    assert table(found) == [
        ("2026-07-01T03:30:00Z", "2026-07-01T07:00:00Z", "ira", "india"),
        ("2026-07-01T07:00:00Z", "2026-07-01T13:00:00Z", "bea", "berlin"),
        ("2026-07-01T13:00:00Z", "2026-07-01T21:00:00Z", "ned", "newyork"),
    ]


def test_gap_is_nobody_with_no_source() -> None:
    s = follow_the_sun()
    assert on_call(s, u("2026-11-04T23:00:00Z")) == OnCall((), None)
    assert on_call(s, u("2026-11-04T03:29:59Z")) == OnCall((), None)
    assert on_call(s, u("2026-11-04T03:30:00Z")) == OnCall(("ira",), "india")
    assert on_call(s, u("2026-11-07T12:00:00Z")) == OnCall((), None)  # Saturday
    assert shifts(s, u("2026-11-07T00:00:00Z"), u("2026-11-09T00:00:00Z")) == []


def test_lower_layer_shows_through_outside_restriction() -> None:
    s = Schedule(
        "net",
        BERLIN,
        (
            Layer("weekly", ("dave", "carol"), "1w", u("2026-11-02T09:00:00+01:00"), BERLIN),
            Layer(
                "office-india",
                ("alice",),
                "1d",
                u("2026-11-02T10:00:00+05:30"),
                KOLKATA,
                parse_hours({d: "10:00-18:00" for d in WEEKDAYS}),
            ),
        ),
        (Override(u("2026-11-25T18:00:00+01:00"), u("2026-11-26T09:00:00+01:00"), "erin"),),
        "person:frank",
    )
    found = shifts(s, u("2026-11-23T08:00:00Z"), u("2026-11-30T08:00:00Z"))
    assert table(found) == [
        ("2026-11-23T08:00:00Z", "2026-11-23T12:30:00Z", "alice", "office-india"),
        ("2026-11-23T12:30:00Z", "2026-11-24T04:30:00Z", "carol", "weekly"),
        ("2026-11-24T04:30:00Z", "2026-11-24T12:30:00Z", "alice", "office-india"),
        ("2026-11-24T12:30:00Z", "2026-11-25T04:30:00Z", "carol", "weekly"),
        ("2026-11-25T04:30:00Z", "2026-11-25T12:30:00Z", "alice", "office-india"),
        ("2026-11-25T12:30:00Z", "2026-11-25T17:00:00Z", "carol", "weekly"),
        ("2026-11-25T17:00:00Z", "2026-11-26T08:00:00Z", "erin", "override"),
        ("2026-11-26T08:00:00Z", "2026-11-26T12:30:00Z", "alice", "office-india"),
        ("2026-11-26T12:30:00Z", "2026-11-27T04:30:00Z", "carol", "weekly"),
        ("2026-11-27T04:30:00Z", "2026-11-27T12:30:00Z", "alice", "office-india"),
        ("2026-11-27T12:30:00Z", "2026-11-30T04:30:00Z", "carol", "weekly"),
        ("2026-11-30T04:30:00Z", "2026-11-30T08:00:00Z", "alice", "office-india"),
    ]
    for shift in found:
        assert on_call(s, shift.start) == OnCall((shift.person,), shift.source)
        assert on_call(s, shift.end - 1) == OnCall((shift.person,), shift.source)


def test_overnight_restriction_runs_into_next_day_and_wraps_the_week() -> None:
    hours = parse_hours({"fri": "22:00-06:00", "sun": "20:00-08:00"})
    layer = Layer("nights", ("n",), "1d", u("2026-01-01T00:00:00Z"), NEW_YORK, hours)
    s = single(layer)
    assert who(s, "2026-11-06T21:59:59-05:00") == ((), None)
    assert who(s, "2026-11-06T22:00:00-05:00") == (("n",), "nights")
    assert who(s, "2026-11-07T05:59:59-05:00") == (("n",), "nights")
    assert who(s, "2026-11-07T06:00:00-05:00") == ((), None)
    assert who(s, "2026-11-09T07:59:00-05:00") == (("n",), "nights")  # Monday morning
    assert who(s, "2026-11-09T08:00:00-05:00") == ((), None)
    found = shifts(s, u("2026-11-06T00:00:00-05:00"), u("2026-11-10T00:00:00-05:00"))
    assert table(found) == [
        ("2026-11-07T03:00:00Z", "2026-11-07T11:00:00Z", "n", "nights"),
        ("2026-11-09T01:00:00Z", "2026-11-09T13:00:00Z", "n", "nights"),
    ]


def test_restriction_follows_the_wall_clock_through_a_repeated_hour() -> None:
    """01:00-02:00 happens twice on 2026-11-01 in New York; a span ending 01:30 ends twice."""
    layer = Layer("early", ("e",), "1w", u("2026-01-01T00:00:00Z"), NEW_YORK)
    layer = Layer(**{**layer.__dict__, "restrict": parse_hours({"sun": "00:00-01:30"})})
    found = shifts(single(layer), u("2026-10-31T12:00:00Z"), u("2026-11-02T00:00:00Z"))
    assert table(found) == [
        ("2026-11-01T04:00:00Z", "2026-11-01T05:30:00Z", "e", "early"),
        ("2026-11-01T06:00:00Z", "2026-11-01T06:30:00Z", "e", "early"),
    ]


def test_restriction_starting_in_a_skipped_hour_starts_at_the_jump() -> None:
    hours = parse_hours({"sun": "02:30-04:00"})
    layer = Layer("early", ("e",), "1w", u("2026-01-01T00:00:00Z"), NEW_YORK, hours)
    found = shifts(single(layer), u("2026-03-07T12:00:00Z"), u("2026-03-09T00:00:00Z"))
    assert table(found) == [("2026-03-08T07:00:00Z", "2026-03-08T08:00:00Z", "e", "early")]
    assert who(single(layer), "2026-03-08T06:59:59Z") == ((), None)


# --- overrides ------------------------------------------------------------------------------


def test_override_inside_a_shift_and_one_spanning_a_handoff() -> None:
    s = single(
        WEEKLY,
        (
            Override(u("2026-04-08T12:00:00Z"), u("2026-04-08T14:00:00Z"), "olga"),
            Override(u("2026-04-13T05:00:00Z"), u("2026-04-13T10:00:00Z"), "otto"),
        ),
    )
    found = shifts(s, u("2026-04-08T00:00:00Z"), u("2026-04-14T00:00:00Z"))
    assert table(found) == [
        ("2026-04-08T00:00:00Z", "2026-04-08T12:00:00Z", "ann", "weekly"),
        ("2026-04-08T12:00:00Z", "2026-04-08T14:00:00Z", "olga", "override"),
        ("2026-04-08T14:00:00Z", "2026-04-13T05:00:00Z", "ann", "weekly"),
        ("2026-04-13T05:00:00Z", "2026-04-13T10:00:00Z", "otto", "override"),
        ("2026-04-13T10:00:00Z", "2026-04-14T00:00:00Z", "bob", "weekly"),
    ]
    assert who(s, "2026-04-08T13:59:59Z") == (("olga",), "override")
    assert who(s, "2026-04-08T14:00:00Z") == (("ann",), "weekly")


def test_overlapping_overrides_later_listed_wins() -> None:
    day = "2026-04-08T"
    s = single(
        WEEKLY,
        (
            Override(u(day + "10:00:00Z"), u(day + "14:00:00Z"), "x"),
            Override(u(day + "12:00:00Z"), u(day + "16:00:00Z"), "y"),
            Override(u(day + "11:00:00Z"), u(day + "12:30:00Z"), "z"),
            Override(u(day + "15:00:00Z"), u(day + "15:30:00Z"), "hidden"),  # listed after y: wins
            Override(u(day + "18:00:00Z"), u(day + "19:00:00Z"), "inner"),
            Override(u(day + "17:00:00Z"), u(day + "20:00:00Z"), "outer"),
        ),
    )
    assert who(s, day + "10:59:59Z") == (("x",), "override")
    assert who(s, day + "11:00:00Z") == (("z",), "override")
    assert who(s, day + "12:29:59Z") == (("z",), "override")
    assert who(s, day + "12:30:00Z") == (("y",), "override")
    assert who(s, day + "15:10:00Z") == (("hidden",), "override")
    assert who(s, day + "18:30:00Z") == (("outer",), "override")
    found = shifts(s, u(day + "09:00:00Z"), u(day + "21:00:00Z"))
    assert table(found) == [
        (day + "09:00:00Z", day + "10:00:00Z", "ann", "weekly"),
        (day + "10:00:00Z", day + "11:00:00Z", "x", "override"),
        (day + "11:00:00Z", day + "12:30:00Z", "z", "override"),
        (day + "12:30:00Z", day + "15:00:00Z", "y", "override"),
        (day + "15:00:00Z", day + "15:30:00Z", "hidden", "override"),
        (day + "15:30:00Z", day + "16:00:00Z", "y", "override"),
        (day + "16:00:00Z", day + "17:00:00Z", "ann", "weekly"),
        (day + "17:00:00Z", day + "20:00:00Z", "outer", "override"),
        (day + "20:00:00Z", day + "21:00:00Z", "ann", "weekly"),
    ]


def test_later_override_inside_earlier_splits_it() -> None:
    day = "2026-04-08T"
    s = single(
        WEEKLY,
        (
            Override(u(day + "10:00:00Z"), u(day + "16:00:00Z"), "x"),
            Override(u(day + "12:00:00Z"), u(day + "13:00:00Z"), "y"),
            Override(u(day + "16:00:00Z"), u(day + "17:00:00Z"), "x"),  # adjacent: merges
            Override(u(day + "18:00:00Z"), u(day + "18:00:00Z"), "empty"),
        ),
    )
    found = shifts(s, u(day + "10:00:00Z"), u(day + "18:30:00Z"))
    assert table(found) == [
        (day + "10:00:00Z", day + "12:00:00Z", "x", "override"),
        (day + "12:00:00Z", day + "13:00:00Z", "y", "override"),
        (day + "13:00:00Z", day + "17:00:00Z", "x", "override"),
        (day + "17:00:00Z", day + "18:30:00Z", "ann", "weekly"),
    ]


def test_override_by_the_layers_own_person_keeps_its_source() -> None:
    day = "2026-04-08T"
    s = single(WEEKLY, (Override(u(day + "10:00:00Z"), u(day + "11:00:00Z"), "ann"),))
    found = shifts(s, u(day + "09:00:00Z"), u(day + "12:00:00Z"))
    assert [(s.person, s.source) for s in found] == [
        ("ann", "weekly"),
        ("ann", "override"),
        ("ann", "weekly"),
    ]


# --- shifts() shape -------------------------------------------------------------------------


def test_shifts_over_a_week_are_contiguous_clipped_and_agree_with_on_call() -> None:
    s = Schedule(
        "mix",
        BERLIN,
        (
            WEEKLY,
            Layer("office", ("o1", "o2"), "1d", u("2026-01-05T09:00:00+01:00"), BERLIN, office()),
        ),
        (Override(u("2026-04-09T20:00:00Z"), u("2026-04-10T02:00:00Z"), "ovr"),),
    )
    a, b = u("2026-04-06T10:30:00Z"), u("2026-04-13T16:00:00Z")
    found = shifts(s, a, b)
    assert found[0].start == a
    assert found[-1].end == b
    assert all(x.end == y.start for x, y in pairwise(found))
    assert [(f.person, f.source) for f in found] == [
        ("o2", "office"),  # Monday 2026-04-06 is 91 days after 2026-01-05: odd index
        ("ann", "weekly"),
        ("o1", "office"),
        ("ann", "weekly"),
        ("o2", "office"),
        ("ann", "weekly"),
        ("o1", "office"),
        ("ann", "weekly"),
        ("ovr", "override"),
        ("ann", "weekly"),
        ("o2", "office"),
        ("ann", "weekly"),
        ("o1", "office"),  # the weekly handoff to bob at 07:00Z is hidden under the office
        ("bob", "weekly"),
    ]
    assert format_utc(found[-3].end) == "2026-04-13T07:00:00Z"
    assert format_utc(found[-1].start) == "2026-04-13T15:00:00Z"
    for f in found:
        assert on_call(s, f.start) == OnCall((f.person,), f.source)
        assert on_call(s, (f.start + f.end) // 2) == OnCall((f.person,), f.source)


def test_empty_and_reversed_ranges() -> None:
    s = single(WEEKLY)
    assert shifts(s, u("2026-04-08T00:00:00Z"), u("2026-04-08T00:00:00Z")) == []
    assert shifts(s, u("2026-04-09T00:00:00Z"), u("2026-04-08T00:00:00Z")) == []
    assert table(shifts(s, u("2026-04-08T00:00:00Z"), u("2026-04-08T00:00:00Z") + 1)) == [
        ("2026-04-08T00:00:00Z", "2026-04-08T00:00:00Z", "ann", "weekly")
    ]


# --- validation -----------------------------------------------------------------------------


def test_layer_error() -> None:
    good = WEEKLY
    assert layer_error(good) is None
    assert layer_error(Layer("l", ("a",), "1h30m", 0, "UTC")) is None
    bad_shift = layer_error(Layer("l", ("a",), "1x", 0, "UTC"))
    assert bad_shift is not None and "malformed duration '1x'" in bad_shift
    assert layer_error(Layer("l", ("a",), "0h", 0, "UTC")) == (
        "shift '0h' is zero (write e.g. '1w', '1d' or '12h')"
    )
    assert layer_error(Layer("l", (), "1d", 0, "UTC")) == "a layer needs at least one member"
    assert layer_error(Layer("l", ("a",), "1d", 0, "Mars/Olympus")) == (
        "unknown time zone 'Mars/Olympus'"
    )
    with pytest.raises(ValueError, match="layer 'l': a layer needs at least one member"):
        on_call(single(Layer("l", (), "1d", 0, "UTC")), 0)


def test_compiled_tables_belong_to_the_instance() -> None:
    a = Schedule("same", "UTC", (Layer("l", ("a",), "1d", 0, "UTC"),))
    b = Schedule("same", "UTC", (Layer("l", ("b",), "1d", 0, "UTC"),))
    assert on_call(a, 5) == OnCall(("a",), "l")
    assert on_call(b, 5) == OnCall(("b",), "l")
    assert on_call(a, 5) == OnCall(("a",), "l")


# --- iCalendar ------------------------------------------------------------------------------


def test_ical_round_trip_lists_the_same_shifts() -> None:
    s = follow_the_sun()
    found = shifts(s, u("2026-11-04T00:00:00Z"), u("2026-11-06T00:00:00Z"))
    cal = Calendar.from_ical(to_ical(s, found))
    assert str(cal["VERSION"]) == "2.0"
    assert "rungs" in str(cal["PRODID"])
    assert str(cal["X-WR-CALNAME"]) == "On call: sun"
    events = list(cal.walk("VEVENT"))
    rows = [
        (
            str(e["UID"]),
            e["DTSTART"].dt.isoformat(),
            e["DTEND"].dt.isoformat(),
            str(e["SUMMARY"]),
            str(e["DESCRIPTION"]),
        )
        for e in events
    ]
    assert len(rows) == 6
    assert rows[:3] == [
        (
            f"sun-{u('2026-11-04T03:30:00Z')}-ira@rungs",
            "2026-11-04T03:30:00+00:00",
            "2026-11-04T08:00:00+00:00",
            "On call: ira (sun)",
            "Source: layer india",
        ),
        (
            f"sun-{u('2026-11-04T08:00:00Z')}-bea@rungs",
            "2026-11-04T08:00:00+00:00",
            "2026-11-04T14:00:00+00:00",
            "On call: bea (sun)",
            "Source: layer berlin",
        ),
        (
            f"sun-{u('2026-11-04T14:00:00Z')}-ned@rungs",
            "2026-11-04T14:00:00+00:00",
            "2026-11-04T22:00:00+00:00",
            "On call: ned (sun)",
            "Source: layer newyork",
        ),
    ]
    assert [
        (parse_instant(start), parse_instant(end), summary.split()[2])
        for _, start, end, summary, _ in rows
    ] == [(f.start, f.end, f.person) for f in found]
    assert all(e["DTSTART"].dt.utcoffset() == timedelta(0) for e in events)


def test_ical_filtered_to_one_person_and_named() -> None:
    s = single(WEEKLY, (Override(u("2026-04-08T12:00:00Z"), u("2026-04-08T14:00:00Z"), "olga"),))
    found = shifts(s, u("2026-04-01T00:00:00Z"), u("2026-04-22T00:00:00Z"))
    data = to_ical(s, found, person="olga", name="Olga's pager")
    cal = Calendar.from_ical(data)
    assert str(cal["X-WR-CALNAME"]) == "Olga's pager"
    events = list(cal.walk("VEVENT"))
    assert [(e["DTSTART"].dt, e["DTEND"].dt, str(e["DESCRIPTION"])) for e in events] == [
        (
            from_us(u("2026-04-08T12:00:00Z")),
            from_us(u("2026-04-08T14:00:00Z")),
            "Source: override",
        )
    ]
    bob = list(Calendar.from_ical(to_ical(s, found, person="bob")).walk("VEVENT"))
    assert [str(e["SUMMARY"]) for e in bob] == ["On call: bob (s)"] * 2
    assert to_ical(s, found) == to_ical(s, found)  # no clock: the same input, the same bytes


# --- properties -----------------------------------------------------------------------------

ZONES = [BERLIN, NEW_YORK, KOLKATA, "Australia/Lord_Howe", "Pacific/Chatham", "UTC"]
BASE = u("2026-01-01T00:00:00Z")
YEAR = 365 * DAY


@st.composite
def layers(draw: st.DrawFn, name: str) -> Layer:
    restrict = None
    if draw(st.booleans()):
        restrict = {}
        for day in draw(st.sets(st.integers(0, 6), max_size=7)):
            s = draw(st.integers(0, 95)) * 15
            e = s + draw(st.integers(1, 96)) * 15
            restrict[day] = ((s, e),)
    return Layer(
        name,
        tuple(draw(st.lists(st.sampled_from("abcd"), min_size=1, max_size=3))),
        draw(st.sampled_from(["1d", "1w", "2d", "12h", "8h", "1h30m", "1w2d"])),
        BASE + draw(st.integers(0, YEAR // SECOND)) * SECOND,
        draw(st.sampled_from(ZONES)),
        restrict,
    )


@st.composite
def schedules(draw: st.DrawFn) -> tuple[Schedule, int, int]:
    a = BASE + draw(st.integers(0, YEAR // MINUTE)) * MINUTE
    b = a + draw(st.integers(1, 10 * DAY // MINUTE)) * MINUTE
    n = draw(st.integers(0, 3))
    overrides = tuple(
        Override(start, start + draw(st.integers(0, 2 * DAY)), draw(st.sampled_from("xyz")))
        for start in draw(st.lists(st.integers(a - DAY, b), max_size=4))
    )
    layer_list = tuple(draw(layers(f"L{i}")) for i in range(n))
    return Schedule("p", "UTC", layer_list, overrides), a, b


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedules(), st.data())
def test_property_shifts_agree_with_on_call(case: tuple[Schedule, int, int], data: st.DataObject):
    s, a, b = case
    found = shifts(s, a, b)
    for x, y in pairwise(found):
        assert a <= x.start < x.end <= y.start < y.end <= b
        assert not (x.end == y.start and (x.person, x.source) == (y.person, y.source))
    starts = [f.start for f in found]
    edges = [t for f in found for t in (f.start, f.end - 1, f.end)]
    probes = data.draw(st.lists(st.integers(a, b - 1), min_size=1, max_size=20))
    for t in probes + [t for t in edges if a <= t < b]:
        answer = on_call(s, t)
        i = bisect_right(starts, t) - 1
        covering = found[i] if i >= 0 and t < found[i].end else None
        if answer.people:
            assert covering is not None
            assert (covering.person, covering.source) == (answer.people[0], answer.source)
        else:
            assert answer.source is None
            assert covering is None


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedules(), st.data())
def test_property_shifts_split_anywhere_rejoin(case: tuple[Schedule, int, int], data):
    s, a, b = case
    m = data.draw(st.integers(a, b))
    joined = shifts(s, a, m) + shifts(s, m, b)
    merged: list[Shift] = []
    for f in joined:
        last = merged[-1] if merged else None
        if last and last.end == f.start and (last.person, last.source) == (f.person, f.source):
            merged[-1] = Shift(last.start, f.end, f.person, f.source)
        else:
            merged.append(f)
    assert merged == shifts(s, a, b)


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(ZONES),
    st.integers(0, YEAR // MINUTE),
    st.sampled_from([1, 2, 7]),
    st.integers(-400, 400),
)
def test_property_calendar_handoffs_keep_wall_time(zone: str, start_min: int, days: int, k: int):
    """A d/w handoff lands on start's local time k*days later, unless that time is skipped."""
    tz = ZoneInfo(zone)
    start = BASE + start_min * MINUTE
    layer = Layer("r", ("a", "b", "c"), f"{days}d", start, zone)
    s = single(layer)
    local0 = from_us(start, tz)
    want = (local0 + timedelta(days=k * days)).replace(fold=0)
    want_us = int((want - EPOCH) / timedelta(microseconds=1))
    round_trip = want.astimezone(tz).replace(tzinfo=None) == want.replace(tzinfo=None)
    if k == 0:
        want_us = start
    found = shifts(s, want_us - HOUR, want_us + HOUR)
    handoffs = [f.start for f in found[1:]]
    assert handoffs == [want_us]
    assert on_call(s, want_us) == OnCall((("a", "b", "c")[k % 3],), "r")
    if round_trip and k:
        assert from_us(want_us, tz).time() == local0.time()
