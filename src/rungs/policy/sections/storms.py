"""An integration's storm options: `group_by`, `group_window`, `group_resolve`, `storm` and
`flap` (each off unless set). Read by `integrations`, checked with located errors."""

from __future__ import annotations

from typing import Any

from rungs.policy.loader import Path
from rungs.policy.model import Flap, Grouping, Storm
from rungs.policy.reader import Reader
from rungs.time.instant import DAY, SECOND

__all__ = ["STORM_FIELDS", "read_storm_options"]

STORM_FIELDS = ("group_by", "group_window", "group_resolve", "storm", "flap")
MAX_GROUP_BY = 20  # labels or fields a group is named by
MAX_WINDOW = 7 * DAY  # the longest window any of these options may look back
MAX_COUNT = 100_000
RESOLVES = ("all", "any")


def read_storm_options(
    r: Reader, m: dict[str, Any], p: Path
) -> tuple[Grouping | None, Storm | None, Flap | None]:
    """The grouping, storm guard and flapping options of one integration's mapping `m`."""
    grouping = None
    if "group_by" in m:
        by = r.strings(m["group_by"], (*p, "group_by"), "group_by")
        if not by:
            r.err((*p, "group_by"), "group_by needs at least one label or field")
        elif len(by) > MAX_GROUP_BY:
            r.err((*p, "group_by"), f"group_by names at most {MAX_GROUP_BY} labels or fields")
        elif any(not b or len(b) > 200 for b in by):
            r.err((*p, "group_by"), "each group_by name has 1 to 200 characters")
        resolve = m.get("group_resolve", "all")
        if resolve not in RESOLVES:
            r.err((*p, "group_resolve"), f"unknown group_resolve {resolve!r} (use all or any)")
            resolve = "all"
        window = _window(r, m, "group_window", p) if "group_window" in m else None
        grouping = Grouping(tuple(dict.fromkeys(by)), window, resolve)
    else:
        for k in ("group_window", "group_resolve"):
            if k in m:
                r.err((*p, k), f"'{k}' needs 'group_by'")
    storm = None
    if "storm" in m:
        sp = (*p, "storm")
        sm = r.fields(m["storm"], sp, "storm", ("cases", "window"), ("cases", "window")) or {}
        cases = _count(r, sm, "cases", sp)
        window = _window(r, sm, "window", sp) if "window" in sm else None
        if cases and window:
            storm = Storm(cases, window)
    flap = None
    if "flap" in m:
        fp = (*p, "flap")
        fm = r.fields(m["flap"], fp, "flap", ("count", "window"), ("count", "window")) or {}
        count = _count(r, fm, "count", fp)
        window = _window(r, fm, "window", fp) if "window" in fm else None
        if count and window:
            flap = Flap(count, window)
    return grouping, storm, flap


def _count(r: Reader, m: dict[str, Any], key: str, p: Path) -> int | None:
    if key not in m:
        return None
    v = m[key]
    if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_COUNT:
        r.err((*p, key), f"'{key}' must be a whole number from 1 to {MAX_COUNT}")
        return None
    return v


def _window(r: Reader, m: dict[str, Any], key: str, p: Path) -> int | None:
    v = r.duration(m, key, p)
    if v is not None and not SECOND <= v <= MAX_WINDOW:
        r.err((*p, key), f"'{key}' must be from 1s to 7d")
        return None
    return v
