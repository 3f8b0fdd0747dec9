"""The outbox's SQL (`rungs.store.outbox`) on SQLite and PostgreSQL: rows written once, pending
or already claimed; claims with a lease, held rows given back, outcomes marked only while the
claim is still ours; results recorded with their decisions in one transaction."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, text

from rungs.core.model import Event, Notice, Notify, Refused
from rungs.engine.writer import Writer
from rungs.store.db import make_engine, upgrade
from rungs.store.outbox import (
    Outbox,
    Outcome,
    Stale,
    mark_params,
    new_row,
    record_results,
    write_new,
)

S = 1_000_000


@pytest.fixture
def db(db_url: str) -> Iterator[tuple[Engine, Writer]]:
    engine = make_engine(db_url)
    upgrade(engine)
    writer = Writer(engine)
    yield engine, writer
    writer.close()
    engine.dispose()


def rows(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        found = conn.execute(
            text("SELECT key, status, attempts, next_attempt, last_error FROM outbox")
        ).all()
    return {r.key: r for r in found}


def test_rows_are_written_pending_or_claimed_then_claimed_held_and_marked(
    db: tuple[Engine, Writer],
) -> None:
    engine, writer = db
    out = Outbox(engine, writer)
    pages = [new_row(Notify("C1", "ann", "email", 1, "opened", f"C1:n{i}")) for i in (1, 2)]
    notice = new_row(Notice("C1", "ann", "email", "acknowledged", "bob", 1, "T", "C1:ack0:ann"))
    assert writer.call(lambda c: write_new(c, pages, 10 * S, None, None)) == []
    claimed = writer.call(lambda c: write_new(c, [notice], 10 * S, 70 * S, None))
    assert [(r.key, r.kind, r.attempts, r.created_at) for r in claimed] == [
        ("C1:ack0:ann", "notice", 1, 10 * S)
    ]
    found = rows(engine)
    assert (found["C1:n1"].status, found["C1:n1"].attempts) == ("pending", 0)
    assert (found["C1:ack0:ann"].status, found["C1:ack0:ann"].next_attempt) == ("sending", 70 * S)

    assert out.peek(9 * S) == (False, 10 * S) and out.next_due() == 10 * S
    assert out.peek(10 * S) == (True, None)
    got = out.claim(10 * S, 40 * S, mine=[])
    assert [r.key for r in got] == ["C1:n1", "C1:n2"] and all(r.attempts == 1 for r in got)
    assert out.claim(10 * S, 40 * S, mine=[]) == []  # claimed until 40 s
    assert out.next_due() == 40 * S
    out.hold([got[1].id], 55 * S).result()  # held by a limit: pending again, claim uncounted
    assert (rows(engine)["C1:n2"].status, rows(engine)["C1:n2"].attempts) == ("pending", 0)

    # the lease ran out: claimed again elsewhere; the first claim's outcome is stale
    again = out.claim(40 * S, 80 * S, mine=[])
    assert [(r.key, r.attempts) for r in again] == [("C1:n1", 2)]
    with pytest.raises(Stale):
        out.settle(got[0], "skipped", 41 * S, "x").result()
    out.settle(again[0], "skipped", 41 * S, "not sent").result()
    assert (rows(engine)["C1:n1"].status, rows(engine)["C1:n1"].last_error) == (
        "skipped",
        "not sent",
    )
    assert out.skip(60 * S, "not sent").result() == 1  # C1:n2, due at 55 s


def test_results_are_recorded_with_their_decisions_or_not_at_all(
    db: tuple[Engine, Writer],
) -> None:
    engine, writer = db
    out = Outbox(engine, writer)
    page = new_row(Notify("C1", "ann", "email", 1, "opened", "C1:n1"))
    gone = new_row(Notify("C2", "ann", "email", 1, "opened", "C2:n1"))
    mine = writer.call(lambda c: write_new(c, [page, gone], 0, 60 * S, None))
    decided: list[tuple[str, str, int]] = []

    def decide(conn: Connection, case_id: str, event: Event, now: int) -> None:
        if case_id == "C2":
            raise Refused("no case 'C2'", 404)  # the case is gone: only the row is marked
        decided.append((case_id, event.kind, now))

    batch = [
        Outcome(r, mark_params(r, "sent", 5 * S, None), {"key": r.key, "ok": True}) for r in mine
    ]
    writer.call(lambda c: record_results(c, batch, decide, 5 * S))
    assert decided == [("C1", "delivery", 5 * S)]
    assert {k: r.status for k, r in rows(engine).items()} == {"C1:n1": "sent", "C2:n1": "sent"}
    # marking a row that is no longer this claim's fails the whole transaction (the writer
    # rolls it back, its decision with it)
    with pytest.raises(Stale):
        writer.call(lambda c: record_results(c, batch[:1], decide, 6 * S))
    assert out.next_due() is None
