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

In that batch, a plain `INSERT INTO t (columns) VALUES (:columns)` is not sent at once but
kept, and the rows every command of the batch kept for one statement go out together as one
`INSERT ... SELECT FROM unnest(arrays)`: psycopg sends each statement (and each row of an
`executemany`) as a message of its own with a write to the socket each, which was most of
the writer's time. Kept rows go out, in order, before any other statement on their table
(`Sql.tables`), before a savepoint begins or ends (a rolled-back savepoint drops its own),
before SQLAlchemy runs anything, and at the batch's end; an error among them then fails the
batch like any pipelined error.

A look-up sent with `sent` is read only when its answer is called: look-ups sent one after
another (an alert's locks and rows) cost one round trip together in pipeline mode.
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
    "flush",
    "flush_before_execute",
    "forget_on_rollback",
    "no_nul",
    "pipeline",
    "run",
    "run_all",
    "run_later",
    "run_many",
    "savepoint",
    "sent",
    "sync_after_execute",
    "write_many",
]


def no_nul(text: str) -> str:
    """Text for a column: PostgreSQL's text takes no NUL, shown as U+FFFD instead (a JSON
    column escapes it, so only plain text columns need this)."""
    return text.replace("\x00", "\ufffd")


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
_KEPT = "rungs_kept"  # conn.info: the writer's batch's kept inserts, {Sql: [params]}
_FORGET = "rungs_forget"  # conn.info: keys of conn.info that a rolled-back savepoint drops
_ARRAY_PARAM = re.compile(r"ANY\(:([a-z_]+)\)|CAST\(:([a-z_]+) AS [^)]*\[\]\)", re.I)
_ANY = re.compile(r"=\s*ANY\(:", re.I)
_TABLES = re.compile(r"\b(?:FROM|INTO|UPDATE|JOIN)\s+([a-z_][a-z0-9_]*)", re.I)
_INSERT = re.compile(r"\s*INSERT INTO ([a-z_]+) \(([^)]*)\) VALUES \(([^)]*)\)\s*", re.I)


class Sql:
    """One statement: `:name` parameters for sqlite3, `%(name)s` for psycopg."""

    __slots__ = ("_unnest", "columns", "named", "opaque", "prepare", "pyformat", "rows", "tables")

    def __init__(self, sql: str) -> None:
        self.named = sql
        # an array parameter (`ANY(:x)`, `CAST(:x AS t[])`) goes in psycopg's binary format:
        # its text format escapes each element in Python, ~17x slower (measured)
        arrays = {a or b for a, b in _ARRAY_PARAM.findall(sql)}
        self.pyformat = re.sub(
            r"(?<!:):([a-z_]+)", lambda m: f"%({m[1]}){'b' if m[1] in arrays else 's'}", sql
        )
        # whether it answers rows: read at once even in pipeline mode, where a cursor has no
        # description until its results are fetched
        self.rows = sql.lstrip().upper().startswith("SELECT") or " RETURNING " in sql.upper()
        # psycopg's `prepare`: a look-up by an array (`= ANY(:x)`) is never prepared but
        # planned at each execution. Its best plan depends on the table's size, and PostgreSQL
        # keeps a prepared statement's generic plan, made while the table was small (a
        # sequential scan), until the table is next analyzed: on a fresh database under load
        # that read took 10-24 ms a batch (measured). None: psycopg's default.
        self.prepare: bool | None = False if _ANY.search(sql) else None
        self.tables = frozenset(t.lower() for t in _TABLES.findall(sql))  # the ones it names
        # naming none, it may touch any (SAVEPOINT, a function): kept rows go out before it
        self.opaque = not self.tables and not sql.lstrip().upper().startswith("NOTIFY")
        # a plain insert of one row of named values: its columns (its rows may be kept)
        insert = _INSERT.fullmatch(sql)
        columns = [c.strip() for c in insert.group(2).split(",")] if insert else []
        plain = insert is not None and [v.strip() for v in insert.group(3).split(",")] == [
            f":{c}" for c in columns
        ]
        self.columns = tuple(columns) if plain else None
        self._unnest: str | None = None

    def unnest(self) -> str | None:
        """PostgreSQL: this insert for many rows at once, one array parameter per column
        (named as the column), inserted in array order (the ids of serial keys follow it);
        None for a statement that is not a plain insert into one of Rungs' tables."""
        if self._unnest is None and self.columns is not None:
            from sqlalchemy.dialects import postgresql

            from rungs.store.tables import metadata  # the column types, for the arrays' casts

            (name,) = self.tables
            table, dialect = metadata.tables.get(name), postgresql.dialect()
            if table is None or any(c not in table.c for c in self.columns):
                self.columns = None
                return None
            cols = ", ".join(self.columns)
            arrays = ", ".join(  # binary: see `_ARRAY_PARAM`
                f"%({c})b::{table.c[c].type.compile(dialect=dialect)}[]" for c in self.columns
            )
            self._unnest = (
                f"INSERT INTO {name} ({cols}) SELECT {cols} FROM unnest({arrays}) "
                f"WITH ORDINALITY AS u({cols}, rungs_n) ORDER BY rungs_n"
            )
        return self._unnest


def _cursor(conn: Connection) -> tuple[Any, bool]:
    """The driver's cursor on this transaction's connection, and whether it is psycopg."""
    return conn.connection.dbapi_connection.cursor(), conn.dialect.name == "postgresql"  # type: ignore[union-attr]


