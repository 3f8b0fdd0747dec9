"""The engine loop: one thread driving every manager, asleep until the next thing is due.

A manager (timers, heartbeats; survey sends later) has one shape: `next_due(conn)` and
`fire_due(conn, until)`, the latter run in a writer transaction. Each tick reads the clock
once, fires what is due, then sleeps until the earliest next due instant (at most a second;
at least `pace_s` after a tick that fired, so a stream of due timers is fired in batches).
It is woken early by `Wake` (a timer set in this process before the planned wake-up) and, on
PostgreSQL, by `LISTEN rungs_timers` (timers set by other processes).

Under the virtual clock nothing runs by itself: `advance(to)` runs, in instant order, every
manager's due work and the dispatcher's due deliveries, then stands at `to`.

`health()` judges the loop on the monotonic clock (the virtual one may stand still): stuck
when its thread is gone, when no tick has succeeded for `stuck_after` seconds, or when an
`advance` under way has taken no step for that long.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from sqlalchemy import Connection, Engine

from rungs.engine.policies import PolicyStore
from rungs.engine.wake import Wake
from rungs.engine.writer import STUCK_S, Writer
from rungs.store.listen import TIMERS_CHANNEL, listen_thread
from rungs.time.clock import Clock, VirtualClock

__all__ = ["DueWork", "Loop", "Manager"]

log = logging.getLogger("rungs.engine")
IDLE_S = 0.05  # the least wait when due rows are held by another engine
MAX_WAIT_S = 1.0
# a tick that fired something is followed by the next one no sooner than this: under a steady
# stream of due timers (1,000/s) each tick then fires ~10 in one transaction instead of one,
# which shares the tick's fixed cost (its reads, the hand-over to the writer, the commit and
# its fsync); a timer is at most this much later for it. A full batch goes on at once.
PACE_S = 0.01


class Manager(Protocol):
    name: str
    batch: int

    def next_due(self, conn: Connection) -> int | None: ...

    def fire_due(self, conn: Connection, until: int) -> int: ...


class DueWork(Protocol):
    """Due work outside the engine's transactions: the dispatcher's deliveries."""

    def next_due(self) -> int | None: ...

    def run_due(self, until: int) -> int: ...


class Loop:
    def __init__(
        self,
        db: Engine,
        writer: Writer,
        clock: Clock,
        wake: Wake,
        policies: PolicyStore,
        managers: Sequence[Manager],
        *,
        deliveries: DueWork | None = None,
        virtual_only: Sequence[DueWork] = (),
    ) -> None:
        self.db = db
        self.writer = writer
        self.clock = clock
        self.wake = wake
        self.policies = policies
        self.managers = list(managers)
        self.deliveries = deliveries
        self.virtual_only = list(virtual_only)  # run by `advance`; threads of their own else
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._listener: threading.Thread | None = None
        self.stuck_after = STUCK_S
        self._last_tick = time.monotonic()  # the last tick that succeeded (monotonic)
        self._last_error: str | None = None  # of the failing ticks since then
        self._advancing: float | None = None  # monotonic: the advance under way's last step
        self._held = False  # the last tick found due rows it could not fire
        self.pace_s = PACE_S

    # the real clock --------------------------------------------------------------------------

    def start(self) -> None:
        """Run due work in the background until `stop` (real clock only)."""
        if self.clock.virtual or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="rungs-engine", daemon=True)
        self._thread.start()
        self._listener = listen_thread(
            self.db, TIMERS_CHANNEL, self.wake.remote, self._stop, said=True
        )

    def stop(self) -> None:
        self._stop.set()
        self.wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def health(self) -> dict[str, Any]:
        """Running (a thread of its own), seconds since the last good tick, the error of the
        failing ones, how long the advance under way has gone without a step; `stuck` when it
        cannot be trusted to fire."""
        now = time.monotonic()
        out: dict[str, Any] = {"running": self._thread is not None}
        stuck = False
        if self._thread is not None:
            since = now - self._last_tick
            out["alive"] = alive = self._thread.is_alive()
            out["last_tick_s"] = round(since, 3)
            out["last_error"] = self._last_error
            stuck = not alive or since > self.stuck_after
        if self.clock.virtual:
            began = self._advancing
            out["advance_s"] = None if began is None else round(now - began, 3)  # idle for
            stuck = stuck or (began is not None and now - began > self.stuck_after)
        out["stuck"] = stuck
        return out

    def next_due(self) -> int | None:
        """The earliest instant any manager has work due (None: nothing waits)."""
        with self.db.connect() as conn:
            return _earliest(m.next_due(conn) for m in self.managers)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.wake.busy()
            began = time.monotonic()
            try:
                full, fired, nxt = self.tick()
            except Exception as exc:  # keep the engine alive through a database restart
                log.exception("engine tick failed; retrying")
                self._last_error = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
                self._stop.wait(1.0)
                continue
            self._last_tick, self._last_error = time.monotonic(), None
            if full:
                continue  # more is due: take the next batch at once
            now = self.clock.now()
            wait = MAX_WAIT_S if nxt is None else max(0.0, min(MAX_WAIT_S, (nxt - now) / 1e6))
            if not fired and self._held:
                wait = max(wait, IDLE_S)  # due rows held by another engine: do not spin
            least = 0.0
            if fired:  # let the next due timers gather into one batch (PACE_S)
                least = self.pace_s - (time.monotonic() - began)
                wait = max(wait, least)
            self.wake.wait(self.wake.plan(now, wait, least))

    def tick(self) -> tuple[bool, int, int | None]:
        """Fire what is due now: (a batch was full, how many fired, the next due instant)."""
        with self.db.connect() as conn:  # one connection for the tick's reads
            self.policies.refresh_overrides(conn)
            now = self.clock.now()
            due = [(m, m.next_due(conn)) for m in self.managers]
        fired, full, was_due = 0, False, False
        for m, at in due:
            if at is not None and at <= now:
                was_due = True
                n = self.writer.call(lambda conn, m=m: m.fire_due(conn, now))
                fired += n
                full = full or n >= m.batch
        # something was due and nothing fired: another engine holds those rows (a tick that
        # woke a moment before the next due instant is not that, and must not idle)
        self._held = was_due and not fired
        if full:
            return True, fired, None
        return False, fired, self.next_due()

    # the virtual clock -----------------------------------------------------------------------

    def advance(self, to: int) -> int:
        """Run, in instant order, all work due up to `to`, then stand at `to`."""
        clock = self.clock
        if not isinstance(clock, VirtualClock):
            raise RuntimeError("advance needs the virtual clock")
        if to < clock.now():
            raise ValueError("the virtual clock cannot go backwards")
        self._advancing = time.monotonic()
        try:
            return self._advance(clock, to)
        finally:
            self._advancing = None

    def _advance(self, clock: VirtualClock, to: int) -> int:
        sources: list[DueWork] = [_InWriter(m, self.db, self.writer) for m in self.managers]
        if self.deliveries is not None:
            sources.append(_AtDue(self.deliveries, clock))
        sources += [_AtDue(w, clock) for w in self.virtual_only]
        total = 0
        while True:
            dues = sorted(
                (at, i) for i, at in enumerate(_due(s, to) for s in sources) if at is not None
            )
            if not dues:
                break
            # only what is due at the earliest instant, then plan again: what that writes (a
            # page, a timer) takes its turn at its own instant, among everything else due
            at, first = dues[0]
            n = sources[first].run_due(at)
            self._advancing = time.monotonic()  # progress: a long advance is not a stuck one
            total += n
            if not n and _due(sources[first], to) == at:
                break  # held by another engine: nothing this one can do
        clock.set(max(clock.now(), to))
        return total


class _InWriter:
    """A manager as due work: its reads on a connection, its firing in a writer transaction."""

    def __init__(self, manager: Manager, db: Engine, writer: Writer) -> None:
        self.manager, self.db, self.writer = manager, db, writer

    def next_due(self) -> int | None:
        with self.db.connect() as conn:
            return self.manager.next_due(conn)

    def run_due(self, until: int) -> int:
        return int(self.writer.call(lambda conn: self.manager.fire_due(conn, until)))


class _AtDue:
    """The dispatcher's deliveries under the virtual clock: each goes at its due instant."""

    def __init__(self, work: DueWork, clock: VirtualClock) -> None:
        self.work, self.clock = work, clock

    def next_due(self) -> int | None:
        return self.work.next_due()

    def run_due(self, until: int) -> int:
        at = self.work.next_due()
        if at is not None:
            self.clock.set(max(self.clock.now(), at))
        return self.work.run_due(until)


def _due(source: DueWork, to: int) -> int | None:
    at = source.next_due()
    return at if at is not None and at <= to else None


def _earliest(instants: Iterable[int | None]) -> int | None:
    found = [t for t in instants if t is not None]
    return min(found) if found else None
