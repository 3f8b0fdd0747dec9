"""Business-time arithmetic: durations that count only inside a calendar's open hours.

Everything works on integer microseconds since the Unix epoch (see `rungs.time.instant`); the
datetime functions at the bottom are thin edges. The module is pure: no clock reads, no I/O.

How it is fast: a calendar's open time is precomputed lazily, one *local* year at a time, as
sorted UTC-µs interval starts/ends plus prefix sums of business µs. `add_us` and `elapsed_us`
are then a couple of `bisect` calls per year touched instead of a walk over days.

Wall-clock conventions (they matter only around DST transitions):

* Every local boundary (span starts/ends and local midnights) is converted to UTC with
  `zoneinfo` and ``fold=0``. For an ambiguous time (fall-back) that is the *first* occurrence;
  for a time that does not exist (spring-forward gap) it is the offset *before* the
  transition, i.e. 02:30 on a Berlin spring-forward morning means 03:30 CEST. A span whose
  converted end is not after its converted start (both ends in or around the gap) is empty.
* So a 22:00-06:00 night span is 7 real hours on a spring-forward night and 9 on a fall-back
  night, and a 09:00-17:00 day stays 8 real hours unless a boundary sits in the gap.
* A holiday closes its whole local day [00:00, next 00:00); the weekly spans are intersected
  with the complement of holiday days, so an overnight span keeps the part that falls on a
  non-holiday day and loses the part that falls on a holiday.
* ``hours=None`` is 24x7. With no holidays at all it is special-cased (``add`` is plain
  addition); with holidays it is open all day except on holidays.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rungs.time.hours import DAYS, Hours
from rungs.time.instant import from_us, to_us

__all__ = [
    "WALL_CLOCK",
    "Calendar",
    "UnknownCountryError",
    "add",
    "check_holidays",
    "elapsed",
    "next_open",
]

_ONE_US = timedelta(microseconds=1)
_DAY_MIN = 24 * 60
_AVG_YEAR_US = 31_556_952 * 1_000_000  # 365.2425 days: a first guess for the local year
_MAX_EMPTY_YEARS = 400  # how far to look for open time before calling a calendar "never open"
_CLOSED_HOURS = "closed hours"
_COMPANY_HOLIDAY = "company holiday"


class UnknownCountryError(ValueError):
    """A holiday country or subdivision the `holidays` package does not know."""


@lru_cache(maxsize=128)
def check_holidays(country: str, subdivision: str | None) -> str | None:
    """An error message for an unusable country/subdivision pair, or None when it is fine.

    For the policy validator: it reports instead of raising so all problems can be listed.
    """
    import holidays

    supported = holidays.list_supported_countries(include_aliases=True)
    if country not in supported:
        return f"unknown holiday country '{country}'"
    try:
        holidays.country_holidays(country, subdiv=subdivision)
    except NotImplementedError:
        return f"unknown subdivision '{subdivision}' of country '{country}'"
    return None


def _country_holidays(country: str, subdivision: str | None) -> Any:
    """The package's holiday table, named in the entity's own language.

    The package otherwise guesses the language from the process locale, which would make
    closure reasons differ between machines.
    """
    import holidays

    message = check_holidays(country, subdivision)
    if message is not None:
        raise UnknownCountryError(message)
    probe = holidays.country_holidays(country, subdiv=subdivision)
    return holidays.country_holidays(country, subdiv=subdivision, language=probe.default_language)


# One local year of open time: starts, ends (UTC µs, sorted, disjoint, non-adjacent within the
# year) and cum, where cum[i] is the business µs before interval i and cum[-1] the year total.
_Block = tuple[list[int], list[int], list[int]]


class _State:
    """A calendar's derived data and caches (kept off the dataclass fields)."""

    __slots__ = ("always", "blocks", "bounds", "holidays", "last", "never", "tz", "weekly")

    def __init__(self, cal: Calendar) -> None:
        try:
            self.tz = ZoneInfo(cal.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:  # NotFound is a KeyError
            raise ValueError(f"unknown time zone '{cal.timezone}'") from exc
        self.weekly = _weekly_spans(cal.hours)
        self.holidays: Any = (
            _country_holidays(cal.holiday_country, cal.holiday_subdivision)
            if cal.holiday_country
            else None
        )
        self.always = cal.hours is None and not cal.holiday_country and not cal.holiday_dates
        self.never = not self.always and not any(self.weekly)
        self.blocks: dict[int, _Block] = {}
        self.bounds: dict[int, int] = {}
        # The local year looked up last, as (start, end, year, block): instants come in runs.
        self.last: tuple[int, int, int, _Block] = (0, 0, 0, ([], [], [0]))


@dataclass(frozen=True, eq=False)
class Calendar:
    """Business hours in one time zone, minus holidays. Compared and hashed by identity."""

    id: str
    timezone: str
    hours: Hours | None
    holiday_country: str | None = None
    holiday_subdivision: str | None = None
    holiday_dates: frozenset[date] = field(default_factory=frozenset)

    if TYPE_CHECKING:  # not a dataclass field: set once in __post_init__
        _st: _State

    def __post_init__(self) -> None:
        # Caches live on the instance past the frozen guard; identity semantics (eq=False) keep
        # them per calendar. Validation (zone, hours, holiday country) happens here, eagerly.
        object.__setattr__(self, "holiday_dates", frozenset(self.holiday_dates))
        object.__setattr__(self, "_st", _State(self))

    # -- public properties -------------------------------------------------------------------

    @property
    def tz(self) -> ZoneInfo:
        """The calendar's zone, resolved once."""
        return self._st.tz

    def holiday_name(self, d: date) -> str | None:
        """The holiday on local date `d`: the package's name, else 'company holiday', else None."""
        hol = self._st.holidays
        if hol is not None:
            name = hol.get(d)
            if name:
                return str(name)
        if d in self.holiday_dates:
            return _COMPANY_HOLIDAY
        return None

    # -- hot path ----------------------------------------------------------------------------

    def add_us(self, start: int, duration: int) -> int:
        """The earliest instant by which `duration` business µs have elapsed since `start`."""
        if duration < 0:
            raise ValueError(f"duration must not be negative, got {duration} µs")
        st = self._st
        if st.always:
            return start + duration
        if duration == 0:
            return start
        self._check_open()
        lo, hi, year, block = st.last
        if not lo <= start < hi:
            year, block = self._locate(start)
        starts, ends, cum = block
        i = bisect_right(ends, start)
        if i < len(starts):
            target = cum[i] + max(0, start - starts[i]) + duration
        else:
            target = cum[-1] + duration
        empty_run = 0
        while True:
            total = cum[-1]
            if target <= total:
                j = bisect_left(cum, target) - 1
                return starts[j] + (target - cum[j])
            target -= total
            empty_run = empty_run + 1 if total == 0 else 0
            if empty_run > _MAX_EMPTY_YEARS:
                raise ValueError(f"calendar '{self.id}' has no open time to count in")
            year += 1
            starts, ends, cum = self._block(year)

    def elapsed_us(self, a: int, b: int) -> int:
        """Business µs in [a, b); negative when b < a."""
        if b < a:
            return -self.elapsed_us(b, a)
        st = self._st
        if st.always:
            return b - a
        if a == b or st.never:
            return 0
        lo, hi, _, block = st.last
        if lo <= a and b < hi:
            return _position(block, b) - _position(block, a)
        ya, yb = self._year_of(a), self._year_of(b)
        if ya == yb:
            block = self._locate(a)[1]
            return _position(block, b) - _position(block, a)
        block = self._block(ya)
        total = block[2][-1] - _position(block, a)
        for year in range(ya + 1, yb):
            total += self._block(year)[2][-1]
        return total + _position(self._block(yb), b)

    def is_open_us(self, t: int) -> bool:
        """Whether instant `t` lies inside an open interval."""
        if self._st.always:
            return True
        if self._st.never:
            return False
        starts, ends, _ = self._block(self._year_of(t))
        i = bisect_right(ends, t)
        return i < len(starts) and starts[i] <= t

    def next_open_us(self, t: int) -> int:
        """`t` itself when open, else the start of the next open interval."""
        if self._st.always:
            return t
        self._check_open()
        year = self._year_of(t)
        starts, ends, _ = self._block(year)
        i = bisect_right(ends, t)
        if i < len(starts):
            return max(t, starts[i])
        for _ in range(_MAX_EMPTY_YEARS):
            year += 1
            starts, _, _ = self._block(year)
            if starts:
                return starts[0]
        raise ValueError(f"calendar '{self.id}' has no open time after {t} µs")

    # -- interval views ----------------------------------------------------------------------

    def open_intervals_us(self, a: int, b: int) -> list[tuple[int, int]]:
        """Open intervals clipped to [a, b), merged across the internal year split."""
        if b <= a:
            return []
        if self._st.always:
            return [(a, b)]
        if self._st.never:
            return []
        out: list[tuple[int, int]] = []
        for year in range(self._year_of(a), self._year_of(b) + 1):
            starts, ends, _ = self._block(year)
            i = bisect_right(ends, a)
            while i < len(starts) and starts[i] < b:
                s, e = max(a, starts[i]), min(b, ends[i])
                if out and out[-1][1] == s:
                    out[-1] = (out[-1][0], e)
                else:
                    out.append((s, e))
                i += 1
        return out

    def closures_us(self, a: int, b: int) -> list[tuple[int, int, str]]:
        """Closed stretches in [a, b), each with why: a holiday (by name and date) or hours.

        A closed stretch is cut at local midnights around holiday days so that a holiday's
        closed part of its own local day carries the holiday reason.
        """
        if b <= a:
            return []
        out: list[tuple[int, int, str]] = []
        cursor = a
        for s, e in [*self.open_intervals_us(a, b), (b, b)]:
            if s > cursor:
                self._explain_gap(cursor, s, out)
            cursor = e
        return out

    def _explain_gap(self, g0: int, g1: int, out: list[tuple[int, int, str]]) -> None:
        """Append the closed stretch [g0, g1), split by local day where holidays differ."""
        tz = self.tz
        day = from_us(g0, tz).date()
        cur = g0
        while cur < g1:
            day_end = min(g1, self._midnight_us(day + timedelta(days=1)))
            name = self.holiday_name(day)
            reason = _CLOSED_HOURS if name is None else f"holiday: {name} ({day.isoformat()})"
            if day_end > cur:
                if out and out[-1][1] == cur and out[-1][2] == reason:
                    out[-1] = (out[-1][0], day_end, reason)
                else:
                    out.append((cur, day_end, reason))
            cur = max(cur, day_end)
            day += timedelta(days=1)

    # -- precomputation ----------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._st.never:
            raise ValueError(f"calendar '{self.id}' has no business hours at all")

    def _midnight_us(self, d: date) -> int:
        return to_us(datetime(d.year, d.month, d.day, tzinfo=self.tz))

    def _year_start(self, year: int) -> int:
        """UTC µs of local midnight opening `year` (fold=0), cached."""
        bounds = self._st.bounds
        us = bounds.get(year)
        if us is None:
            us = bounds[year] = self._midnight_us(date(year, 1, 1))
        return us

    def _year_of(self, t: int) -> int:
        """The local year whose [start, next start) contains instant `t`."""
        year = 1970 + t // _AVG_YEAR_US
        while t < self._year_start(year):
            year -= 1
        while t >= self._year_start(year + 1):
            year += 1
        return year

    def _locate(self, t: int) -> tuple[int, _Block]:
        """The local year of instant `t` and its block, remembered for the next look-up."""
        year = self._year_of(t)
        block = self._block(year)
        self._st.last = (self._year_start(year), self._year_start(year + 1), year, block)
        return year, block

    def _block(self, year: int) -> _Block:
        blocks = self._st.blocks
        block = blocks.get(year)
        if block is None:
            block = blocks[year] = self._build_block(year)
        return block

    def _build_block(self, year: int) -> _Block:
        """Open intervals of one local year: spans per local day, minus holidays, in UTC µs."""
        lo, hi = self._year_start(year), self._year_start(year + 1)
        weekly = self._st.weekly
        tz = self.tz
        raw: list[tuple[int, int]] = []
        day = date(year - 1, 12, 31)  # its overnight spans spill into 1 January
        last = date(year, 12, 31)
        closed_cache: dict[date, bool] = {}

        def closed(d: date) -> bool:
            hit = closed_cache.get(d)
            if hit is None:
                hit = closed_cache[d] = self.holiday_name(d) is not None
            return hit

        def local_us(d: date, minute: int) -> int:
            if minute >= _DAY_MIN:
                d, minute = d + timedelta(days=1), minute - _DAY_MIN
            h, m = divmod(minute, 60)
            return to_us(datetime(d.year, d.month, d.day, h, m, tzinfo=tz))

        while day <= last:
            nxt = day + timedelta(days=1)
            for s, e in weekly[day.weekday()]:
                # Part on `day` itself, then the part spilling past midnight onto `nxt`.
                if s < _DAY_MIN and not closed(day):
                    raw.append((local_us(day, s), local_us(day, min(e, _DAY_MIN))))
                if e > _DAY_MIN and not closed(nxt):
                    raw.append((local_us(nxt, max(0, s - _DAY_MIN)), local_us(nxt, e - _DAY_MIN)))
            day = nxt

        raw.sort()
        starts: list[int] = []
        ends: list[int] = []
        for s, e in raw:
            s, e = max(s, lo), min(e, hi)
            if e <= s:
                continue
            if ends and s <= ends[-1]:
                ends[-1] = max(ends[-1], e)
            else:
                starts.append(s)
                ends.append(e)
        cum = [0]
        for s, e in zip(starts, ends, strict=True):
            cum.append(cum[-1] + (e - s))
        return starts, ends, cum


def _position(block: _Block, t: int) -> int:
    """Business µs in the block before instant `t`."""
    starts, ends, cum = block
    i = bisect_right(ends, t)
    if i < len(starts):
        return cum[i] + max(0, t - starts[i])
    return cum[-1]


def _weekly_spans(
    hours: Mapping[int, Iterable[tuple[int, int]]] | None,
) -> tuple[tuple[tuple[int, int], ...], ...]:
    """Hours as a 7-tuple of validated spans (24x7 becomes all-day spans)."""
    if hours is None:
        return tuple(((0, _DAY_MIN),) for _ in range(7))
    week: list[tuple[tuple[int, int], ...]] = [() for _ in range(7)]
    for day, spans in hours.items():
        if day not in range(7):
            raise ValueError(f"weekday key must be 0..6 (Monday..Sunday), not {day!r}")
        clean: list[tuple[int, int]] = []
        for s, e in spans:
            if not (0 <= s < _DAY_MIN and s < e <= s + _DAY_MIN):
                raise ValueError(f"bad span ({s}, {e}) on {DAYS[day]}")
            clean.append((int(s), int(e)))
        week[day] = tuple(sorted(clean))
    return tuple(week)


WALL_CLOCK = Calendar(id="wall-clock", timezone="UTC", hours=None)


def add(start: datetime, duration: timedelta, calendar: Calendar) -> datetime:
    """`start` plus `duration` of business time, in the calendar's zone."""
    return from_us(calendar.add_us(to_us(start), duration // _ONE_US), calendar.tz)


def elapsed(a: datetime, b: datetime, calendar: Calendar) -> timedelta:
    """Business time in [a, b); negative when b is before a."""
    return timedelta(microseconds=calendar.elapsed_us(to_us(a), to_us(b)))


def next_open(t: datetime, calendar: Calendar) -> datetime:
    """`t` if the calendar is open then, else the next opening, in the calendar's zone."""
    return from_us(calendar.next_open_us(to_us(t)), calendar.tz)
