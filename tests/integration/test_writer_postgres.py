"""The writer on PostgreSQL runs a batch in psycopg's pipeline mode: an error that surfaces
in a later command still fails only its own command, a swallowed error is never committed
as if nothing happened, savepoints keep their meaning, case numbers are drawn for a batch
at once (no gap within a process), and claimed outbox rows get their ids before the hand-over.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, text

from rungs.engine.writer import Writer
from rungs.store.cases import new_case_id
from rungs.store.db import make_engine, upgrade
from rungs.store.numbers import expect
from rungs.store.outbox import NewRow, write_new
from rungs.store.sql import FailedTransaction, Sql, batch, run, savepoint, write_many
from tests.conftest import reset_database

_INSERT = Sql("INSERT INTO t (x) VALUES (:x)")
_COUNT = Sql("SELECT count(*) FROM t")


@pytest.fixture
def pg(pg_url: str) -> Iterator[Engine]:
    reset_database(pg_url)
    eng = make_engine(pg_url)
    upgrade(eng)
    with eng.begin() as conn:
        conn.execute(text("CREATE TABLE t (x int PRIMARY KEY)"))
    yield eng
    eng.dispose()


def _held(w: Writer) -> tuple[threading.Event, Any]:
    """Hold the writer on a first command so that the next ones form one batch."""
    gate = threading.Event()
    return gate, w.submit(lambda conn: gate.wait(5))


def _xs(eng: Engine) -> list[int]:
    with eng.connect() as conn:
        return list(conn.execute(text("SELECT x FROM t ORDER BY x")).scalars())


def test_an_error_surfacing_in_a_later_command_fails_only_its_own(pg: Engine) -> None:
    w = Writer(pg)
    gate, blocker = _held(w)
    futures = [
        w.submit(lambda conn: run(conn, _INSERT, {"x": 1})),
        w.submit(lambda conn: run(conn, _INSERT, {"x": 1})),  # duplicate: raised at a read
        w.submit(lambda conn: run(conn, _COUNT, {})[0]),  # the read it surfaces in
        w.submit(lambda conn: run(conn, _INSERT, {"x": 2})),
    ]
    gate.set()
    blocker.result()
    futures[0].result()
    with pytest.raises(psycopg.errors.UniqueViolation):
        futures[1].result()
    assert futures[2].result() == 1  # run alone after the rollback: only the first is in
    futures[3].result()
    w.close()
    assert _xs(pg) == [1, 2]


def test_a_swallowed_error_fails_the_batch_instead_of_a_silent_rollback(pg: Engine) -> None:
    def swallow(conn: Any) -> None:
        try:
            run(conn, _INSERT, {"x": 1})
            run(conn, _COUNT, {})
        except psycopg.errors.UniqueViolation:
            pass  # and goes on: the transaction is failed on the server

    with pg.begin() as conn:
        run(conn, _INSERT, {"x": 1})
    # the rest of the aborted pipeline says so at the batch's end, or, all of it read, the
    # transaction's failed state does: either way nothing is committed, and it is an error
    either = (FailedTransaction, psycopg.errors.PipelineAborted)
    with pytest.raises(either), pg.begin() as conn, batch(conn):
        run(conn, _INSERT, {"x": 2})
        swallow(conn)
    with pytest.raises(FailedTransaction), pg.begin() as conn, batch(conn):
        run(conn, _INSERT, {"x": 3})
        swallow(conn)
        with contextlib.suppress(psycopg.errors.PipelineAborted):
            run(conn, _COUNT, {})  # takes in the rest of the aborted pipeline
    assert _xs(pg) == [1]


def test_the_writer_answers_a_swallowed_error_with_an_error_not_ok(pg: Engine) -> None:
    """The failed pipelined batch is run again command by command, unpipelined: there too a
    command that swallowed a database error is answered with an error, since COMMIT would
    roll its transaction back in silence and "ok" would be a lie."""

    def swallow(conn: Any) -> str:
        run(conn, _INSERT, {"x": 7})
        with contextlib.suppress(psycopg.errors.UniqueViolation):
            run(conn, _INSERT, {"x": 1})
            run(conn, _COUNT, {})
        return "ok"

    with pg.begin() as conn:
        run(conn, _INSERT, {"x": 1})
    writer = Writer(pg)
    try:
        with pytest.raises((FailedTransaction, psycopg.errors.PipelineAborted)):
            writer.call(swallow)
        assert writer.call(lambda conn: run(conn, _INSERT, {"x": 2})) is None  # goes on
    finally:
        writer.close()
    assert _xs(pg) == [1, 2]


def test_a_savepoint_in_a_pipelined_batch_rolls_back_only_its_block(pg: Engine) -> None:
    with pg.begin() as conn, batch(conn):
        run(conn, _INSERT, {"x": 1})
        with pytest.raises(psycopg.errors.UniqueViolation), savepoint(conn):
            run(conn, _INSERT, {"x": 1})  # no read in the block: raised before its release
        run(conn, _INSERT, {"x": 2})
    assert _xs(pg) == [1, 2]


def test_a_batch_draws_its_case_numbers_at_once_and_keeps_the_spare(pg: Engine) -> None:
    w = Writer(pg)
    gate, blocker = _held(w)
    futures = [
        w.submit(new_case_id),  # draws 3: the batch's commands left
        w.submit(lambda conn: None),
        w.submit(new_case_id),
    ]
    gate.set()
    blocker.result()
    assert [f.result() for f in futures] == ["C1", None, "C2"]
    with pg.connect() as conn:  # three drawn in one statement, one of them spare
        assert conn.execute(text("SELECT count(*) FROM case_numbers")).scalar() == 3
    assert w.call(new_case_id) == "C3"  # the spare one
    assert w.call(new_case_id) == "C4"
    w.close()
    with pg.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM case_numbers")).scalar() == 4


def test_claimed_outbox_rows_get_their_ids_before_the_commit(pg: Engine) -> None:
    rows = [NewRow("C1", "notify", f"k{i}", {"i": i}) for i in range(3)]
    w = Writer(pg)
    gate, blocker = _held(w)
    futures = [w.submit(lambda conn, r=r: write_new(conn, [r], 1, 99, None)) for r in rows[:1]]
    futures.append(w.submit(lambda conn: write_new(conn, rows[1:], 1, 99, None)))
    gate.set()
    blocker.result()
    claimed = [row for f in futures for row in f.result()]
    w.close()
    with pg.connect() as conn:
        stored = dict(conn.execute(text("SELECT key, id FROM outbox")).all())
    assert [(r.key, r.id) for r in claimed] == [(k, stored[k]) for k in ("k0", "k1", "k2")]
    assert all(r.attempts == 1 and r.id > 0 for r in claimed)


def test_a_command_expecting_many_cases_draws_their_numbers_at_once(pg: Engine) -> None:
    def group(conn: Any) -> tuple[list[str], int]:
        expect(conn, 3)  # an Alertmanager group of three alerts, one command
        first = new_case_id(conn)
        drawn = run(conn, Sql("SELECT count(*) FROM case_numbers"), {})[0]
        return [first, new_case_id(conn), new_case_id(conn)], drawn

    w = Writer(pg)
    assert w.call(group) == (["C1", "C2", "C3"], 3)
    w.close()


_PID = Sql("SELECT pg_backend_pid()")


def test_the_kept_connection_is_renewed_after_a_pause_so_a_dropped_one_fails_nothing(
    pg: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches that follow each other share one connection (no checkout and ping each);
    after a pause the pool's ping checks it, so a connection the server dropped meanwhile
    (a restart, an idle timeout) costs no command."""
    import rungs.engine.writer as writer

    monkeypatch.setattr(writer, "KEEP_S", 0.2)
    w = Writer(pg)
    first = w.call(lambda conn: run(conn, _PID, {})[0])
    assert w.call(lambda conn: run(conn, _PID, {})[0]) == first  # kept
    with pg.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": first})
    time.sleep(0.3)
    w.call(lambda conn: run(conn, _INSERT, {"x": 7}))
    assert w.call(lambda conn: run(conn, _PID, {})[0]) != first
    w.close()
    assert _xs(pg) == [7]


