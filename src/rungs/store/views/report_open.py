"""Report sections about what is still open or who carries it: aging and the 30-day close
rule, responder load (pages by local window, on-call hours, cases held), reasons, and
value at risk (open cases near or past breach, by customer value)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import Connection

from rungs.core.definitions import definitions
from rungs.core.facts import WINDOWS, terms_for
from rungs.policy import Policy
from rungs.schedules.oncall import shifts
from rungs.store.facts import METRIC_COLUMNS
from rungs.store.jsonbytes import loads
from rungs.store.views.report_sql import (
    IN_WINDOW,
    LIST_LIMIT,
    WEEK_OF,
    Window,
    as_int,
    by_reason,
    fetch,
    json_pairs,
    share_of,
    week_start,
)
from rungs.time.instant import DAY, format_utc

__all__ = ["aging", "load", "reasons", "value_at_risk"]

_BANDS = (("0-1d", 0, DAY), ("1-7d", DAY, 7 * DAY), ("7-30d", 7 * DAY, 30 * DAY))


def aging(conn: Connection, w: Window, now: int) -> dict[str, Any]:
    """Open cases by age band at `now`, and the 30-day close rule."""
    rows = fetch(
        conn,
        f"SELECT case_id, opened_at, status, resolved_at FROM case_facts WHERE {IN_WINDOW}",
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
        "share_within_30_days": share_of(within, decided),
        "late": sorted(late)[:LIST_LIMIT],
        "open_past_30_days": sorted(open_past)[:LIST_LIMIT],
        **w.head("aging", "closed_within_30_days"),
    }


def load(conn: Connection, w: Window, policy: Policy | None) -> dict[str, Any]:
    """Per person: pages by window, on-call hours in the window, cases held; ranked by
    out-of-hours pages."""
    sql = (
        f"SELECT j.key, j.value FROM {json_pairs(conn, 'pages')} "
        "WHERE f.pages IS NOT NULL AND f.opened_at >= :start AND f.opened_at < :end"
    )
    pages: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])

    for person, counts in fetch(conn, sql, w.params):
        got = loads(counts) if isinstance(counts, str) else counts
        mine = pages[person]
        for i in range(3):
            mine[i] += int(got[i])
    held = {
        str(t).removeprefix("person:"): int(n)
        for t, n in fetch(
            conn,
            f"SELECT team, COUNT(*) FROM case_facts WHERE {IN_WINDOW} AND team LIKE 'person:%' "
            "GROUP BY team",
            w.params,
        )
    }
    hours = _on_call_hours(policy, w.start, w.end) if policy is not None else {}
    people = sorted(set(pages) | set(held) | set(hours))
    items = []
    for p in people:
        b, o, s = pages.get(p, [0, 0, 0])
        items.append(
            {
                "person": p,
                **dict(zip(WINDOWS, (b, o, s), strict=True)),
                "out_of_hours": o + s,
                "on_call_hours": round(hours.get(p, 0) / 3.6e9, 2),
                "cases_held": held.get(p, 0),
            }
        )
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
    rs = by_reason(conn, Window(w.start, w.end)).get("", {})
    total = sum(n for n, _ in rs.values())
    top_reasons = sorted(rs.items(), key=lambda kv: (-kv[1][0], kv[0]))[:top]
    sql = (
        f"SELECT {WEEK_OF.replace('opened_at', 'f.opened_at')} AS wk, j.key, "
        f"SUM({as_int(conn, 'j.value')}) FROM {json_pairs(conn, 'reasons')} "
        "WHERE f.reasons IS NOT NULL AND f.opened_at >= :start AND f.opened_at < :end "
        "GROUP BY wk, j.key ORDER BY wk, j.key"
    )
    weeks: dict[str, dict[str, int]] = defaultdict(dict)
    for wk, key, n in fetch(conn, sql, w.params):
        weeks[week_start(int(wk))][key] = int(n)
    return {
        "total": total,
        "top": [
            {"reason": k, "count": n, "share": share_of(n, total), "cases": c}
            for k, (n, c) in top_reasons
        ],
        "by_week": [{"week": wk, "counts": c} for wk, c in sorted(weeks.items())],
        **w.head("reasons"),
    }


MAX_OPEN = 200_000  # open cases read for value at risk, at most


def value_at_risk(conn: Connection, policy: Policy, now: int, horizon: int) -> dict[str, Any]:
    """Open cases with an SLA metric past its target or due within `horizon`, per customer
    with its annual value, most valuable first."""
    rows = fetch(
        conn,
        "SELECT case_id, customer, priority, state, fr_breached_at, nr_breached_at, "
        "res_breached_at FROM case_facts WHERE status IN ('open', 'acknowledged', 'pending') "
        f"ORDER BY case_id LIMIT {MAX_OPEN}",
        {},
    )
    per: dict[str, dict[str, Any]] = {}
    for cid, customer, priority, state, *breached in rows:
        terms = terms_for(policy, customer)
        metrics = loads(state).get("metrics", {})
        past, near = [], []
        for (metric, _), at in zip(METRIC_COLUMNS.items(), breached, strict=True):
            m = metrics.get(metric)
            target = terms.target(priority, metric)
            if at is not None:
                past.append(metric)
            elif m is not None and target is not None and m[0] == "running":
                due = terms.calendar.add_us(m[4], max(0, target - m[2]))
                if due <= now + horizon:
                    near.append({"metric": metric, "due": format_utc(due)})
        if not past and not near:
            continue
        c = policy.customer(customer)
        mine = per.setdefault(
            customer,
            {
                "customer": customer,
                "tier": c.tier if c else None,
                "value": c.value if c else None,
                "past_breach": 0,
                "near_breach": 0,
                "cases": [],
            },
        )
        mine["past_breach" if past else "near_breach"] += 1
        if len(mine["cases"]) < LIST_LIMIT:
            mine["cases"].append(
                {"case": cid, "priority": priority, "breached": past, "due_soon": near}
            )
    customers = sorted(per.values(), key=lambda c: (-(c["value"] or 0), c["customer"]))
    return {
        "now": format_utc(now),
        "horizon_s": horizon // 1_000_000,
        "value_at_risk": sum(c["value"] or 0 for c in customers),
        "customers": customers,
        "definitions": definitions("value_at_risk"),
    }
