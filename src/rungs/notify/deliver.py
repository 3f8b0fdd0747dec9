"""The delivery loop: an asyncio event loop on its own thread that composes and sends messages,
up to `workers` at once over keep-alive connections, and hands each result to `Results`.
Email and Apprise block: they run on a few threads beside it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from rungs.notify import channels
from rungs.notify.channels import Context, DeliveryError
from rungs.notify.compose import Composer
from rungs.notify.http import HttpClient
from rungs.notify.results import Results, outcome
from rungs.policy.channels import Channels, channels_of
from rungs.policy.model import Policy
from rungs.store.outbox import Row, Stale
from rungs.time.clock import Clock

__all__ = ["NOT_SENT", "Deliverer"]

log = logging.getLogger("rungs.notify")
NOT_SENT = "not sent: the policy has no channels section"  # a skipped row's last_error
STOP_S = 15.0  # at stop, how long deliveries under way may take to finish


class Deliverer:
    """Owns the event loop and what only its thread touches."""

    def __init__(
        self,
        composer: Composer,
        results: Results,
        clock: Clock,
        current: Callable[[], Policy],
        settle: Callable[[Row, str, int, str | None], Future[None]],
        *,
        workers: int,
        user_agent: str,
    ) -> None:
        self.composer = composer
        self.results = results
        self.clock = clock
        self.current = current  # the policy now in force
        self.settle = settle  # a row's outcome without a result (skipped)
        self.workers = workers
        self.running = False
        self.http = HttpClient(user_agent)
        self._ctx = Context(self.http, self._blocking_call)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._jobs: deque[list[Row]] = deque()
        self._tasks: set[asyncio.Task[None]] = set()
        self._blocking: ThreadPoolExecutor | None = None
        self._ping_sent: float | None = None  # monotonic: a ping the loop has not yet run

    # life (any thread) ------------------------------------------------------------------------

    def start(self) -> None:
        self._loop = _new_loop()
        self._thread = threading.Thread(target=self._serve, name="rungs-deliver", daemon=True)
        self._thread.start()
        self.running = True

    def stop(self) -> None:
        """Deliveries under way finish and their results are recorded; jobs not started stay
        claimed (their lease brings them back)."""
        self.running = False
        loop = self._loop
        if loop is not None and self._thread is not None and self._thread.is_alive():
            done = asyncio.run_coroutine_threadsafe(self._wind_down(), loop)
            try:
                done.result(timeout=STOP_S)
            except Exception:
                log.warning("deliveries still under way at stop; their lease brings them back")
            loop.call_soon_threadsafe(loop.stop)
            self._thread.join(timeout=10)
        if self._blocking is not None:
            self._blocking.shutdown(wait=True, cancel_futures=True)

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def ping(self) -> float:
        """Seconds the loop has left the last ping unrun (0: none outstanding, and one is sent
        now): a loop held by a blocking call shows here (`Dispatcher.health`)."""
        sent = self._ping_sent
        if sent is not None:
            return time.monotonic() - sent
        loop = self._loop
        if loop is not None:
            self._ping_sent = time.monotonic()
            with contextlib.suppress(RuntimeError):  # closed: stopping
                loop.call_soon_threadsafe(self._pong)
        return 0.0

    def _pong(self) -> None:
        self._ping_sent = None

    def submit(self, jobs: list[list[Row]]) -> None:
        """Send these messages as soon as a worker is free (returns at once)."""
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # stopping: the loop is closed, leases remain
            self._loop.call_soon_threadsafe(self._enqueue, jobs)

    def run(self, jobs: list[list[Row]]) -> None:
        """Send these messages and wait until each result is recorded (the virtual clock)."""
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(self._run_all(jobs), self._loop).result()

    # on the loop ----------------------------------------------------------------------------

    def _serve(self) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            left = asyncio.all_tasks(loop)
            for t in left:
                t.cancel()
            loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
            loop.close()

    async def _wind_down(self) -> None:
        self._jobs.clear()  # not started: still claimed, the lease brings them back
        while self._tasks:
            await asyncio.wait(set(self._tasks))
        await self.results.settled()
        await self.http.close()

    async def _run_all(self, jobs: list[list[Row]]) -> None:
        self._enqueue(jobs)
        while self._tasks or self._jobs:
            await asyncio.wait(set(self._tasks))
        await self.results.settled()

    def _enqueue(self, jobs: list[list[Row]]) -> None:
        if self.running:  # else stopping: not started, still claimed (the lease remains)
            self._jobs.extend(jobs)
            self._pump()

    def _pump(self) -> None:
        """Start waiting messages while fewer than `workers` are under way."""
        loop = self._loop
        assert loop is not None
        while self._jobs and len(self._tasks) < self.workers:
            task = loop.create_task(self._deliver(self._jobs.popleft()))
            self._tasks.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if self._jobs and self.running:
            self._pump()

    async def _deliver(self, job: list[Row]) -> None:
        """Send one message; its rows' results go to `results` (in its next flush)."""
        try:
            now = self.clock.now()
            current = self.current()
            settings = channels_of(current)
            if not settings.declared:  # the policy changed under claimed rows
                for r in job:
                    self.settle(r, "skipped", now, NOT_SENT).add_done_callback(
                        lambda f, r=r: self._settled(f, r)
                    )
                return
            error = await self._send(job, current, settings, now)
            now = self.clock.now()
            for r in job:
                self.results.add(outcome(r, error, settings.retry, now), now=not self.running)
        except Exception:
            log.exception("reporting %s failed; the lease will bring it back", [r.key for r in job])
            self.results.done(job)

    async def _send(
        self, job: list[Row], current: Policy, settings: Channels, now: int
    ) -> DeliveryError | None:
        try:
            out = self.composer.compose(job, current, settings, now)
            await channels.send(self._ctx, out)
        except DeliveryError as exc:
            error = exc
        except UnicodeError as exc:  # text that cannot be encoded now cannot be later either
            log.exception("encoding %s failed", [r.key for r in job])
            error = DeliveryError(f"the message could not be encoded: {exc}", permanent=True)
        except Exception as exc:  # a bug in a channel: retried, and logged
            log.exception("delivering %s failed", [r.key for r in job])
            error = DeliveryError(f"internal error: {type(exc).__name__}: {exc}")
        else:
            return None
        detail = f" ({error.detail})" if error.detail else ""  # the log's only
        log.warning("%s %s: %s%s", job[0].kind, [r.key for r in job], error.message, detail)
        return error

    def _settled(self, f: Future[Any], row: Row) -> None:
        exc = f.exception()
        if exc is not None and not isinstance(exc, Stale):
            log.error("settling %s failed: %s", row.key, exc)
        self.results.done([row])

    async def _blocking_call(self, fn: Callable[[], None]) -> None:
        """smtplib and Apprise block: on threads, at most `workers` (and 16) at once."""
        if self._blocking is None:
            self._blocking = ThreadPoolExecutor(
                min(self.workers, 16), thread_name_prefix="rungs-deliver"
            )
        await asyncio.get_running_loop().run_in_executor(self._blocking, fn)


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop  # optional (no Windows build): asyncio's own loop works
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()