_JOURNAL = Sql(
    "INSERT INTO journal (case_id, at, policy_version, event) "
    "VALUES (:case_id, :at, :policy_version, :event)"
)
_JOURNALED = Sql("SELECT count(*) FROM journal")


def _entry(case_id: str, at: int, event: str | None = "{}") -> dict[str, Any]:
    return {"case_id": case_id, "at": at, "policy_version": 1, "event": event}


def _journal(eng: Engine) -> list[tuple[str, int]]:
    with eng.connect() as conn:
        rows = conn.execute(text("SELECT case_id, at FROM journal ORDER BY id"))
        return [(r[0], r[1]) for r in rows]


def test_inserts_kept_in_a_batch_go_out_together_in_order_and_before_any_read(
    pg: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plain inserts of a batch's commands are kept and sent as one statement each:
    their rows keep the commands' order, and every read of their table sees them."""
    sent: list[str] = []
    original = psycopg.Cursor.execute

    def execute(self: Any, query: Any, params: Any = None, **kw: Any) -> Any:
        sent.append(str(query))
        return original(self, query, params, **kw)

    monkeypatch.setattr(psycopg.Cursor, "execute", execute)
    w = Writer(pg)
    gate, blocker = _held(w)
    futures = [
        w.submit(lambda conn: write_many(conn, _JOURNAL, [_entry("a", 1), _entry("a", 2)])),
        w.submit(lambda conn: run(conn, _JOURNAL, _entry("b", 3))),
        w.submit(lambda conn: write_many(conn, _JOURNAL, [_entry("c", 4), _entry("c", 5)])),
        w.submit(lambda conn: conn.execute(text("SELECT count(*) FROM journal")).scalar()),
        w.submit(lambda conn: run(conn, _JOURNAL, _entry("d", 6, None))),  # NOT NULL: fails
        w.submit(lambda conn: run(conn, _JOURNAL, _entry("e", 7))),
        w.submit(lambda conn: run(conn, _JOURNALED, {})[0]),
    ]
    sent.clear()
    gate.set()
    blocker.result()
    assert [f.result() for f in futures[:4]] == [None, None, None, 5]
    with pytest.raises(psycopg.errors.NotNullViolation):
        futures[4].result()
    futures[5].result()
    assert futures[6].result() == 6
    w.close()
    assert _journal(pg) == [("a", 1), ("a", 2), ("b", 3), ("c", 4), ("c", 5), ("e", 7)]

    sent.clear()
    w = Writer(pg)
    gate, blocker = _held(w)
    futures = [w.submit(lambda conn, k=k: run(conn, _JOURNAL, _entry("f", k))) for k in range(5)]
    gate.set()
    blocker.result()
    for f in futures:
        f.result()
    w.close()
    inserts = [q for q in sent if q.startswith("INSERT INTO journal")]
    assert len(inserts) == 1 and "unnest" in inserts[0]  # five commands, one statement
    assert [at for c, at in _journal(pg) if c == "f"] == [0, 1, 2, 3, 4]


def test_a_rolled_back_savepoint_drops_the_rows_it_kept_and_only_those(pg: Engine) -> None:
    def command(conn: Any) -> int:
        run(conn, _JOURNAL, _entry("before", 1))
        with contextlib.suppress(RuntimeError), savepoint(conn):
            write_many(conn, _JOURNAL, [_entry("inside", 2), _entry("inside", 3)])
            raise RuntimeError("rolled back")
        with savepoint(conn):
            run(conn, _JOURNAL, _entry("kept", 4))
        run(conn, _JOURNAL, _entry("after", 5))
        return int(run(conn, _JOURNALED, {})[0])

    w = Writer(pg)
    gate, blocker = _held(w)
    done = w.submit(command)
    gate.set()
    blocker.result()
    assert done.result() == 3
    w.close()
    assert _journal(pg) == [("before", 1), ("kept", 4), ("after", 5)]


def test_kept_rows_keep_every_character_and_null_through_the_binary_arrays(pg: Engine) -> None:
    """The arrays go in binary: text that an array literal would have to escape (quotes,
    backslashes, braces, commas, NULL as a word, non-ASCII) arrives as it was sent."""
    awkward = ['{"a": "b\\\\c"}', "x,y", "{}", "NULL", 'say "hi"', "naïve ✓ 日本", " ", ""]
    w = Writer(pg)
    gate, blocker = _held(w)
    futures = [
        w.submit(lambda conn, e=e, i=i: run(conn, _JOURNAL, _entry("g", i, e)))
        for i, e in enumerate(awkward)
    ]
    gate.set()
    blocker.result()
    for f in futures:
        f.result()
    w.close()
    with pg.connect() as conn:
        got = conn.execute(text("SELECT event FROM journal WHERE case_id = 'g' ORDER BY id"))
        assert [r[0] for r in got] == awkward


def test_look_ups_by_a_list_are_planned_at_each_execution_never_prepared(pg: Engine) -> None:
    """psycopg prepares a statement after five executions, and PostgreSQL then keeps the plan
    it made while the table was small (a sequential scan) until the table is next analyzed:
    the batch's look-ups by a list of keys (open cases by dedup key, cases by id, facts rows)
    took 10-24 ms each on a fresh database under load. They are planned each time instead,
    while plain statements are still prepared."""
    from rungs.store.cases import _FIND_OPEN_ANY, load_cases
    from rungs.store.facts import facts_batch
    from rungs.store.sql import run_all

    with pg.connect() as conn:
        for n in range(8):
            run_all(conn, _FIND_OPEN_ANY, {"keys": [f"k{n}", "other"]})
            load_cases(conn, [f"c{n}", "other"], lock=True)
            load_cases(conn, [f"c{n}", "other"], lock=False)
            with facts_batch(conn, [(n, f"c{n}"), (n, "other")]):
                pass
            run(conn, _COUNT, {})
        prepared = list(
            conn.exec_driver_sql("SELECT statement FROM pg_prepared_statements").scalars()
        )
    assert any("count(*) FROM t" in s for s in prepared)  # the check sees what is prepared
    assert not [s for s in prepared if "ANY(" in s or " OR " in s]
