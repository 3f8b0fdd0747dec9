"""One writer thread per process: commands from many requests commit together.

Each command is a function of a connection. The writer drains whatever is queued (up to
`max_batch`), runs it in one transaction and commits once, so one fsync serves a whole batch.
A command refused by the core (`Refused`, raised before it writes) is answered with it;
any other failure rolls the batch back and each command is retried alone, so one bad
command cannot sink the others and never leaves half its writes behind. A batch that fails
because the database is unavailable (the writer lock not granted in time, a lock or I/O
error) is not retried: every command in it is answered `Unavailable` at once (the API says
503 with Retry-After), since each would only wait as long again.

On PostgreSQL a batch runs in psycopg's pipeline mode (`rungs.store.sql.batch`), the open
cases of the dedup keys its commands will look up (`looks_up`) read first in one statement: its
statements go out together, a round trip only where a result is read. A statement's error
then surfaces at a later read, maybe in another command, so a pipelined batch that fails
for any reason but the database's is rolled back and each command run alone, outside
pipeline mode, where every error is raised by the statement that caused it (a batch of one
too: its exception is the one it would have raised without the pipeline).

`health()` says whether the writer is alive, how much is queued, when it last committed and
whether a batch has been under way for too long (`stuck_after`, on the monotonic clock: the
virtual clock may stand still).

The writer keeps its connection from one batch to the next (`KEEP_S` apart at most) and
takes a fresh one from the pool, which pings it, after a pause or a failure.

Commands from the event loop (`submit_async`) are answered with asyncio futures, all of one
batch in a single callback on their loop: one wake-up of the loop per batch instead of one
thread-safe hand-over (and one concurrent Future with its lock) per command.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from rungs.core.model import Refused
from rungs.store.cases import open_keys_ahead
from rungs.store.db import FileLock, LockTimeout, write_lock
from rungs.store.numbers import CaseNumbers, lend
from rungs.store.sql import batch as pipelined
from rungs.store.sql import failed

__all__ = ["RETRY_AFTER_S", "STUCK_S", "Unavailable", "Writer", "looks_up", "unavailable"]

Command = Callable[[Connection], Any]
Answer = Future[Any] | asyncio.Future[Any]
Outcome = tuple[Answer, bool, Any]  # (future, ok, result or exception)
RETRY_AFTER_S = 2  # what a refused caller is told to wait before trying again
KEEP_S = 1.0  # the writer's connection is kept across batches no longer apart than this
STUCK_S = 30.0  # a batch under way this long (real time) is stuck: no healthy one comes close
# what SQLite says when the file, not the command, is at fault
_SQLITE_UNAVAILABLE = ("locked", "busy", "i/o", "disk", "unable to open", "readonly")


class Unavailable(Exception):
    """The database cannot take writes now (lock not granted in time, lock or I/O error):
    nothing of the command was written; try again after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: int = RETRY_AFTER_S) -> None:
        super().__init__(message)
        self.message, self.retry_after = message, retry_after


def unavailable(exc: BaseException) -> Unavailable | None:
    """The `Unavailable` a failure means, or None when it is the command's own fault."""
    if isinstance(exc, Unavailable):
        return exc
    if isinstance(exc, LockTimeout):
        return Unavailable(str(exc))
    invalidated = isinstance(exc, DBAPIError) and exc.connection_invalidated
    orig = exc.orig if isinstance(exc, DBAPIError) else exc  # hot statements run on the driver
    said = (str(orig).splitlines() or [type(orig).__name__])[0][:200]
    if invalidated or _server_trouble(orig, said):
        return Unavailable(f"the database is unavailable: {said}")
    return None


def _server_trouble(orig: BaseException, said: str) -> bool:
    if isinstance(orig, sqlite3.OperationalError):  # not "no such table": the command's own
        return any(w in said.lower() for w in _SQLITE_UNAVAILABLE)
    if type(orig).__module__.startswith("psycopg"):  # connection, lock, deadlock, timeout,
        if type(orig).__name__ == "PipelineAborted":  # an earlier statement's own error
            return False
        return any(c.__name__ == "OperationalError" for c in type(orig).__mro__)  # serialization
    return isinstance(orig, OSError)


