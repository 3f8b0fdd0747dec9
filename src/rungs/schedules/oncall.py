"""On-call schedules: who holds the pager at an instant, and the stretches over a range.

A schedule stacks rotation layers (later layers lie above earlier ones) under a list of
overrides. At an instant an override covering it wins (the later-listed one where overrides
overlap), else the topmost layer that applies there, else nobody. Every interval is
half-open, [start, end). Everything here is pure: instants come in as integer microseconds
(see `rungs.time.instant`), nothing reads a clock.

Handoffs are at a layer's `start` plus any whole number of shifts, in both directions. A
shift made only of `d`/`w` units is a calendar shift: it keeps the local wall-clock time of
`start` in the layer's zone, so a Monday 09:00 handoff stays at 09:00 across DST. A shift
with any `h`/`m`/`s` part is elapsed time, so a 12h rotation's wall-clock handoff moves by
an hour when the offset changes.

DST edge cases of calendar shifts follow zoneinfo's `fold=0` rule, always: a handoff whose
local time does not exist that day (it falls in a spring-forward gap) is read with the
offset from before the gap, so 02:30 in a 02:00-03:00 gap happens at 03:30 new time; a
handoff whose local time occurs twice (fall back) happens at the first occurrence. Only
`start` itself is kept exactly as given, being a handoff by definition.

`restrict` (weekly hours in the layer's zone, overnight spans allowed) limits where a layer
applies; it is evaluated on the local wall clock, so in a fall-back hour a restriction
boundary is crossed twice. Outside it the layer is transparent.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from heapq import heappop, heappush
from itertools import pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rungs.time.hours import Hours
from rungs.time.instant import (
    DAY,
    MINUTE,
    SECOND,
    WEEK,
    DurationError,
    from_us,
    parse_duration,
    range_error,
    to_us,
)

__all__ = [
    "Layer",
    "OnCall",
    "Override",
    "Schedule",
    "Shift",
    "layer_error",
    "on_call",
    "override_error",
    "shifts",
]


@dataclass(frozen=True)
class Layer:
    """One rotation: `members` take turns, one `shift` each, handing off at `start` + k shifts."""

    name: str
    members: tuple[str, ...]
    shift: str
    start: int
    timezone: str
    restrict: Hours | None = None


@dataclass(frozen=True)
class Override:
    """`who` is on call for [start, end), whatever the layers say."""

    start: int
    end: int
    who: str


@dataclass(frozen=True, eq=False)
class Schedule:
    """Layers (last-listed on top) under overrides (last-listed wins).

    `fallback` is a paging target such as `"person:frank"` for when nobody is on call; the
    resolution here does not apply it (it answers "nobody") so callers can tell the two apart.
    Compiled look-up tables are cached on the instance, so treat a Schedule as immutable.
    """

    id: str
    timezone: str
    layers: tuple[Layer, ...]
    overrides: tuple[Override, ...] = ()
    fallback: str | None = None


@dataclass(frozen=True)
class OnCall:
    """Who is on call: `source` is the layer's name, `"override"`, or None when nobody is."""

    people: tuple[str, ...]
    source: str | None


@dataclass(frozen=True)
class Shift:
    """A contiguous stretch [start, end) of one person on call from one source."""

    start: int
    end: int
    person: str
    source: str


_NOBODY = OnCall((), None)
_OVERRIDE = "override"
_CALENDAR_SHIFT = re.compile(r"(?:\d+[wd])+")
_MINUTES_PER_DAY = 24 * 60
_MINUTES_PER_WEEK = 7 * _MINUTES_PER_DAY
# Local wall-clock microseconds are counted like instants; 1970-01-01 was a Thursday, so the
# week containing it began three days earlier.
_WEEK_ORIGIN = -3 * DAY
_HANDOFF_CACHE_MAX = 65_536
# A handoff a shift away from any instant Rungs takes must still be a date (see
# `rungs.time.instant.EARLIEST`): no rotation has longer shifts than this.
_LONGEST_SHIFT = 100 * 52 * WEEK
# Zone transitions are searched for by sampling the offset at this step (a pair of
# transitions closer together than this that cancel out would go unnoticed; tzdata has none
# in modern times).
_TRANSITION_PROBE = 6 * 3600


