"""`case_facts` rows: a case's facts (`rungs.core.facts`), kept as its timeline is written.

`keep_facts` runs in the decision's transaction, from the effect writer: a new case's row is
its opening decision's entries stepped from nothing; a later decision's continues the stored
facts with its own entries (no timeline read back). A decision that records no entry facts
depend on (a delivery result, a warning) costs nothing here. `rebuild` derives rows from
whole timelines: the migration's backfill, and a case somehow without a row.

Inside `facts_batch` (a batch of timers deciding in one savepoint), the rows of the batch's
cases are read in one statement before its decisions and the changed ones written in one
at its end, instead of one read and one write per decision.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection

from rungs.core.facts import KINDS, Facts, Terms, derive, outcome, steps
from rungs.core.timeline import decode_entry
from rungs.store.jsonbytes import dumps_text, loads
from rungs.store.sql import Sql, flush, run, run_all, run_many, write_many
from rungs.store.tables import case_facts

__all__ = [
    "COLUMNS",
    "METRIC_COLUMNS",
    "facts_batch",
    "keep_facts",
    "rebuild",
    "row_of",
    "write_rows",
]

METRIC_COLUMNS = {"first_response": "fr", "next_response": "nr", "resolution": "res"}
COLUMNS = tuple(c.name for c in case_facts.columns)
_INSERT = "INSERT INTO case_facts (" + ", ".join(COLUMNS) + ") VALUES ({})"
_UPDATE = (
    "UPDATE case_facts SET "
    + ", ".join(f"{c} = {{0}}" for c in COLUMNS[2:])
    + " WHERE opened_at = {0} AND case_id = {0}"
)
# The facts the columns hold; `state` keeps the rest (holders, levels, the SLA clocks, ...).
_IN_COLUMNS = (
    "customer",
    "tier",
    "category",
    "priority",
    "status",
    "opened_at",
    "first_ack_at",
    "resolved_at",
    "escalations",
    "reopens",
)
_NOT_IN_STATE = ("case", *_IN_COLUMNS, "reasons", "pages")
_LOAD = Sql(
    "SELECT " + ", ".join(_IN_COLUMNS) + ", reasons, pages, state FROM case_facts "
    "WHERE opened_at = :opened_at AND case_id = :case_id"
)
_TIMELINE = Sql("SELECT entry FROM timeline WHERE case_id = :case_id ORDER BY id")


def row_of(f: Facts, terms: Terms) -> tuple[Any, ...]:
    """The row of one case's facts, in `COLUMNS` order: flat columns for SQL, and the whole
    facts as `state`. A tuple, bound by position: a case's row is written by every decision
    that changes its facts, and binding 28 names costs more than the rest of the row."""
    causes = f.causes
    metrics = f.metrics
    per_metric: list[Any] = []
    for name in METRIC_COLUMNS:
        m = metrics.get(name)
        per_metric += (outcome(f, name, terms), m.breached_at if m is not None else None)
    holder = f.holders[-1] if f.holders else None
    return (
        f.opened_at,
        f.case,
        _text(f.customer),
        _text(f.tier),
        _text(f.category),
        f.priority,
        _text(holder),
        f.status,
        f.first_ack_at,
        f.resolved_at,
        f.escalations,
        causes.get("timer", 0),
        causes.get("rule", 0),
        causes.get("manual", 0),
        causes.get("customer", 0),
        f.reopens,
        int(f.ping_pong),
        int(f.right_first_time),
        terms.clock,
        *per_metric,
        dumps_text(f.reasons) if f.reasons else None,
        dumps_text(f.pages) if f.pages else None,
        _state(f),
    )


def _text(v: str | None) -> str | None:
    """A column's text without NUL, which PostgreSQL's text takes none of (a category or a
    `default_customer` id may hold one; the JSON columns escape it)."""
    return v.replace("\x00", "") if v is not None and "\x00" in v else v


def _state(f: Facts) -> str:
    """What the columns do not hold, as JSON: rows stay narrow for the reports' scans."""
    d = f.to_dict()
    for k in _NOT_IN_STATE:
        d.pop(k, None)
    return dumps_text(d)


def _facts_of(case_id: str, stored: Any) -> Facts:
    """The facts back from a stored row (`_LOAD`'s columns)."""
    n = len(_IN_COLUMNS)
    d = loads(stored[n + 2])
    d.update(zip(_IN_COLUMNS, stored[:n], strict=True))
    d["case"] = case_id
    d["reasons"] = loads(stored[n]) if stored[n] else {}
    d["pages"] = loads(stored[n + 1]) if stored[n + 1] else {}
    return Facts.from_dict(d)


_TABLE = frozenset({"case_facts"})
# the insert with named values, kept in the writer's batch on PostgreSQL (`rungs.store.sql`)
_INSERT_NAMED = Sql(
    f"INSERT INTO case_facts ({', '.join(COLUMNS)}) VALUES ({', '.join(':' + c for c in COLUMNS)})"
)


