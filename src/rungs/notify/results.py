"""Results: each delivery's outcome, batched to the engine's `record` (one transaction each).

A result becomes the row's new status (`sent`; `pending` again with exponential backoff and
jitter after a transient failure; `dead` after a permanent failure or the last attempt, when
the core pages the person's next contact method) and, but for notices and test
notifications, a `delivery` event for the core. Results go to `record` in bursts (at most
`flush` apart): one writer command, one transaction and one fsync for all; should it fail,
its results go again one by one. Until then the row stays claimed, so a crash only means a
resend with the same key.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from functools import partial
from typing import Any

from rungs.notify.channels import DeliveryError
from rungs.notify.limits import backoff
from rungs.policy.channels import Retry
from rungs.store.deliveries import TEST_KIND
from rungs.store.outbox import Outcome, Row, Stale, mark_params

__all__ = ["Counts", "Record", "Results", "outcome"]

log = logging.getLogger("rungs.notify")
Record = Callable[[list[Outcome]], Future[Any]]  # the writer's answer (its thread calls back)


@dataclass
class Counts:
    sent: int = 0
    failed: int = 0  # transient failures (tried again)
    dead: int = 0


def outcome(row: Row, error: DeliveryError | None, retry: Retry, now: int) -> Outcome:
    """The row's new status and the `delivery` event's data (None for a notice)."""
    if error is None:
        status, nxt, last, permanent = "sent", now, None, False
    elif error.permanent or row.attempts >= retry.attempts:
        status, nxt, permanent = "dead", now, True
        last = (
            error.message
            if error.permanent
            else f"gave up after {row.attempts} attempts: {error.message}"
        )
    else:
        wait = backoff(retry, row.attempts)
        if error.retry_after:
            wait = max(wait, int(error.retry_after * 1e6))
        status, nxt, last, permanent = "pending", now + wait, error.message, False
    p = row.payload
    result: dict[str, Any] | None = None
    if row.kind not in ("notice", TEST_KIND):  # no case to tell: the row keeps the outcome
        if row.kind == "webhook":
            person, channel = str(p.get("url") or ""), "webhook"
            level = (p.get("body") or {}).get("level")
        else:
            person, channel, level = p["person"], p["channel"], p.get("level")
        result = {
            "key": row.key,
            "person": person,
            "channel": channel,
            "level": level,
            "ok": error is None,
            "error": last,
            "permanent": permanent,
        }
    return Outcome(row, mark_params(row, status, nxt, last), result)


class Results:
    """Collects outcomes on the dispatcher's event loop and hands them to `record`."""

    def __init__(
        self, record: Record, done: Callable[[list[Row]], None], *, batch: int, flush: float
    ) -> None:
        self.record = record
        self.done = done  # rows settled (recorded, or given up): no longer in hand
        self.batch = batch
        self.flush_s = flush
        self.counts = Counts()
        self._results: list[Outcome] = []
        self._flush_at: asyncio.TimerHandle | None = None
        self._pending: set[Future[Any]] = set()  # recordings not yet answered

    def add(self, o: Outcome, *, now: bool = False) -> None:
        """On the event loop: keep `o` for the next flush (at once when `now`)."""
        status = o.mark["status"]
        if status == "sent":
            self.counts.sent += 1
        elif status == "dead":
            self.counts.dead += 1
        else:
            self.counts.failed += 1
        self._results.append(o)
        if now or len(self._results) >= self.batch:
            self.flush()
        elif self._flush_at is None:
            self._flush_at = asyncio.get_running_loop().call_later(self.flush_s, self.flush)

    def flush(self) -> None:
        """Hand the results to `record` as one command: one transaction, one fsync, one
        answer. A result waits at most `flush` (safe meanwhile: the row stays claimed)."""
        if self._flush_at is not None:
            self._flush_at.cancel()
            self._flush_at = None
        batch, self._results = self._results, []
        if batch:
            self._submit(batch)

    async def settled(self) -> None:
        """Flush, and return once every result handed over so far is recorded (or failed)."""
        self.flush()
        while self._pending:
            await asyncio.wait([asyncio.wrap_future(f) for f in set(self._pending)])

    def _submit(self, batch: list[Outcome]) -> None:
        try:
            done = self.record(batch)
        except Exception:
            log.exception("handing %d results to the writer failed", len(batch))
            self.done([o.row for o in batch])
            return
        self._pending.add(done)
        done.add_done_callback(partial(self._recorded, batch))  # on the writer's thread

    def _recorded(self, batch: list[Outcome], f: Future[Any]) -> None:
        """Never wait here (the writer's thread). A failed batch was rolled back whole: its
        results go again one by one, so only the bad one fails."""
        exc = f.exception()
        if exc is not None and len(batch) > 1:
            for o in batch:
                self._submit([o])
        else:
            if isinstance(exc, Stale):
                log.warning(
                    "%s was claimed again elsewhere; its result is theirs", batch[0].row.key
                )
            elif exc is not None:
                log.error("recording the result of %s failed: %s", batch[0].row.key, exc)
            self.done([o.row for o in batch])
        self._pending.discard(f)
