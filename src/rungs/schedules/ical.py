"""iCalendar export of on-call shifts, so people can subscribe to their rota.

Output is deterministic for the same input: UIDs derive from the schedule, the shift start
and the person, and DTSTAMP is the shift start unless the caller passes a `stamp` (this
module never reads a clock). Times are written in UTC; calendar clients show them locally.
"""

from __future__ import annotations

import re

from icalendar import Calendar, Event

from rungs.schedules.oncall import Schedule, Shift
from rungs.time.instant import from_us

__all__ = ["person_ical", "to_ical"]

PRODID = "-//rungs//on-call schedule//EN"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")  # no content line may hold them (CR, LF above all)


def _text(value: str) -> str:
    """A text value on one content line: control characters folded to a space."""
    return _CONTROL.sub(" ", value)


def to_ical(
    schedule: Schedule,
    shifts: list[Shift],
    *,
    person: str | None = None,
    name: str | None = None,
    stamp: int | None = None,
) -> bytes:
    """A VCALENDAR with one VEVENT per shift, only `person`'s when given.

    `name` becomes X-WR-CALNAME (default: the schedule id, plus the person when filtered);
    `stamp` (µs) becomes every event's DTSTAMP, defaulting to the event's own start so that
    re-exporting an unchanged rota yields identical bytes.
    """
    default_name = f"On call: {schedule.id}" + (f" ({person})" if person else "")
    cal = _calendar(name or default_name)
    cal.add("x-wr-timezone", _text(schedule.timezone))
    _add_shifts(cal, schedule, shifts, person, stamp)
    return cal.to_ical()


def person_ical(
    person: str, parts: list[tuple[Schedule, list[Shift]]], *, stamp: int | None = None
) -> bytes:
    """One person's shifts in every schedule as one VCALENDAR: the calendar a person
    subscribes to (`parts`: each schedule with its shifts)."""
    cal = _calendar(f"On call: {person}")
    for schedule, shifts in parts:
        _add_shifts(cal, schedule, shifts, person, stamp)
    return cal.to_ical()


def _calendar(name: str) -> Calendar:
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", _text(name))
    return cal


def _add_shifts(
    cal: Calendar, schedule: Schedule, shifts: list[Shift], person: str | None, stamp: int | None
) -> None:
    for shift in shifts:
        if person is not None and shift.person != person:
            continue
        event = Event()
        event.add("uid", _text(f"{schedule.id}-{shift.start}-{shift.person}@rungs"))
        event.add("dtstamp", from_us(shift.start if stamp is None else stamp))
        event.add("dtstart", from_us(shift.start))
        event.add("dtend", from_us(shift.end))
        event.add("summary", _text(f"On call: {shift.person} ({schedule.id})"))
        origin = "override" if shift.source == "override" else f"layer {shift.source}"
        event.add("description", _text(f"Source: {origin}"))
        event.add("categories", ["on-call"])
        cal.add_component(event)
