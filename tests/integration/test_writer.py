"""The batched writer never commits half a failed command, a failing timer is kept and
leaves nothing of itself behind, and a writer that cannot get the database says so at once
(`Unavailable`) instead of hanging."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text, update

from rungs.core.model import Refused
from rungs.engine import RETRY_US, Engine
from rungs.engine.writer import Unavailable, Writer
from rungs.policy import Policy
from rungs.store.db import FileLock, LockTimeout, make_engine, upgrade
from rungs.store.outbox import Row
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


class _FailingLease:
    """A dispatcher whose `lease` fails while `armed`: the effect writer calls it after the
    case, its timeline entries and its timers are written, so a decision fails half-way."""

    def __init__(self) -> None:
        self.armed = False

    def lease(self, policy: Policy) -> int | None:
        if self.armed:
            raise RuntimeError("lease failed")
        return None

    def accept(self, rows: list[Row]) -> None:
        pass

    def next_due(self) -> int | None:
        return None

    def run_due(self, until: int) -> int:
        return 0

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def health(self) -> dict[str, Any]:
        return {"running": True, "stuck": False}


def test_a_timer_whose_decision_fails_half_way_leaves_nothing_of_it(tmp_path: Path) -> None:
    eng = make_engine(f"sqlite:///{tmp_path / 's.db'}")
    upgrade(eng)
    start = parse_instant("2026-11-24T08:00:00Z")
    fake = _FailingLease()
    svc = Engine(eng, VirtualClock(start), dispatcher=lambda *_: fake)
    svc.policies.ensure(ACME.read_text(), str(ACME))
    body = {"customer": "initech", "category": "general", "priority": "P2", "title": "t"}
    c1, _ = open_case(svc, dict(body))

    def snapshot() -> tuple[Any, ...]:
        with eng.connect() as conn:
            return (
                conn.execute(text("select level, state from cases")).all(),
                conn.execute(text("select count(*) from timeline")).scalar_one(),
                conn.execute(text("select count(*) from outbox")).scalar_one(),
                conn.execute(text("select key, payload from timers order by key")).all(),
            )

    before = snapshot()
    fake.armed = True  # the level escalation at 08:30 pages: its lease fails after the writes
    svc.advance(start + 30 * 60_000_000)
    cases_, entries, rows, kept = snapshot()
    assert (cases_, entries, rows) == before[:3]  # not the new level, nor half its timeline
    assert [k for k, _ in kept] == [k for k, _ in before[3]]  # every timer as it was ...
    with eng.connect() as conn:  # ... the failed one due again a minute later
        due = conn.execute(
            text("select due from timers where case_id = :c and key = 'level'"), {"c": c1.id}
        ).scalar_one()
    assert due == start + 30 * 60_000_000 + RETRY_US
    fake.armed = False
    svc.advance(start + 32 * 60_000_000)  # the retry decides it whole, once
    with eng.connect() as conn:
        assert conn.execute(text("select level from cases")).scalar_one() == 2
        kinds = conn.execute(text("select kind from timeline order by id")).scalars().all()
    assert kinds.count("escalated") == 1, kinds
    svc.stop()


def _holder(path: Path) -> int:
    """Another process's writer: an fd holding the writer lock beside the database."""
    fd = os.open(f"{path}-writer.lock", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def test_a_held_writer_lock_answers_the_whole_batch_unavailable_at_once(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    eng = make_engine(f"sqlite:///{path}")
    with eng.begin() as conn:
        conn.execute(text("create table t (x int)"))
    w = Writer(eng)
    assert isinstance(w.lock, FileLock)
    w.lock.timeout = 0.3
    fd = _holder(path)
    gate = threading.Event()
    try:
        blocker = w.submit(lambda conn: gate.wait(5))  # the next five batch up behind it
        futures = [w.submit(lambda c, i=i: c.execute(text(f"insert into t values ({i})")))
                   for i in range(5)]  # fmt: skip
        t0 = time.monotonic()
        gate.set()
        for f in [blocker, *futures]:
            with pytest.raises(Unavailable) as caught:
                f.result(timeout=10)
            assert caught.value.retry_after > 0
            assert isinstance(caught.value.__cause__, LockTimeout)
        # one wait for the batch behind the blocker, not one per command retried alone
        assert time.monotonic() - t0 < 1.5
        assert w.health()["alive"] and not w.health()["stuck"]
    finally:
        os.close(fd)  # the other process goes: the lock is free again
    w.call(lambda c: c.execute(text("insert into t values (9)")))
    w.close()
    with eng.connect() as conn:
        assert conn.execute(text("select x from t")).scalars().all() == [9]


def test_a_lock_given_up_on_is_let_go_and_a_later_writer_gets_it(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    lock = FileLock(f"{path}-writer.lock", timeout=0.2)
    fd = _holder(path)
    with pytest.raises(LockTimeout):
        lock.__enter__()
    os.close(fd)  # released: the abandoned wait takes it and lets it go at once
    deadline = time.monotonic() + 5
    while True:  # another process can have it (non-blocking), so nobody keeps it
        other = os.open(f"{path}-writer.lock", os.O_RDWR)
        try:
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            assert time.monotonic() < deadline, "the abandoned wait kept the lock"
            time.sleep(0.01)
        finally:
            os.close(other)  # closing the fd drops its lock too
    with lock:  # and the writer gets it when it asks again
        pass
    # a wait given up on while the lock is still held is adopted by the next attempt
    fd = _holder(path)
    with pytest.raises(LockTimeout):
        lock.__enter__()
    threading.Timer(0.1, os.close, (fd,)).start()
    lock.timeout = 5
    t0 = time.monotonic()
    with lock:
        assert time.monotonic() - t0 < 2
    lock.close()
