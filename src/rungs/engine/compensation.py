"""Compensation commands: run a period's credit suggestions, approve or reject one.

A period is a calendar month (UTC), run once it is over, so every breach in it is measured
to the same end and running it again gives the same suggestions (`rungs.core.compensation`).
A decision is written to the ledger and, as a `compensation` entry, to the case's timeline
(through `decide`, like every entry), in one transaction.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from rungs.core.compensation import suggest
from rungs.core.model import Event
from rungs.policy.model import Policy
from rungs.store import compensation as ledger
from rungs.store.compensation import LedgerError
from rungs.time.instant import to_us

__all__ = ["decide_in", "period_bounds", "run_period_in"]

_PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def period_bounds(period: str) -> tuple[int, int]:
    """`YYYY-MM` as [start, end) in µs, UTC."""
    m = _PERIOD.match(period)
    if m is None or not 1970 <= int(m[1]) <= 8999:
        raise LedgerError(422, f"period: '{period[:20]}' is not a month (YYYY-MM)", "period")
    y, mo = int(m[1]), int(m[2])
    start = datetime(y, mo, 1, tzinfo=UTC)
    end = datetime(y + (mo == 12), mo % 12 + 1, 1, tzinfo=UTC)
    return to_us(start), to_us(end)


def run_period_in(conn: Connection, policy: Policy, period: str, now: int) -> dict[str, Any]:
    """Suggest a credit for each breach of the period not yet in the ledger."""
    comp = policy.compensation
    if comp is None:
        raise LedgerError(409, "the policy has no compensation section", "period")
    start, end = period_bounds(period)
    if end > now:
        raise LedgerError(409, f"period {period} is not over yet", "period")
    breaches = ledger.breaches_in(conn, start, end, policy)
    customers = {b.customer: policy.customer(b.customer) for b in breaches}
    made = suggest(breaches, comp, customers)
    new = ledger.record(conn, made, comp.version, comp.currency, now)
    return {"period": period, "table_version": comp.version, "breaches": len(made), "new": new}


def decide_in(
    conn: Connection,
    commands: Any,
    ident: int,
    decision: str,
    reason: str,
    by: str | None,
    actor: str | None,
    cents: int | None,
    now: int,
) -> dict[str, Any]:
    """Approve or reject suggestion `ident`: the ledger row and the case's timeline."""
    status = {"approve": "approved", "reject": "rejected"}[decision]
    found = ledger.pending(conn, ident)
    if status == "approved" and cents is None:
        cents = round(float(found["amount"]) * 100)
    amount = f"{(cents or 0) / 100:.2f}" if status == "approved" else "0.00"
    data = {
        "suggestion": ident,
        "decision": status,
        "metric": found["metric"],
        "amount": amount,
        "currency": found["currency"],
        "table_version": found["table_version"],
    }
    event = Event("compensation", by=by, reason=reason, data=data, actor=actor)
    commands.decide_in(conn, found["case_id"], event, now)  # the timeline first: it may refuse
    return ledger.decide(conn, ident, status, cents, by, reason, now)
