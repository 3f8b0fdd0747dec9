"""Instants and durations as integer microseconds.

The core works on integers so business-time arithmetic is exact and fast; datetimes appear
only at the edges. A naive datetime is always an error, never a guess.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache

__all__ = [
    "EPOCH",
    "SECOND",
    "MINUTE",
    "HOUR",
    "DAY",
    "WEEK",
    "NaiveDatetimeError",
    "to_us",
    "from_us",
    "parse_instant",
    "format_utc",
    "format_local",
    "parse_duration",
    "format_duration",
    "DurationError",
    "EARLIEST",
    "LATEST",
    "InstantRangeError",
    "range_error",
    "checked",
]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SECOND = 1_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
WEEK = 7 * DAY
_ONE_US = timedelta(microseconds=1)


class NaiveDatetimeError(ValueError):
    """A datetime without a time zone reached code that needs an instant."""


class DurationError(ValueError):
    """A duration string that does not parse."""


class InstantRangeError(ValueError):
    """An instant outside the years Rungs takes (see `EARLIEST`, `LATEST`)."""


def to_us(dt: datetime) -> int:
    """Microseconds since the Unix epoch of an aware datetime."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise NaiveDatetimeError(f"naive datetime {dt.isoformat()} has no time zone")
    return (dt - EPOCH) // _ONE_US


def from_us(us: int, tz: tzinfo = UTC) -> datetime:
    """The aware datetime of an instant, in `tz` (UTC by default)."""
    dt = EPOCH + timedelta(microseconds=us)
    return dt if tz is UTC else dt.astimezone(tz)


# The instants Rungs takes from outside (API, CLI, stories, policies): far from both ends of the
# calendar, so that a range of shifts, a local wall clock or a due time computed from any of
# them (days, zones, weeks of shifts) is a date too. `datetime` ends at years 1 and 9999.
EARLIEST = (datetime(1900, 1, 1, tzinfo=UTC) - EPOCH) // _ONE_US
LATEST = (datetime(9000, 1, 1, tzinfo=UTC) - EPOCH) // _ONE_US
_RANGE = "from 1900-01-01T00:00:00Z up to 9000-01-01T00:00:00Z"
_DATES = (
    (datetime.min.replace(tzinfo=UTC) - EPOCH) // _ONE_US,
    (datetime.max.replace(tzinfo=UTC) - EPOCH) // _ONE_US,
)


def range_error(us: int) -> str | None:
    """Why an instant is not one Rungs takes, or None when it is (in [EARLIEST, LATEST))."""
    if EARLIEST <= us < LATEST:
        return None
    return f"instants are taken {_RANGE}"


def checked(us: int) -> int:
    """`us` when it is an instant Rungs takes, else InstantRangeError saying which ones are."""
    why = range_error(us)
    if why is not None:
        shown = str(us)  # as a date, if it is one (isoformat: strftime's %Y is not 4 digits)
        if _DATES[0] <= us <= _DATES[1]:
            shown = from_us(us).replace(microsecond=0).isoformat().replace("+00:00", "Z")
        raise InstantRangeError(f"{shown}: {why}")
    return us


def parse_instant(text: str) -> int:
    """Parse ISO 8601 with an offset (or `Z`); a string without one, or an instant outside
    [EARLIEST, LATEST), is refused (a ValueError saying why)."""
    try:
        dt = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise ValueError(f"'{text}' is not an ISO 8601 instant") from exc
    if dt.tzinfo is None:
        raise NaiveDatetimeError(f"'{text}' has no UTC offset (write e.g. '{text}+01:00' or 'Z')")
    us = to_us(dt)
    why = range_error(us)
    if why is not None:
        raise InstantRangeError(f"'{text}' is out of range: {why}")
    return us


def format_utc(us: int) -> str:
    """`YYYY-MM-DDTHH:MM:SSZ`, the timeline's format (sub-second part dropped).

    By arithmetic, with the date of each day remembered: every answer and timeline formats
    several instants, and `strftime` on a datetime cost most of building a case's JSON.
    """
    days, second = divmod(us // SECOND, 86_400)
    hour, second = divmod(second, 3600)
    minute, second = divmod(second, 60)
    return f"{_utc_date(days)}T{hour:02d}:{minute:02d}:{second:02d}Z"


@lru_cache(maxsize=4096)
def _utc_date(days: int) -> str:
    return (EPOCH + timedelta(days=days)).strftime("%Y-%m-%d")


def format_local(us: int, tz: tzinfo) -> str:
    """ISO 8601 in `tz` with its offset, to the second."""
    return from_us(us, tz).replace(microsecond=0).isoformat()


_UNITS = {"w": WEEK, "d": DAY, "h": HOUR, "m": MINUTE, "s": SECOND}
_DURATION = re.compile(r"(?:(\d+)([wdhms]))+")
_PART = re.compile(r"(\d+)([wdhms])")


def parse_duration(text: str | int) -> int:
    """`30s`, `15m`, `4h`, `1d` (24 hours), `1w`, and sums such as `1h30m`, to microseconds."""
    if isinstance(text, bool) or not isinstance(text, str | int):
        raise DurationError(f"duration must be a string such as '15m', not {text!r}")
    if isinstance(text, int):
        if text == 0:
            return 0
        raise DurationError(f"duration {text} has no unit (write e.g. '{text}m')")
    s = text.strip().replace(" ", "")
    if not s or not _DURATION.fullmatch(s):
        raise DurationError(
            f"malformed duration '{text}' (use numbers with units w, d, h, m, s, e.g. '1h30m')"
        )
    return sum(int(n) * _UNITS[u] for n, u in _PART.findall(s))


def format_duration(us: int) -> str:
    """A duration for people, e.g. `1h30m`, whole seconds; `0s` below one second."""
    if us == 0:
        return "0s"
    sign = "-" if us < 0 else ""
    us = abs(us)
    parts = []
    units = (("d", DAY), ("h", HOUR), ("m", MINUTE), ("s", SECOND))
    if us % DAY:  # 80 business hours reads better than 3d8h
        units = units[1:]
    for unit, size in units:
        n, us = divmod(us, size)
        if n:
            parts.append(f"{n}{unit}")
    return sign + ("".join(parts) or "0s")  # display only: the sub-second rest is dropped