def layer_error(layer: Layer) -> str | None:
    """Why `layer` cannot be used (unparsable or zero shift, no members, unknown zone), or None.

    The message does not name the layer, so the caller can prefix its own location.
    """
    if not layer.members:
        return "a layer needs at least one member"
    try:
        step = parse_duration(layer.shift)
    except DurationError as exc:
        return f"shift: {exc}"
    if step <= 0:
        return f"shift '{layer.shift}' is zero (write e.g. '1w', '1d' or '12h')"
    try:
        ZoneInfo(layer.timezone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        return f"unknown time zone '{layer.timezone}'"
    why = range_error(layer.start)
    if why is not None:
        return f"start: {why}"  # handoffs are computed from it, as dates
    if step > _LONGEST_SHIFT:
        return f"shift '{layer.shift}' is longer than 100 years"
    return None


def override_error(override: Override) -> tuple[str, str] | None:
    """(field, why) when `override` cannot be stored (`from` or `to` out of range, `to` not
    after `from`), else None. Checked before an override is written, never after."""
    for name, at in (("from", override.start), ("to", override.end)):
        why = range_error(at)
        if why is not None:
            return name, f"{name}: {why}"
    if override.end <= override.start:
        return "to", "'to' must be later than 'from'"
    return None


def on_call(schedule: Schedule, at: int) -> OnCall:
    """Who is on call at instant `at` (µs), and why.

    Look-ups are served from tables compiled once per Schedule instance, so this is a bisect
    plus a little arithmetic per layer.
    """
    return _compiled(schedule).resolve(at)


def shifts(schedule: Schedule, start: int, end: int) -> list[Shift]:
    """The final answer over [start, end) as contiguous stretches, clipped to the range.

    Stretches where nobody is on call are left out; adjacent stretches with the same person
    and the same source are merged. Each stretch is resolved with the same code as `on_call`
    at every instant where anything could change, so the two always agree.
    """
    if end <= start:
        return []
    c = _compiled(schedule)
    points = {start}
    lo = bisect_left(c.ov_starts, start)
    hi = bisect_left(c.ov_starts, end)
    points.update(c.ov_starts[lo:hi])
    lo = bisect_right(c.ov_ends, start)
    hi = bisect_left(c.ov_ends, end)
    points.update(c.ov_ends[lo:hi])
    for rot in c.rotations:
        first, last = rot.index(start), rot.index(end - 1)
        points.update(rot.handoff(k) for k in range(first + 1, last + 1))
        if rot.mask is not None:
            points.update(rot.restrict_changes(start, end))
    ordered = sorted(p for p in points if start <= p < end)
    ordered.append(end)
    out: list[Shift] = []
    for a, b in pairwise(ordered):
        who = c.resolve(a)
        if not who.people:
            continue
        person, source = who.people[0], who.source
        assert source is not None
        if out and out[-1].end == a and out[-1].person == person and out[-1].source == source:
            out[-1] = Shift(out[-1].start, b, person, source)
        else:
            out.append(Shift(a, b, person, source))
    return out


def _compiled(schedule: Schedule) -> _Compiled:
    """The schedule's look-up tables, built on first use and kept on the instance."""
    try:
        return schedule.__dict__["_oncall_compiled"]
    except KeyError:
        compiled = _Compiled(schedule)
        object.__setattr__(schedule, "_oncall_compiled", compiled)
        return compiled


def _local(at: int, tz: ZoneInfo) -> datetime:
    """Local wall clock of `at` to the second: enough for minute-level restrictions, and exact
    about offsets because zone transitions fall on whole seconds."""
    return datetime.fromtimestamp(at // SECOND, tz)


def _offset(at: int, tz: ZoneInfo) -> int:
    """UTC offset of `tz` at instant `at`, in µs."""
    off = _local(at, tz).utcoffset()
    assert off is not None
    return off // timedelta(microseconds=1)


def _transitions(tz: ZoneInfo, start: int, end: int) -> list[int]:
    """Instants in (start, end) where the zone's UTC offset changes."""
    found: list[int] = []
    t, stop = start // SECOND, -(-end // SECOND)
    off = _offset(t * SECOND, tz)
    while t < stop:
        t2 = min(t + _TRANSITION_PROBE, stop)
        if _offset(t2 * SECOND, tz) == off:
            t = t2
            continue
        lo, hi = t, t2  # offset(lo) == off != offset(hi): narrow to the first changed second
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if _offset(mid * SECOND, tz) == off:
                lo = mid
            else:
                hi = mid
        found.append(hi * SECOND)
        t, off = hi, _offset(hi * SECOND, tz)
    return [x for x in found if start < x < end]


def _week_mask(hours: Hours) -> bytes:
    """One byte per minute of the local week (Monday 00:00 first): 1 where `hours` apply."""
    mask = bytearray(_MINUTES_PER_WEEK)
    for day, spans in hours.items():
        for s, e in spans:
            for m in range(day * _MINUTES_PER_DAY + s, day * _MINUTES_PER_DAY + e):
                mask[m % _MINUTES_PER_WEEK] = 1
    return bytes(mask)


class _Rotation:
    """A layer compiled for look-ups: shift index by arithmetic, restriction by a week mask."""

    __slots__ = (
        "_cache",
        "day0",
        "days",
        "edges",
        "mask",
        "n",
        "name",
        "results",
        "start",
        "step",
        "tz",
        "wall",
    )

    def __init__(self, layer: Layer) -> None:
        error = layer_error(layer)
        if error:
            raise ValueError(f"layer '{layer.name}': {error}")
        self.name = layer.name
        self.tz = ZoneInfo(layer.timezone)
        self.start = layer.start
        self.step = parse_duration(layer.shift)
        self.n = len(layer.members)
        self.results = tuple(OnCall((m,), layer.name) for m in layer.members)
        self.mask: bytes | None = None
        self.edges: tuple[int, ...] = ()
        if layer.restrict is not None:
            mask = self.mask = _week_mask(layer.restrict)
            self.edges = tuple(m for m in range(_MINUTES_PER_WEEK) if mask[m] != mask[m - 1])
        self._cache: dict[int, int] | None = None
        self.days = 0
        if _CALENDAR_SHIFT.fullmatch(str(layer.shift).strip().replace(" ", "")):
            local = from_us(layer.start, self.tz)
            self.day0 = local.date()
            self.wall = time(local.hour, local.minute, local.second, local.microsecond)
            self.days = self.step // DAY
            self._cache = {0: layer.start}

    def handoff(self, k: int) -> int:
        """The instant shift k begins (k = 0 is `start`; negative k lies before it)."""
        cache = self._cache
        if cache is None:
            return self.start + k * self.step
        h = cache.get(k)
        if h is None:
            day = self.day0 + timedelta(days=k * self.days)
            h = to_us(datetime.combine(day, self.wall, tzinfo=self.tz))  # fold=0, see module
            if len(cache) >= _HANDOFF_CACHE_MAX:
                cache.clear()
                cache[0] = self.start
            cache[k] = h
        return h

    def index(self, at: int) -> int:
        """The shift covering `at`: exact for elapsed shifts; for calendar shifts the elapsed
        estimate is off only by the offset difference, so one or two handoff checks fix it."""
        k = (at - self.start) // self.step
        if self._cache is None:
            return k
        while at < self.handoff(k):
            k -= 1
        while self.handoff(k + 1) <= at:
            k += 1
        return k

    def restrict_changes(self, start: int, end: int) -> list[int]:
        """Instants in [start, end) where the restriction may switch on or off.

        Between zone transitions the wall clock is the instant plus a fixed offset, so each
        mask edge maps to one instant; the transitions themselves are included because the
        wall clock jumps there.
        """
        if not self.edges:
            return []
        cuts = [start, *_transitions(self.tz, start, end), end]
        out = cuts[1:-1]
        for p, q in pairwise(cuts):
            off = _offset(p, self.tz)
            lo, hi = p + off, q + off
            base = _WEEK_ORIGIN + (lo - _WEEK_ORIGIN) // WEEK * WEEK
            while base < hi:
                for m in self.edges:
                    wall = base + m * MINUTE
                    if lo <= wall < hi:
                        out.append(wall - off)
                base += WEEK
        return out


class _Compiled:
    """A schedule's look-up tables: a flat override timeline and compiled layers, top first."""

    __slots__ = ("ov_ends", "ov_results", "ov_starts", "rotations")

    def __init__(self, schedule: Schedule) -> None:
        self.rotations = tuple(_Rotation(layer) for layer in reversed(schedule.layers))
        self.ov_starts: list[int] = []
        self.ov_ends: list[int] = []
        self.ov_results: list[OnCall] = []
        for a, b, who in _flatten(schedule.overrides):
            if self.ov_ends and self.ov_ends[-1] == a and self.ov_results[-1].people[0] == who:
                self.ov_ends[-1] = b
            else:
                self.ov_starts.append(a)
                self.ov_ends.append(b)
                self.ov_results.append(OnCall((who,), _OVERRIDE))

    def resolve(self, at: int) -> OnCall:
        """Override, else topmost applying layer, else nobody."""
        i = bisect_right(self.ov_starts, at) - 1
        if i >= 0 and at < self.ov_ends[i]:
            return self.ov_results[i]
        for rot in self.rotations:
            mask = rot.mask
            if mask is not None:
                local = datetime.fromtimestamp(at // SECOND, rot.tz)
                if not mask[local.weekday() * 1440 + local.hour * 60 + local.minute]:
                    continue
            return rot.results[rot.index(at) % rot.n]
        return _NOBODY


def _flatten(overrides: tuple[Override, ...]) -> list[tuple[int, int, str]]:
    """Non-overlapping (start, end, who) pieces where the later-listed override wins.

    A sweep over the boundaries with a heap of active overrides keyed by listing order; empty
    overrides (end <= start) cover nothing and are dropped.
    """
    live = [(o.start, o.end, i, o.who) for i, o in enumerate(overrides) if o.start < o.end]
    if not live:
        return []
    live.sort()
    points = sorted({x for o in live for x in o[:2]})
    active: list[tuple[int, int]] = []  # (-listing index, end)
    out: list[tuple[int, int, str]] = []
    j = 0
    whos = {i: who for _, _, i, who in live}
    for a, b in pairwise(points):
        while j < len(live) and live[j][0] <= a:
            heappush(active, (-live[j][2], live[j][1]))
            j += 1
        while active and active[0][1] <= a:
            heappop(active)
        if active:
            out.append((a, b, whos[-active[0][0]]))
    return out
