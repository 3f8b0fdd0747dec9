"""Where a drafted layer is on call, with Rungs' own resolution, and how to group layers that a
vendor pages at once.

Vendors that page several rotations at once (Opsgenie's rotations, GoAlert's rules) go to
Rungs as one schedule per group of layers that never overlap in the week; an override that
applies to some rotations only is cut to where those rotations are on call. Both use
`rungs.schedules.oncall`, the same code that answers `rungs oncall`.
"""

from __future__ import annotations

from rungs.importers.common import Slugs
from rungs.importers.plan import Draft, Layer, Schedule
from rungs.schedules.oncall import Layer as OnCallLayer
from rungs.schedules.oncall import Schedule as OnCallSchedule
from rungs.schedules.oncall import shifts
from rungs.time.hours import DAYS, Hours, parse_spans

__all__ = ["active", "group_disjoint", "schedules_for", "week_mask"]


def _hours(restrict: dict[str, str] | None) -> Hours | None:
    if restrict is None:
        return None
    return {DAYS.index(day): parse_spans(text) for day, text in restrict.items()}


def active(layers: list[Layer], start: int, end: int) -> list[tuple[int, int, str]]:
    """(start, end, person) where `layers` (last on top) put someone on call in [start, end)."""
    if not layers or end <= start:
        return []
    compiled = tuple(
        OnCallLayer(
            la.name, tuple(la.members), la.shift, la.start, la.timezone, _hours(la.restrict)
        )
        for la in layers
    )
    sched = OnCallSchedule("draft", layers[0].timezone, compiled)
    return [(s.start, s.end, s.person) for s in shifts(sched, start, end)]


def week_mask(layer: Layer) -> set[int]:
    """The minutes of the local week (Monday 00:00 = 0) where the layer may be on call."""
    if layer.restrict is None:
        return set(range(7 * 1440))
    out: set[int] = set()
    for day, text in layer.restrict.items():
        for s, e in parse_spans(text):
            out.update((DAYS.index(day) * 1440 + m) % (7 * 1440) for m in range(s, e))
    return out


def group_disjoint(layers: list[Layer]) -> list[list[Layer]]:
    """Layers in groups whose weekly hours never overlap (in listing order, first fit): one
    Rungs schedule per group pages the same people as the vendor's union. Layers of different
    zones are compared on their local weeks, which is exact only when the zones agree; the
    callers pass one schedule's layers, all in its zone."""
    groups: list[tuple[list[Layer], set[int]]] = []
    for layer in layers:
        mask = week_mask(layer)
        for members, taken in groups:
            if not (mask & taken):
                members.append(layer)
                taken |= mask
                break
        else:
            groups.append(([layer], set(mask)))
    return [members for members, _ in groups]


def schedules_for(
    draft: Draft, slugs: Slugs, name: str, source: str, tz: str, layers: list[Layer], vendor: str
) -> list[Schedule]:
    """The Rungs schedules standing for one vendor schedule whose layers are all on call at
    once: one per group of layers that never overlap (reported when there are several)."""
    groups = group_disjoint(layers)
    out = []
    for n, group in enumerate(groups, 1):
        label = name if n == 1 else f"{name} ({n})"
        sched = Schedule(slugs.new("schedules", label, "schedule"), label, source, tz, group)
        draft.schedules.append(sched)
        out.append(sched)
    if len(out) > 1:
        draft.cannot(
            "schedule",
            name,
            f"{vendor} has several people on call at once here; Rungs puts one person on call "
            f"per schedule: written as {', '.join(s.id for s in out)}, each escalation to it "
            "pages all of them",
        )
    return out
