"""Wiring for `rungs serve` and the tests: database, clock, policy, engine, API."""

from __future__ import annotations

import contextlib
import gc
import json
import os
import signal
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from sqlalchemy import Connection
from sqlalchemy import Engine as Database

from rungs.api.app import create_app
from rungs.api.limits import DEFAULT_MAX_BODY, Rate
from rungs.core.model import Case, Effect, Event, Record
from rungs.engine import Engine, PolicyStore
from rungs.engine.engine import Record as RecordResults
from rungs.engine.service import Service
from rungs.notify.dispatcher import Dispatcher, OutboxHook, Row
from rungs.notify.links import Links
from rungs.policy import Policy
from rungs.policy.channels import channels_of
from rungs.store.db import make_engine, upgrade
from rungs.store.effects import NewRow
from rungs.time.clock import Clock, SystemClock, VirtualClock

__all__ = ["build", "prepare", "settle_heap", "worker_app", "VIRTUAL_CLOCK_ENV", "WORKER_ENV"]

VIRTUAL_CLOCK_ENV = "RUNGS_ALLOW_VIRTUAL_CLOCK"
WORKER_ENV = "RUNGS_WORKER_SETTINGS"  # build()'s settings, as JSON, for worker processes


def build(
    *,
    db_url: str,
    policy_file: str | Path | None,
    virtual_start: int | None = None,
    role: str = "all",
    token_rate: Rate | None = None,
    max_body: int = DEFAULT_MAX_BODY,
) -> tuple[Engine, FastAPI]:
    """Migrate, load the policy (validated; a new version only when its text changed), wire,
    start. The engine's `stop()` stops it all; its `db`, `commands`, `views`, `loop` serve
    tests."""
    if virtual_start is not None and os.environ.get(VIRTUAL_CLOCK_ENV) != "1":
        raise PermissionError(f"--virtual-clock is refused unless {VIRTUAL_CLOCK_ENV}=1")
    clock: Clock = VirtualClock(virtual_start) if virtual_start is not None else SystemClock()
    db = _database(db_url)
    # delivery: every role writes outbox rows; `all` and `dispatcher` deliver
    dispatch = role in ("all", "dispatcher") and not clock.virtual
    engine = _engine(db, clock, policy_file, dispatch=dispatch)
    app = create_app(engine, links=Links(db), role=role, token_rate=token_rate, max_body=max_body)
    engine.start(engine=role in ("all", "engine"))
    return engine, app


def _database(db_url: str) -> Database:
    db = make_engine(db_url)
    upgrade(db)
    return db


def _engine(
    db: Database, clock: Clock, policy_file: str | Path | None, *, dispatch: bool
) -> Engine:
    legacy = _Legacy()
    engine = Engine(
        db,
        clock,
        dispatcher=legacy.dispatcher if dispatch else None,
        after_decide=legacy.notices,
    )
    legacy.engine = engine
    try:
        if policy_file is not None:
            p = Path(policy_file)
            engine.policies.ensure(p.read_text(encoding="utf-8"), str(p))
        else:
            engine.policies.current_version()  # refuses to start with no stored policy
    except BaseException:
        engine.stop()
        raise
    return engine


# LEGACY, until the notify branch lands (seams 3 and 4): today's Dispatcher, which wants a
# `Service`, behind the names the engine calls (`lease`, `accept`, `next_due`, `run_due`), and
# today's "handled by" notices (OutboxHook's, written `pending`) until `decide` emits `Notice`.
# The lead replaces this section at merge with the notify branch's
# `Dispatcher(policies=..., outbox=..., record=..., clock=...)` and drops `after_decide`.


class _Legacy:
    def __init__(self) -> None:
        self.engine: Engine | None = None
        self._hook: OutboxHook | None = None

    def service(self, policies: PolicyStore) -> Service:
        return Service(policies, self.decide_in)

    def decide_in(self, conn: Connection, case_id: str, event: Event, now: int) -> tuple[Case, int]:
        assert self.engine is not None
        return self.engine.commands.decide_in(conn, case_id, event, now)

    def dispatcher(self, policies: PolicyStore, _: RecordResults[object]) -> _LegacyDispatch:
        return _LegacyDispatch(self.service(policies))

    def notices(
        self, conn: Connection, case: Case, effects: list[Effect], version: int, now: int
    ) -> None:
        for e in effects:
            if isinstance(e, Record) and e.entry["kind"] in ("acknowledged", "resolved"):
                if self._hook is None:
                    assert self.engine is not None
                    self._hook = OutboxHook(self.service(self.engine.policies), None)
                self._hook._notices(conn, case, e.entry, version, now)


class _LegacyDispatch:
    def __init__(self, service: Service) -> None:
        workers = int(os.environ.get("RUNGS_DISPATCH_WORKERS") or 64)
        self.dispatcher = Dispatcher(service, workers=workers)
        self.clock = service.clock

    def lease(self, policy: Policy) -> int | None:
        settings = channels_of(policy)
        if not self.dispatcher.running or not settings.declared:
            return None
        return self.clock.now() + settings.retry.lease

    def accept(self, rows: list[NewRow]) -> None:
        self.dispatcher.accept(
            [
                Row(r.id, r.case_id, r.kind, r.key, r.payload, r.attempts, r.created_at, r.snapshot)
                for r in rows
            ]
        )

    def next_due(self) -> int | None:
        return None  # today's dispatcher does not run under the virtual clock

    def run_due(self, until: int) -> int:
        return 0

    def start(self) -> None:
        self.dispatcher.start()

    def stop(self) -> None:
        self.dispatcher.stop()


def prepare(*, db_url: str, policy_file: str | Path | None) -> None:
    """Migrate and store the policy once, before worker processes start (so that they do
    not race to do it), raising what `build` would raise."""
    db = _database(db_url)
    try:
        _engine(db, SystemClock(), policy_file, dispatch=False).stop()
    finally:
        db.dispose()


def worker_settings(**settings: Any) -> str:
    """`build`'s keyword arguments as the JSON that `worker_app` reads from WORKER_ENV."""
    rate = settings.get("token_rate")
    if rate is not None:
        settings["token_rate"] = [rate.per_second, rate.burst]
    return json.dumps(settings)


def settle_heap() -> None:
    """Move everything built at start (modules, the app, compiled policies) out of the cyclic
    collector's reach, once, before serving: its full collections then walk only what requests
    create. With that heap in them they paused the server ~110 ms each, the largest share of
    the API's p99 at 1,000 cases/s."""
    gc.collect()
    gc.freeze()


def _exit_with_parent(parent: int) -> None:
    """Stop this worker (gracefully, as on SIGTERM) once the process that started it is gone,
    killed with SIGKILL say: a worker left behind would serve the port and run timers alone."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGTERM)


def worker_app() -> FastAPI:
    """The app of one `rungs serve --workers N` process: uvicorn calls this factory in each.

    Every worker runs the same role; they share the database as separate `rungs serve`
    processes would (timers and outbox rows are claimed, writes take turns on SQLite).
    """
    settings = json.loads(os.environ[WORKER_ENV])
    if settings.get("token_rate") is not None:
        settings["token_rate"] = Rate(*settings["token_rate"])
    engine, app = build(**settings)
    threading.Thread(
        target=_exit_with_parent, args=(os.getppid(),), name="rungs-parent-watch", daemon=True
    ).start()
    settle_heap()

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        engine.stop()

    app.router.lifespan_context = lifespan
    return app
