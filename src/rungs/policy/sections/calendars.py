"""`calendars`: business hours in a time zone, minus public and own holidays."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from rungs.policy.reader import Reader, kind_of
from rungs.policy.values import hours, zone
from rungs.time.calendar import Calendar, check_holidays

__all__ = ["compile_calendars"]

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def compile_calendars(r: Reader) -> dict[str, Calendar]:
    out: dict[str, Calendar] = {}
    for ident, m, p in r.entries("calendars"):
        m = r.fields(
            m, p, f"calendar '{ident}'", ("id", "name", "timezone", "hours", "holidays"), ("hours",)
        )
        if m is None:
            continue
        tz = zone(r, m.get("timezone", "UTC"), (*p, "timezone"))
        ok, week = hours(r, m.get("hours", "24x7"), (*p, "hours"))
        if ok and week is not None and not any(week.values()):
            r.err(
                (*p, "hours"),
                f"calendar '{ident}' has no business hours: every day is closed",
            )
            ok = False
        country = subdiv = None
        dates: set[date] = set()
        if "holidays" in m:
            hp = (*p, "holidays")
            h = r.fields(m["holidays"], hp, "holidays", ("country", "subdivision", "dates"), ())
            if h is not None:
                country = r.string(h, "country", hp)
                subdiv = r.string(h, "subdivision", hp)
                if country is not None:
                    msg = check_holidays(country, subdiv)
                    if msg:
                        bad = "subdivision" if "subdivision" in msg and subdiv else "country"
                        r.err((*hp, bad), msg)
                        ok = False
                elif subdiv is not None and set(h) <= {"country", "subdivision", "dates"}:
                    r.err((*hp, "subdivision"), "a holiday subdivision needs a 'country'")
                raw = h.get("dates") or []
                single = not isinstance(raw, list)  # one date given without brackets
                if isinstance(raw, dict):
                    r.err((*hp, "dates"), f"holiday dates must be a list, not {kind_of(raw)}")
                    ok, raw = False, []
                for i, d in enumerate([raw] if single else raw):
                    parsed = _date(d)
                    if parsed is None:
                        dp = (*hp, "dates") if single else (*hp, "dates", i)
                        r.err(dp, f"holiday date {d!r} is not a date (write YYYY-MM-DD)")
                        ok = False
                    else:
                        dates.add(parsed)
        if ok and tz:
            out[ident] = Calendar(ident, tz, week, country, subdiv, frozenset(dates))
    return out


def _date(v: Any) -> date | None:
    """A calendar date written YYYY-MM-DD (a date and time is not one)."""
    if isinstance(v, datetime):
        return None
    if isinstance(v, date):
        return v
    if not isinstance(v, str) or not _DATE.match(v.strip()):
        return None
    try:
        return date.fromisoformat(v.strip())
    except ValueError:
        return None
