"""The engine loop on the real clock under a steady stream of due work: ticks that fire are
paced (`Loop.pace_s`), so what comes due meanwhile is fired together in one batch."""

from __future__ import annotations

import itertools
import threading
import time

from sqlalchemy import Connection
from sqlalchemy import Engine as Database

from rungs.engine.loop import PACE_S, Loop
from rungs.engine.wake import Wake
from rungs.time.clock import SystemClock
from tests.loop_doubles import InlineWriter, NoOverrides


class _Stream:
    """A manager with something due at every instant (one item per millisecond)."""

    name = "stream"
    batch = 1000

    def __init__(self, clock: SystemClock) -> None:
        self.clock = clock
        self.fired_until = clock.now()
        self.ticks: list[tuple[float, int]] = []  # (monotonic, how many fired)

    def next_due(self, conn: Connection) -> int | None:
        return self.fired_until + 1_000

    def fire_due(self, conn: Connection, until: int) -> int:
        n = max(0, (until - self.fired_until) // 1_000)
        self.fired_until += n * 1_000
        self.ticks.append((time.monotonic(), n))
        return n


def test_ticks_that_fire_are_paced_so_a_stream_is_fired_in_batches(db: Database) -> None:
    clock = SystemClock()
    stream = _Stream(clock)
    loop = Loop(db, InlineWriter(), clock, Wake(postgres=False), NoOverrides(), [stream])  # type: ignore[arg-type]
    assert loop.pace_s == PACE_S > 0
    loop.pace_s = 0.05
    runner = threading.Thread(target=loop._run, daemon=True)
    runner.start()
    time.sleep(0.6)
    loop.stop()
    runner.join(timeout=5)
    firing = [t for t, n in stream.ticks if n]
    assert len(firing) >= 5
    gaps = [b - a for a, b in itertools.pairwise(firing)]
    # paced from each tick's start, not one tick per item as it comes due (~1 ms apart);
    # a tick's reads before it fires take varying time, hence the slack
    assert min(gaps) >= 0.025 and sorted(gaps)[len(gaps) // 2] >= 0.045
    assert sum(n for _, n in stream.ticks) / len(firing) >= 20  # ~50 per batch


def test_a_full_batch_is_followed_at_once(db: Database) -> None:
    clock = SystemClock()
    stream = _Stream(clock)
    stream.fired_until -= 10_000_000  # ten seconds behind: 10,000 due
    stream.batch = 1000
    original = stream.fire_due

    def capped(conn: Connection, until: int) -> int:
        return original(conn, min(until, stream.fired_until + stream.batch * 1_000))

    stream.fire_due = capped  # type: ignore[method-assign]
    loop = Loop(db, InlineWriter(), clock, Wake(postgres=False), NoOverrides(), [stream])  # type: ignore[arg-type]
    loop.pace_s = 1.0
    runner = threading.Thread(target=loop._run, daemon=True)
    runner.start()
    time.sleep(0.5)
    loop.stop()
    runner.join(timeout=5)
    assert sum(n for _, n in stream.ticks) >= 10_000  # the backlog was not paced
