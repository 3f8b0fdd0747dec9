"""Who is on call, and the shifts of a schedule, from the current policy (pure reads)."""

from __future__ import annotations

from typing import Any

from rungs.policy import Policy
from rungs.schedules.ical import person_ical, to_ical
from rungs.schedules.oncall import Schedule, on_call, shifts
from rungs.time.instant import format_utc

__all__ = ["ics", "on_call_now", "person_ics", "shift_rows"]


def on_call_now(policy: Policy, at: int) -> list[dict[str, Any]]:
    out = []
    for sid, s in policy.schedules.items():
        found = on_call(s, at)
        out.append(
            {
                "schedule": sid,
                "at": format_utc(at),
                "on_call": list(found.people),
                "source": found.source,
            }
        )
    return out


def shift_rows(schedule: Schedule, start: int, end: int) -> list[dict[str, Any]]:
    return [
        {
            "start": format_utc(s.start),
            "end": format_utc(s.end),
            "person": s.person,
            "source": s.source,
        }
        for s in shifts(schedule, start, end)
    ]


def ics(schedule: Schedule, start: int, end: int, person: str | None) -> bytes:
    """The schedule's shifts in [start, end) as iCalendar (one person's when given)."""
    return to_ical(schedule, shifts(schedule, start, end), person=person)


def person_ics(policy: Policy, person: str, start: int, end: int) -> bytes:
    """The person's shifts in every schedule over [start, end), as one iCalendar feed."""
    parts = [(s, shifts(s, start, end)) for s in policy.schedules.values()]
    return person_ical(person, parts)
