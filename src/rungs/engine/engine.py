"""The engine as `bootstrap` builds it: one writer, the policy store, the command object,
the read-side views, the managers and their loop.

Wiring is by constructor arguments only. The dispatcher (seam 4) is made by `deliveries`,
a factory given the policy store and `record`, so that it exists before the first command
runs; the engine calls its `lease`/`accept` from the effect writer and, under the virtual
clock, its `next_due`/`run_due` from `advance`.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Protocol, TypeVar

from sqlalchemy import Connection
from sqlalchemy import Engine as Database

from rungs.core.model import Case, Event
from rungs.engine.commands import AfterDecide, Commands, Deliveries
from rungs.engine.heartbeats import Heartbeats
from rungs.engine.loop import DueWork, Loop
from rungs.engine.policies import PolicyStore
from rungs.engine.timers import Timers
from rungs.engine.wake import Wake
from rungs.engine.writer import Writer
from rungs.store.views import Views
from rungs.time.clock import Clock

__all__ = ["Dispatcher", "Engine", "Record", "RecordBody"]

T = TypeVar("T")
Decide = Callable[[Connection, str, Event, int], tuple[Case, int]]
# the transaction body of a burst of delivery results: `rungs.store.outbox.record_results`
RecordBody = Callable[[Connection, list[T], Decide], object]
Record = Callable[[list[T]], "Future[object]"]


class Dispatcher(Deliveries, DueWork, Protocol):
    """This process's dispatcher as the engine sees it (seams 4 and 5)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


DispatcherFactory = Callable[[PolicyStore, Record[object]], Dispatcher]


class Engine:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        batch: int = 500,
        dispatcher: DispatcherFactory | None = None,
        record_body: RecordBody[object] | None = None,
        after_decide: AfterDecide | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.wake = Wake(postgres=db.dialect.name == "postgresql")
        self.writer = Writer(db, after_commit=self._committed)
        self.policies = PolicyStore(db, self.writer, clock)
        self._record_body = record_body
        self.dispatcher = dispatcher(self.policies, self.record) if dispatcher else None
        self.commands = Commands(
            self.writer,
            self.policies,
            clock,
            self.wake,
            deliveries=self.dispatcher,
            after_decide=after_decide,
        )
        self.views = Views(db, self.policies, clock)
        self.timers = Timers(self.commands, clock, batch=batch)
        self.heartbeats = Heartbeats(self.commands, self.policies, clock, batch=batch)
        self.loop = Loop(
            db,
            self.writer,
            clock,
            self.wake,
            self.policies,
            [self.timers, self.heartbeats],
            deliveries=self.dispatcher,
        )
        self._started = False

    def record(self, batch: list[object]) -> Future[object]:
        """Delivery results in ONE writer transaction: rows marked, each result fed to the
        core as a `delivery` event (seam 4; the body is `store.outbox.record_results`)."""
        body = self._record_body
        if body is None:
            raise RuntimeError("no record body was wired (rungs.store.outbox.record_results)")
        return self.writer.submit(lambda conn: body(conn, batch, self.commands.decide_in))

    def start(self, *, engine: bool = True) -> None:
        """Start the dispatcher (when wired) and, when `engine`, the loop (real clock only)."""
        if self._started:
            return
        self._started = True
        if self.dispatcher is not None:
            self.dispatcher.start()
        if engine:
            self.loop.start()

    def advance(self, to: int) -> int:
        """Virtual clock: run everything due up to `to` in instant order (see `Loop`)."""
        return self.loop.advance(to)

    def stop(self) -> None:
        """Deliveries under way finish, the loop stops, then the writer drains and closes."""
        if self.dispatcher is not None:
            self.dispatcher.stop()
        self.loop.stop()
        self.writer.close()

    def _committed(self, ok: bool) -> None:
        self.commands.committed(ok)
