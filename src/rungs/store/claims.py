"""Claiming due rows: the one query shape behind timers, heartbeats and outbox polls.

Rows are taken by their due column in due order, at most `limit` at a time; on PostgreSQL
`FOR UPDATE SKIP LOCKED`, so several engines (or dispatchers) share the work and none waits
for rows another holds. Claimed rows are the caller's until its transaction ends.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, Table, func, select

from rungs.store.sql import Sql, run, run_all

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
    pg = conn.dialect.name == "postgresql"
    if not where:  # the engine's every tick: on the driver's cursor, the statement made once
        stmt, shape = _claim(table, due, tuple(order), pg)
        return [shape(*r) for r in run_all(conn, stmt, {"until": until, "limit": limit})]
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
    if not where:
        row = run(conn, _first(table, due), {})
        return None if row is None or row[0] is None else int(row[0])
    found = conn.execute(select(func.min(table.c[due])).where(*where)).scalar()
    return None if found is None else int(found)


@lru_cache(maxsize=32)
def _claim(table: Table, due: str, order: tuple[str, ...], pg: bool) -> tuple[Sql, Any]:
    """The claim statement of a table and the row shape it answers with (its columns by
    name, as SQLAlchemy's rows have them)."""
    names = [c.name for c in table.c]
    cols = ", ".join(f'"{n}"' if n in _QUOTED else n for n in names)
    by = ", ".join((due, *order))
    sql = (
        f"SELECT {cols} FROM {table.name} WHERE {due} IS NOT NULL AND {due} <= :until"
        f" ORDER BY {by} LIMIT :limit"
    )
    return Sql(sql + (" FOR UPDATE SKIP LOCKED" if pg else "")), namedtuple("Due", names)


@lru_cache(maxsize=32)
def _first(table: Table, due: str) -> Sql:
    return Sql(f"SELECT min({due}) FROM {table.name}")


_QUOTED = frozenset({"key", "interval", "end", "start"})  # column names SQL reserves
