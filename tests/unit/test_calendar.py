"""Business-time arithmetic: exact instants for known cases, hypothesis properties for the rest."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rungs.time.calendar import (
    WALL_CLOCK,
    Calendar,
    UnknownCountryError,
    add,
    check_holidays,
    elapsed,
    next_open,
)
from rungs.time.hours import parse_hours
from rungs.time.instant import DAY, HOUR, MINUTE, NaiveDatetimeError, from_us, to_us

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
KOLKATA = ZoneInfo("Asia/Kolkata")
H = timedelta(hours=1)

NINE_TO_FIVE = {d: ((9 * 60, 17 * 60),) for d in range(5)}
EVERY_DAY_NINE_TO_FIVE = {d: ((9 * 60, 17 * 60),) for d in range(7)}
EVERY_NIGHT = {d: ((22 * 60, 30 * 60),) for d in range(7)}

ACME = Calendar(
    id="acme",
    timezone="Europe/Berlin",
    hours=NINE_TO_FIVE,
    holiday_country="DE",
    holiday_subdivision="BE",
    holiday_dates=frozenset({date(2026, 12, 24), date(2026, 12, 31)}),
)
NIGHTS_WEEKDAYS = Calendar(
    id="nights",
    timezone="Europe/Berlin",
    hours=parse_hours({k: "22:00-06:00" for k in ("mon", "tue", "wed", "thu", "fri")}),
    holiday_country="DE",
)
LUNCH_NY = Calendar(
    id="lunch-ny",
    timezone="America/New_York",
    hours=parse_hours({k: "09:00-12:00,13:00-17:00" for k in ("mon", "tue", "wed", "thu", "fri")}),
    holiday_country="US",
    holiday_subdivision="NY",
)
ALWAYS_BERLIN = Calendar(id="24x7-berlin", timezone="Europe/Berlin", hours=None)


def at(tz: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=tz)  # type: ignore[misc]


def us(tz: ZoneInfo, *args: int) -> int:
    return to_us(at(tz, *args))


# -- known cases -------------------------------------------------------------------------------


def test_start_outside_hours_friday_afternoon_rolls_to_monday() -> None:
    result = add(at(BERLIN, 2026, 11, 20, 16), 4 * H, ACME)
    assert result == at(BERLIN, 2026, 11, 23, 12)
    assert result.tzinfo == BERLIN


def test_start_before_opening_counts_from_opening() -> None:
    assert add(at(BERLIN, 2026, 11, 23, 6), 2 * H, ACME) == at(BERLIN, 2026, 11, 23, 11)


def test_add_lands_at_closing_time_not_next_opening() -> None:
    assert add(at(BERLIN, 2026, 11, 23, 16), H, ACME) == at(BERLIN, 2026, 11, 23, 17)


def test_add_zero_returns_start_even_when_closed() -> None:
    start = at(BERLIN, 2026, 11, 21, 12)  # Saturday
    assert add(start, timedelta(0), ACME) == start


def test_start_on_holiday() -> None:
    # Fri 25th and Sat 26th are Christmas holidays, Sunday is closed: Monday 09:00 + 1h.
    assert add(at(BERLIN, 2026, 12, 25, 10), H, ACME) == at(BERLIN, 2026, 12, 28, 10)


def test_lunch_break_is_skipped() -> None:
    start = at(NEW_YORK, 2026, 6, 10, 11)
    assert add(start, 2 * H, LUNCH_NY) == at(NEW_YORK, 2026, 6, 10, 14)
    assert add(start, H, LUNCH_NY) == at(NEW_YORK, 2026, 6, 10, 12)
    assert elapsed(start, at(NEW_YORK, 2026, 6, 10, 14), LUNCH_NY) == 2 * H
    assert next_open(at(NEW_YORK, 2026, 6, 10, 12, 30), LUNCH_NY) == at(NEW_YORK, 2026, 6, 10, 13)


def test_overnight_span_across_weekend() -> None:
    # Fri 23:00-Sat 06:00 is 7h, nothing Sat/Sun night, Mon 22:00 + 3h = Tue 01:00.
    start = at(BERLIN, 2026, 11, 20, 23)
    assert add(start, 10 * H, NIGHTS_WEEKDAYS) == at(BERLIN, 2026, 11, 24, 1)
    assert add(start, 7 * H, NIGHTS_WEEKDAYS) == at(BERLIN, 2026, 11, 21, 6)
    assert next_open(at(BERLIN, 2026, 11, 21, 6), NIGHTS_WEEKDAYS) == at(BERLIN, 2026, 11, 23, 22)


def test_overnight_span_merges_with_next_morning() -> None:
    cal = Calendar("merge", "Europe/Berlin", {0: ((22 * 60, 30 * 60),), 1: ((6 * 60, 10 * 60),)})
    got = cal.open_intervals_us(us(BERLIN, 2026, 11, 23), us(BERLIN, 2026, 11, 25))
    assert got == [(us(BERLIN, 2026, 11, 23, 22), us(BERLIN, 2026, 11, 24, 10))]


def test_overnight_span_merges_across_year_end() -> None:
    cal = Calendar("nights", "Europe/Berlin", EVERY_NIGHT)
    got = cal.open_intervals_us(us(BERLIN, 2026, 12, 31, 12), us(BERLIN, 2027, 1, 1, 12))
    assert got == [(us(BERLIN, 2026, 12, 31, 22), us(BERLIN, 2027, 1, 1, 6))]
    assert cal.elapsed_us(us(BERLIN, 2026, 12, 31, 12), us(BERLIN, 2027, 1, 1, 12)) == 8 * HOUR


def test_holiday_cuts_overnight_spans_at_local_midnight() -> None:
    cal = Calendar(
        "nights", "Europe/Berlin", EVERY_NIGHT, holiday_dates=frozenset({date(2026, 6, 10)})
    )
    got = cal.open_intervals_us(us(BERLIN, 2026, 6, 9, 12), us(BERLIN, 2026, 6, 11, 12))
    assert got == [
        (us(BERLIN, 2026, 6, 9, 22), us(BERLIN, 2026, 6, 10)),
        (us(BERLIN, 2026, 6, 11), us(BERLIN, 2026, 6, 11, 6)),
    ]


@pytest.mark.parametrize(
    ("tz", "day"),
    [
        (BERLIN, (2026, 3, 29)),
        (BERLIN, (2026, 10, 25)),
        (NEW_YORK, (2026, 3, 8)),
        (NEW_YORK, (2026, 11, 1)),
    ],
)
def test_day_span_on_dst_days_is_eight_real_hours(tz: ZoneInfo, day: tuple[int, int, int]) -> None:
    cal = Calendar("days", tz.key, EVERY_DAY_NINE_TO_FIVE)
    nxt = date(*day) + timedelta(days=1)
    assert cal.elapsed_us(us(tz, *day), us(tz, nxt.year, nxt.month, nxt.day)) == 8 * HOUR
    assert add(at(tz, *day, 9), 8 * H, cal) == at(tz, *day, 17)
    assert add(at(tz, *day, 9), 9 * H, cal) == at(tz, nxt.year, nxt.month, nxt.day, 10)


@pytest.mark.parametrize(
    ("tz", "night", "real_hours", "offsets"),
    [
        (BERLIN, (2026, 3, 28), 7, (1, 2)),
        (BERLIN, (2026, 10, 24), 9, (2, 1)),
        (NEW_YORK, (2026, 3, 7), 7, (-5, -4)),
        (NEW_YORK, (2026, 10, 31), 9, (-4, -5)),
    ],
)
def test_overnight_span_on_dst_nights(
    tz: ZoneInfo, night: tuple[int, int, int], real_hours: int, offsets: tuple[int, int]
) -> None:
    cal = Calendar("nights", tz.key, EVERY_NIGHT)
    morning = date(*night) + timedelta(days=1)
    m = (morning.year, morning.month, morning.day)
    start, end = us(tz, *night, 22), us(tz, *m, 6)
    assert (end - start) == real_hours * HOUR
    assert at(tz, *night, 22).utcoffset() == timedelta(hours=offsets[0])
    assert at(tz, *m, 6).utcoffset() == timedelta(hours=offsets[1])
    assert cal.open_intervals_us(us(tz, *night, 12), us(tz, *m, 12)) == [(start, end)]
    assert add(at(tz, *night, 22), real_hours * H, cal) == at(tz, *m, 6)
    assert add(at(tz, *night, 22), (real_hours + 1) * H, cal) == at(tz, *m, 23)


def test_span_boundary_in_spring_forward_gap_uses_fold_zero() -> None:
    # 02:30 does not exist on 2026-03-29 in Berlin; fold=0 reads it as 03:30 CEST.
    cal = Calendar("gap", "Europe/Berlin", {d: ((150, 240),) for d in range(7)})
    got = cal.open_intervals_us(us(BERLIN, 2026, 3, 29), us(BERLIN, 2026, 3, 29, 12))
    assert got == [
        (to_us(datetime.fromisoformat("2026-03-29T03:30+02:00")), us(BERLIN, 2026, 3, 29, 4))
    ]
    # A span whose fold=0 start lands after its end that day is empty that day.
    empty = Calendar("gap2", "Europe/Berlin", {d: ((150, 195),) for d in range(7)})
    assert empty.open_intervals_us(us(BERLIN, 2026, 3, 29), us(BERLIN, 2026, 3, 29, 12)) == []
    assert empty.elapsed_us(us(BERLIN, 2026, 3, 30), us(BERLIN, 2026, 3, 30, 12)) == 45 * MINUTE


def test_zone_without_dst() -> None:
    cal = Calendar("in", "Asia/Kolkata", {d: ((9 * 60 + 30, 18 * 60),) for d in range(5)})
    assert add(at(KOLKATA, 2026, 3, 27, 17), 2 * H, cal) == at(KOLKATA, 2026, 3, 30, 10, 30)
    result = add(at(KOLKATA, 2026, 10, 23, 9, 30), 8 * H + 30 * timedelta(minutes=1), cal)
    assert result == at(KOLKATA, 2026, 10, 23, 18)
    assert result.utcoffset() == timedelta(hours=5, minutes=30)


def test_24x7_across_dst_is_plain_addition() -> None:
    start = at(BERLIN, 2026, 3, 29)
    result = add(start, 24 * H, ALWAYS_BERLIN)
    assert result == datetime.fromisoformat("2026-03-30T01:00+02:00")
    assert result.tzinfo == BERLIN
    assert elapsed(start, at(BERLIN, 2026, 3, 30), ALWAYS_BERLIN) == 23 * H
    assert elapsed(at(BERLIN, 2026, 10, 25), at(BERLIN, 2026, 10, 26), ALWAYS_BERLIN) == 25 * H
    assert ALWAYS_BERLIN.closures_us(us(BERLIN, 2026, 3, 29), us(BERLIN, 2026, 3, 30)) == []


def test_wall_clock_calendar() -> None:
    assert WALL_CLOCK.id == "wall-clock"
    assert WALL_CLOCK.hours is None
    assert WALL_CLOCK.tz == ZoneInfo("UTC")
    start = at(NEW_YORK, 2026, 11, 1)
    result = add(start, 30 * timedelta(days=1), WALL_CLOCK)
    # Exact instant addition (aware `+` in New York would be wall-clock and gain an hour).
    assert result == start.astimezone(UTC) + timedelta(days=30)
    assert result == at(NEW_YORK, 2026, 11, 30, 23)
    assert result.utcoffset() == timedelta(0)
    assert WALL_CLOCK.add_us(123, 456) == 579
    assert WALL_CLOCK.next_open_us(7) == 7
    assert WALL_CLOCK.is_open_us(7)


def test_24x7_hours_still_close_on_holidays() -> None:
    cal = Calendar("24x7-hol", "Europe/Berlin", None, holiday_dates=frozenset({date(2026, 6, 10)}))
    assert add(at(BERLIN, 2026, 6, 9, 23), 2 * H, cal) == at(BERLIN, 2026, 6, 11, 1)
    assert not cal.is_open_us(us(BERLIN, 2026, 6, 10, 12))


def test_explicit_holiday_dates() -> None:
    cal = Calendar(
        "co", "Europe/Berlin", NINE_TO_FIVE, holiday_dates=frozenset({date(2026, 6, 10)})
    )
    assert add(at(BERLIN, 2026, 6, 9, 16), 2 * H, cal) == at(BERLIN, 2026, 6, 11, 10)
    assert cal.holiday_name(date(2026, 6, 10)) == "company holiday"
    assert cal.holiday_name(date(2026, 6, 11)) is None


def test_holiday_dates_accept_any_iterable() -> None:
    cal = Calendar("co", "UTC", NINE_TO_FIVE, holiday_dates={date(2026, 6, 10)})  # type: ignore[arg-type]
    assert cal.holiday_dates == frozenset({date(2026, 6, 10)})


def test_holidays_across_year_end() -> None:
    # Wed 16:00 + 2h: Thu 31st (company), Fri 1st (Neujahr), weekend, Monday 10:00.
    assert add(at(BERLIN, 2026, 12, 30, 16), 2 * H, ACME) == at(BERLIN, 2027, 1, 4, 10)
    assert elapsed(at(BERLIN, 2026, 12, 30, 16), at(BERLIN, 2027, 1, 4, 10), ACME) == 2 * H


def test_acme_known_case_with_excluded_stretch() -> None:
    counted = add(at(BERLIN, 2026, 12, 23, 15), 4 * H, ACME)
    assert counted == at(BERLIN, 2026, 12, 28, 11)
    assert add(at(BERLIN, 2026, 12, 30, 10), 76 * H, ACME) == at(BERLIN, 2027, 1, 14, 14)


def test_elapsed_across_years_matches_day_count() -> None:
    table = holidays.country_holidays("DE", subdiv="BE", years=range(2025, 2029))
    day, business_days = date(2025, 1, 1), 0
    while day < date(2029, 1, 1):
        if day.weekday() < 5 and day not in table and day not in ACME.holiday_dates:
            business_days += 1
        day += timedelta(days=1)
    a, b = at(BERLIN, 2025, 1, 1), at(BERLIN, 2029, 1, 1)
    assert elapsed(a, b, ACME) == business_days * 8 * H
    assert elapsed(b, a, ACME) == -business_days * 8 * H
    assert add(a, business_days * 8 * H, ACME) == at(BERLIN, 2028, 12, 29, 17)


def test_negative_duration_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        add(at(BERLIN, 2026, 1, 5, 9), -H, ACME)
    with pytest.raises(ValueError, match="negative"):
        ACME.add_us(0, -1)
    with pytest.raises(ValueError, match="negative"):
        WALL_CLOCK.add_us(0, -1)


def test_naive_datetimes_are_refused() -> None:
    naive = datetime(2026, 1, 5, 9)
    aware = at(BERLIN, 2026, 1, 5, 9)
    with pytest.raises(NaiveDatetimeError):
        add(naive, H, ACME)
    with pytest.raises(NaiveDatetimeError):
        elapsed(naive, aware, ACME)
    with pytest.raises(NaiveDatetimeError):
        elapsed(aware, naive, ACME)
    with pytest.raises(NaiveDatetimeError):
        next_open(naive, ACME)


def test_next_open() -> None:
    assert next_open(at(BERLIN, 2026, 12, 25, 10), ACME) == at(BERLIN, 2026, 12, 28, 9)
    assert next_open(at(BERLIN, 2026, 11, 21, 12), ACME) == at(BERLIN, 2026, 11, 23, 9)
    inside = at(BERLIN, 2026, 11, 23, 12, 34, 56, 789)
    assert next_open(inside, ACME) == inside
    assert next_open(at(BERLIN, 2026, 11, 23, 17), ACME) == at(BERLIN, 2026, 11, 24, 9)
    assert next_open(at(BERLIN, 2026, 12, 31, 9), ACME) == at(BERLIN, 2027, 1, 4, 9)


def test_intervals_are_half_open() -> None:
    assert ACME.is_open_us(us(BERLIN, 2026, 11, 23, 9))
    assert not ACME.is_open_us(us(BERLIN, 2026, 11, 23, 17))
    assert ACME.is_open_us(us(BERLIN, 2026, 11, 23, 17) - 1)
    assert not ACME.is_open_us(us(BERLIN, 2026, 11, 23, 9) - 1)
    assert not ACME.is_open_us(us(BERLIN, 2026, 12, 25, 12))


def test_open_intervals_clip_to_range() -> None:
    got = ACME.open_intervals_us(us(BERLIN, 2026, 11, 20, 12), us(BERLIN, 2026, 11, 23, 10))
    assert got == [
        (us(BERLIN, 2026, 11, 20, 12), us(BERLIN, 2026, 11, 20, 17)),
        (us(BERLIN, 2026, 11, 23, 9), us(BERLIN, 2026, 11, 23, 10)),
    ]
    assert ACME.open_intervals_us(5, 5) == []


def test_closures_give_holiday_and_closed_hours_reasons() -> None:
    got = ACME.closures_us(us(BERLIN, 2026, 12, 23), us(BERLIN, 2026, 12, 29))
    by_start = {s: (e, reason) for s, e, reason in got}
    assert by_start[us(BERLIN, 2026, 12, 23)] == (us(BERLIN, 2026, 12, 23, 9), "closed hours")
    assert by_start[us(BERLIN, 2026, 12, 23, 17)] == (us(BERLIN, 2026, 12, 24), "closed hours")
    assert by_start[us(BERLIN, 2026, 12, 24)] == (
        us(BERLIN, 2026, 12, 25),
        "holiday: company holiday (2026-12-24)",
    )
    end, reason = by_start[us(BERLIN, 2026, 12, 25)]
    assert end == us(BERLIN, 2026, 12, 26)
    assert reason.startswith("holiday: ")
    assert "(2026-12-25)" in reason
    assert "company holiday" not in reason
    assert by_start[us(BERLIN, 2026, 12, 27)] == (us(BERLIN, 2026, 12, 28, 9), "closed hours")
    assert by_start[us(BERLIN, 2026, 12, 28, 17)] == (us(BERLIN, 2026, 12, 29), "closed hours")
    # Closures and open intervals tile the range exactly.
    pieces = sorted([(s, e) for s, e, _ in got] + ACME.open_intervals_us(got[0][0], got[-1][1]))
    assert all(p[1] == q[0] for p, q in itertools.pairwise(pieces))


def test_holiday_name_from_package() -> None:
    name = ACME.holiday_name(date(2026, 12, 25))
    assert name is not None
    assert name != "company holiday"
    assert ACME.holiday_name(date(2026, 12, 24)) == "company holiday"
    assert ACME.holiday_name(date(2026, 12, 22)) is None


def test_check_holidays_and_unknown_country() -> None:
    assert check_holidays("DE", "BE") is None
    assert check_holidays("DE", None) is None
    assert check_holidays("XX", None) == "unknown holiday country 'XX'"
    assert check_holidays("DE", "ZZ") == "unknown subdivision 'ZZ' of country 'DE'"
    with pytest.raises(UnknownCountryError, match="'XX'"):
        Calendar("bad", "UTC", NINE_TO_FIVE, holiday_country="XX")
    with pytest.raises(ValueError, match="ZZ"):
        Calendar("bad", "UTC", NINE_TO_FIVE, holiday_country="DE", holiday_subdivision="ZZ")


def test_unknown_time_zone_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="Mars/Olympus"):
        Calendar("bad", "Mars/Olympus", NINE_TO_FIVE)


def test_calendar_without_hours_is_never_open() -> None:
    cal = Calendar("shut", "UTC", {})
    assert cal.elapsed_us(0, DAY) == 0
    assert not cal.is_open_us(0)
    with pytest.raises(ValueError, match="no business hours"):
        cal.add_us(0, 1)


def test_calendars_compare_by_identity() -> None:
    twin = Calendar("acme", "Europe/Berlin", NINE_TO_FIVE, "DE", "BE", ACME.holiday_dates)
    assert twin != ACME
    assert len({twin, ACME}) == 2


# -- properties --------------------------------------------------------------------------------

NIGHTS_ALL_WEEK_HOL = Calendar(
    "nights-hol", "Europe/Berlin", EVERY_NIGHT, holiday_dates=frozenset({date(2026, 12, 31)})
)
CALENDARS = [ACME, NIGHTS_WEEKDAYS, LUNCH_NY, ALWAYS_BERLIN, NIGHTS_ALL_WEEK_HOL, WALL_CLOCK]
PROPS = settings(max_examples=200, deadline=None)

instants = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.timezones()
)
durations = st.one_of(
    st.integers(min_value=0, max_value=30 * DAY),
    st.integers(min_value=0, max_value=30 * 24 * 4).map(lambda q: q * 15 * MINUTE),
)
calendars = st.sampled_from(CALENDARS)


@PROPS
@given(calendars, instants, durations)
def test_prop_elapsed_inverts_add(cal: Calendar, a: datetime, d: int) -> None:
    assert elapsed(a, add(a, timedelta(microseconds=d), cal), cal) == timedelta(microseconds=d)


@PROPS
@given(calendars, instants, durations, durations)
def test_prop_add_is_monotonic(cal: Calendar, a: datetime, d1: int, d2: int) -> None:
    lo, hi = sorted((d1, d2))
    start = to_us(a)
    assert cal.add_us(start, lo) <= cal.add_us(start, hi)


@PROPS
@given(instants, durations)
def test_prop_24x7_is_plain_addition(a: datetime, d: int) -> None:
    # Compared as µs: PEP 495 makes inter-zone `==` False whenever a side is ambiguous.
    for cal in (ALWAYS_BERLIN, WALL_CLOCK):
        assert to_us(add(a, timedelta(microseconds=d), cal)) == to_us(a) + d


@PROPS
@given(calendars, instants, durations.filter(lambda d: d > 0))
def test_prop_add_is_earliest(cal: Calendar, a: datetime, d: int) -> None:
    start = to_us(a)
    end = cal.add_us(start, d)
    assert cal.elapsed_us(start, end) == d
    assert cal.elapsed_us(start, end - 1) < d
    assert cal.is_open_us(end - 1)


@PROPS
@given(calendars, instants, instants, instants)
def test_prop_elapsed_is_additive_and_antisymmetric(
    cal: Calendar, a: datetime, b: datetime, c: datetime
) -> None:
    ua, ub, uc = to_us(a), to_us(b), to_us(c)
    assert cal.elapsed_us(ua, uc) == cal.elapsed_us(ua, ub) + cal.elapsed_us(ub, uc)
    assert cal.elapsed_us(ub, ua) == -cal.elapsed_us(ua, ub)
    lo, hi = min(ua, ub), max(ua, ub)
    assert sum(e - s for s, e in cal.open_intervals_us(lo, hi)) == cal.elapsed_us(lo, hi)


@PROPS
@given(calendars, instants)
def test_prop_next_open(cal: Calendar, t: datetime) -> None:
    u = to_us(t)
    n = cal.next_open_us(u)
    assert n >= u
    assert cal.is_open_us(n)
    assert cal.elapsed_us(u, n) == 0
    assert (n == u) == cal.is_open_us(u)


def _oracle_open(cal: Calendar, u: int) -> bool:
    """Open by reading local wall-clock time directly (exact when no span edge is in a gap)."""
    local = from_us(u, cal.tz)
    assert cal.hours is not None
    minute = local.hour * 60 + local.minute
    today, yesterday = local.date(), local.date() - timedelta(days=1)
    if cal.holiday_name(today) is not None:
        return False
    spans_today = cal.hours.get(today.weekday(), ())
    spans_yesterday = cal.hours.get(yesterday.weekday(), ())
    return any(s <= minute < e for s, e in spans_today) or any(
        s <= minute + 1440 < e for s, e in spans_yesterday
    )


@PROPS
@given(
    st.sampled_from([ACME, NIGHTS_WEEKDAYS, LUNCH_NY, NIGHTS_ALL_WEEK_HOL]),
    st.integers(min_value=us(BERLIN, 2025, 1, 1), max_value=us(BERLIN, 2029, 1, 1)).map(
        lambda u: u - u % MINUTE
    ),
)
def test_prop_is_open_matches_wall_clock_oracle(cal: Calendar, u: int) -> None:
    assert cal.is_open_us(u) == _oracle_open(cal, u)
