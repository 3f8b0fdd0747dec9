"""What every report section shares: the window `[from, to)` and its checks, the grouping,
and the SQL pieces that differ between SQLite and PostgreSQL (JSON objects spread into rows).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from rungs.core.definitions import definitions
from rungs.time.instant import DAY, format_utc, parse_instant

BY = ("customer", "team", "priority", "category", "tier")
IN_WINDOW = "opened_at >= :start AND opened_at < :end"
WEEK_OF = "((opened_at / 1000000 + 259200) / 604800)"  # weeks since Monday 1969-12-29, UTC
_WEEK_US = 7 * DAY
_MONDAY0 = -3 * DAY
LIST_LIMIT = 1000  # case ids listed in one answer at most


MAX_WINDOW = 3700 * DAY  # about ten years: every input has a bound


class WindowError(ValueError):
    """A report's `from`, `to` or `by` that cannot be used; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def instant_of(value: str, field: str) -> int:
    """A date (`2026-11-01`, midnight UTC) or an ISO 8601 instant with an offset."""
    v = value.strip()
    if len(v) == 10:
        v += "T00:00:00Z"
    try:
        return parse_instant(v)
    except ValueError as exc:
        raise WindowError(field, f"{field}: {exc}") from None


def window_of(start: str, end: str, by: str | None = None) -> Window:
    """The window `[from, to)` and grouping a caller asked for, checked."""
    if len(start) > 40 or len(end) > 40:
        raise WindowError("from" if len(start) > 40 else "to", "a date or instant, please")
    a, b = instant_of(start, "from"), instant_of(end, "to")
    if b <= a:
        raise WindowError("to", "to: must be after from")
    if b - a > MAX_WINDOW:
        raise WindowError("to", "to: a report window spans at most about ten years")
    if by is not None and by not in BY:
        raise WindowError("by", f"by: unknown grouping '{by[:40]}' (use {', '.join(BY)})")
    return Window(a, b, by)


@dataclass(frozen=True, slots=True)
class Window:
    start: int
    end: int
    by: str | None = None

    @property
    def params(self) -> dict[str, int]:
        return {"start": self.start, "end": self.end}

    def head(self, *keys: str) -> dict[str, Any]:
        out: dict[str, Any] = {"from": format_utc(self.start), "to": format_utc(self.end)}
        if self.by:
            out["by"] = self.by
        out["definitions"] = definitions(*keys)
        return out


def fetch(conn: Connection, sql: str, params: dict[str, Any]) -> list[Any]:
    return list(conn.execute(text(sql), params).all())


def group_by(w: Window) -> tuple[str, str]:
    """(select prefix, group-by suffix) for the window's `by` (a column of `BY`)."""
    if w.by is None:
        return "'' AS g", ""
    assert w.by in BY
    return f"COALESCE({w.by}, '') AS g", " GROUP BY g"


def share_of(n: int, d: int) -> float:
    return round(n / d, 4) if d else 0.0


def json_pairs(conn: Connection, column: str) -> str:
    """A FROM clause that spreads a JSON object column into (key, value) rows."""
    if conn.dialect.name == "postgresql":
        return f"case_facts f CROSS JOIN LATERAL json_each_text(f.{column}::json) j"
    return f"case_facts f, json_each(f.{column}) j"


def as_int(conn: Connection, expr: str) -> str:
    return f"CAST({expr} AS INTEGER)" if conn.dialect.name == "postgresql" else expr


def by_reason(conn: Connection, w: Window) -> dict[str, dict[str, tuple[int, int]]]:
    """Per group: reason -> (escalated entries, cases)."""
    g = "''" if w.by is None else f"COALESCE(f.{w.by}, '')"
    sql = (
        f"SELECT {g} AS g, j.key, SUM({as_int(conn, 'j.value')}), COUNT(*) "
        f"FROM {json_pairs(conn, 'reasons')} "
        f"WHERE f.reasons IS NOT NULL AND f.opened_at >= :start AND f.opened_at < :end "
        "GROUP BY g, j.key"
    )
    out: dict[str, dict[str, tuple[int, int]]] = defaultdict(dict)
    for gk, key, n, cases in fetch(conn, sql, w.params):
        out[gk][key] = (int(n), int(cases))
    return out


def ranked(counts: dict[str, int]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


MINUTE = 60_000_000


def percentiles(buckets: dict[int, tuple[int, int]]) -> dict[str, Any]:
    """Mean (exact), median and p90 (nearest rank, to the minute: a bucket's start) in
    seconds, from per-minute buckets `{minute: (count, sum of µs)}` counted in SQL."""
    n = sum(c for c, _ in buckets.values())
    if not n:
        return {"n": 0, "mean_s": None, "median_s": None, "p90_s": None}
    total = sum(t for _, t in buckets.values())
    order = sorted(buckets.items())

    def rank(p: int) -> float:
        want, seen = max(1, math.ceil(p / 100 * n)), 0
        for minute, (c, _) in order:
            seen += c
            if seen >= want:
                return float(minute * 60)
        return float(order[-1][0] * 60)

    return {"n": n, "mean_s": round(total / n / 1e6, 3), "median_s": rank(50), "p90_s": rank(90)}


def week_start(week: int) -> str:
    return format_utc(week * _WEEK_US + _MONDAY0)[:10]