def run(conn: Connection, stmt: Sql, params: dict[str, Any]) -> Any:
    """Execute; the first row when the statement returns rows (else None)."""
    if not stmt.rows and conn.dialect.name == "postgresql":
        shared = conn.info.get(_WRITES)
        if shared is not None:  # the writer's pipelined batch: nothing to wait for
            if not _keep(conn, stmt, [params]):
                _before(conn, stmt)
                _execute(shared, True, stmt, params)
            return None
    _before(conn, stmt)
    cur, pg = _cursor(conn)
    try:
        _execute(cur, pg, stmt, params)
        return cur.fetchone() if stmt.rows or cur.description is not None else None
    finally:
        cur.close()


def _execute(cur: Any, pg: bool, stmt: Sql, params: dict[str, Any]) -> None:
    """How a statement runs on the driver's cursor (on psycopg, with its `prepare`)."""
    if pg:
        cur.execute(stmt.pyformat, params, prepare=stmt.prepare)
    else:
        cur.execute(stmt.named, params)


def sent(conn: Connection, stmt: Sql, params: dict[str, Any]) -> Callable[[], Any]:
    """Execute a statement that returns rows now; its first row (or None) when the answer is
    called. In pipeline mode (the writer's batch) the statement goes out at once but is read
    only then, so statements sent one after another cost one round trip together: the first
    read takes in the results of all, and raises the first error among them. Elsewhere it
    runs at once, and raises at once."""
    if conn.info.get(_PIPE) is None:
        row = run(conn, stmt, params)
        return lambda: row
    _before(conn, stmt)
    cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    _execute(cur, True, stmt, params)

    def read() -> Any:
        try:
            return cur.fetchone()
        finally:
            cur.close()

    return read


def run_all(conn: Connection, stmt: Sql, params: dict[str, Any]) -> list[Any]:
    """Execute; every row it returns."""
    _before(conn, stmt)
    cur, pg = _cursor(conn)
    try:
        _execute(cur, pg, stmt, params)
        return list(cur.fetchall()) if stmt.rows or cur.description is not None else []
    finally:
        cur.close()


def run_many(conn: Connection, stmt: Sql, rows: list[dict[str, Any]]) -> int:
    """Execute once per row (one round trip on psycopg's pipeline); the rows it changed
    (in pipeline mode a round trip of its own: `write_many` when nobody reads the count)."""
    _before(conn, stmt)
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
    if _keep(conn, stmt, rows):
        return
    _before(conn, stmt)
    shared = conn.info.get(_WRITES)
    cur = shared if shared is not None else conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        _send(cur, stmt, rows)
    finally:
        if shared is None:
            cur.close()


def _send(cur: Any, stmt: Sql, rows: list[dict[str, Any]]) -> None:
    """psycopg: the rows as one statement (a plain insert's unnest form), else one message
    per row; one row as it is (psycopg's executemany costs more for one)."""
    if len(rows) == 1:
        _execute(cur, True, stmt, rows[0])
    elif (many := stmt.unnest()) is not None:
        assert stmt.columns is not None
        cur.execute(many, {c: [r[c] for r in rows] for c in stmt.columns})
    else:
        cur.executemany(stmt.pyformat, rows)


def _keep(conn: Connection, stmt: Sql, rows: list[dict[str, Any]]) -> bool:
    """In the writer's batch on PostgreSQL, keep a plain insert's rows to go out with the
    batch's other rows for it (`flush`); False when the statement is to run now."""
    kept = conn.info.get(_KEPT)
    if kept is None or stmt.unnest() is None:
        return False
    if stmt in kept:
        kept[stmt].extend(rows)
    else:
        flush(conn, stmt.tables)  # rows of other statements on its table go out before it
        kept[stmt] = list(rows)
    return True


def flush(conn: Connection, tables: frozenset[str] | None = None) -> None:
    """Send the kept inserts (on `tables`, or all), each statement's rows as one insert, in
    the order the statements were first kept."""
    kept = conn.info.get(_KEPT)
    if not kept:
        return
    due = [s for s in kept if tables is None or s.tables & tables]
    if not due:
        return
    shared = conn.info[_WRITES]
    for stmt in due:
        _send(shared, stmt, kept.pop(stmt))


def _before(conn: Connection, stmt: Sql) -> None:
    """Before `stmt` runs now: the kept rows on the tables it names (all, when it names
    none that could be told) go out first."""
    if conn.info.get(_KEPT) and (stmt.tables or stmt.opaque):
        flush(conn, None if stmt.opaque else stmt.tables)


def flush_before_execute(conn: Connection, *_args: Any) -> None:
    """SQLAlchemy's `before_cursor_execute`: what it runs sees every kept row."""
    if conn.info.get(_KEPT):
        flush(conn)


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
    _before(conn, stmt)
    cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    later.append((cur, fill))
    _execute(cur, True, stmt, params)


def _exec(conn: Connection, sql: str) -> None:
    cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cur.execute(sql)
    finally:
        cur.close()


def forget_on_rollback(conn: Connection, key: str) -> None:
    """`conn.info[key]` holds what a rolled-back savepoint may have made untrue: drop it
    then (its user reads the database again)."""
    conn.info.setdefault(_FORGET, set()).add(key)


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
    aborted pipeline is synced before the rollback to the savepoint. Kept inserts go out
    before it begins and before it ends; those kept in a block rolled back are dropped."""
    flush(conn)
    _sync(conn)
    _exec(conn, f"SAVEPOINT {name}")
    try:
        yield
        flush(conn)
        _sync(conn)
    except BaseException:
        kept = conn.info.get(_KEPT)
        if kept:
            kept.clear()
        for key in conn.info.get(_FORGET, ()):
            conn.info.pop(key, None)
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
    conn.info[_KEPT] = {}
    try:
        with pipeline(conn):
            yield
            flush(conn)
        for cur, fill in later:
            if cur.pgresult is not None:  # else rolled back to a savepoint: nobody's rows
                fill(list(cur.fetchall()))
        failed(conn)
    finally:
        conn.info.pop(_KEPT, None)
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
