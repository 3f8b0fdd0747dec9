"""Which cases changed: told after each commit, for the console's live updates (SSE).

The command object adds the id of every case it writes and, once the writer's transaction
has committed, publishes them here (on the writer's thread). On PostgreSQL other processes
write too (timers fired by an engine node, say): each transaction that writes cases sends one
`NOTIFY rungs_cases`, and every process's listener publishes `ANY` ("some case changed").
Each subscriber is an asyncio queue on its own event loop, fed thread-safely; a slow
subscriber loses nothing but merges (the set of ids waiting grows until it reads).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator

from sqlalchemy import Connection
from sqlalchemy import Engine as Database

from rungs.store.listen import CASES_CHANNEL, listen_thread, notify_once

__all__ = ["ANY", "Changes"]

ANY = frozenset(("*",))  # a case changed in another process (which one is not said)


class _Subscriber:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.pending: set[str] = set()
        self.ready = asyncio.Event()

    def add(self, ids: frozenset[str]) -> None:  # on the subscriber's loop
        self.pending |= ids
        self.ready.set()

    async def wait(self) -> None:
        """Until some case has changed since the last `take`."""
        await self.ready.wait()

    def take(self) -> set[str]:
        """The ids changed since the last call."""
        self.ready.clear()
        ids, self.pending = self.pending, set()
        return ids


class Changes:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._postgres = db.dialect.name == "postgresql"
        self._lock = threading.Lock()
        self._subs: list[_Subscriber] = []
        self._stop = threading.Event()

    def start(self) -> None:
        """Listen for other processes' writes (PostgreSQL only)."""
        listen_thread(self._db, CASES_CHANNEL, lambda: self.publish(ANY), self._stop)

    def stop(self) -> None:
        self._stop.set()

    def written(self, conn: Connection) -> None:
        """In a transaction that writes a case: tell other processes at its commit."""
        if self._postgres:
            notify_once(conn, CASES_CHANNEL)

    def publish(self, ids: frozenset[str]) -> None:
        """Cases committed just now (any thread)."""
        with self._lock:
            subs = list(self._subs)
        for s in subs:
            with contextlib.suppress(RuntimeError):  # its loop has closed
                s.loop.call_soon_threadsafe(s.add, ids)

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[_Subscriber]:
        sub = _Subscriber(asyncio.get_running_loop())
        with self._lock:
            self._subs.append(sub)
        try:
            yield sub
        finally:
            with self._lock:
                self._subs.remove(sub)
