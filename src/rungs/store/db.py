"""Database set-up: SQLite (WAL, the embedded default) or PostgreSQL, through one code path."""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event

from rungs.store.sql import flush_before_execute, sync_after_execute

__all__ = [
    "BUSY_TIMEOUT_S",
    "DEFAULT_URL",
    "LOCK_TIMEOUT_S",
    "FileLock",
    "LockTimeout",
    "is_postgres",
    "make_engine",
    "upgrade",
    "write_lock",
]

DEFAULT_URL = "sqlite:///rungs.db"
MIGRATIONS = Path(__file__).with_name("migrations")
# A write that cannot start within these is answered "try again" (503) rather than queueing
# every request behind it for minutes: a few seconds is far past any healthy transaction.
LOCK_TIMEOUT_S = 5.0  # waiting for another process's writer (the flock)
BUSY_TIMEOUT_S = 5.0  # SQLite's own wait for a lock held without the flock (CLI, migrations)
# (PostgreSQL: `lock_timeout` of LOCK_TIMEOUT_S on every connection)


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def make_engine(url: str) -> Engine:
    """An engine with the settings Rungs relies on (WAL and full fsync on SQLite)."""
    if url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgres://")
    elif url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_S}
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")  # every commit is fsync'd before we answer
            cur.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            cur.close()

        return engine
    # a row lock held elsewhere (a hung process) fails the statement instead of hanging it
    wait = {"options": f"-c lock_timeout={int(LOCK_TIMEOUT_S * 1000)}", "connect_timeout": 5}
    engine = create_engine(
        url, pool_size=10, max_overflow=20, pool_pre_ping=True, connect_args=wait
    )
    # the writer's batches run in pipeline mode: SQLAlchemy's statements read their results
    event.listen(engine, "before_cursor_execute", flush_before_execute)
    event.listen(engine, "after_cursor_execute", sync_after_execute)
    return engine


def upgrade(engine: Engine) -> None:
    """Apply the Alembic migrations up to head."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


class LockTimeout(OSError):
    """The writer lock was not granted in time: another process holds it (or hangs)."""


class _Waiter:
    """One blocking `flock` under way on a helper thread, and whether a writer still wants it."""

    __slots__ = ("done", "error", "got", "wanted")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.wanted = True
        self.got = False
        self.error: OSError | None = None


class FileLock:
    """An exclusive `flock` on a file, held around each write transaction, waited for at most
    `timeout` seconds (`LockTimeout` then).

    Several processes on one SQLite file (`rungs serve --workers N`, or an engine beside an
    API process) then take turns as the kernel hands the lock on, at once and in order. Left
    to SQLite, a writer that finds the file busy sleeps and retries (1, 2, 5, 10 ms...), and
    one whose read snapshot went stale cannot write at all until it starts again.

    An uncontended lock is taken at once (non-blocking). A contended one is waited for in the
    kernel's queue by a helper thread, so the wait can be bounded without polling: a writer
    that gives up leaves the helper queued, and the next attempt adopts it (or, when nobody
    wants it any more, the helper lets the lock go as soon as it has it).
    """

    def __init__(self, path: str, timeout: float = LOCK_TIMEOUT_S) -> None:
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        self.timeout = timeout
        self._state = threading.Lock()  # guards _waiter, and unlocks by a helper
        self._waiter: _Waiter | None = None
        self._closed = False

    def __enter__(self) -> None:
        with self._state:
            w = self._waiter
            if w is None:
                try:
                    fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return
                except BlockingIOError:
                    w = self._waiter = _Waiter()
                    threading.Thread(
                        target=self._take, args=(w,), name="rungs-flock", daemon=True
                    ).start()
            w.wanted = True
        w.done.wait(self.timeout)
        with self._state:
            if w.got:
                return
            w.wanted = False
            if w.error is not None:
                raise w.error
        raise LockTimeout(f"the database's writer lock was not free within {self.timeout:g} s")

    def _take(self, w: _Waiter) -> None:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except OSError as exc:  # closed under it, say
            with self._state:
                self._waiter = None
                w.error = exc
                w.done.set()
            return
        with self._state:
            self._waiter = None
            if w.wanted:
                w.got = True
                w.done.set()
                return
            fcntl.flock(self._fd, fcntl.LOCK_UN)  # its writer gave up: let the others have it
            if self._closed:
                os.close(self._fd)

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        with self._state:
            self._closed = True
            if self._waiter is not None:
                self._waiter.wanted = False
                return  # the helper closes the fd when its wait ends (else it could unlock
                # another file that reused the number)
        os.close(self._fd)


def write_lock(engine: Engine, timeout: float = LOCK_TIMEOUT_S) -> Any:
    """The lock the writer holds around each transaction: a `FileLock` beside a SQLite file;
    nothing for PostgreSQL (row locks and SKIP LOCKED coordinate) or an in-memory database."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return contextlib.nullcontext()
    return FileLock(database + "-writer.lock", timeout)
