"""`matrices`: which cases they match, their levels, calendar and repeat.

Also `warn_unstaffed`: a level that could page nobody when its schedule has a gap.
"""

from __future__ import annotations

from typing import Any

from rungs.policy.loader import Path
from rungs.policy.model import MATCH_KEYS, Level, Matrix, Repeat, Team
from rungs.policy.reader import Reader
from rungs.policy.values import Known, calendar_ref, check_refs, target, targets
from rungs.schedules.oncall import Schedule
from rungs.time.calendar import Calendar

__all__ = ["compile_matrices", "warn_unstaffed"]

_FIELDS = ("id", "name", "match", "calendar", "levels", "repeat")


def compile_matrices(r: Reader, calendars: dict[str, Calendar], known: Known) -> tuple[Matrix, ...]:
    out = []
    for order, (ident, m, p) in enumerate(r.entries("matrices")):
        m = r.fields(m, p, f"matrix '{ident}'", _FIELDS, ("levels",))
        if m is None:
            continue
        match = _match(r, m["match"], (*p, "match"), known) if "match" in m else {}
        cal = calendar_ref(r, m, p, calendars)
        levels = _levels(r, m["levels"], (*p, "levels"), known) if "levels" in m else ()
        repeat = _repeat(r, m["repeat"], (*p, "repeat")) if "repeat" in m else None
        if cal is not None and levels:
            out.append(Matrix(ident, match, levels, cal, repeat, order))
    return tuple(out)


def _match(r: Reader, value: Any, mp: Path, known: Known) -> dict[str, frozenset[str]]:
    """The case fields a matrix applies to, each with the values it accepts."""
    match: dict[str, frozenset[str]] = {}
    for k, v in (r.mapping(value, mp, "match") or {}).items():
        if k not in MATCH_KEYS:
            r.err((*mp, k), f"unknown match field '{k}' (use {', '.join(MATCH_KEYS)})", key=True)
            continue
        vals = r.strings(v, (*mp, k), f"match '{k}'")
        check_refs(r, k, vals, (*mp, k), known)
        match[k] = frozenset(vals)
    return match


def _repeat(r: Reader, value: Any, rp: Path) -> Repeat | None:
    """Paging the last level again: `every` (longer than zero), `times` (at least 1)."""
    rm = r.fields(value, rp, "repeat", ("every", "times"), ("every", "times"))
    if rm is None:
        return None
    every = r.duration(rm, "every", rp)
    times = rm.get("times")
    if isinstance(times, bool) or not isinstance(times, int) or times < 1:
        r.err((*rp, "times"), "repeat times must be a whole number of at least 1")
    elif every is not None and every > 0:
        return Repeat(every, times)
    elif every is not None:
        r.err((*rp, "every"), "repeat every must be longer than zero")
    return None


def _levels(r: Reader, value: Any, path: Path, known: Known) -> tuple[Level, ...]:
    if not isinstance(value, list) or not value:
        r.err(path, "levels must be a non-empty list")
        return ()
    out = []
    prev_after: int | None = 0  # level 1 starts at once; None: the previous one is unusable
    prev_text = "0m"
    for i, lv in enumerate(value):
        lp = (*path, i)
        lv = r.fields(
            lv, lp, f"level {i + 1}", ("name", "after", "unless", "notify", "fallback"), ("notify",)
        )
        if lv is None:
            continue
        after = r.duration(lv, "after", lp) if "after" in lv else 0 if i == 0 else None
        text = lv.get("after")
        if i > 0 and "after" not in lv:
            r.err(lp, f"level {i + 1} is missing 'after' (how long before it escalates)")
        elif i == 0 and after:
            r.err((*lp, "after"), "level 1 is notified at once and takes no 'after'")
        elif i > 0 and after is not None and prev_after is not None and after <= prev_after:
            if i == 1:
                msg = "level 2 'after' must be longer than zero (level 1 is notified at once)"
            else:
                msg = f"level {i + 1} 'after' ({text}) must be later than level {i}'s ({prev_text})"
            r.err((*lp, "after"), msg)
        unless = lv.get("unless", "acknowledged")
        if unless not in ("acknowledged", "resolved"):
            r.err((*lp, "unless"), f"unless must be 'acknowledged' or 'resolved', not {unless!r}")
        notify = targets(r, lv.get("notify", []), (*lp, "notify"), known)
        if "notify" in lv and not lv["notify"]:
            r.err((*lp, "notify"), f"level {i + 1} notifies nobody")
        fallback = target(r, lv["fallback"], (*lp, "fallback"), known) if "fallback" in lv else None
        prev_after, prev_text = after, text
        out.append(
            Level(i + 1, str(lv.get("name", f"L{i + 1}")), after or 0, unless, notify, fallback)
        )
    return tuple(out) if len(out) == len(value) else ()


def warn_unstaffed(
    r: Reader, matrices: tuple[Matrix, ...], teams: dict[str, Team], schedules: dict[str, Schedule]
) -> None:
    """A schedule target with gaps and no fallback anywhere could page nobody."""
    paths = {ident: p for ident, _, p in r.entries("matrices")}
    for mx in matrices:
        for lv in mx.levels:
            for t in lv.notify:
                sid = (
                    t.id
                    if t.kind == "schedule"
                    else teams[t.id].schedule
                    if t.kind == "team" and t.id in teams
                    else None
                )
                if (
                    sid
                    and sid in schedules
                    and schedules[sid].fallback is None
                    and lv.fallback is None
                ):
                    r.warn(
                        (*paths[mx.id], "levels", lv.number - 1, "notify"),
                        f"matrix '{mx.id}' level {lv.number} targets schedule '{sid}' with no "
                        "fallback: if nobody is on call, nobody is paged",
                    )
