"""What the console's forms send that needs reading: an instant typed in a zone."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rungs.time.instant import parse_instant, range_error, to_us

__all__ = ["BadInput", "local_instant", "zone"]


class BadInput(ValueError):
    """A form value refused: `field` names the input, the message says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


def zone(name: str, field: str = "tz") -> ZoneInfo:
    """An IANA time zone by name (`Europe/Berlin`)."""
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise BadInput(field, f"unknown time zone '{name}' (write e.g. Europe/Berlin)") from None


def local_instant(value: str, tz: ZoneInfo, field: str) -> int:
    """A `datetime-local` value (`2026-11-27T17:55`) read in `tz`, or an ISO 8601 instant
    with its own offset; µs since the epoch."""
    text = value.strip()
    if not text:
        raise BadInput(field, f"{field}: give a date and time")
    try:
        naive = datetime.fromisoformat(text)
    except ValueError:
        raise BadInput(field, f"{field}: '{text}' is not a date and time") from None
    try:
        if naive.tzinfo is not None:
            return parse_instant(text)
        # fold=0: an hour that occurs twice (DST ends) is read as the first one
        us = to_us(naive.replace(tzinfo=tz))
    except ValueError as exc:
        raise BadInput(field, f"{field}: {exc}") from None
    why = range_error(us)
    if why is not None:
        raise BadInput(field, f"{field}: out of range: {why}")
    return us
