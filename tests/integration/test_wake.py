"""Waking the engine loop: a committed timer due before the loop's planned wake-up wakes it,
a later one does not, and commits landing while a tick is under way do not start tick after
tick (under a stream of new cases on PostgreSQL every tick took long enough for the next
commit to land in it, and the loop read every manager's next due instant ~60 times a second
for nothing)."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import Connection
from sqlalchemy import Engine as Database

from rungs.engine.loop import Loop
from rungs.engine.wake import Wake
from rungs.store.db import make_engine, upgrade
from rungs.store.listen import TIMERS_CHANNEL, listen_thread
from rungs.time.clock import SystemClock
from tests.conftest import reset_database
from tests.loop_doubles import InlineWriter, NoOverrides

S = 1_000_000  # µs


def _commit(wake: Wake, due: int, ok: bool = True) -> None:
    wake.timer_set(None, due)  # type: ignore[arg-type]  # SQLite: no NOTIFY, no connection
    wake.committed(ok)


def test_a_timer_due_before_the_planned_wake_up_wakes_the_loop_and_a_later_one_does_not() -> None:
    wake = Wake(postgres=False)
    assert wake.plan(100 * S, 1.0) == 1.0
    _commit(wake, 102 * S)
    assert not wake.event.is_set()
    _commit(wake, 100 * S + S // 2, ok=False)  # rolled back: nothing was set
    assert not wake.event.is_set()
    _commit(wake, 100 * S + S // 2)
    assert wake.event.is_set()


def test_a_timer_committed_during_a_tick_shortens_the_plan_instead_of_waking() -> None:
    wake = Wake(postgres=False)
    wake.busy()
    _commit(wake, 500 * S)  # far: the plan stands
    assert not wake.event.is_set()
    assert wake.plan(100 * S, 1.0) == 1.0
    wake.busy()
    _commit(wake, 100 * S + S // 4)
    _commit(wake, 100 * S + S // 2)
    assert not wake.event.is_set()
    assert wake.plan(100 * S, 1.0) == pytest.approx(0.25)
    assert wake.planned == 100 * S + S // 4
    wake.busy()
    _commit(wake, 99 * S)  # already due: at once, but not before the pace the tick asks for
    assert wake.plan(100 * S, 1.0, least=0.01) == pytest.approx(0.01)
    wake.busy()
    assert wake.plan(100 * S, 1.0) == 1.0  # what a tick kept is used once


class _Slow:
    """A manager whose reads take 20 ms and which has nothing due."""

    name = "slow"
    batch = 100

    def __init__(self) -> None:
        self.reads = 0

    def next_due(self, conn: Connection) -> int | None:
        self.reads += 1
        time.sleep(0.02)
        return None

    def fire_due(self, conn: Connection, until: int) -> int:
        return 0


def test_commits_during_ticks_do_not_keep_the_loop_ticking(db: Database) -> None:
    clock = SystemClock()
    wake = Wake(postgres=False)
    slow = _Slow()
    loop = Loop(db, InlineWriter(), clock, wake, NoOverrides(), [slow])  # type: ignore[arg-type]
    runner = threading.Thread(target=loop._run, daemon=True)
    runner.start()
    stop = threading.Event()

    def cases() -> None:  # a new case every 5 ms, its first timer five minutes away
        while not stop.is_set():
            _commit(wake, clock.now() + 300 * S)
            time.sleep(0.005)

    opener = threading.Thread(target=cases, daemon=True)
    opener.start()
    time.sleep(0.8)
    stop.set()
    opener.join(timeout=5)
    loop.stop()
    runner.join(timeout=5)
    # one tick (two reads: its own and the next due instant) and its one-second sleep; a
    # loop woken by each commit in a tick reads ~40 times in 0.8 s
    assert slow.reads <= 4


def test_a_sooner_timer_committed_during_a_tick_is_fired_on_time(db: Database) -> None:
    clock = SystemClock()
    wake = Wake(postgres=False)
    slow = _Slow()
    ticks: list[float] = []
    original = slow.next_due

    def next_due(conn: Connection) -> int | None:
        ticks.append(time.monotonic())
        return original(conn)

    slow.next_due = next_due  # type: ignore[method-assign]
    loop = Loop(db, InlineWriter(), clock, wake, NoOverrides(), [slow])  # type: ignore[arg-type]
    runner = threading.Thread(target=loop._run, daemon=True)
    began = time.monotonic()
    runner.start()
    time.sleep(0.005)  # inside the first tick's 20 ms read
    _commit(wake, clock.now() + 100_000)  # due in 0.1 s, well before the planned 1 s
    time.sleep(0.4)
    loop.stop()
    runner.join(timeout=5)
    woke = [t - began for t in ticks[2:]]  # after the first tick's two reads
    assert woke and 0.09 <= woke[0] <= 0.3


def test_a_timer_another_process_committed_wakes_the_loop_only_if_it_comes_sooner() -> None:
    """Another engine's NOTIFY says its timer's due instant: a loop planning to wake
    sooner anyway sleeps on; one that says nothing (an older engine) wakes it."""
    wake = Wake(postgres=True)
    wake.plan(100 * S, 1.0)
    wake.remote(str(400 * S))
    assert not wake.event.is_set()
    wake.remote(str(100 * S + S // 2))
    assert wake.event.is_set()
    wake.wait(0)
    wake.remote("")
    assert wake.event.is_set()
    wake.wait(0)
    wake.busy()
    wake.remote(str(100 * S + S // 4))  # during a tick: kept for the plan
    assert not wake.event.is_set()
    assert wake.plan(100 * S, 1.0) == pytest.approx(0.25)


def test_the_notification_carries_the_due_instant_to_other_engines_only(pg_url: str) -> None:
    reset_database(pg_url)
    ours, theirs = make_engine(pg_url), make_engine(pg_url)
    upgrade(ours)
    heard: list[str] = []
    stop = threading.Event()
    listen_thread(ours, TIMERS_CHANNEL, heard.append, stop, said=True)
    time.sleep(0.5)  # listening
    try:
        for eng, due in ((ours, 111), (theirs, 222)):
            wake = Wake(postgres=True)
            with eng.begin() as conn:
                wake.timer_set(conn, due + 1)
                wake.timer_set(conn, due)  # sooner: told again
                wake.timer_set(conn, due + 5)  # later: not
            wake.committed(True)
        end = time.monotonic() + 5
        while len(heard) < 2 and time.monotonic() < end:
            time.sleep(0.05)
        time.sleep(0.2)
        assert heard == ["223", "222"]  # its own engine's are not heard
    finally:
        stop.set()
        ours.dispose()
        theirs.dispose()
