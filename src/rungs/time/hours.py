"""Weekly business hours: the `hours` syntax shared by calendars and schedule restrictions.

`Hours` maps a weekday (0 = Monday .. 6 = Sunday) to its spans in minutes from local midnight.
A span whose end is before its start runs past midnight: `22:00-06:00` is `(1320, 1800)`.
`None` stands for 24x7.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from itertools import pairwise

__all__ = ["DAYS", "Hours", "HoursError", "parse_hours", "parse_spans", "overlaps"]

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Span = tuple[int, int]
Hours = dict[int, tuple[Span, ...]]

_SPAN = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")


class HoursError(ValueError):
    """Malformed or overlapping hours; `day` names the weekday key at fault, if any."""

    def __init__(self, message: str, day: str | None = None) -> None:
        super().__init__(message)
        self.day = day


def _minute(h: str, m: str, text: str, *, end: bool) -> int:
    hh, mm = int(h), int(m)
    if mm > 59 or hh > 24 or (hh == 24 and (mm or not end)):
        raise HoursError(f"'{text}' is not a time of day")
    return hh * 60 + mm


def parse_spans(text: str) -> tuple[Span, ...]:
    """`"09:00-12:00,13:00-17:00"` to sorted spans; `""` or `"closed"` to none."""
    s = text.strip()
    if s in ("", "closed"):
        return ()
    spans: list[Span] = []
    for part in s.split(","):
        part = part.strip()
        m = _SPAN.match(part)
        if not m:
            raise HoursError(f"malformed hours '{part}' (expected HH:MM-HH:MM)")
        start = _minute(m[1], m[2], part, end=False)
        end = _minute(m[3], m[4], part, end=True)
        if end == start:
            raise HoursError(f"empty span '{part}' (start and end are the same)")
        if end < start:
            end += 24 * 60
        spans.append((start, end))
    spans.sort()
    for (_, e1), (s2, _) in pairwise(spans):
        if s2 < e1:
            raise HoursError(f"overlapping spans in '{text}'")
    return tuple(spans)


def overlaps(hours: Hours) -> list[tuple[int, str]]:
    """Spans that run past midnight into the next day's spans: `(day, message)` pairs."""
    found = []
    for day, spans in hours.items():
        if not spans or spans[-1][1] <= 24 * 60:
            continue
        spill = spans[-1][1] - 24 * 60
        nxt = (day + 1) % 7
        if hours.get(nxt) and hours[nxt][0][0] < spill:
            found.append(
                (
                    day,
                    f"{DAYS[day]} runs past midnight into {DAYS[nxt]} and overlaps its hours",
                )
            )
    return found


def parse_hours(spec: str | Mapping[str, str]) -> Hours | None:
    """Parse a calendar's `hours`: `"24x7"` (returns None) or weekday keys to span strings."""
    if isinstance(spec, str):
        if spec.strip().lower() == "24x7":
            return None
        raise HoursError(f"hours must be '24x7' or a map of weekdays, not '{spec}'")
    hours: Hours = {}
    for key, text in spec.items():
        if key not in DAYS:
            raise HoursError(f"unknown weekday '{key}' (use {', '.join(DAYS)})", day=key)
        try:
            hours[DAYS.index(key)] = parse_spans(str(text))
        except HoursError as exc:
            raise HoursError(str(exc), day=key) from None
    for day, message in overlaps(hours):
        raise HoursError(message, day=DAYS[day])
    return hours
