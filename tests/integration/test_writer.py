"""The batched writer never commits half a failed command, and a failing timer is kept."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import text, update

from rungs.core.model import Refused
from rungs.engine import RETRY_US, Engine
from rungs.engine.writer import Writer
from rungs.store.db import make_engine, upgrade
from rungs.store.tables import timers
from rungs.time.clock import VirtualClock
from rungs.time.instant import parse_instant
from tests.conftest import ROOT
from tests.sync import open_case

ACME = ROOT / "src" / "rungs" / "examples" / "acme.yaml"


def test_failed_command_leaves_nothing_and_spares_the_batch(tmp_path: Path) -> None:
    eng = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    with eng.begin() as conn:
        conn.execute(text("create table t (x int)"))
    w = Writer(eng)
    gate = threading.Event()
    blocker = w.submit(lambda conn: gate.wait(5))  # hold the writer so the next three batch up

    def bad(conn):  # type: ignore[no-untyped-def]
        conn.execute(text("insert into t values (1)"))
        raise ValueError("boom")

    def refused(conn):  # type: ignore[no-untyped-def]
        raise Refused("no")

    futures = [w.submit(bad), w.submit(lambda c: c.execute(text("insert into t values (2)"))),
               w.submit(refused)]  # fmt: skip
    gate.set()
    blocker.result()
    with pytest.raises(ValueError):
        futures[0].result()
    futures[1].result()
    with pytest.raises(Refused):
        futures[2].result()
    w.close()
    with eng.connect() as conn:
        assert conn.execute(text("select x from t order by x")).scalars().all() == [2]


def test_a_timer_whose_decision_fails_is_kept_and_others_fire(tmp_path: Path) -> None:
    eng = make_engine(f"sqlite:///{tmp_path / 's.db'}")
    upgrade(eng)
    start = parse_instant("2026-11-24T08:00:00Z")
    svc = Engine(eng, VirtualClock(start))
    svc.policies.ensure(ACME.read_text(), str(ACME))
    body = {"customer": "initech", "category": "general", "priority": "P2", "title": "t"}
    c1, _ = open_case(svc, dict(body))
    c2, _ = open_case(svc, dict(body))
    with eng.begin() as conn:  # corrupt C1's level timer
        conn.execute(
            update(timers)
            .where(timers.c.case_id == c1.id, timers.c.key == "level")
            .values(payload="[]")
        )
    svc.advance(start + 31 * 60_000_000)
    with eng.connect() as conn:
        levels = dict(conn.execute(text("select id, level from cases")).all())
        kept = conn.execute(
            text("select due from timers where case_id = :c and key = 'level'"), {"c": c1.id}
        ).scalar_one()
    assert levels == {c1.id: 1, c2.id: 2}
    # not lost: retried every minute (twice before 08:31, the last retry pending at 08:32)
    assert kept == start + 30 * 60_000_000 + 2 * RETRY_US
    svc.stop()
