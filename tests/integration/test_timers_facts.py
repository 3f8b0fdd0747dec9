"""A timer batch keeps its cases' `case_facts` rows with one read and one write
(`rungs.store.facts.facts_batch`): the rows are those the cases' timelines derive, as when
each decision read and wrote its own row, also for a case deciding twice in one batch."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Connection, text
from sqlalchemy import Engine as Database

from rungs.core.facts import terms_for
from rungs.core.model import Event
from rungs.engine import Engine
from rungs.store.cases import load_case, save_case
from rungs.store.db import make_engine, upgrade
from rungs.store.facts import facts_batch, rebuild
from rungs.time.clock import VirtualClock
from rungs.time.instant import parse_instant
from tests.conftest import ROOT
from tests.sync import open_case

ACME = ROOT / "src" / "rungs" / "examples" / "acme.yaml"
START = parse_instant("2026-11-24T08:00:00Z")
HOUR = 3_600_000_000


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    db = make_engine(db_url)
    upgrade(db)
    e = Engine(db, VirtualClock(START))
    e.policies.ensure(ACME.read_text(), str(ACME))
    yield e
    e.stop()
    db.dispose()


def _rows(conn: Connection) -> dict[str, tuple[Any, ...]]:
    got = conn.execute(text("SELECT * FROM case_facts ORDER BY case_id")).all()
    return {r.case_id: tuple(r) for r in got}


def _derived(db: Database, engine: Engine) -> dict[str, tuple[Any, ...]]:
    """The rows `rebuild` derives from the whole timelines (rolled back)."""
    with db.connect() as conn, conn.begin() as tx:
        ids = [r[0] for r in conn.execute(text("SELECT id FROM cases")).all()]
        policy = engine.policies.policy(engine.policies.current_version())
        assert rebuild(conn, ids, lambda customer: terms_for(policy, customer)) == len(ids)
        rows = _rows(conn)
        tx.rollback()
    return rows


def test_a_batch_of_timers_keeps_the_rows_the_timelines_derive(engine: Engine) -> None:
    for i in range(12):  # opened together: their timers come due together, one batch
        body = {"customer": "initech", "category": "general", "priority": "P1", "title": f"t{i}"}
        assert open_case(engine, body)[1]
    with engine.db.connect() as conn:
        before = _rows(conn)
    fired = engine.loop.advance(START + 6 * HOUR)
    assert fired >= 24  # every case escalated by timers, more than once
    with engine.db.connect() as conn:
        kept = _rows(conn)
    assert kept != before and len(kept) == 12
    assert kept == _derived(engine.db, engine)


def test_a_case_deciding_twice_in_one_batch_continues_from_its_first_decision(
    engine: Engine,
) -> None:
    body = {"customer": "initech", "category": "general", "priority": "P2", "title": "t"}
    case, _ = open_case(engine, body)
    engine.clock.set(START + HOUR)

    def twice(conn: Connection) -> None:
        found = load_case(conn, case.id, lock=True)
        assert found is not None
        current, version = found
        with facts_batch(conn, [(current.opened_at, current.id)]):
            for kind in ("acknowledge", "resolve"):
                current, _, policy = engine.commands.decide_loaded(
                    conn, current, version, Event(kind, by="alice"), engine.clock.now()
                )
        save_case(conn, current, version, policy)

    engine.writer.call(twice)
    with engine.db.connect() as conn:
        kept = _rows(conn)
    assert kept[case.id][7] == "resolved"  # status, after both decisions
    assert kept == _derived(engine.db, engine)
