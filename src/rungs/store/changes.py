"""Change events (PagerDuty's Change Events API): kept so that the handoff of a case that
opens soon after a change can show it ("recent changes").

A change is not an alert: it opens no case and pages nobody. `customer` scopes it (None: it
may concern any customer's case).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Index,
    Integer,
    String,
    Table,
    Text,
    or_,
    select,
)

from rungs.store.jsonbytes import dumps_text, loads
from rungs.store.tables import metadata

__all__ = ["changes", "changes_between", "record_change"]

changes = Table(
    "changes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("integration", String(200), nullable=False),
    Column("customer", String(200)),  # None: any customer's cases
    Column("at", BigInteger, nullable=False),  # when the change happened (the sender's timestamp)
    Column("received_at", BigInteger, nullable=False),
    Column("summary", Text, nullable=False),
    Column("detail", Text, nullable=False),  # JSON: source, custom_details, links
    Index("ix_changes_at", "at"),
)


def record_change(conn: Connection, change: dict[str, Any], now: int) -> int:
    """Store one change (`integration`, `customer`, `at` or now, `summary`, `detail`)."""
    row = conn.execute(
        changes.insert().values(
            integration=change["integration"],
            customer=change.get("customer"),
            at=change.get("at") or now,
            received_at=now,
            summary=change["summary"],
            detail=dumps_text(change.get("detail") or {}),
        )
    )
    return int(row.inserted_primary_key[0])


def changes_between(
    conn: Connection, start: int, end: int, customer: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """Changes that happened in [start, end], latest first (at most `limit`); with a
    `customer`, only that customer's and those for any customer."""
    q = select(changes).where(changes.c.at >= start, changes.c.at <= end)
    if customer is not None:
        q = q.where(or_(changes.c.customer.is_(None), changes.c.customer == customer))
    q = q.order_by(changes.c.at.desc(), changes.c.id.desc()).limit(limit)
    return [
        {
            "integration": r.integration,
            "customer": r.customer,
            "at": r.at,
            "summary": r.summary,
            **loads(r.detail),
        }
        for r in conn.execute(q).all()
    ]
