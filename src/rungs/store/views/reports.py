"""Reports: aggregates in SQL over `case_facts`, one row per case (`rungs.store.facts`).

Every report covers the cases opened in a window `[start, end)` (µs) and may be grouped `by`
one dimension. The answers are JSON-ready and carry their definitions
(`rungs.core.definitions`). The same functions answer the API, `rungs report` and
`rungs report --simulate` (over an in-memory database of simulated facts).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from rungs.core.definitions import definitions
from rungs.core.facts import CAUSES, WINDOWS
from rungs.policy import Policy
from rungs.policy.model import METRICS
from rungs.schedules.oncall import shifts
from rungs.store.facts import METRIC_COLUMNS
from rungs.time.instant import DAY, format_utc, parse_instant

__all__ = [
    "BY",
    "SECTIONS",
    "Window",
    "WindowError",
    "window_of",
    "aging",
    "escalations",
    "load",
    "ping_pong",
    "reasons",
    "report",
    "sla",
    "summary",
]

BY = ("customer", "team", "priority", "category", "tier")
_IN = "opened_at >= :start AND opened_at < :end"
_WEEK = "((opened_at / 1000000 + 259200) / 604800)"  # weeks since Monday 1969-12-29, UTC
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


def _rows(conn: Connection, sql: str, params: dict[str, Any]) -> list[Any]:
    return list(conn.execute(text(sql), params).all())


def _dim(w: Window) -> tuple[str, str]:
    """(select prefix, group-by suffix) for the window's `by` (a column of `BY`)."""
    if w.by is None:
        return "'' AS g", ""
    assert w.by in BY
    return f"COALESCE({w.by}, '') AS g", " GROUP BY g"


def _rate(n: int, d: int) -> float:
    return round(n / d, 4) if d else 0.0


def _counts(conn: Connection, w: Window) -> dict[str, dict[str, Any]]:
    g, group = _dim(w)
    sql = (
        f"SELECT {g}, COUNT(*), SUM(CASE WHEN escalations > 0 THEN 1 ELSE 0 END), "
        "SUM(esc_timer), SUM(esc_rule), SUM(esc_manual), SUM(esc_customer), "
        "COUNT(fr_breached_at), COUNT(nr_breached_at), COUNT(res_breached_at), "
        "SUM(CASE WHEN reopens > 0 THEN 1 ELSE 0 END), SUM(right_first_time) "
        f"FROM case_facts WHERE {_IN}{group}"
    )
    out = {}
    for r in _rows(conn, sql, w.params):
        n = int(r[1] or 0)
        esc = int(r[2] or 0)
        out[r[0]] = {
            "cases": n,
            "escalated_cases": esc,
            "escalation_rate": _rate(esc, n),
            "escalations_by_cause": {c: int(v or 0) for c, v in zip(CAUSES, r[3:7], strict=True)},
            "escalations_by_reason": {},
            "sla_breaches": {m: int(v or 0) for m, v in zip(METRICS, r[7:10], strict=True)},
            "reopened_cases": int(r[10] or 0),
            "ping_pong_cases": [],
            "right_first_time": int(r[11] or 0),
        }
    return out


def _json_pairs(conn: Connection, column: str, w: Window, extra: str = "") -> str:
    """A FROM clause that spreads a JSON object column into (key, value) rows."""
    if conn.dialect.name == "postgresql":
        return f"case_facts f CROSS JOIN LATERAL json_each_text(f.{column}::json) j"
    return f"case_facts f, json_each(f.{column}) j"


def _num(conn: Connection, expr: str) -> str:
    return f"CAST({expr} AS INTEGER)" if conn.dialect.name == "postgresql" else expr


