"""The compensation ledger: credit suggestions per SLA breach, and the decisions on them.

`breaches_in` reads a period's breaches from `case_facts` (elapsed time measured to the
metric's stop, or to the period's end while it still runs); `record` keeps each suggestion
once per breach and table version, so running a period again adds nothing and changes
nothing; `decide` records an admin's approval (maybe of another amount) or rejection.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from sqlalchemy import Connection, text

from rungs.core.compensation import Breach, Suggestion
from rungs.core.facts import terms_for
from rungs.core.model import Refused
from rungs.policy.model import Policy
from rungs.store.facts import METRIC_COLUMNS
from rungs.store.jsonbytes import dumps_text, loads
from rungs.time.instant import format_utc

__all__ = [
    "LedgerError",
    "breaches_in",
    "decide",
    "ledger",
    "ledger_csv",
    "pending",
    "record",
    "row",
]

MAX_ROWS = 10_000


class LedgerError(Refused):
    """A ledger request that cannot be done; raised before anything is written."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message, status, field)


def breaches_in(conn: Connection, start: int, end: int, policy: Policy) -> list[Breach]:
    """Every SLA metric that breached in [start, end), with its target and elapsed time."""
    out = []
    for metric, short in METRIC_COLUMNS.items():
        rows = conn.execute(
            text(
                f"SELECT case_id, customer, priority, {short}_breached_at, state FROM case_facts "
                f"WHERE {short}_breached_at >= :start AND {short}_breached_at < :end"
            ),
            {"start": start, "end": end},
        ).all()
        for cid, customer, priority, at, state in rows:
            terms = terms_for(policy, customer)
            target = terms.target(priority, metric) or 0
            m = loads(state).get("metrics", {}).get(metric)
            elapsed = 0
            if m is not None:
                st, _, business, _, since = m
                elapsed = business
                if st == "running" and since < end:
                    elapsed += terms.calendar.elapsed_us(since, end)
            out.append(Breach(cid, customer, metric, priority, at, target, elapsed))
    return out


def record(
    conn: Connection, suggestions: list[Suggestion], version: str, currency: str, now: int
) -> int:
    """Insert the suggestions not yet in the ledger; returns how many were new."""
    new = 0
    for s in suggestions:
        b = s.breach
        exists = conn.execute(
            text(
                "SELECT 1 FROM compensation WHERE case_id = :c AND metric = :m "
                "AND table_version = :v"
            ),
            {"c": b.case, "m": b.metric, "v": version},
        ).first()
        if exists:
            continue
        conn.execute(
            text(
                "INSERT INTO compensation (customer, period, case_id, metric, breached_at, "
                "table_version, credit_percent, amount_cents, currency, rationale, status, "
                "created_at) VALUES (:customer, :period, :case_id, :metric, :at, :version, "
                ":pct, :cents, :currency, :why, 'suggested', :now)"
            ),
            {
                "customer": b.customer,
                "period": format_utc(b.at)[:7],
                "case_id": b.case,
                "metric": b.metric,
                "at": b.at,
                "version": version,
                "pct": s.credit_percent,
                "cents": s.amount_cents,
                "currency": currency,
                "why": dumps_text(s.rationale),
                "now": now,
            },
        )
        new += 1
    return new


_COLUMNS = (
    "id",
    "customer",
    "period",
    "case_id",
    "metric",
    "breached_at",
    "table_version",
    "credit_percent",
    "amount_cents",
    "currency",
    "rationale",
    "status",
    "decided_cents",
    "decided_by",
    "decided_at",
    "decision_reason",
)


def _json(r: Any) -> dict[str, Any]:
    d = dict(zip(_COLUMNS, r, strict=True))
    d["breached_at"] = format_utc(d["breached_at"])
    d["decided_at"] = format_utc(d["decided_at"]) if d["decided_at"] is not None else None
    d["rationale"] = loads(d["rationale"])
    d["amount"] = f"{d.pop('amount_cents') / 100:.2f}"
    cents = d.pop("decided_cents")
    d["decided_amount"] = f"{cents / 100:.2f}" if cents is not None else None
    return d


def row(conn: Connection, ident: int) -> dict[str, Any] | None:
    r = conn.execute(
        text(f"SELECT {', '.join(_COLUMNS)} FROM compensation WHERE id = :id"), {"id": ident}
    ).first()
    return None if r is None else _json(r)


def ledger(conn: Connection, customer: str | None, period: str | None) -> list[dict[str, Any]]:
    """The ledger's rows, oldest breach first, for a customer and/or period."""
    where, params = [], {}
    if customer is not None:
        where.append("customer = :customer")
        params["customer"] = customer
    if period is not None:
        where.append("period = :period")
        params["period"] = period
    sql = f"SELECT {', '.join(_COLUMNS)} FROM compensation"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY breached_at, case_id, metric LIMIT {MAX_ROWS}"
    return [_json(r) for r in conn.execute(text(sql), params).all()]


def ledger_csv(rows: list[dict[str, Any]]) -> str:
    cols = [
        "id",
        "customer",
        "period",
        "case_id",
        "metric",
        "breached_at",
        "table_version",
        "credit_percent",
        "amount",
        "currency",
        "status",
        "decided_amount",
        "decided_by",
        "decided_at",
        "decision_reason",
    ]
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow([*cols, "arithmetic"])
    for r in rows:
        w.writerow([*("" if r[c] is None else r[c] for c in cols), r["rationale"]["arithmetic"]])
    return out.getvalue()


def pending(conn: Connection, ident: int) -> dict[str, Any]:
    """Suggestion `ident`, still waiting for a decision (LedgerError otherwise)."""
    found = row(conn, ident)
    if found is None:
        raise LedgerError(404, f"no compensation suggestion {ident}")
    if found["status"] != "suggested":
        raise LedgerError(409, f"suggestion {ident} is already {found['status']}")
    return found


def decide(
    conn: Connection,
    ident: int,
    status: str,
    cents: int | None,
    by: str | None,
    reason: str,
    now: int,
) -> dict[str, Any]:
    """Record the decision on a `pending` suggestion (`cents`: the approved amount)."""
    conn.execute(
        text(
            "UPDATE compensation SET status = :s, decided_cents = :c, decided_by = :by, "
            "decided_at = :now, decision_reason = :r WHERE id = :id AND status = 'suggested'"
        ),
        {
            "s": status,
            "c": cents if status == "approved" else None,
            "by": by,
            "now": now,
            "r": reason,
            "id": ident,
        },
    )
    decided = row(conn, ident)
    assert decided is not None
    return decided
