"""Claiming due rows: the one query shape behind timers, heartbeats and outbox polls.

Rows are taken by their due column in due order, at most `limit` at a time; on PostgreSQL
`FOR UPDATE SKIP LOCKED`, so several engines (or dispatchers) share the work and none waits
for rows another holds. Claimed rows are the caller's until its transaction ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, Table, func, select

__all__ = ["claim_due", "first_due"]


def claim_due(
    conn: Connection,
    table: Table,
    due: str,
    until: int,
    *,
    limit: int,
    order: Sequence[str] = (),
    where: Sequence[ColumnElement[bool]] = (),
) -> Sequence[Row[Any]]:
    """The rows due at or before `until` (row-locked on PostgreSQL), earliest first."""
    col = table.c[due]
    q = (
        select(table)
        .where(col.is_not(None), col <= until, *where)
        .order_by(col, *(table.c[name] for name in order))
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True)
    return conn.execute(q).all()


def first_due(
    conn: Connection, table: Table, due: str, *, where: Sequence[ColumnElement[bool]] = ()
) -> int | None:
    """The earliest due instant in `table` (None when nothing is waiting)."""
    found = conn.execute(select(func.min(table.c[due])).where(*where)).scalar()
    return None if found is None else int(found)
