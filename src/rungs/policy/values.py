"""Values several sections read the same way: time zones, weekly hours, targets, references.

Each reads through the `Reader`, so a wrong value is a located problem and the same mistake
reads the same in every section.
"""

from __future__ import annotations

import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from rungs.policy.loader import Path
from rungs.policy.model import PRIORITIES, Target
from rungs.policy.reader import Reader, hint, kind_of
from rungs.time.calendar import WALL_CLOCK, Calendar
from rungs.time.hours import DAYS, Hours, HoursError, overlaps, parse_spans

__all__ = [
    "DOMAIN",
    "MAILBOX",
    "Known",
    "zone",
    "hours",
    "target",
    "targets",
    "check_refs",
    "calendar_ref",
]

Known = dict[str, set[str]]  # section -> the ids it declares, for references
# A mail address and a domain as inbound mail matches them (lower case, no display name).
DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9-]{1,63}$")
MAILBOX = re.compile(r"^[^@\s<>]{1,64}@(?=.{1,253}$)[a-z0-9.-]+$")


def zone(r: Reader, value: Any, path: Path) -> str | None:
    """An IANA time zone name, or None (reported) when it is not one."""
    if not isinstance(value, str):
        r.err(path, f"time zone must be a string such as 'Europe/Berlin', not {kind_of(value)}")
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        r.err(path, f"unknown time zone '{value}'{hint(value, available_timezones())}")
        return None
    return value


def hours(r: Reader, value: Any, path: Path) -> tuple[bool, Hours | None]:
    """(ok, hours) where hours None means 24x7."""
    if isinstance(value, str):
        if value.strip().lower() == "24x7":
            return True, None
        r.err(path, f"hours must be '24x7' or a map of weekdays to spans, not '{value}'")
        return False, {}
    m = r.mapping(value, path, "hours")
    if m is None:
        return False, {}
    found: Hours = {}
    ok = True
    for key, text in m.items():
        if key not in DAYS:
            r.err((*path, key), f"unknown weekday '{key}' (use {', '.join(DAYS)})", key=True)
            ok = False
            continue
        if text is None:
            found[DAYS.index(key)] = ()
            continue
        try:
            found[DAYS.index(key)] = parse_spans(str(text))
        except HoursError as exc:
            r.err((*path, key), str(exc))
            ok = False
    for day, message in overlaps(found):
        r.err((*path, DAYS[day]), message)
        ok = False
    return ok, found


def target(r: Reader, value: Any, path: Path, known: Known) -> Target | None:
    """`person:ID`, `team:ID` or `schedule:ID` naming one that the policy declares."""
    if not isinstance(value, str) or ":" not in value:
        r.err(path, f"target must be 'person:ID', 'team:ID' or 'schedule:ID', not {value!r}")
        return None
    kind, _, ident = value.partition(":")
    if kind not in ("person", "team", "schedule"):
        r.err(path, f"unknown target kind '{kind}' in '{value}' (use person, team or schedule)")
        return None
    plural = {"person": "people", "team": "teams", "schedule": "schedules"}[kind]
    if ident not in known[plural]:
        r.err(path, f"unknown {kind} '{ident}' in target '{value}'{hint(ident, known[plural])}")
        return None
    return Target(kind, ident)


def targets(r: Reader, value: Any, path: Path, known: Known) -> tuple[Target, ...]:
    """One target or a list of them; the wrong ones are reported and left out."""
    items = value if isinstance(value, list) else [value]
    out = []
    for i, v in enumerate(items):
        t = target(r, v, (*path, i) if isinstance(value, list) else path, known)
        if t is not None:
            out.append(t)
    return tuple(out)


def check_refs(r: Reader, key: str, vals: list[str], path: Path, known: Known) -> None:
    """Values of a match or condition `key` that must name a customer, partner or priority."""
    table = {"customer": "customers", "partner": "partners"}.get(key)
    for i, v in enumerate(vals):
        at = (*path, i) if (*path, i) in r.loc.values else path
        if table and v not in known[table]:
            r.err(at, f"unknown {key} '{v}'{hint(v, known[table])}")
        if key == "priority" and v not in PRIORITIES:
            r.err(at, f"unknown priority '{v}' (use {', '.join(PRIORITIES)})")


def calendar_ref(
    r: Reader, m: dict[str, Any], p: Path, calendars: dict[str, Calendar]
) -> Calendar | None:
    """The named calendar, wall-clock time when none is named, None when it is unusable."""
    name = r.string(m, "calendar", p)
    if name is None:
        return WALL_CLOCK
    if name in calendars:
        return calendars[name]
    declared = r.ids("calendars")
    if name not in declared:
        r.err((*p, "calendar"), f"unknown calendar '{name}'{hint(name, declared)}")
    return None  # declared but broken: its own errors are already reported
