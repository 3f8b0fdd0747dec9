"""Which cases changed: told after each commit, for the console's live updates (SSE).

The command object adds the id of every case it writes and, once the writer's transaction
has committed, publishes them here (on the writer's thread). Each subscriber is an asyncio
queue on its own event loop, fed thread-safely; a slow subscriber loses nothing but merges
(the set of ids waiting grows until it reads).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator

__all__ = ["Changes"]


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
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subs: list[_Subscriber] = []

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