def _by_reason(conn: Connection, w: Window) -> dict[str, dict[str, tuple[int, int]]]:
    """Per group: reason -> (escalated entries, cases)."""
    g = "''" if w.by is None else f"COALESCE(f.{w.by}, '')"
    sql = (
        f"SELECT {g} AS g, j.key, SUM({_num(conn, 'j.value')}), COUNT(*) "
        f"FROM {_json_pairs(conn, 'reasons', w)} "
        f"WHERE f.reasons IS NOT NULL AND f.opened_at >= :start AND f.opened_at < :end "
        "GROUP BY g, j.key"
    )
    out: dict[str, dict[str, tuple[int, int]]] = defaultdict(dict)
    for gk, key, n, cases in _rows(conn, sql, w.params):
        out[gk][key] = (int(n), int(cases))
    return out


def _ranked(counts: dict[str, int]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _ping_pong_ids(conn: Connection, w: Window) -> dict[str, list[str]]:
    g, _ = _dim(w)
    sql = f"SELECT {g}, case_id FROM case_facts WHERE {_IN} AND ping_pong = 1"
    out: dict[str, list[str]] = defaultdict(list)
    for gk, cid in _rows(conn, sql, w.params):
        out[gk].append(cid)
    return {k: sorted(v)[:LIST_LIMIT] for k, v in out.items()}


def summary(conn: Connection, w: Window) -> dict[str, Any]:
    """The pinned summary: counts, escalations by cause and reason, breaches, reopens,
    ping-pong cases, right first time; per group too when `by` is given (the whole is then
    the sum of the groups: one scan, not two)."""
    counts = _counts(conn, w)
    reasons_ = _by_reason(conn, w)
    pp = _ping_pong_ids(conn, w)
    for gk, c in counts.items():
        c["escalations_by_reason"] = _ranked({k: v[0] for k, v in reasons_[gk].items()})
        c["ping_pong_cases"] = pp.get(gk, [])
    if w.by is None:
        return {**counts.get("", _counts_empty()), **w.head(*_SUMMARY_KEYS)}
    return {**_total(counts.values()), **w.head(*_SUMMARY_KEYS),
            "groups": dict(sorted(counts.items()))}  # fmt: skip


def _total(groups: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The summary of the whole from its groups' summaries."""
    t = _counts_empty()
    ids: list[str] = []
    reasons_: dict[str, int] = {}
    for g in groups:
        for k in ("cases", "escalated_cases", "reopened_cases", "right_first_time"):
            t[k] += g[k]
        for k in ("escalations_by_cause", "sla_breaches"):
            for kk, v in g[k].items():
                t[k][kk] += v
        for kk, v in g["escalations_by_reason"].items():
            reasons_[kk] = reasons_.get(kk, 0) + v
        ids += g["ping_pong_cases"]
    t["escalation_rate"] = _rate(t["escalated_cases"], t["cases"])
    t["escalations_by_reason"] = _ranked(reasons_)
    t["ping_pong_cases"] = sorted(ids)[:LIST_LIMIT]
    return t


_SUMMARY_KEYS = (
    "cases",
    "escalated_cases",
    "escalation_rate",
    "escalations_by_cause",
    "escalations_by_reason",
    "sla_breaches",
    "reopened_cases",
    "ping_pong_cases",
    "right_first_time",
)


def _counts_empty() -> dict[str, Any]:
    return {
        "cases": 0,
        "escalated_cases": 0,
        "escalation_rate": 0.0,
        "escalations_by_cause": dict.fromkeys(CAUSES, 0),
        "escalations_by_reason": {},
        "sla_breaches": dict.fromkeys(METRICS, 0),
        "reopened_cases": 0,
        "ping_pong_cases": [],
        "right_first_time": 0,
    }


def percentiles(values: list[int]) -> dict[str, Any]:
    """Mean, median and p90 (nearest rank) in seconds, and how many values."""
    if not values:
        return {"n": 0, "mean_s": None, "median_s": None, "p90_s": None}
    v = sorted(values)
    n = len(v)

    def rank(p: int) -> float:
        return round(v[max(0, math.ceil(p / 100 * n) - 1)] / 1e6, 3)

    return {"n": n, "mean_s": round(sum(v) / n / 1e6, 3), "median_s": rank(50), "p90_s": rank(90)}


def sla(conn: Connection, w: Window) -> dict[str, Any]:
    """SLA achievement per metric x priority (x group), and MTTA / MTTR."""
    g, _ = _dim(w)
    rows: list[dict[str, Any]] = []
    for metric, short in METRIC_COLUMNS.items():
        sql = (
            f"SELECT {g}, priority, clock, {short}_outcome, COUNT(*) FROM case_facts "
            f"WHERE {_IN} GROUP BY g, priority, clock, {short}_outcome"
        )
        cells: dict[tuple[str, str, str], dict[str, int]] = defaultdict(dict)
        for gk, prio, clock, outcome_, n in _rows(conn, sql, w.params):
            cells[(gk, prio, clock)][outcome_] = int(n)
        for (gk, prio, clock), c in sorted(cells.items()):
            met, breached = c.get("met", 0), c.get("breached", 0)
            done = met + breached
            row = {"metric": metric, "priority": prio, "clock": clock, "met": met,
                   "breached": breached, "running": c.get("running", 0),
                   "paused": c.get("paused", 0), "not_applicable": c.get("not_applicable", 0),
                   "achievement": round(met / done, 4) if done else None}  # fmt: skip
            if w.by is not None:
                row[w.by] = gk
            rows.append(row)
    times = _rows(
        conn,
        f"SELECT {g}, first_ack_at - opened_at, CASE WHEN status IN ('resolved', 'closed') "
        f"THEN resolved_at - opened_at END FROM case_facts WHERE {_IN}",
        w.params,
    )
    per: dict[str, tuple[list[int], list[int], list[int]]] = defaultdict(lambda: ([], [], []))
    for gk, ack, res in times:
        acks, ress, unack = per[gk]
        if ack is None:
            unack.append(1)
        else:
            acks.append(int(ack))
        if res is not None:
            ress.append(int(res))
    mt = {
        gk: {
            "mtta": {**percentiles(a), "unacknowledged": len(u)},
            "mttr": percentiles(r),
        }
        for gk, (a, r, u) in sorted(per.items())
    }
    out: dict[str, Any] = {"achievement": rows, **w.head("sla_achievement", "mtta", "mttr")}
    if w.by is None:
        out.update(mt.get("", {"mtta": {**percentiles([]), "unacknowledged": 0},
                                "mttr": percentiles([])}))  # fmt: skip
    else:
        out["times"] = mt
    return out


def escalations(conn: Connection, w: Window) -> dict[str, Any]:
    """Escalation rate overall and per cause, reason, tier, team, category and week."""
    params = w.params
    total = int(_rows(conn, f"SELECT COUNT(*) FROM case_facts WHERE {_IN}", params)[0][0])
    causes = _rows(
        conn,
        "SELECT " + ", ".join(f"SUM(CASE WHEN esc_{c} > 0 THEN 1 ELSE 0 END)" for c in CAUSES)
        + f" FROM case_facts WHERE {_IN}",
        params,
    )[0]  # fmt: skip
    per_dim = {}
    for dim in ("tier", "team", "category", "customer", "priority"):
        per_dim[dim] = {
            k: {
                "cases": int(n),
                "escalated_cases": int(e),
                "escalation_rate": _rate(int(e), int(n)),
            }
            for k, n, e in _rows(
                conn,
                f"SELECT COALESCE({dim}, ''), COUNT(*), "
                "SUM(CASE WHEN escalations > 0 THEN 1 ELSE 0 END) "
                f"FROM case_facts WHERE {_IN} GROUP BY COALESCE({dim}, '') ORDER BY 1",
                params,
            )
        }
    weeks = [
        {
            "week": _week_start(int(wk)),
            "cases": int(n),
            "escalated_cases": int(e),
            "escalation_rate": _rate(int(e), int(n)),
        }
        for wk, n, e in _rows(
            conn,
            f"SELECT {_WEEK} AS wk, COUNT(*), SUM(CASE WHEN escalations > 0 THEN 1 ELSE 0 END) "
            f"FROM case_facts WHERE {_IN} GROUP BY wk ORDER BY wk",
            params,
        )
    ]
    reasons_ = _by_reason(conn, Window(w.start, w.end)).get("", {})
    esc = int(_rows(conn, f"SELECT COUNT(*) FROM case_facts WHERE {_IN} AND escalations > 0",
                    params)[0][0])  # fmt: skip
    return {
        "cases": total,
        "escalated_cases": esc,
        "escalation_rate": _rate(esc, total),
        "by_cause": {
            c: {"cases": int(v or 0), "escalation_rate": _rate(int(v or 0), total)}
            for c, v in zip(CAUSES, causes, strict=True)
        },
        "by_reason": {
            k: {"cases": cases, "escalations": n, "escalation_rate": _rate(cases, total)}
            for k, (n, cases) in sorted(reasons_.items(), key=lambda kv: (-kv[1][0], kv[0]))
        },
        **{f"by_{dim}": v for dim, v in per_dim.items()},
        "by_week": weeks,
        **w.head("escalation_rate", "escalations_by_cause", "escalations_by_reason"),
    }


def _week_start(week: int) -> str:
    return format_utc(week * _WEEK_US + _MONDAY0)[:10]


def ping_pong(conn: Connection, w: Window) -> dict[str, Any]:
    """The ping-pong cases with their holders in order and their hops."""
    from rungs.store.jsonbytes import loads

    sql = (
        f"SELECT case_id, customer, team, state FROM case_facts WHERE {_IN} AND ping_pong = 1 "
        "ORDER BY case_id"
    )
    items = []
    for cid, customer, team, state in _rows(conn, sql, w.params)[:LIST_LIMIT]:
        holders = loads(state)["holders"]
        items.append({"case": cid, "customer": customer, "holder": team,
                      "holders": holders, "hops": len(set(holders))})  # fmt: skip
    items.sort(key=lambda i: i["case"])
    return {"cases": items, **w.head("ping_pong_cases")}


_BANDS = (("0-1d", 0, DAY), ("1-7d", DAY, 7 * DAY), ("7-30d", 7 * DAY, 30 * DAY))


def aging(conn: Connection, w: Window, now: int) -> dict[str, Any]:
    """Open cases by age band at `now`, and the 30-day close rule."""
    rows = _rows(
        conn,
        f"SELECT case_id, opened_at, status, resolved_at FROM case_facts WHERE {_IN}",
        w.params,
    )
    bands = {name: 0 for name, _, _ in _BANDS} | {">30d": 0}
    within, late, open_past = 0, [], []
    for cid, opened, status, resolved in rows:
        if resolved is not None and status in ("resolved", "closed"):
            if resolved - opened <= 30 * DAY:
                within += 1
            else:
                late.append(cid)
            continue
        age = now - opened
        band = next((name for name, lo, hi in _BANDS if lo <= age < hi), ">30d")
        bands[band] += 1
        if age > 30 * DAY:
            open_past.append(cid)
    decided = within + len(late) + len(open_past)
    return {
        "now": format_utc(now),
        "open_by_age": bands,
        "closed_within_30_days": within,
        "share_within_30_days": _rate(within, decided),
        "late": sorted(late)[:LIST_LIMIT],
        "open_past_30_days": sorted(open_past)[:LIST_LIMIT],
        **w.head("aging", "closed_within_30_days"),
    }


def load(conn: Connection, w: Window, policy: Policy | None) -> dict[str, Any]:
    """Per person: pages by window, on-call hours in the window, cases held; ranked by
    out-of-hours pages."""
    sql = (
        f"SELECT j.key, j.value FROM {_json_pairs(conn, 'pages', w)} "
        "WHERE f.pages IS NOT NULL AND f.opened_at >= :start AND f.opened_at < :end"
    )
    pages: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    from rungs.store.jsonbytes import loads

    for person, counts in _rows(conn, sql, w.params):
        got = loads(counts) if isinstance(counts, str) else counts
        mine = pages[person]
        for i in range(3):
            mine[i] += int(got[i])
    held = {
        str(t).removeprefix("person:"): int(n)
        for t, n in _rows(
            conn,
            f"SELECT team, COUNT(*) FROM case_facts WHERE {_IN} AND team LIKE 'person:%' "
            "GROUP BY team",
            w.params,
        )
    }
    hours = _on_call_hours(policy, w.start, w.end) if policy is not None else {}
    people = sorted(set(pages) | set(held) | set(hours))
    items = []
    for p in people:
        b, o, s = pages.get(p, [0, 0, 0])
        items.append({"person": p, **dict(zip(WINDOWS, (b, o, s), strict=True)),
                      "out_of_hours": o + s, "on_call_hours": round(hours.get(p, 0) / 3.6e9, 2),
                      "cases_held": held.get(p, 0)})  # fmt: skip
    items.sort(key=lambda i: (-i["out_of_hours"], i["person"]))
    return {"people": items, **w.head("load")}


def _on_call_hours(policy: Policy, start: int, end: int) -> dict[str, int]:
    """µs on call per person in [start, end), every schedule with its overrides."""
    out: dict[str, int] = defaultdict(int)
    if end - start > 400 * DAY:  # bounded: a year of shifts per schedule at most
        start = end - 400 * DAY
    for schedule in policy.schedules.values():
        for s in shifts(schedule, start, end):
            if s.person:
                out[s.person] += min(s.end, end) - max(s.start, start)
    return out


def reasons(conn: Connection, w: Window, top: int = 20) -> dict[str, Any]:
    """The top reasons with count and share, and their counts per week."""
    rs = _by_reason(conn, Window(w.start, w.end)).get("", {})
    total = sum(n for n, _ in rs.values())
    ranked = sorted(rs.items(), key=lambda kv: (-kv[1][0], kv[0]))[:top]
    sql = (
        f"SELECT {_WEEK.replace('opened_at', 'f.opened_at')} AS wk, j.key, "
        f"SUM({_num(conn, 'j.value')}) FROM {_json_pairs(conn, 'reasons', w)} "
        "WHERE f.reasons IS NOT NULL AND f.opened_at >= :start AND f.opened_at < :end "
        "GROUP BY wk, j.key ORDER BY wk, j.key"
    )
    weeks: dict[str, dict[str, int]] = defaultdict(dict)
    for wk, key, n in _rows(conn, sql, w.params):
        weeks[_week_start(int(wk))][key] = int(n)
    return {
        "total": total,
        "top": [
            {"reason": k, "count": n, "share": _rate(n, total), "cases": c} for k, (n, c) in ranked
        ],
        "by_week": [{"week": wk, "counts": c} for wk, c in sorted(weeks.items())],
        **w.head("reasons"),
    }


SECTIONS = ("summary", "sla", "escalations", "ping-pong", "aging", "load", "reasons")


def report(
    conn: Connection, section: str, w: Window, policy: Policy | None, now: int
) -> dict[str, Any]:
    """One section of the report (see `SECTIONS`)."""
    match section:
        case "summary":
            return summary(conn, w)
        case "sla":
            return sla(conn, w)
        case "escalations":
            return escalations(conn, w)
        case "ping-pong":
            return ping_pong(conn, w)
        case "aging":
            return aging(conn, w, now)
        case "load":
            return load(conn, w, policy)
        case "reasons":
            return reasons(conn, w)
    raise ValueError(f"unknown report section '{section}'")
