"""One writer thread per process: commands from many requests commit together.

Each command is a function of a connection. The writer drains whatever is queued (up to
`max_batch`), runs it in one transaction and commits once, so one fsync serves a whole batch.
A command refused by the core (`Refused`, raised before it writes) is answered with it;
any other failure rolls the batch back and each command is retried alone, so one bad
command cannot sink the others and never leaves half its writes behind.

Commands from the event loop (`submit_async`) are answered with asyncio futures, all of one
batch in a single callback on their loop: one wake-up of the loop per batch instead of one
thread-safe hand-over (and one concurrent Future with its lock) per command.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from sqlalchemy import Connection, Engine

from rungs.core.model import Refused
from rungs.store.db import FileLock, write_lock

__all__ = ["Writer"]

Command = Callable[[Connection], Any]
Answer = Future[Any] | asyncio.Future[Any]
Outcome = tuple[Answer, bool, Any]  # (future, ok, result or exception)


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
        # on the writer thread after each transaction: True once committed, False rolled back
        self.after_commit = after_commit
        self._q: queue.Queue[tuple[Command, Answer] | None] = queue.Queue()
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
        if isinstance(self.lock, FileLock) and not self._thread.is_alive():
            self.lock.close()

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
            self._commit(batch)

    def _commit(self, batch: list[tuple[Command, Answer]]) -> None:
        results: list[Outcome] = []
        try:
            with self.lock, self.engine.begin() as conn:
                for fn, fut in batch:
                    try:
                        results.append((fut, True, fn(conn)))
                    except Refused as exc:  # refused before writing anything
                        results.append((fut, False, exc))
        except Exception as exc:
            self._after(False)
            if len(batch) == 1:
                _settle([(batch[0][1], False, exc)])
                return
            for one in batch:  # retry alone: only the bad command fails
                self._commit([one])
            return
        self._after(True)
        _settle(results)

    def _after(self, committed: bool) -> None:
        if self.after_commit is not None:
            try:
                self.after_commit(committed)
            except Exception:  # an observer must never keep a command unanswered
                logging.getLogger("rungs.engine").exception("after_commit hook failed")


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
