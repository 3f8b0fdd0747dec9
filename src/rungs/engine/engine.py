"""The engine as `bootstrap` builds it: one writer, the policy store, the command object,
the read-side views, the managers and their loop.

Wiring is by constructor arguments only. The dispatcher is made by `dispatcher`, a
factory given the policy store, the writer and `record` (delivery results in one writer
transaction, each fed to the core), so that it exists before the first command runs; the
engine calls its `lease`/`accept` from the effect writer and, under the virtual clock, its
`next_due`/`run_due` from `advance`.

`health()` is what `/healthz` shows of the process's workers: the writer, the loop and the
dispatcher, each judged on the monotonic clock (see their own `health`). At start an
integration whose `key_env` is unset is logged (it takes no events until it is set).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Protocol

from sqlalchemy import Engine as Database

from rungs.engine.alerts import AlertRouter
from rungs.engine.changes import Changes
from rungs.engine.commands import Commands, Deliveries
from rungs.engine.flapping import Flaps
from rungs.engine.heartbeats import Heartbeats
from rungs.engine.integrations import keys_unset
from rungs.engine.loop import DueWork, Loop
from rungs.engine.maintenance import Maintenance
from rungs.engine.policies import PolicyStore
from rungs.engine.surveys import Surveys
from rungs.engine.timers import Timers
from rungs.engine.verifier import Verifier
from rungs.engine.wake import Wake
from rungs.engine.writer import Writer
from rungs.store.outbox import Outcome, recorder
from rungs.store.views import Views
from rungs.time.clock import Clock

__all__ = ["Delivery", "DispatcherFactory", "Engine", "Record"]

log = logging.getLogger("rungs.engine")
Record = Callable[[list[Outcome]], "Future[None]"]


class Delivery(Deliveries, DueWork, Protocol):
    """This process's dispatcher as the engine sees it: rows handed over at commit, and
    due deliveries run by `advance` under the virtual clock."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def health(self) -> dict[str, Any]: ...


DispatcherFactory = Callable[[PolicyStore, Writer, Record], Delivery]


class Engine:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        batch: int = 500,
        dispatcher: DispatcherFactory | None = None,
        policy_file: str | None = None,
        verify_every: int | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.wake = Wake(postgres=db.dialect.name == "postgresql")
        self.writer = Writer(db, after_commit=self._committed)
        # file-managed when `policy_file` is given (see `PolicyStore`)
        self.policies = PolicyStore(db, self.writer, clock, managed_by=policy_file)
        # results are decided by the command object, made after the dispatcher it is given
        record = recorder(
            self.writer,
            lambda *a: self.commands.decide_in(*a),
            clock,
            decide_each=lambda *a: self.commands.decide_each_in(*a),
        )
        self.dispatcher = dispatcher(self.policies, self.writer, record) if dispatcher else None
        self.changes = Changes(db)  # cases written, after each commit (the console's SSE)
        self.commands = Commands(
            self.writer,
            self.policies,
            clock,
            self.wake,
            deliveries=self.dispatcher,
            changes=self.changes,
        )
        self.views = Views(db, self.policies, clock)
        self.timers = Timers(self.commands, clock, batch=batch)
        self.heartbeats = Heartbeats(self.commands, self.policies, clock, batch=batch)
        # `serve --verify-every`: the engine re-runs its history through the core now and then
        self.verifier = Verifier(db, self.writer, clock, verify_every) if verify_every else None
        self.surveys = Surveys(self.commands, clock)
        # storms (issue 17): maintenance windows and flapping alerts, for the alert router
        self.maintenance = Maintenance(self.commands, self.policies, clock)
        self.commands.alerts = router = AlertRouter(self.commands, self.maintenance)
        self.flaps = Flaps(router, self.policies, clock, batch=batch)
        self.loop = Loop(
            db,
            self.writer,
            clock,
            self.wake,
            self.policies,
            [self.timers, self.heartbeats, self.surveys, self.maintenance, self.flaps],
            deliveries=self.dispatcher,
            virtual_only=[self.verifier] if self.verifier is not None else [],
        )
        self._started = False

    def start(self, *, engine: bool = True) -> None:
        """Start the dispatcher (when wired) and, when `engine`, the loop (real clock only)."""
        if self._started:
            return
        self._started = True
        with self.db.connect() as conn:
            self.maintenance.refresh(conn)  # the router sees the stored windows at once
        for unset in self.keys_unset():
            log.warning(
                "integration '%s' takes no events: $%s is not set",
                unset["integration"],
                unset["key_env"],
            )
        if self.dispatcher is not None:
            self.dispatcher.start()
        self.changes.start()
        if engine:
            self.loop.start()
            if self.verifier is not None and not self.clock.virtual:
                self.verifier.start()

    def keys_unset(self) -> list[dict[str, str]]:
        """The current policy's integrations whose `key_env` variable is unset here."""
        return keys_unset(self.policies.policy(self.policies.current_version()), os.environ)

    def health(self) -> dict[str, dict[str, Any]]:
        """The writer, the engine loop and the dispatcher: each with `stuck`."""
        off = {"running": False, "stuck": False}
        return {
            "writer": self.writer.health(),
            "engine_loop": self.loop.health(),
            "dispatcher": self.dispatcher.health() if self.dispatcher is not None else off,
        }

    def advance(self, to: int) -> int:
        """Virtual clock: run everything due up to `to` in instant order (see `Loop`)."""
        return self.loop.advance(to)

    def stop(self) -> None:
        """Deliveries under way finish, the loop stops, then the writer drains and closes."""
        if self.dispatcher is not None:
            self.dispatcher.stop()
        self.changes.stop()
        self.loop.stop()
        if self.verifier is not None:
            self.verifier.stop()
        self.writer.close()

    def _committed(self, ok: bool) -> None:
        self.commands.committed(ok)