def _insert(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
    """New rows: on PostgreSQL by name, so that a writer batch sends them with its other
    inserts (`rungs.store.sql`); on SQLite positionally, on the driver's cursor."""
    if conn.dialect.name == "postgresql":
        write_many(conn, _INSERT_NAMED, [dict(zip(COLUMNS, r, strict=True)) for r in rows])
    else:
        _positional(conn, _INSERT, rows)


def _positional(conn: Connection, template: str, rows: list[tuple[Any, ...]]) -> None:
    """Run `template` (`{}`: the placeholders) once per row, on the driver's cursor."""
    pg = conn.dialect.name == "postgresql"
    flush(conn, _TABLE)  # kept inserts of case_facts before this statement on it
    mark = "%s" if pg else "?"
    if "{0}" in template:  # the UPDATE: the key (opened_at, case_id) goes last
        sql = template.format(mark)
        rows = [(*r[2:], r[0], r[1]) for r in rows]
    else:
        sql = template.format(", ".join([mark] * len(COLUMNS)))
    cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        if len(rows) == 1:
            cur.execute(sql, rows[0])
        else:
            cur.executemany(sql, rows)
    finally:
        cur.close()


def keep_facts(
    conn: Connection,
    case_id: str,
    opened_at: int,
    entries: Sequence[Mapping[str, Any]],
    terms: Terms,
    *,
    fresh: bool,
) -> None:
    """Bring the case's row up to date with a decision's entries (already in `timeline`)."""
    if not any(e["kind"] in KINDS for e in entries):
        return
    if fresh:
        f = steps(None, entries, terms)
        if f is not None:
            _insert(conn, [row_of(f, terms)])
        return
    key = (opened_at, case_id)
    batch: _Batch | None = conn.info.get(_BATCH)
    if batch is not None and key in batch.stored:
        stored = batch.stored.pop(key)
    else:
        if batch is not None and key in batch.pending:  # its second decision in the batch
            _positional(conn, _UPDATE, [row_of(*batch.pending.pop(key))])
        stored = run(conn, _LOAD, {"opened_at": opened_at, "case_id": case_id})
    if stored is None:  # no row yet (a case from before facts were kept): the whole timeline
        rebuild(conn, [case_id], lambda _customer: terms)
        return
    f = steps(_facts_of(case_id, stored), entries, terms, in_place=True)  # ours alone
    if f is None:
        return
    if batch is not None:
        batch.pending[key] = (f, terms)
    else:
        _positional(conn, _UPDATE, [row_of(f, terms)])


class _Batch:
    """The stored rows read ahead (None: the case has none), the rows to write at the end."""

    __slots__ = ("pending", "stored")

    def __init__(self, stored: dict[tuple[int, str], Any]) -> None:
        self.stored = stored
        self.pending: dict[tuple[int, str], tuple[Facts, Terms]] = {}


_BATCH = "rungs_facts_batch"  # the batch under way, in the connection's `info`


@contextmanager
def facts_batch(conn: Connection, keys: Iterable[tuple[int, str]]) -> Iterator[None]:
    """The block's `keep_facts` on these cases ((opened_at, case id)): their rows read in one
    statement now, the changed ones written in one when the block ends without error (on an
    error, nothing: the caller rolls the block back). Only `keep_facts` reads the rows in
    between, so a row written late is never seen stale."""
    wanted = list(dict.fromkeys(keys))
    stored: dict[tuple[int, str], Any] = dict.fromkeys(wanted)
    n = len(_IN_COLUMNS) + 3
    flush(conn, _TABLE)  # kept inserts of case_facts before the read
    pg = conn.dialect.name == "postgresql"
    # PostgreSQL: planned at each execution, never prepared (see `Sql.prepare`)
    fresh: dict[str, Any] = {"prepare": False} if pg else {}
    for i in range(0, len(wanted), _CHUNK):
        part = wanted[i : i + _CHUNK]
        cur = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cur.execute(_load_many(len(part), pg), [v for k in part for v in k], **fresh)
            for r in cur.fetchall():
                stored[(r[0], r[1])] = tuple(r[2 : 2 + n])
        finally:
            cur.close()
    batch = _Batch(stored)
    conn.info[_BATCH] = batch
    try:
        yield
        if batch.pending:
            _positional(conn, _UPDATE, [row_of(f, t) for f, t in batch.pending.values()])
    finally:
        conn.info.pop(_BATCH, None)


_CHUNK = 500  # keys per read-ahead statement


@lru_cache(maxsize=64)
def _load_many(n: int, pg: bool) -> str:
    """`_LOAD` for n keys: ORed key pairs, which both databases answer from the primary key
    (SQLite scans the table for a row-value IN list)."""
    mark = "%s" if pg else "?"
    pair = f"(opened_at = {mark} AND case_id = {mark})"
    cols = ", ".join(_IN_COLUMNS)
    return (
        f"SELECT opened_at, case_id, {cols}, reasons, pages, state FROM case_facts "
        f"WHERE {' OR '.join([pair] * n)}"
    )


def rebuild(conn: Connection, case_ids: Iterable[str], terms_of: Callable[[str], Terms]) -> int:
    """Derive and write (replacing) the rows of these cases from their whole timelines;
    `terms_of(customer)` gives each case's terms. Returns the rows written."""
    rows = []
    for cid in case_ids:
        entries = [decode_entry(r[0]) for r in run_all(conn, _TIMELINE, {"case_id": cid})]
        opened = next((e for e in entries if e["kind"] == "opened"), None)
        if opened is None:
            continue
        terms = terms_of(str(opened.get("customer") or ""))
        f = derive(entries, terms)
        if f is not None:
            rows.append(row_of(f, terms))
    return write_rows(conn, rows, replace=True)


def write_rows(conn: Connection, rows: list[tuple[Any, ...]], *, replace: bool = False) -> int:
    """Insert rows (deleting any row of the same cases first with `replace`)."""
    if not rows:
        return 0
    if replace:
        run_many(
            conn,
            Sql("DELETE FROM case_facts WHERE opened_at = :o AND case_id = :c"),
            [{"o": r[0], "c": r[1]} for r in rows],
        )
    _insert(conn, rows)
    return len(rows)
