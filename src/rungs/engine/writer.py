"""One writer thread per process: commands from many requests commit together.

Each command is a function of a connection. The writer drains whatever is queued (up to
`max_batch`), runs it in one transaction and commits once, so one fsync serves a whole batch.
A command refused by the core (`Refused`, raised before it writes) is answered with it;
any other failure rolls the batch back and each command is retried alone, so one bad
command cannot sink the others and never leaves half its writes behind.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from sqlalchemy import Connection, Engine

from rungs.core.model import Refused

__all__ = ["Writer"]

Command = Callable[[Connection], Any]


class Writer:
    def __init__(self, engine: Engine, *, max_batch: int = 256) -> None:
        self.engine = engine
        self.max_batch = max_batch
        # on the writer thread after each transaction: True once committed, False rolled back
        self.after_commit: Callable[[bool], None] | None = None
        self._q: queue.Queue[tuple[Command, Future[Any]] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="rungs-writer", daemon=True)
        self._thread.start()

    def submit(self, fn: Command) -> Future[Any]:
        fut: Future[Any] = Future()
        self._q.put((fn, fut))
        return fut

    def call(self, fn: Command) -> Any:
        return self.submit(fn).result()

    def close(self) -> None:
        self._q.put(None)
        self._thread.join(timeout=10)

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

    def _commit(self, batch: list[tuple[Command, Future[Any]]]) -> None:
        results: list[tuple[Future[Any], bool, Any]] = []
        try:
            with self.engine.begin() as conn:
                for fn, fut in batch:
                    try:
                        results.append((fut, True, fn(conn)))
                    except Refused as exc:  # refused before writing anything
                        results.append((fut, False, exc))
        except Exception as exc:
            self._after(False)
            if len(batch) == 1:
                batch[0][1].set_exception(exc)
                return
            for one in batch:  # retry alone: only the bad command fails
                self._commit([one])
            return
        self._after(True)
        for fut, ok, value in results:
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)

    def _after(self, committed: bool) -> None:
        if self.after_commit is not None:
            try:
                self.after_commit(committed)
            except Exception:  # an observer must never keep a command unanswered
                logging.getLogger("rungs.engine").exception("after_commit hook failed")
