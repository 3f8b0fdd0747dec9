"""Statements on the driver's own cursor, inside the SQLAlchemy transaction.

The hot statements (every command, every due timer, every result) go straight to the
driver: SQLAlchemy's per-statement work (compile cache look-up, parameter processing,
result set-up) cost more than SQLite itself. Each statement is written once with `:name`
parameters and kept in the driver's own style too.

On PostgreSQL the writer runs each batch in psycopg's pipeline mode (`batch`): a statement
whose result nobody reads at once goes out with the next read (or the batch's end) instead of
costing a round trip of its own, and `run_later` reads a result only at the batch's end. An
error then surfaces at the next read, possibly in a later command: the writer rolls such a
batch back and runs each command alone, outside pipeline mode (see `engine/writer.py`).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

__all__ = [
    "DUPLICATE",
    "FailedTransaction",
    "Sql",
    "batch",
    "pipeline",
    "run",
    "run_all",
    "run_later",
    "run_many",
    "savepoint",
    "sync_after_execute",
    "write_many",
]


def _duplicates() -> tuple[type[BaseException], ...]:
    """A unique key taken, as each layer raises it: SQLAlchemy's statements wrap the driver's
    error in `IntegrityError`; the hot statements here raise the driver's own."""
    found: list[type[BaseException]] = [IntegrityError, sqlite3.IntegrityError]
    with suppress(ImportError):  # psycopg is there where PostgreSQL is used
        import psycopg

        found.append(psycopg.IntegrityError)
    return tuple(found)


# what a caller catches to retry when another process took the same key at the same moment
DUPLICATE = _duplicates()


_PIPE = "rungs_pipeline"  # conn.info: psycopg's Pipeline while a block runs in pipeline mode
_LATER = "rungs_later"  # conn.info: (cursor, fill) read at the end of the writer's batch
_WRITES = "rungs_writes"  # conn.info: the writer's batch's cursor for results nobody reads


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
    if not stmt.rows and conn.dialect.name == "postgresql":
        shared = conn.info.get(_WRITES)
        if shared is not None:  # the writer's pipelined batch: nothing to wait for
            shared.execute(stmt.pyformat, params)
            return None
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
    """Execute once per row (one round trip on psycopg's pipeline); the rows it changed
    (in pipeline mode a round trip of its own: `write_many` when nobody reads the count)."""
    cur, pg = _cursor(conn)
    try:
        cur.executemany(stmt.pyformat if pg else stmt.named, rows)
        if pg:
            _sync(conn)
        return int(cur.rowcount)
    finally:
        cur.close()


def write_many(conn: Connection, stmt: Sql, rows: list[dict[str, Any]]) -> None:
    """`run_many` for writes whose count nobody reads: in pipeline mode they go out with
    the next read, no round trip of their own (on the batch's one cursor for writes)."""
    if conn.dialect.name != "postgresql":
        run_many(conn, stmt, rows)
        return
    shared = conn.info.get(_WRITES)
    cur = shared if shared is not None else conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        if len(rows) == 1:  # psycopg's executemany costs more for one row
            cur.execute(stmt.pyformat, rows[0])
        else:
            cur.executemany(stmt.pyformat, rows)
    finally:
        if shared is None:
            cur.close()


def run_later(
    conn: Connection, stmt: Sql, params: dict[str, Any], fill: Callable[[list[Any]], None]
) -> None:
    """Execute; `fill(rows)` with every row it returns: at once, or, in the writer's
    pipelined batch (`batch`), at the batch's end before it commits, so reading the result
    costs no round trip. For results only needed after the commit (an outbox row's id)."""
    later = conn.info.get(_LATER)
    if later is None:
        fill(run_all(conn, stmt, params))
        return
    cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    later.append((cur, fill))
    cur.execute(stmt.pyformat, params)


def _exec(conn: Connection, sql: str) -> None:
    cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cur.execute(sql)
    finally:
        cur.close()


def _sync(conn: Connection) -> None:
    """In pipeline mode: send what is queued and take every result in (raising the first
    error among them); else nothing."""
    pipe = conn.info.get(_PIPE)
    if pipe is not None:
        pipe.sync()


@contextmanager
def savepoint(conn: Connection, name: str = "rungs_one") -> Iterator[None]:
    """The block's writes as one unit inside the transaction: on an exception they are
    rolled back (the transaction goes on, usable again on PostgreSQL too) and it is raised.
    On the driver's cursor, like the hot statements: SQLAlchemy's `begin_nested` costs more
    per timer than SQLite's own SAVEPOINT and RELEASE.

    In pipeline mode the block is synced on entry (an earlier statement's error is raised
    before it, not in it) and before its release (its own errors are raised in it), and an
    aborted pipeline is synced before the rollback to the savepoint."""
    _sync(conn)
    _exec(conn, f"SAVEPOINT {name}")
    try:
        yield
        _sync(conn)
    except BaseException:
        if conn.info.get(_PIPE) is not None:
            with suppress(Exception):  # the rest of an aborted pipeline: PipelineAborted
                _sync(conn)
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
    outer = conn.info.get(_PIPE)
    try:
        with conn.connection.dbapi_connection.pipeline() as pipe:  # type: ignore[union-attr]
            conn.info[_PIPE] = pipe
            yield
    finally:
        if outer is None:
            conn.info.pop(_PIPE, None)


def sync_after_execute(conn: Connection, *_args: Any) -> None:
    """SQLAlchemy's `after_cursor_execute` on PostgreSQL: a statement run through SQLAlchemy
    in pipeline mode is synced at once, so that its result (rows, rowcount) is there for
    SQLAlchemy to read, as outside pipeline mode. The hot statements do not go this way."""
    _sync(conn)


class FailedTransaction(Exception):
    """The transaction failed on the server (a statement's error was caught and the command
    went on): it cannot commit, though psycopg's COMMIT would say nothing."""


@contextmanager
def batch(conn: Connection) -> Iterator[None]:
    """The writer's batch: on PostgreSQL in pipeline mode (see `pipeline`), with `run_later`
    results read at its end; then `FailedTransaction` when the server failed the
    transaction, whose COMMIT would only roll it back, silently. SQLite: as it is."""
    if conn.dialect.name != "postgresql":
        yield
        return
    later: list[tuple[Any, Callable[[list[Any]], None]]] = []
    conn.info[_LATER] = later
    writes = conn.info[_WRITES] = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        with pipeline(conn):
            yield
        for cur, fill in later:
            if cur.pgresult is not None:  # else rolled back to a savepoint: nobody's rows
                fill(list(cur.fetchall()))
        failed(conn)
    finally:
        conn.info.pop(_LATER, None)
        conn.info.pop(_WRITES, None)
        writes.close()
        for cur, _ in later:
            cur.close()


def failed(conn: Connection) -> None:
    """`FailedTransaction` when the server has failed this transaction (PostgreSQL)."""
    if conn.dialect.name != "postgresql":
        return
    from psycopg.pq import TransactionStatus  # PostgreSQL only: psycopg is optional

    status = conn.connection.dbapi_connection.info.transaction_status  # type: ignore[union-attr]
    if status == TransactionStatus.INERROR:
        raise FailedTransaction("the transaction failed on the server; it cannot commit")