class Writer:
    def __init__(
        self,
        engine: Engine,
        *,
        max_batch: int = 256,
        after_commit: Callable[[bool], None] | None = None,
    ) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self.lock = write_lock(engine)  # other processes on the same SQLite file take turns
        # PostgreSQL (its batches pipelined): case numbers drawn for a batch at once
        # (`rungs.store.numbers`); None on SQLite
        self._numbers = CaseNumbers() if engine.dialect.name == "postgresql" else None
        # on the writer thread after each transaction: True once committed, False rolled back
        self.after_commit = after_commit
        # the writer's connection, kept from batch to batch (a checkout per batch, with the
        # pool's ping, cost a round trip and ~10 % of the writer's time); dropped on a failure
        self._conn: Connection | None = None
        self._used = 0.0  # monotonic: when the kept connection last began a batch
        self._q: queue.Queue[tuple[Command, Answer] | None] = queue.Queue()
        self.stuck_after = STUCK_S
        self._busy_since: float | None = None  # monotonic: when the batch under way began
        self._last_commit: float | None = None  # monotonic
        self._thread = threading.Thread(target=self._run, name="rungs-writer", daemon=True)
        self._thread.start()

    def submit(self, fn: Command) -> Future[Any]:
        fut: Future[Any] = Future()
        self._q.put((fn, fut))
        return fut

    def submit_async(self, fn: Command) -> asyncio.Future[Any]:
        """`submit` for the running event loop: await the answer directly."""
        fut = asyncio.get_running_loop().create_future()
        self._q.put((fn, fut))
        return fut

    def call(self, fn: Command) -> Any:
        return self.submit(fn).result()

    def close(self) -> None:
        self._q.put(None)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self._drop()
            if isinstance(self.lock, FileLock):
                self.lock.close()

    def health(self) -> dict[str, Any]:
        """Alive, queue depth, seconds since the last commit and of the batch under way;
        `stuck` when the thread is gone or a batch has taken longer than `stuck_after`."""
        now = time.monotonic()
        busy, last = self._busy_since, self._last_commit
        busy_s = None if busy is None else round(now - busy, 3)
        alive = self._thread.is_alive()
        return {
            "alive": alive,
            "queue": self._q.qsize(),
            "last_commit_s": None if last is None else round(now - last, 3),
            "busy_s": busy_s,
            "stuck": not alive or (busy_s is not None and busy_s > self.stuck_after),
        }

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            batch = [item]
            while len(batch) < self.max_batch:
                try:
                    nxt = self._q.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._q.put(None)
                    break
                batch.append(nxt)
            self._busy_since = time.monotonic()
            try:
                self._commit(batch)
            finally:
                self._busy_since = None

    def _commit(self, batch: list[tuple[Command, Answer]], *, piped: bool | None = None) -> None:
        """Run the batch in one transaction (pipelined on PostgreSQL unless `piped` is
        False); on a failure not the database's, each command alone, not pipelined."""
        piped = self._numbers is not None if piped is None else piped
        results: list[Outcome] = []
        try:
            conn = self._connection()
            with self.lock, conn.begin():
                if self._numbers is None:  # SQLite
                    _run_batch(conn, batch, results, None)
                else:
                    self._run_postgres(conn, self._numbers, batch, results, piped)
        except Exception as exc:
            self._drop()  # a fresh one (checked by the pool's ping) for the next batch
            self._after(False)
            down = unavailable(exc)
            if down is not None:  # nobody's fault, and each alone would wait as long again
                down.__cause__ = exc
                _settle([(fut, False, down) for _, fut in batch])
                return
            if len(batch) == 1 and not piped:
                _settle([(batch[0][1], False, exc)])
                return
            for one in batch:  # retry alone: only the bad command fails
                self._commit([one], piped=False)
            return
        self._last_commit = time.monotonic()
        self._after(True)
        _settle(results)

    def _connection(self) -> Connection:
        """The kept connection while batches follow each other; after a pause, a fresh one
        from the pool, whose ping finds a connection the server dropped meanwhile (a restart)
        before a batch fails on it."""
        now = time.monotonic()
        if self._conn is not None and now - self._used > KEEP_S:
            self._drop()
        self._used = now
        if self._conn is None:
            self._conn = self.engine.connect()
        return self._conn

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # a broken connection: the pool forgets it
                conn.close()

    def _run_postgres(
        self,
        conn: Connection,
        numbers: CaseNumbers,
        batch: list[tuple[Command, Answer]],
        results: list[Outcome],
        piped: bool,
    ) -> None:
        lend(conn, numbers)
        try:
            if piped:
                keys = [k for fn, _ in batch for k in getattr(fn, "open_keys", ())]
                with pipelined(conn), open_keys_ahead(conn, keys):
                    _run_batch(conn, batch, results, numbers)
            else:
                _run_batch(conn, batch, results, numbers)
                failed(conn)  # a swallowed error: COMMIT would roll back in silence
        finally:
            lend(conn, None)

    def _after(self, committed: bool) -> None:
        if self.after_commit is not None:
            try:
                self.after_commit(committed)
            except Exception:  # an observer must never keep a command unanswered
                logging.getLogger("rungs.engine").exception("after_commit hook failed")


def looks_up(fn: Command, keys: Iterable[str | None]) -> Command:
    """Mark `fn` as a command that will look up the open cases of these dedup keys: a
    pipelined batch reads those of all its commands in one statement first (PostgreSQL,
    `rungs.store.cases.open_keys_ahead`), not in a round trip per command."""
    fn.open_keys = [k for k in keys if k]  # type: ignore[attr-defined]
    return fn


def _run_batch(
    conn: Connection,
    batch: list[tuple[Command, Answer]],
    results: list[Outcome],
    numbers: CaseNumbers | None,
) -> None:
    for i, (fn, fut) in enumerate(batch):
        if numbers is not None:  # a case opened now draws numbers for the commands left
            numbers.want = len(batch) - i
        try:
            results.append((fut, True, fn(conn)))
        except Refused as exc:  # refused before writing anything
            results.append((fut, False, exc))


def _settle(outcomes: list[Outcome]) -> None:
    """Answer concurrent futures here, and each event loop's futures in one callback on it."""
    by_loop: dict[asyncio.AbstractEventLoop, list[Outcome]] = {}
    for outcome in outcomes:
        fut = outcome[0]
        if isinstance(fut, Future):
            _answer(outcome)
        else:
            by_loop.setdefault(fut.get_loop(), []).append(outcome)
    for loop, answers in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            loop.call_soon_threadsafe(_answer_all, answers)


def _answer_all(outcomes: list[Outcome]) -> None:
    for outcome in outcomes:
        _answer(outcome)


def _answer(outcome: Outcome) -> None:
    fut, ok, value = outcome
    if fut.done():  # an asyncio waiter that was cancelled (its client went away)
        return
    if ok:
        fut.set_result(value)
    else:
        fut.set_exception(value)
