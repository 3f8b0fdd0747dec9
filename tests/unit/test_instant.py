"""Instants as text: the timeline's UTC format agrees with the datetime library's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from rungs.time.instant import format_utc, parse_instant, to_us


@given(st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31)))
def test_format_utc_is_strftime(dt: datetime) -> None:
    aware = dt.replace(tzinfo=UTC)
    assert format_utc(to_us(aware)) == aware.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_format_utc_drops_the_sub_second_part_towards_the_past() -> None:
    t = parse_instant("2026-03-29T00:59:59.999999Z")
    assert format_utc(t) == "2026-03-29T00:59:59Z"
    assert format_utc(t + 1) == "2026-03-29T01:00:00Z"
    before_epoch = to_us(datetime(1969, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC))
    assert format_utc(before_epoch) == "1969-12-31T23:59:59Z"
    assert format_utc(to_us(datetime(2028, 2, 29, tzinfo=UTC) + timedelta(hours=23))) == (
        "2028-02-29T23:00:00Z"
    )
