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
from sqlalchemy import Engine as Database

from rungs.api.access import configure_logging
from rungs.api.app import create_app
from rungs.api.counters import Counters
from rungs.api.inbound import blob_dir_for
from rungs.api.limits import DEFAULT_MAX_BODY, Rate
from rungs.api.web import WebSettings
from rungs.engine import Engine, PolicyStore
from rungs.engine.engine import Record
from rungs.engine.writer import Writer
from rungs.notify import Dispatcher
from rungs.notify.links import Links
from rungs.policy import Policy
from rungs.store.db import make_engine, upgrade
from rungs.store.outbox import Outbox
from rungs.time.clock import Clock, SystemClock, VirtualClock

__all__ = [
    "VIRTUAL_CLOCK_ENV",
    "WORKER_ENV",
    "build",
    "prepare",
    "settle_heap",
    "worker_app",
    "worker_settings",
]

VIRTUAL_CLOCK_ENV = "RUNGS_ALLOW_VIRTUAL_CLOCK"
WEB_SECRET_ENV = "RUNGS_WEB_SECRET"  # signs console sessions; else generated and stored
WORKER_ENV = "RUNGS_WORKER_SETTINGS"  # build()'s settings, as JSON, for worker processes


def build(
    *,
    db_url: str,
    policy_file: str | Path | None,
    virtual_start: int | None = None,
    role: str = "all",
    token_rate: Rate | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    strict: bool = False,
    trusted_header: str | None = None,
    trusted_proxies: list[str] | tuple[str, ...] = (),
    verify_every: int | None = None,
    blob_dir: str | Path | None = None,
) -> tuple[Engine, FastAPI]:
    """Migrate, load the policy (validated; a new version only when its text changed), wire,
    start. The engine's `stop()` stops it all; its `db`, `commands`, `views`, `loop` serve
    tests.

    `trusted_header` (with `trusted_proxies`) signs console users in from a reverse proxy's
    header (`rungs.api.web.session`); the console's secret is RUNGS_WEB_SECRET or stored.

    With `policy_file` the policy is file-managed; a file with errors keeps the last stored
    version serving (`/healthz` says why) unless `strict`, or unless none is stored: then
    `PolicyError`. Without it, the stored current version serves (database-managed)."""
    if virtual_start is not None and os.environ.get(VIRTUAL_CLOCK_ENV) != "1":
        raise PermissionError(f"--virtual-clock is refused unless {VIRTUAL_CLOCK_ENV}=1")
    clock: Clock = VirtualClock(virtual_start) if virtual_start is not None else SystemClock()
    db = _database(db_url)
    # delivery: every role writes outbox rows; `all` and `dispatcher` deliver (under the
    # virtual clock too: its advance delivers what is due, at the instant it is due)
    dispatch = role in ("all", "dispatcher")
    counters = Counters()  # deliveries counted on their way to the writer, shown by /metrics
    links = Links(db)  # one per process: the secret is read once, for pages and the API
    engine = _engine(
        db,
        clock,
        policy_file,
        links=links if dispatch else None,
        strict=strict,
        counters=counters,
        verify_every=verify_every if role in ("all", "engine") else None,
    )
    app = create_app(
        engine,
        links=links,
        role=role,
        token_rate=token_rate,
        max_body=max_body,
        counters=counters,
        web=WebSettings(
            trusted_header=trusted_header,
            trusted_proxies=tuple(trusted_proxies),
            secret=os.environ.get(WEB_SECRET_ENV) or None,
        ),
        blob_dir=Path(blob_dir) if blob_dir else blob_dir_for(db_url),
    )
    engine.start(engine=role in ("all", "engine"))
    return engine, app


def _database(db_url: str) -> Database:
    db = make_engine(db_url)
    upgrade(db)
    return db


def _engine(
    db: Database,
    clock: Clock,
    policy_file: str | Path | None,
    *,
    links: Links | None,
    strict: bool,
    counters: Counters | None = None,
    verify_every: int | None = None,
) -> Engine:
    """The engine, with a dispatcher when `links` is given (this process delivers)."""

    def dispatcher(policies: PolicyStore, writer: Writer, record: Record) -> Dispatcher:
        assert links is not None
        workers = int(os.environ.get("RUNGS_DISPATCH_WORKERS") or 64)  # in flight at once
        if counters is not None:
            record = counters.counting(record)
        outbox = Outbox(db, writer)
        return Dispatcher(policies, outbox, record, clock, links=links, workers=workers)

    managed_by = None if policy_file is None else str(policy_file)
    delivery = dispatcher if links is not None else None
    engine = Engine(
        db, clock, dispatcher=delivery, policy_file=managed_by, verify_every=verify_every
    )
    try:
        if policy_file is not None:
            engine.policies.load_file(Path(policy_file), strict=strict)
        else:
            engine.policies.current_version()  # refuses to start with no stored policy
    except BaseException:
        engine.stop()
        raise
    return engine


def prepare(*, db_url: str, policy_file: str | Path | None, strict: bool = False) -> Policy:
    """Migrate and store the policy once, before worker processes start (so that they do
    not race to do it), raising what `build` would raise; returns the policy in force (for
    what only one process may run)."""
    db = _database(db_url)
    try:
        engine = _engine(db, SystemClock(), policy_file, links=None, strict=strict)
        try:
            return engine.policies.policy(engine.policies.current_version())
        finally:
            engine.stop()
    finally:
        db.dispose()


def worker_settings(**settings: Any) -> str:
    """`build`'s keyword arguments as the JSON that `worker_app` reads from WORKER_ENV."""
    rate = settings.get("token_rate")
    if rate is not None:
        settings["token_rate"] = [rate.per_second, rate.burst]
    if settings.get("policy_file") is not None:
        settings["policy_file"] = str(settings["policy_file"])
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
    configure_logging(os.environ.get("RUNGS_LOG_LEVEL") or "info")  # as `rungs serve` did
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
