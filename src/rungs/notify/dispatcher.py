"""The dispatcher: outbox rows out through the channels, every result back into the timeline.

Rows reach it two ways. The rows a decision of this process writes are inserted already
claimed (`lease(policy)` says until when) and handed over with `accept(rows)` the moment the
transaction commits: no poll, no second commit on the way out; under a policy without
channels (nor one in force) they are inserted `skipped`, with the reason. Other rows
(written by other processes, retries after a backoff, rows whose lease ran out) are claimed
by a poll on the claim thread (`store.outbox.Outbox`), woken early on PostgreSQL by
`NOTIFY rungs_outbox`.
Rows a decision has just opened a case with carry that decision's case and timeline; for the
others the claim thread reads what the messages show. Messages go out on the delivery loop
(`deliver.Deliverer`), their results to the engine's `record` (`results.Results`).

Under the virtual clock nothing runs by itself: the engine's `advance` asks `next_due()` and
calls `run_due(until)`, which delivers what is due and returns once each result is recorded.

While rows are in hand (in flight or waiting for a worker), the claim loop renews their lease
every third of it (`Outbox.renew`), so a slow send is never claimed and sent a second time by
another dispatcher; only a dispatcher that dies lets its rows' leases run out. `health()`
judges the claim loop and the delivery loop on the monotonic clock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import Any

from rungs.notify.channels._http import USER_AGENT
from rungs.notify.compose import Composer
from rungs.notify.deliver import NOT_SENT, Deliverer
from rungs.notify.limits import Limiter, hygienic, pages_by_target, plan
from rungs.notify.links import Links
from rungs.notify.messages import Renderer
from rungs.notify.results import Record, Results
from rungs.policy.channels import Channels, channels_of
from rungs.policy.model import Policy
from rungs.policy.versions import PolicyVersions
from rungs.store.outbox import Outbox, Row
from rungs.time.clock import Clock

__all__ = ["STUCK_S", "Dispatcher"]

log = logging.getLogger("rungs.notify")
STUCK_S = 30.0  # real seconds without a good tick (or a turn of the delivery loop): stuck


class Dispatcher:
    """Claims rows (its own thread, real clock) and delivers them (the delivery loop)."""

    def __init__(
        self,
        policies: PolicyVersions,
        outbox: Outbox,
        record: Record,
        clock: Clock,
        *,
        links: Links,
        workers: int = 64,
        batch: int = 256,
        poll: float = 0.5,
        flush: float = 0.05,
    ) -> None:
        self.policies = policies
        self.outbox = outbox
        self.clock = clock
        self.batch = batch
        self.poll_s = poll
        self.links = links
        self.limiter = Limiter()
        self.results = Results(record, self._done, batch=batch, flush=flush)
        composer = Composer(policies, self.links, Renderer())
        self.deliverer = Deliverer(composer, self.results, clock, self._in_force, outbox.settle,
                                   workers=workers, user_agent=USER_AGENT)  # fmt: skip
        self.running = False
        self._ready: deque[Row] = deque()  # handed over, still to be loaded or planned
        self._inflight: dict[int, Row] = {}  # claimed rows in hand, by id (leases renewed)
        self._renew_at = 0  # µs: when to renew the leases of the rows in hand next
        self.stuck_after = STUCK_S
        self._last_tick = time.monotonic()  # the last claim-loop tick that succeeded
        self._last_error: str | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._poll_at = 0  # µs: when to look for due rows next (0: at once)
        self._hygiene = False
        self._warned = False
        self._policy: Policy | None = None  # the current version, as last read
        self._threads: list[threading.Thread] = []

    # life ------------------------------------------------------------------------------------

    def start(self) -> None:
        if self.running:
            return
        try:  # else the claim loop's first tick reads them
            # before the first row is handed over: whether it must be planned (hygiene)
            self._policy = self.policies.current()
            self._hygiene = hygienic(channels_of(self._policy))
            _ = self.links.secret  # read (or made) here, not on the event loop
        except Exception:  # the database is down, say: the claim loop tries again
            log.exception("dispatcher: reading the policy and link secret at start failed")
        self.deliverer.start()
        self.running = True
        if self.clock.virtual:
            return  # driven by the engine's advance: next_due / run_due
        self._spawn(self._run, "rungs-dispatcher")
        listener = self.outbox.listen(self.wake, self._stop)
        if listener is not None:
            self._threads.append(listener)

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self) -> None:
        """Deliveries under way finish and their results are recorded; rows not started stay
        claimed (their lease brings them back)."""
        if not self.running:
            return
        self.running = False
        self._stop.set()
        self._wake.set()
        if self._threads:
            self._threads[0].join(timeout=10)
        self.deliverer.stop()

    def wake(self) -> None:
        self._poll_at = 0
        self._wake.set()

    # the engine's calls: hand-over at commit, due work under the virtual clock --------------

    def lease(self, policy: Policy) -> int | str | None:
        """Until when a row a decision under `policy` writes now is claimed by this process
        (insert it `sending` and `accept` it after commit); None: insert it `pending` (not
        running, or the virtual clock); when neither `policy` nor the policy in force has
        channels, the reason to insert it `skipped` at once, as the claim loop would mark it
        (no second transaction for that). A row decided under an older policy without
        channels, once a newer one has them, is inserted pending and sent as before."""
        if not self.running or self.clock.virtual:
            return None
        settings = channels_of(policy)
        if not settings.declared:
            if channels_of(self._in_force()).declared:
                return None
            self._warn()
            return NOT_SENT
        return self.clock.now() + settings.retry.lease

    def accept(self, rows: list[Row]) -> None:
        """Rows claimed inside a transaction that has just committed (the writer's thread)."""
        if not self.running or not rows:
            return
        if self._hygiene or any(r.snapshot is None and r.kind == "notify" for r in rows):
            self._ready.extend(rows)  # to plan, or to load: the claim loop's work
            self._wake.set()
            return
        with self._lock:
            self._inflight.update((r.id, r) for r in rows)
        self.deliverer.submit([[r] for r in rows])

    def next_due(self) -> int | None:
        """When the next row is due (a claimed one: when its lease runs out); None: none, or
        not running."""
        return self.outbox.next_due() if self.running else None

    def run_due(self, until: int) -> int:
        """Deliver every row due at or before `until` once, at the clock's now (the engine has
        set it), and return when each result is recorded: how many rows were taken. Call it
        outside any writer transaction (it waits for the writer)."""
        if not self.running:
            return 0
        current = self._policy = self.policies.current()
        settings = channels_of(current)
        if not settings.declared:
            return self._skip(until).result()
        seen: set[int] = set()
        while True:
            now = self.clock.now()
            with self._lock:
                mine = seen | self._inflight.keys()
            rows = self.outbox.claim(until, now + settings.retry.lease, mine)
            if not rows:
                return len(seen)
            seen.update(r.id for r in rows)
            jobs, held = self._prepare(rows, now, settings)
            for f in held:
                f.result()
            if jobs:
                self.deliverer.run(jobs)

    # the claim loop (real clock) -------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            wait = self.poll_s
            try:
                current = self._policy = self.policies.current()
                settings = channels_of(current)
                self._hygiene = hygienic(settings)
                rows: list[Row] = []
                while self._ready:
                    rows.append(self._ready.popleft())
                now = self.clock.now()
                full = False
                if now >= self._poll_at and len(self._inflight) < 2 * self.batch:
                    claimed, nxt = self._claim(now, settings)
                    rows.extend(claimed)
                    full = len(claimed) >= self.batch
                    poll_us = int(self.poll_s * 1e6)
                    if full:  # more may be due: look again at once
                        self._poll_at = now
                    else:
                        self._poll_at = now + poll_us if nxt is None else min(now + poll_us, nxt)
                if rows:
                    self._dispatch(rows, now, settings)
                self._renew(now, settings.retry.lease)
                self._last_tick, self._last_error = time.monotonic(), None
                if full or self._ready:
                    continue
                wait = max(0.0, min(self.poll_s, (self._poll_at - self.clock.now()) / 1e6))
                if len(self._inflight) >= 2 * self.batch:
                    wait = self.poll_s  # enough in hand: wait for the results (they wake us)
                if self._inflight:  # the next renewal comes before the lease runs out
                    wait = max(0.0, min(wait, (self._renew_at - self.clock.now()) / 1e6))
            except Exception as exc:  # keep delivering through a database restart
                log.exception("dispatcher tick failed; retrying")
                self._last_error = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
                wait = 1.0
            if wait > 0:
                self._wake.wait(wait)
            self._wake.clear()

    def _renew(self, now: int, lease: int) -> None:
        """Every third of a lease: extend the claims of the rows in hand (sent or waiting)
        to a lease from now. A row settled meanwhile is left alone (`Outbox.renew`)."""
        if now < self._renew_at:
            return
        self._renew_at = now + max(1, lease // 3)
        with self._lock:
            rows = list(self._inflight.values())
        if rows:
            self.outbox.renew(rows, now + lease).add_done_callback(_renewed)

    def health(self) -> dict[str, Any]:
        """Running, seconds since the claim loop's last good tick and since the delivery
        loop last took a turn, rows in hand; `stuck` past `stuck_after` (real time)."""
        out: dict[str, Any] = {"running": self.running, "in_hand": len(self._inflight)}
        if not self.running or not self._threads:  # stopped, or driven by `advance`
            out["stuck"] = False
            return out
        now = time.monotonic()
        since = now - self._last_tick
        turn = self.deliverer.ping()
        alive = self._threads[0].is_alive() and self.deliverer.alive()
        out.update(alive=alive, last_tick_s=round(since, 3), last_error=self._last_error,
                   delivery_loop_s=round(turn, 3))  # fmt: skip
        out["stuck"] = not alive or max(since, turn) > self.stuck_after
        return out

    def _in_force(self) -> Policy:
        return self._policy or self.policies.current()

    def _claim(self, now: int, settings: Channels) -> tuple[list[Row], int | None]:
        """Claim due rows; also returns when the next one not yet due will be (or None).

        Under a policy without a `channels` section nothing is sent: due rows are marked
        `skipped` at once, in bulk, and leave the timeline alone (simulations, trial runs).
        """
        due, nxt = self.outbox.peek(now)
        if not due:
            return [], nxt
        if not settings.declared:
            self._skip(now).result()
            return [], None
        with self._lock:
            mine = set(self._inflight)
        return self.outbox.claim(now, now + settings.retry.lease, mine), None

    def _skip(self, now: int) -> Future[int]:
        self._warn()
        return self.outbox.skip(now, NOT_SENT)

    def _warn(self) -> None:
        if not self._warned:
            self._warned = True
            log.warning("the policy has no channels section: messages are not sent (skipped)")

    def _dispatch(self, rows: list[Row], now: int, settings: Channels) -> None:
        """Load what the messages show, plan them, hand them to the delivery loop."""
        jobs, _ = self._prepare(rows, now, settings)
        if jobs:
            self.deliverer.submit(jobs)

    def _prepare(
        self, rows: list[Row], now: int, settings: Channels
    ) -> tuple[list[list[Row]], list[Future[None]]]:
        """Attach snapshots, plan (hygiene), hold back what must wait; the messages to send
        now (their rows in hand) and the writes that hold the others back."""
        want = {r.case_id for r in rows if r.snapshot is None and r.kind == "notify"}
        if want:  # a row whose case is gone keeps no snapshot
            found = self.outbox.snapshots(want)
            for r in rows:
                if r.snapshot is None:
                    r.snapshot = found.get(r.case_id)
        if hygienic(settings):  # rule webhooks and notices go alone, pages as planned
            jobs, groups = pages_by_target(rows)
            held = {}
            if groups:
                ids = {r.case_id for g in groups.values() for r in g}
                sent, held = plan(groups, self.outbox.priorities(ids), settings, self.limiter, now)
                jobs.extend(sent)
        else:
            jobs, held = [[r] for r in rows], {}
        holds = [self._hold(grp, at) for at, grp in held.items()]
        with self._lock:
            self._inflight.update((r.id, r) for job in jobs for r in job)
        return jobs, holds

    def _hold(self, rows: list[Row], at: int) -> Future[None]:
        self._poll_at = min(self._poll_at, at)
        return self.outbox.hold([r.id for r in rows], at)

    def _done(self, rows: Iterable[Row]) -> None:
        with self._lock:
            for r in rows:
                self._inflight.pop(r.id, None)
            low = len(self._inflight) < self.batch
        if low and self._poll_at <= self.clock.now():
            self._wake.set()  # room for more: a backlog is claimed as fast as it is sent


def _renewed(f: Future[int]) -> None:
    exc = f.exception()
    if exc is not None:  # the next turn tries again, before the lease runs out
        log.warning("renewing the leases of rows in hand failed: %s", exc)
