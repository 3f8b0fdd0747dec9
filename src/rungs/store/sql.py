"""Statements on the driver's own cursor, inside the SQLAlchemy transaction.

The hot statements (every command, every due timer, every result) go straight to the
driver: SQLAlchemy's per-statement work (compile cache look-up, parameter processing,
result set-up) cost more than SQLite itself. Each statement is written once with `:name`
parameters and kept in the driver's own style too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection

__all__ = ["Sql", "pipeline", "run", "run_many", "run_all", "savepoint"]


class Sql:
    """One statement: `:name` parameters for sqlite3, `%(name)s` for psycopg."""

    __slots__ = ("named", "pyformat", "rows")

    def __init__(self, sql: str) -> None:
        self.named = sql
        self.pyformat = re.sub(r"(?<!:):([a-z_]+)", r"%(\1)s", sql)
        # whether it answers rows: read at once even in pipeline mode, where a cursor has no
        # description until its results are fetched
        self.rows = sql.lstrip().upper().startswith("SELECT") or " RETURNING " in sql.upper()


def _cursor(conn: Connection) -> tuple[Any, bool]:
    """The driver's cursor on this transaction's connection, and whether it is psycopg."""
    return conn.connection.dbapi_connection.cursor(), conn.dialect.name == "postgresql"  # type: ignore[union-attr]


def run(conn: Connection, stmt: Sql, params: dict[str, Any]) -> Any:
    """Execute; the first row when the statement returns rows (else None)."""
    cur, pg = _cursor(conn)
    try:
        cur.execute(stmt.pyformat if pg else stmt.named, params)
        return cur.fetchone() if stmt.rows or cur.description is not None else None
    finally:
        cur.close()


def run_all(conn: Connection, stmt: Sql, params: dict[str, Any]) -> list[Any]:
    """Execute; every row it returns."""
    cur, pg = _cursor(conn)
    try:
        cur.execute(stmt.pyformat if pg else stmt.named, params)
        return list(cur.fetchall()) if stmt.rows or cur.description is not None else []
    finally:
        cur.close()


def run_many(conn: Connection, stmt: Sql, rows: list[dict[str, Any]]) -> int:
    """Execute once per row (one round trip on psycopg's pipeline); the rows it changed."""
    cur, pg = _cursor(conn)
    try:
        cur.executemany(stmt.pyformat if pg else stmt.named, rows)
        return int(cur.rowcount)
    finally:
        cur.close()


def _exec(conn: Connection, sql: str) -> None:
    cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cur.execute(sql)
    finally:
        cur.close()


@contextmanager
def savepoint(conn: Connection, name: str = "rungs_one") -> Iterator[None]:
    """The block's writes as one unit inside the transaction: on an exception they are
    rolled back (the transaction goes on, usable again on PostgreSQL too) and it is raised.
    On the driver's cursor, like the hot statements: SQLAlchemy's `begin_nested` costs more
    per timer than SQLite's own SAVEPOINT and RELEASE."""
    _exec(conn, f"SAVEPOINT {name}")
    try:
        yield
    except BaseException:
        _exec(conn, f"ROLLBACK TO SAVEPOINT {name}")
        _exec(conn, f"RELEASE SAVEPOINT {name}")
        raise
    _exec(conn, f"RELEASE SAVEPOINT {name}")


@contextmanager
def pipeline(conn: Connection) -> Iterator[None]:
    """psycopg's pipeline mode for the block, on PostgreSQL: a statement whose result nobody
    reads goes out with the next one that is read, not in a round trip of its own. An error
    of such a statement is raised at that next read (or at the block's end)."""
    if conn.dialect.name != "postgresql":
        yield
        return
    with conn.connection.dbapi_connection.pipeline():  # type: ignore[union-attr]
        yield
