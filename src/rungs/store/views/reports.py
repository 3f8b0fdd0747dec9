"""Reports: aggregates in SQL over `case_facts`, one row per case (`rungs.store.facts`).

Every report covers the cases opened in a window `[start, end)` (µs) and may be grouped `by`
one dimension. The answers are JSON-ready and carry their definitions
(`rungs.core.definitions`). The same functions answer the API, `rungs report` and
`rungs report --simulate` (over an in-memory database of simulated facts).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection

from rungs.core.facts import CAUSES
from rungs.policy import Policy
from rungs.policy.model import METRICS
from rungs.store.facts import METRIC_COLUMNS
from rungs.store.views.report_open import aging, load, reasons
from rungs.store.views.report_sql import (
    BY,
    IN_WINDOW,
    LIST_LIMIT,
    MINUTE,
    WEEK_OF,
    Window,
    WindowError,
    by_reason,
    fetch,
    group_by,
    percentiles,
    ranked,
    share_of,
    week_start,
    window_of,
)

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


def _counts(conn: Connection, w: Window) -> dict[str, dict[str, Any]]:
    g, group = group_by(w)
    sql = (
        f"SELECT {g}, COUNT(*), SUM(CASE WHEN escalations > 0 THEN 1 ELSE 0 END), "
        "SUM(esc_timer), SUM(esc_rule), SUM(esc_manual), SUM(esc_customer), "
        "COUNT(fr_breached_at), COUNT(nr_breached_at), COUNT(res_breached_at), "
        "SUM(CASE WHEN reopens > 0 THEN 1 ELSE 0 END), SUM(right_first_time) "
        f"FROM case_facts WHERE {IN_WINDOW}{group}"
    )
    out = {}
    for r in fetch(conn, sql, w.params):
        n = int(r[1] or 0)
        esc = int(r[2] or 0)
        out[r[0]] = {
            "cases": n,
            "escalated_cases": esc,
            "escalation_rate": share_of(esc, n),
            "escalations_by_cause": {c: int(v or 0) for c, v in zip(CAUSES, r[3:7], strict=True)},
            "escalations_by_reason": {},
            "sla_breaches": {m: int(v or 0) for m, v in zip(METRICS, r[7:10], strict=True)},
            "reopened_cases": int(r[10] or 0),
            "ping_pong_cases": [],
            "right_first_time": int(r[11] or 0),
        }
    return out


def _ping_pong_ids(conn: Connection, w: Window) -> dict[str, list[str]]:
    g, _ = group_by(w)
    sql = f"SELECT {g}, case_id FROM case_facts WHERE {IN_WINDOW} AND ping_pong = 1"
    out: dict[str, list[str]] = defaultdict(list)
    for gk, cid in fetch(conn, sql, w.params):
        out[gk].append(cid)
    return {k: sorted(v)[:LIST_LIMIT] for k, v in out.items()}


def summary(conn: Connection, w: Window) -> dict[str, Any]:
    """The pinned summary: counts, escalations by cause and reason, breaches, reopens,
    ping-pong cases, right first time; per group too when `by` is given (the whole is then
    the sum of the groups: one scan, not two)."""
    counts = _counts(conn, w)
    reasons_ = by_reason(conn, w)
    pp = _ping_pong_ids(conn, w)
    for gk, c in counts.items():
        c["escalations_by_reason"] = ranked({k: v[0] for k, v in reasons_[gk].items()})
        c["ping_pong_cases"] = pp.get(gk, [])
    if w.by is None:
        return {**counts.get("", _counts_empty()), **w.head(*_SUMMARY_KEYS)}
    return {
        **_total(counts.values()),
        **w.head(*_SUMMARY_KEYS),
        "groups": dict(sorted(counts.items())),
    }


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
    t["escalation_rate"] = share_of(t["escalated_cases"], t["cases"])
    t["escalations_by_reason"] = ranked(reasons_)
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


def sla(conn: Connection, w: Window) -> dict[str, Any]:
    """SLA achievement per metric x priority (x group), and MTTA / MTTR."""
    g, _ = group_by(w)
    rows: list[dict[str, Any]] = []
    outcomes = ", ".join(f"{short}_outcome" for short in METRIC_COLUMNS.values())
    sql = (  # one scan and one sort for the three metrics
        f"SELECT {g}, priority, clock, {outcomes}, COUNT(*) FROM case_facts "
        f"WHERE {IN_WINDOW} GROUP BY g, priority, clock, {outcomes}"
    )
    per_metric: dict[str, dict[tuple[str, str, str], dict[str, int]]] = {
        m: defaultdict(dict) for m in METRIC_COLUMNS
    }
    for gk, prio, clock, *found, n in fetch(conn, sql, w.params):
        for metric, outcome_ in zip(METRIC_COLUMNS, found, strict=True):
            cell = per_metric[metric][(gk, prio, clock)]
            cell[outcome_] = cell.get(outcome_, 0) + int(n)
    for metric, cells in per_metric.items():
        for (gk, prio, clock), c in sorted(cells.items()):
            met, breached = c.get("met", 0), c.get("breached", 0)
            done = met + breached
            row = {
                "metric": metric,
                "priority": prio,
                "clock": clock,
                "met": met,
                "breached": breached,
                "running": c.get("running", 0),
                "paused": c.get("paused", 0),
                "not_applicable": c.get("not_applicable", 0),
                "achievement": round(met / done, 4) if done else None,
            }
            if w.by is not None:
                row[w.by] = gk
            rows.append(row)
    empty = {"mtta": {**percentiles({}), "unacknowledged": 0}, "mttr": percentiles({})}
    mt: dict[str, dict[str, Any]] = defaultdict(lambda: {k: dict(v) for k, v in empty.items()})
    for key, since, where in (
        ("mtta", "first_ack_at", "first_ack_at IS NOT NULL"),
        ("mttr", "resolved_at", "resolved_at IS NOT NULL AND status IN ('resolved', 'closed')"),
    ):
        spans: dict[str, dict[int, tuple[int, int]]] = defaultdict(dict)
        for gk, minute, n, total in fetch(
            conn,
            f"SELECT {g}, ({since} - opened_at) / {MINUTE} AS b, COUNT(*), "
            f"SUM({since} - opened_at) FROM case_facts WHERE {IN_WINDOW} AND {where} GROUP BY g, b",
            w.params,
        ):
            spans[gk][int(minute)] = (int(n), int(total))
        for gk, buckets in spans.items():
            mt[gk][key] = {
                **percentiles(buckets),
                **({"unacknowledged": 0} if key == "mtta" else {}),
            }
    for gk, n in fetch(
        conn,
        f"SELECT {g}, COUNT(*) FROM case_facts WHERE {IN_WINDOW} AND first_ack_at IS NULL "
        "GROUP BY g",
        w.params,
    ):
        mt[gk]["mtta"]["unacknowledged"] = int(n)
    out: dict[str, Any] = {"achievement": rows, **w.head("sla_achievement", "mtta", "mttr")}
    if w.by is None:
        out.update(mt.get("", empty))
    else:
        out["times"] = dict(sorted(mt.items()))
    return out


def escalations(conn: Connection, w: Window) -> dict[str, Any]:
    """Escalation rate overall and per cause, reason, tier, team, category and week."""
    params = w.params
    total = int(fetch(conn, f"SELECT COUNT(*) FROM case_facts WHERE {IN_WINDOW}", params)[0][0])
    causes = fetch(
        conn,
        "SELECT "
        + ", ".join(f"SUM(CASE WHEN esc_{c} > 0 THEN 1 ELSE 0 END)" for c in CAUSES)
        + f" FROM case_facts WHERE {IN_WINDOW}",
        params,
    )[0]
    per_dim = {}
    for dim in ("tier", "team", "category", "customer", "priority"):
        per_dim[dim] = {
            k: {
                "cases": int(n),
                "escalated_cases": int(e),
                "escalation_rate": share_of(int(e), int(n)),
            }
            for k, n, e in fetch(
                conn,
                f"SELECT COALESCE({dim}, ''), COUNT(*), "
                "SUM(CASE WHEN escalations > 0 THEN 1 ELSE 0 END) "
                f"FROM case_facts WHERE {IN_WINDOW} GROUP BY COALESCE({dim}, '') ORDER BY 1",
                params,
            )
        }
    weeks = [
        {
            "week": week_start(int(wk)),
            "cases": int(n),
            "escalated_cases": int(e),
            "escalation_rate": share_of(int(e), int(n)),
        }
        for wk, n, e in fetch(
            conn,
            f"SELECT {WEEK_OF} AS wk, COUNT(*), SUM(CASE WHEN escalations > 0 THEN 1 ELSE 0 END) "
            f"FROM case_facts WHERE {IN_WINDOW} GROUP BY wk ORDER BY wk",
            params,
        )
    ]
    reasons_ = by_reason(conn, Window(w.start, w.end)).get("", {})
    esc = int(
        fetch(
            conn, f"SELECT COUNT(*) FROM case_facts WHERE {IN_WINDOW} AND escalations > 0", params
        )[0][0]
    )
    return {
        "cases": total,
        "escalated_cases": esc,
        "escalation_rate": share_of(esc, total),
        "by_cause": {
            c: {"cases": int(v or 0), "escalation_rate": share_of(int(v or 0), total)}
            for c, v in zip(CAUSES, causes, strict=True)
        },
        "by_reason": {
            k: {"cases": cases, "escalations": n, "escalation_rate": share_of(cases, total)}
            for k, (n, cases) in sorted(reasons_.items(), key=lambda kv: (-kv[1][0], kv[0]))
        },
        **{f"by_{dim}": v for dim, v in per_dim.items()},
        "by_week": weeks,
        **w.head("escalation_rate", "escalations_by_cause", "escalations_by_reason"),
    }


def ping_pong(conn: Connection, w: Window) -> dict[str, Any]:
    """The ping-pong cases with their holders in order and their hops."""
    from rungs.store.jsonbytes import loads

    sql = (
        "SELECT case_id, customer, team, state FROM case_facts "
        f"WHERE {IN_WINDOW} AND ping_pong = 1 ORDER BY case_id"
    )
    items = []
    for cid, customer, team, state in fetch(conn, sql, w.params)[:LIST_LIMIT]:
        holders = loads(state)["holders"]
        items.append(
            {
                "case": cid,
                "customer": customer,
                "holder": team,
                "holders": holders,
                "hops": len(set(holders)),
            }
        )
    items.sort(key=lambda i: i["case"])
    return {"cases": items, **w.head("ping_pong_cases")}


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
