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


def to_us(dt: datetime) -> int:
    """Microseconds since the Unix epoch of an aware datetime."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise NaiveDatetimeError(f"naive datetime {dt.isoformat()} has no time zone")
    return (dt - EPOCH) // _ONE_US


def from_us(us: int, tz: tzinfo = UTC) -> datetime:
    """The aware datetime of an instant, in `tz` (UTC by default)."""
    dt = EPOCH + timedelta(microseconds=us)
    return dt if tz is UTC else dt.astimezone(tz)


def parse_instant(text: str) -> int:
    """Parse ISO 8601 with an offset (or `Z`); a string without one is refused."""
    try:
        dt = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise ValueError(f"'{text}' is not an ISO 8601 instant") from exc
    if dt.tzinfo is None:
        raise NaiveDatetimeError(f"'{text}' has no UTC offset (write e.g. '{text}+01:00' or 'Z')")
    return to_us(dt)


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
