"""Database set-up: SQLite (WAL, the embedded default) or PostgreSQL, through one code path."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event

__all__ = ["DEFAULT_URL", "make_engine", "upgrade", "is_postgres", "write_lock", "FileLock"]

DEFAULT_URL = "sqlite:///rungs.db"
MIGRATIONS = Path(__file__).with_name("migrations")


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def make_engine(url: str) -> Engine:
    """An engine with the settings Rungs relies on (WAL and full fsync on SQLite)."""
    if url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgres://")
    elif url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")  # every commit is fsync'd before we answer
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


def upgrade(engine: Engine) -> None:
    """Apply the Alembic migrations up to head."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


class FileLock:
    """An exclusive `flock` on a file, held around each write transaction.

    Several processes on one SQLite file (`rungs serve --workers N`, or an engine beside an
    API process) then take turns as the kernel hands the lock on, at once and in order. Left
    to SQLite, a writer that finds the file busy sleeps and retries (1, 2, 5, 10 ms...), and
    one whose read snapshot went stale cannot write at all until it starts again.
    """

    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)

    def __enter__(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        os.close(self._fd)


def write_lock(engine: Engine) -> Any:
    """The lock the writer holds around each transaction: a `FileLock` beside a SQLite file;
    nothing for PostgreSQL (row locks and SKIP LOCKED coordinate) or an in-memory database."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return contextlib.nullcontext()
    return FileLock(database + "-writer.lock")
