"""The shift check: Rungs' own answer against the vendor's final schedule.

For each vendor schedule whose final schedule the dump holds, the Rungs schedules that stand
for it (usually one; several where the vendor pages people at once) are resolved with
`rungs.schedules.oncall.shifts` over the final schedule's span, and the set of people on call
is compared at every instant where either side changes. Sets, not sequences: a vendor may cut
its entries at other instants than Rungs does without a difference in who is paged.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable

from rungs.importers.plan import Final
from rungs.policy.model import Policy
from rungs.schedules.oncall import shifts
from rungs.time.instant import format_utc

__all__ = ["check", "people_at"]

Piece = tuple[int, int, str]


def people_at(pieces: Iterable[Piece], at: int) -> frozenset[str]:
    """Who the pieces put on call at `at` ([start, end) each)."""
    return frozenset(p for a, b, p in pieces if a <= at < b)


def _boundaries(pieces: list[Piece], start: int, end: int) -> list[int]:
    points = {start}
    for a, b, _ in pieces:
        points.update(x for x in (a, b) if start <= x < end)
    return sorted(points)


def rungs_pieces(policy: Policy, final: Final) -> list[Piece]:
    """Rungs' shifts of the schedules standing for `final`, over its span."""
    out: list[Piece] = []
    for sid in final.schedule_ids:
        out += [
            (s.start, s.end, s.person)
            for s in shifts(policy.schedules[sid], final.start, final.end)
        ]
    return out


def check(policy: Policy, finals: list[Final], *, limit: int = 5) -> list[str]:
    """The first `limit` differences of each final schedule, as lines (none: they agree)."""
    found: list[str] = []
    for final in finals:
        ours = rungs_pieces(policy, final)
        theirs = [p for p in final.shifts if p[1] > final.start and p[0] < final.end]
        points = sorted(
            set(_boundaries(ours, final.start, final.end))
            | set(_boundaries(theirs, final.start, final.end))
        )
        shown = 0
        for at in points:
            a, b = people_at(theirs, at), people_at(ours, at)
            if a == b:
                continue
            i = bisect_right(points, at)
            until = points[i] if i < len(points) else final.end
            found.append(
                f"schedule {final.name!r} {format_utc(at)}..{format_utc(until)}: "
                f"the vendor has {_names(a)}, Rungs has {_names(b)}"
            )
            shown += 1
            if shown >= limit:
                break
    return found


def _names(people: frozenset[str]) -> str:
    return ", ".join(sorted(people)) or "nobody"
