"""Cases as rows: load (row-locked on PostgreSQL), find the open one by dedup key, save.

On PostgreSQL a block may read the open cases of the dedup keys it will look up in one
statement (`open_keys_ahead`: a writer's batch of alerts, an Alertmanager webhook's alerts),
instead of one round trip per alert. Only the keys without an open case are remembered (a
case open then may be ended by another process before the alert comes to it; those keys are
looked up again), then kept current by `insert_case` and `save_case(s)` (every write of
`open_key`): a case this transaction opened is its own until it commits. A savepoint rolled
back forgets it (`rungs.store.sql.forget_on_rollback`); a key thought free that another
process takes meanwhile meets the unique index on `open_key`, and the alert is tried again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection

from rungs.core.model import ENDED, Case, Refused
from rungs.core.sla import next_breach
from rungs.policy import Policy
from rungs.store.jsonbytes import dumps_text, loads
from rungs.store.numbers import take as take_number
from rungs.store.sql import Sql, forget_on_rollback, no_nul, run, run_all, sent, write_many

__all__ = [
    "check_key",
    "find_open",
    "insert_case",
    "load_case",
    "load_case_sent",
    "load_cases",
    "new_case_id",
    "open_keys_ahead",
    "save_case",
    "save_cases",
]


_NEW_NUMBER = Sql("INSERT INTO case_numbers DEFAULT VALUES RETURNING n")
_LOAD = Sql("SELECT state, policy_version FROM cases WHERE id = :id")
_LOAD_LOCKED = Sql("SELECT state, policy_version FROM cases WHERE id = :id FOR UPDATE")
_FIND_OPEN = Sql("SELECT id FROM cases WHERE open_key = :key")
_FIND_OPEN_ANY = Sql("SELECT open_key, id FROM cases WHERE open_key = ANY(:keys)")
_AHEAD = "rungs_open_ahead"  # conn.info: {dedup key: its open case's id, or None}
_COLUMNS = (
    "status",
    "customer",
    "priority",
    "level",
    "assignee",
    "open_key",
    "policy_version",
    "state",
    "updated_at",
    "title",
    "sla_due",
)
_INSERT_CASE = Sql(
    "INSERT INTO cases (id, opened_at, " + ", ".join(_COLUMNS) + ") "
    "VALUES (:id, :opened_at, " + ", ".join(f":{c}" for c in _COLUMNS) + ")"
)
_SAVE_CASE = Sql(
    "UPDATE cases SET " + ", ".join(f"{c} = :{c}" for c in _COLUMNS) + " WHERE id = :id"
)


def new_case_id(conn: Connection) -> str:
    if conn.dialect.name == "postgresql":  # the writer's batch draws its numbers at once
        n = take_number(conn)
        if n is not None:
            return f"C{n}"
    return f"C{run(conn, _NEW_NUMBER, {})[0]}"


def load_case(conn: Connection, case_id: str, *, lock: bool) -> tuple[Case, int] | None:
    """The case and its policy version; `lock` takes the row until commit (PostgreSQL)."""
    return load_case_sent(conn, case_id, lock=lock)()


def load_case_sent(
    conn: Connection, case_id: str, *, lock: bool
) -> Callable[[], tuple[Case, int] | None]:
    """`load_case`, read when called (`rungs.store.sql.sent`: look-ups sent together cost
    one round trip in the writer's pipelined batch)."""
    locked = lock and conn.dialect.name == "postgresql"
    read = sent(conn, _LOAD_LOCKED if locked else _LOAD, {"id": case_id})

    def loaded() -> tuple[Case, int] | None:
        row = read()
        return None if row is None else (Case.from_dict(loads(row[0])), row[1])

    return loaded


def find_open(conn: Connection, dedup_key: str) -> str | None:
    """The open case with this dedup key. Every keyed case is looked up here before it is
    stored, so a key no database column can hold (PostgreSQL takes no NUL) is refused here."""
    check_key(dedup_key)
    ahead = conn.info.get(_AHEAD)
    if ahead is not None and dedup_key in ahead:
        return ahead[dedup_key]  # type: ignore[no-any-return]
    row = run(conn, _FIND_OPEN, {"key": dedup_key})
    return None if row is None else row[0]


@contextmanager
def open_keys_ahead(conn: Connection, keys: Iterable[str]) -> Iterator[None]:
    """PostgreSQL: the open cases of `keys` read in one statement, for `find_open` in the
    block (see the module's doc). SQLite, or already under way: as it is."""
    if conn.dialect.name != "postgresql" or _AHEAD in conn.info:
        yield
        return
    wanted = [k for k in dict.fromkeys(keys) if k and "\x00" not in k]
    if not wanted:
        yield
        return
    ahead: dict[str, str | None] = dict.fromkeys(wanted)
    for key, _ in run_all(conn, _FIND_OPEN_ANY, {"keys": wanted}):
        # open now: looked up again when asked (another process may end it meanwhile, and
        # nothing would refuse an alert added to that ended case)
        del ahead[key]
    conn.info[_AHEAD] = ahead
    forget_on_rollback(conn, _AHEAD)
    try:
        yield
    finally:
        conn.info.pop(_AHEAD, None)


def _written(conn: Connection, rows: Iterable[dict[str, Any]], keys: Iterable[str | None]) -> None:
    """Keep what was read ahead current with cases just written (their `open_key`)."""
    ahead = conn.info.get(_AHEAD)
    if ahead is None:
        return
    for row, key in zip(rows, keys, strict=True):
        if key is None or key not in ahead:
            continue
        if row["open_key"] is not None:
            ahead[key] = row["id"]
        elif ahead[key] == row["id"]:  # ended: its key is free
            ahead[key] = None


def check_key(dedup_key: str) -> None:
    """Refuse a key no database column can hold (PostgreSQL takes no NUL)."""
    if "\x00" in dedup_key:
        raise Refused("dedup_key: a NUL character cannot be part of a key", 422, "dedup_key")


def _row(case: Case, version: int, policy: Policy) -> dict[str, Any]:
    """The columns; `title` and `sla_due` (`core.sla.next_breach`) serve the console's queue."""
    active = case.status not in ENDED  # an ended case frees its dedup key
    return {
        "id": case.id,
        "status": case.status,
        "customer": case.customer,
        "priority": case.priority,
        "level": case.level,
        "assignee": case.assignee,
        "open_key": case.dedup_key if active and case.dedup_key else None,
        "policy_version": version,
        "state": dumps_text(case.to_dict()),
        "updated_at": case.updated_at,
        "title": no_nul(case.title),
        "sla_due": next_breach(case, policy),
    }


def insert_case(conn: Connection, case: Case, version: int, policy: Policy) -> None:
    """Insert a new case decided by `policy` (its version `version`)."""
    row = _row(case, version, policy)
    run(conn, _INSERT_CASE, {**row, "opened_at": case.opened_at})
    _written(conn, [row], [case.dedup_key])


def save_case(conn: Connection, case: Case, version: int, policy: Policy) -> None:
    """Save a case decided by `policy` (its version `version`)."""
    row = _row(case, version, policy)
    run(conn, _SAVE_CASE, row)
    _written(conn, [row], [case.dedup_key])


def load_cases(
    conn: Connection, case_ids: Iterable[str], *, lock: bool
) -> dict[str, tuple[Case, int]]:
    """Many cases and their policy versions in one statement (row-locked on PostgreSQL with
    `lock`); a case that is gone is left out."""
    ids = list(case_ids)
    if not ids:
        return {}
    if conn.dialect.name == "postgresql":
        stmt, params = (_LOAD_ANY_LOCKED if lock else _LOAD_ANY), {"ids": ids}
    else:
        stmt, params = _load_in(len(ids)), {f"i{k}": v for k, v in enumerate(ids)}
    return {r[0]: (Case.from_dict(loads(r[1])), r[2]) for r in run_all(conn, stmt, params)}


_LOAD_ANY = Sql("SELECT id, state, policy_version FROM cases WHERE id = ANY(:ids)")
_LOAD_ANY_LOCKED = Sql(_LOAD_ANY.named + " FOR UPDATE")


@lru_cache(maxsize=64)
def _load_in(n: int) -> Sql:  # SQLite only: digits in names would not survive `Sql` for psycopg
    marks = ", ".join(f":i{k}" for k in range(n))
    return Sql(f"SELECT id, state, policy_version FROM cases WHERE id IN ({marks})")


def save_cases(conn: Connection, saved: Iterable[tuple[Case, int, Policy]]) -> None:
    """Many cases, each with the policy that decided it, in one statement (one round trip
    on psycopg's pipeline)."""
    saved = list(saved)
    rows = [_row(case, version, policy) for case, version, policy in saved]
    write_many(conn, _SAVE_CASE, rows)
    _written(conn, rows, [case.dedup_key for case, _, _ in saved])
