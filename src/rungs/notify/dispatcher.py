"""The dispatcher: outbox rows out through the channels, every result back into the timeline.

Rows are claimed (status `sending`, `attempts` + 1, `next_attempt` = now + lease) in a
transaction: due rows by a poll (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so several
dispatchers share the work), and the rows a decision of this process writes in that decision's
own transaction, handed over the moment it commits (no poll, no second commit on the way out).
A dispatcher killed mid-delivery leaves its rows `sending`; when their lease runs out they are
due again, and the retry carries the same idempotency key.

Two threads: the claim loop (polls, loads the cases a batch shows, plans hygiene) and an event
loop that renders and sends, up to `workers` messages at once over keep-alive connections.
Rows a decision of this process has just opened a case with carry that decision's case and
timeline, so they go straight to the event loop when the transaction commits (one wake-up per
commit); the others go through the claim loop. Email and Apprise block: they run on threads.

Each result goes into the core as a `delivery` event (`Service.decide_in`) in
the same transaction as the row's new status: `sent`; `pending` again with exponential backoff
and jitter after a transient failure; `dead` after a permanent failure or the last attempt (the
core then pages the person's next contact method). Results are handed to the writer in bursts
(at most `flush` apart), a burst as one command: one transaction and one fsync for all (should
it fail, its results go again one by one). Until then the row stays claimed, so a crash only
means a resend with the same key.
"Handled by" notices are delivered the same way but leave the timeline alone.

Hygiene, per process: within `channels.bundle` of a message to one person on one channel,
further ones wait for the window's end and go as one message; `channels.rate_limits` per
person and per channel hold messages until a slot frees (then also as one message). P1 goes
past both.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import random
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy import Connection, and_, func, insert, select, text, update

from rungs.core.model import CallWebhook, Case, Event, Notify, Record, Refused
from rungs.engine.service import Service
from rungs.notify.adapters import Adapters, DeliveryError
from rungs.notify.links import Links, base_url_of, ttl_of
from rungs.notify.messages import Message, Renderer
from rungs.policy.channels import Channels, RateLimit, Retry, channels_of
from rungs.policy.model import Policy
from rungs.store import jsonbytes
from rungs.store.db import is_postgres
from rungs.store.repo import Sql, run, run_many
from rungs.store.tables import cases, outbox, timeline

__all__ = ["Dispatcher", "OutboxHook", "Row", "NOTIFY_CHANNEL", "install"]

log = logging.getLogger("rungs.notify")
NOTIFY_CHANNEL = "rungs_outbox"
ACTIVE = ("pending", "sending")
NO_CHANNELS = "not sent: the policy has no channels section"
STOP_S = 15.0  # at stop, how long deliveries under way may take to finish


@dataclass
class Row:
    """A claimed outbox row; `attempts` counts this one."""

    id: int
    case_id: str
    kind: str  # notify | webhook | notice
    key: str
    payload: dict[str, Any]
    attempts: int
    created_at: int
    snapshot: tuple[Case, int, list[dict[str, Any]]] | None = None  # case, version, timeline


@dataclass(slots=True)
class Outcome:
    """A row's result, waiting for the next flush to the writer."""

    row: Row
    mark: dict[str, Any]  # the row's new status (see _MARK)
    result: dict[str, Any] | None  # the `delivery` event's data; None: the timeline is left


class Stale(Exception):
    """The row is no longer ours (its lease ran out and it was claimed again)."""


class Limiter:
    """Sliding windows of send instants (used by the dispatcher's loop thread only)."""

    def __init__(self) -> None:
        self._sent: dict[Any, deque[int]] = {}

    def next_slot(self, limits: list[tuple[Any, RateLimit]], now: int) -> int:
        at = now
        for key, lim in limits:
            dq = self._sent.get(key)
            if not dq:
                continue
            while dq and dq[0] <= now - lim.per:
                dq.popleft()
            if len(dq) >= lim.count:
                at = max(at, dq[-lim.count] + lim.per)
        return at

    def record(self, limits: list[tuple[Any, RateLimit]], now: int) -> None:
        for key, lim in limits:
            dq = self._sent.setdefault(key, deque())
            dq.append(now)
            while len(dq) > lim.count:
                dq.popleft()


def backoff(retry: Retry, attempts: int) -> int:
    """µs before the next attempt after `attempts` failed ones: doubling, with equal jitter."""
    d = min(retry.max_backoff, retry.backoff * 2 ** max(0, attempts - 1))
    return d // 2 + random.randint(0, d // 2)


class Dispatcher:
    """Claims rows (its own thread) and delivers them on an event loop (another thread)."""

    def __init__(
        self,
        service: Service,
        *,
        workers: int = 64,
        batch: int = 256,
        poll: float = 0.5,
        flush: float = 0.05,
    ) -> None:
        self.service = service
        self.workers = workers  # messages in flight at once
        self.batch = batch
        self.poll_s = poll
        self.flush_s = flush
        self.links = Links(service.db)
        self.renderer = Renderer()
        self.adapters = Adapters()
        self.limiter = Limiter()
        self.running = False
        self.sent = self.failed = self.dead = 0
        self._ready: deque[Row] = deque()  # handed over, still to be loaded or planned
        self._inflight: set[int] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._poll_at = 0  # µs: when to look for due rows next (0: at once)
        self._hygiene = False
        self._warned = False
        self._policy: Policy | None = None  # the current version, as the claim loop last read it
        self._thread: threading.Thread | None = None
        self._listener: threading.Thread | None = None
        # the event loop and what only its thread touches
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sender: threading.Thread | None = None
        self._jobs: deque[list[Row]] = deque()
        self._tasks: set[asyncio.Task[None]] = set()
        self._results: list[Outcome] = []
        self._flush_at: asyncio.TimerHandle | None = None
        self._blocking: ThreadPoolExecutor | None = None

    # life ------------------------------------------------------------------------------------

    def start(self) -> None:
        if self.running:
            return
        try:  # else the claim loop's first tick reads them
            # before the first row is handed over: whether it must be planned (hygiene)
            self._policy = self._current()
            self._hygiene = _hygienic(channels_of(self._policy))
            _ = self.links.secret  # read (or made) here, not on the event loop
        except Exception:  # the database is down, say: the claim loop tries again
            log.exception("dispatcher: reading the policy and link secret at start failed")
        self._loop = _new_loop()
        self._sender = threading.Thread(target=self._serve, name="rungs-deliver", daemon=True)
        self._sender.start()
        self.running = True
        self._thread = threading.Thread(target=self._run, name="rungs-dispatcher", daemon=True)
        self._thread.start()
        if is_postgres(self.service.db):
            self._listener = threading.Thread(
                target=self._listen, name="rungs-outbox-listen", daemon=True
            )
            self._listener.start()

    def stop(self) -> None:
        """Deliveries under way finish and their results reach the writer; rows not started
        stay claimed (their lease brings them back)."""
        if not self.running:
            return
        self.running = False
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        loop = self._loop
        if loop is not None and self._sender is not None and self._sender.is_alive():
            done = asyncio.run_coroutine_threadsafe(self._wind_down(), loop)
            try:
                done.result(timeout=STOP_S)
            except Exception:
                log.warning("deliveries still under way at stop; their lease brings them back")
            loop.call_soon_threadsafe(loop.stop)
            self._sender.join(timeout=10)
        if self._blocking is not None:
            self._blocking.shutdown(wait=True, cancel_futures=True)

    def wake(self) -> None:
        self._poll_at = 0
        self._wake.set()

    def accept(self, rows: list[Row]) -> None:
        """Rows claimed inside a transaction that has just committed (the writer's thread)."""
        if not self.running or self._loop is None:
            return
        if self._hygiene or any(r.snapshot is None and r.kind == "notify" for r in rows):
            self._ready.extend(rows)  # to plan, or to load: the claim loop's work
            self._wake.set()
            return
        with self._lock:
            self._inflight.update(r.id for r in rows)
        with contextlib.suppress(RuntimeError):  # stopping: the loop is closed, leases remain
            self._loop.call_soon_threadsafe(self._enqueue, [[r] for r in rows])

    # the claim loop --------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            wait = self.poll_s
            try:
                current = self._policy = self._current()
                settings = channels_of(current)
                self._hygiene = _hygienic(settings)
                rows: list[Row] = []
                while self._ready:
                    rows.append(self._ready.popleft())
                now = self.service.clock.now()
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
                if full or self._ready:
                    continue
                wait = max(0.0, min(self.poll_s, (self._poll_at - self.service.clock.now()) / 1e6))
                if len(self._inflight) >= 2 * self.batch:
                    wait = self.poll_s  # enough in hand: wait for the results (they wake us)
            except Exception:  # keep delivering through a database restart
                log.exception("dispatcher tick failed; retrying")
                wait = 1.0
            if wait > 0:
                self._wake.wait(wait)
            self._wake.clear()

    def _listen(self) -> None:
        """LISTEN for rows written by other processes (PostgreSQL), to claim them at once."""
        import psycopg

        url = self.service.db.url.set(drivername="postgresql").render_as_string(hide_password=False)
        while not self._stop.is_set():
            try:
                with psycopg.connect(url, autocommit=True) as pg:
                    pg.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    for _ in pg.notifies(timeout=1.0):
                        self.wake()
                        if self._stop.is_set():
                            return
            except Exception:
                log.exception("LISTEN %s failed; retrying", NOTIFY_CHANNEL)
                self._stop.wait(1.0)

    def _current(self) -> Policy:
        return self.service.policy(self.service.current_version())

    def _claim(self, now: int, settings: Channels) -> tuple[list[Row], int | None]:
        """Claim due rows; also returns when the next one not yet due will be (or None).

        Under a policy without a `channels` section nothing is sent: due rows are marked
        `skipped` at once, in bulk, and leave the timeline alone (simulations, trial runs).
        """
        due = and_(outbox.c.status.in_(ACTIVE), outbox.c.next_attempt <= now)
        with self.service.db.connect() as conn:
            first = conn.execute(select(outbox.c.id).where(due).limit(1)).first()
            nxt = None
            if first is None:
                nxt = conn.execute(
                    select(func.min(outbox.c.next_attempt)).where(outbox.c.status.in_(ACTIVE))
                ).scalar()
        if first is None:
            return [], nxt
        if not settings.declared:
            self._skip(now)
            return [], None
        with self._lock:
            mine = set(self._inflight)
        lease = now + settings.retry.lease

        def run(conn: Connection) -> list[Row]:
            q = (
                select(
                    outbox.c.id,
                    outbox.c.case_id,
                    outbox.c.kind,
                    outbox.c.key,
                    outbox.c.payload,
                    outbox.c.attempts,
                    outbox.c.created_at,
                )
                .where(due)
                .order_by(outbox.c.next_attempt, outbox.c.id)
                .limit(self.batch)
            )
            if is_postgres(self.service.db):
                q = q.with_for_update(skip_locked=True)
            found = [r for r in conn.execute(q).all() if r.id not in mine]
            if not found:
                return []
            conn.execute(
                update(outbox)
                .where(outbox.c.id.in_([r.id for r in found]))
                .values(status="sending", attempts=outbox.c.attempts + 1, next_attempt=lease)
            )
            return [
                Row(
                    r.id,
                    r.case_id,
                    r.kind,
                    r.key,
                    jsonbytes.loads(r.payload),
                    r.attempts + 1,
                    r.created_at,
                )
                for r in found
            ]

        return self.service.writer.call(run), None

    def _skip(self, now: int) -> None:
        if not self._warned:
            self._warned = True
            log.warning("the policy has no channels section: messages are not sent (skipped)")

        def run(conn: Connection) -> None:
            conn.execute(
                update(outbox)
                .where(outbox.c.status == "pending", outbox.c.next_attempt <= now)
                .values(status="skipped", last_error=NO_CHANNELS)
            )

        self.service.writer.call(run)

    def _dispatch(self, rows: list[Row], now: int, settings: Channels) -> None:
        """Load what the messages show, plan them, hand them to the event loop."""
        self._attach(rows)
        jobs = self._plan(rows, now, settings)
        if not jobs:
            return
        with self._lock:
            self._inflight.update(r.id for job in jobs for r in job)
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._enqueue, jobs)

    def _attach(self, rows: list[Row]) -> None:
        """Read the cases and timelines that a batch's pages show, at once (two queries).
        A row whose case is gone keeps no snapshot."""
        want = {r.case_id for r in rows if r.snapshot is None and r.kind == "notify"}
        if not want:
            return
        found = self._load(want)
        for r in rows:
            if r.snapshot is None:
                r.snapshot = found.get(r.case_id)

    def _load(self, ids: set[str]) -> dict[str, tuple[Case, int, list[dict[str, Any]]]]:
        out: dict[str, tuple[Case, int, list[dict[str, Any]]]] = {}
        with self.service.db.connect() as conn:
            found = conn.execute(
                select(cases.c.id, cases.c.state, cases.c.policy_version).where(cases.c.id.in_(ids))
            ).all()
            entries: dict[str, list[dict[str, Any]]] = {}
            for cid, raw in conn.execute(
                select(timeline.c.case_id, timeline.c.entry)
                .where(timeline.c.case_id.in_(ids))
                .order_by(timeline.c.id)
            ):
                entries.setdefault(cid, []).append(jsonbytes.loads(raw))
        for cid, state, version in found:
            out[cid] = (Case.from_dict(jsonbytes.loads(state)), version, entries.get(cid, []))
        return out

    # planning: hygiene -----------------------------------------------------------------------

    def _plan(self, rows: list[Row], now: int, settings: Channels) -> list[list[Row]]:
        """Messages to send now (each a list of rows); rows held back are put back for later."""
        if not _hygienic(settings):
            return [[r] for r in rows]
        jobs: list[list[Row]] = []
        groups: dict[tuple[str, str], list[Row]] = {}
        for r in rows:
            if r.kind == "notify":
                groups.setdefault((r.payload["person"], r.payload["channel"]), []).append(r)
            else:
                jobs.append([r])  # rule webhooks and notices: neither bundled nor limited
        if not groups:
            return jobs
        ids = {r.case_id for grp in groups.values() for r in grp}
        with self.service.db.connect() as conn:
            prio = dict(
                conn.execute(select(cases.c.id, cases.c.priority).where(cases.c.id.in_(ids))).all()
            )
        held: dict[int, list[Row]] = {}
        for (person, channel), grp in groups.items():
            limits: list[tuple[Any, RateLimit]] = []
            if settings.bundle:
                limits.append((("bundle", person, channel), RateLimit(1, settings.bundle)))
            if settings.person_limit:
                limits.append((("person", person), settings.person_limit))
            if channel in settings.channel_limits:
                limits.append((("channel", channel), settings.channel_limits[channel]))
            urgent = [r for r in grp if prio.get(r.case_id) == "P1"]
            rest = [r for r in grp if prio.get(r.case_id) != "P1"]
            for r in urgent:
                jobs.append([r])
                self.limiter.record(limits, now)
            if rest:
                at = self.limiter.next_slot(limits, now)
                if at <= now:
                    jobs.append(rest)
                    self.limiter.record(limits, now)
                else:
                    held.setdefault(at, []).extend(rest)
        for at, grp in held.items():
            self._hold(grp, at)
        return jobs

    def _hold(self, rows: list[Row], at: int) -> None:
        ids = [r.id for r in rows]

        def run(conn: Connection) -> None:
            conn.execute(
                update(outbox)
                .where(outbox.c.id.in_(ids), outbox.c.status == "sending")
                .values(status="pending", next_attempt=at, attempts=outbox.c.attempts - 1)
            )

        self.service.writer.submit(run)
        self._poll_at = min(self._poll_at, at)

    def _done(self, rows: list[Row]) -> None:
        with self._lock:
            self._inflight.difference_update(r.id for r in rows)
            low = len(self._inflight) < self.batch
        if low and self._poll_at <= self.service.clock.now():
            self._wake.set()  # room for more: a backlog is claimed as fast as it is sent

    # the event loop: delivery ----------------------------------------------------------------

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
        self._flush()
        await self.adapters.close()

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
        """Send one message; its rows' results go to the writer (in the next flush)."""
        try:
            now = self.service.clock.now()
            current = self._policy or self._current()
            settings = channels_of(current)
            if not settings.declared:  # the policy changed under claimed rows
                self._settle(job, "skipped", now, NO_CHANNELS)
                return
            first = job[0]
            error: DeliveryError | None = None
            try:
                if first.kind == "webhook":
                    await self._rule_webhook(first, settings, now)
                elif first.kind == "notice":
                    await self._notice(first, current, settings)
                else:
                    await self._notify(job, current, settings, now)
            except DeliveryError as exc:
                error = exc
            except Exception as exc:  # a bug or bad template: retried, and logged
                log.exception("delivering %s failed", [r.key for r in job])
                error = DeliveryError(f"internal error: {type(exc).__name__}: {exc}")
            for r in job:
                self._report(r, error, settings.retry)
        except Exception:
            log.exception("reporting %s failed; the lease will bring it back", [r.key for r in job])
            self._done(job)

    def _person(self, pid: str, *policies: Policy) -> Any:
        for p in policies:
            found = p.people.get(pid)
            if found is not None:
                return found
        return None

    async def _notify(self, job: list[Row], current: Policy, settings: Channels, now: int) -> None:
        pid, channel = job[0].payload["person"], job[0].payload["channel"]
        loaded = {r.case_id: r.snapshot for r in job if r.snapshot is not None}
        case_policies = [self.service.policy(v) for _, v, _ in loaded.values()]
        person = self._person(pid, current, *case_policies)
        if person is None:
            raise DeliveryError(f"no person '{pid}' in the policy", permanent=True)
        address = person.contacts.get(channel)
        if not address:
            raise DeliveryError(f"person '{pid}' has no {channel} contact", permanent=True)
        if channel not in settings:
            raise DeliveryError(
                f"channel '{channel}' is not configured: add channels.{channel} to the policy",
                permanent=True,
            )
        cfg = settings[channel]
        base, expires = base_url_of(current), now + ttl_of(current)
        items = []
        for r in job:
            if r.case_id not in loaded:
                raise DeliveryError(f"case {r.case_id} is gone", permanent=True)
            case, version, entries = loaded[r.case_id]
            links = {
                action: self.links.url(base, case.id, action, pid, expires, r.key)
                for action in ("acknowledge", "resolve")
            }
            ctx = self.renderer.item_context(
                case, self.service.policy(version), now, entries,
                int(r.payload.get("level") or case.level), str(r.payload.get("reason") or ""),
                links, words=channel != "webhook",
            )  # fmt: skip
            ctx["key"] = r.key
            items.append(ctx)
        key = job[0].key if len(job) == 1 else _bundle_key(job)
        who = {"id": person.id, "name": person.name}
        msg = self.renderer.message(
            current, channel, who, items, webhook_body=lambda c: _webhook_body(c, key, job)
        )
        await self._send(channel, address, cfg, msg, key, now)

    async def _send(
        self, channel: str, address: str, cfg: Any, msg: Message, key: str, now: int
    ) -> None:
        a = self.adapters
        if channel == "webhook":
            await a.send_webhook(address, cfg, msg.data or {}, key, now // 1_000_000)
        elif channel == "sms":
            await a.send_sms(address, cfg, msg.text, key)
        elif channel == "voice":
            await a.send_voice(address, cfg, msg.text, key)
        elif channel == "slack":
            await a.send_slack(address, cfg, msg.data or {"text": msg.text}, key)
        elif channel == "email":
            await self._blocking_call(a.send_email, address, cfg, msg, key)
        elif channel == "apprise":
            await self._blocking_call(a.send_apprise, address, cfg, msg, key)
        else:
            raise DeliveryError(f"unknown channel '{channel}'", permanent=True)

    async def _blocking_call(self, fn: Callable[..., None], *args: Any) -> None:
        """smtplib and Apprise block: on threads, at most `workers` (and 16) at once."""
        if self._blocking is None:
            self._blocking = ThreadPoolExecutor(
                min(self.workers, 16), thread_name_prefix="rungs-deliver"
            )
        await asyncio.get_running_loop().run_in_executor(self._blocking, partial(fn, *args))

    async def _rule_webhook(self, row: Row, settings: Channels, now: int) -> None:
        url = str(row.payload.get("url") or "")
        body = {"type": "rule", "key": row.key, **(row.payload.get("body") or {})}
        await self.adapters.send_webhook(url, settings["webhook"], body, row.key, now // 1_000_000)

    async def _notice(self, row: Row, current: Policy, settings: Channels) -> None:
        p = row.payload
        channel = p["channel"]
        person = self._person(p["person"], current)
        if person is None or not person.contacts.get(channel):
            raise DeliveryError(f"person '{p['person']}' has no {channel} contact", permanent=True)
        if channel not in settings:
            raise DeliveryError(f"channel '{channel}' is not configured", permanent=True)
        by = self._person(p.get("by") or "", current)
        notice = {**p, "case_id": row.case_id, "by_name": by.name if by is not None else None}
        msg = self.renderer.notice(current, channel, notice)
        await self._send(channel, person.contacts[channel], settings[channel], msg, row.key,
                         self.service.clock.now())  # fmt: skip

    # results ---------------------------------------------------------------------------------

    def _settle(self, rows: list[Row], status: str, now: int, last: str | None) -> None:
        for row in rows:

            def settled(f: Future[Any], row: Row = row) -> None:
                exc = f.exception()
                if exc is not None and not isinstance(exc, Stale):
                    log.error("settling %s failed: %s", row.key, exc)
                self._done([row])

            self.service.writer.submit(_marker(row, status, now, last)).add_done_callback(settled)

    def _report(self, row: Row, error: DeliveryError | None, retry: Retry) -> None:
        """The result of one row, for the next flush to the writer."""
        now = self.service.clock.now()
        if error is None:
            status, nxt, last, permanent = "sent", now, None, False
            self.sent += 1
        elif error.permanent or row.attempts >= retry.attempts:
            status, nxt, permanent = "dead", now, True
            last = (
                error.message
                if error.permanent
                else f"gave up after {row.attempts} attempts: {error.message}"
            )
            self.dead += 1
        else:
            wait = backoff(retry, row.attempts)
            if error.retry_after:
                wait = max(wait, int(error.retry_after * 1e6))
            status, nxt, last, permanent = "pending", now + wait, error.message, False
            self.failed += 1
        if error is not None:
            log.warning("%s %s: %s (%s)", row.kind, row.key, error.message, status)

        p = row.payload
        result: dict[str, Any] | None = None
        if row.kind != "notice":
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
        self._results.append(Outcome(row, _mark_params(row, status, nxt, last), result))
        if not self.running or len(self._results) >= self.batch:
            self._flush()
        elif self._flush_at is None:
            assert self._loop is not None
            self._flush_at = self._loop.call_later(self.flush_s, self._flush)

    def _flush(self) -> None:
        """Hand the results to the writer as one command: one transaction, one fsync, one
        answer. A result waits at most `flush` (safe meanwhile: the row stays claimed)."""
        if self._flush_at is not None:
            self._flush_at.cancel()
            self._flush_at = None
        batch, self._results = self._results, []
        if batch:
            self._submit(batch)

    def _submit(self, batch: list[Outcome]) -> None:
        try:
            done = self.service.writer.submit(partial(self._record, batch))
        except Exception:
            log.exception("handing %d results to the writer failed", len(batch))
            return
        done.add_done_callback(partial(self._recorded, batch))

    def _record(self, batch: list[Outcome], conn: Connection) -> None:
        """In the writer's transaction: each result into the core as a `delivery` event (one
        command for all), then the rows' new status (one statement for all: one round trip on
        PostgreSQL)."""
        now = self.service.clock.now()
        for o in batch:
            if o.result is not None:
                with contextlib.suppress(Refused):  # the case is gone: only the row is left
                    self.service.decide_in(
                        conn, o.row.case_id, Event("delivery", data=o.result), now
                    )
        _mark(conn, [o.mark for o in batch], batch[0].row.key)

    def _recorded(self, batch: list[Outcome], f: Future[Any]) -> None:
        """On the writer's thread: never wait here. A failed batch was rolled back whole:
        its results go again one by one, so only the bad one fails."""
        exc = f.exception()
        if exc is not None and len(batch) > 1:
            for o in batch:
                self._submit([o])
            return
        if isinstance(exc, Stale):
            log.warning("%s was claimed again elsewhere; its result is theirs", batch[0].row.key)
        elif exc is not None:
            log.error("recording the result of %s failed: %s", batch[0].row.key, exc)
        self._done([o.row for o in batch])


def _hygienic(settings: Channels) -> bool:
    """Whether messages are bundled or rate-limited: then each is planned before it goes."""
    return bool(settings.bundle or settings.person_limit or settings.channel_limits)


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # uvloop is optional (no Windows build): asyncio's own loop works
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


# On every decision and every result, so straight on the driver's cursor in the transaction:
# SQLAlchemy's per-statement work costs more than SQLite's own.
_CLAIM_NEW = Sql(  # a row a decision has just written, for this process's dispatcher
    "UPDATE outbox SET status = 'sending', attempts = 1, next_attempt = :lease "
    "WHERE key = :key AND status = 'pending' RETURNING id"
)
_MARK = Sql(
    "UPDATE outbox SET status = :status, next_attempt = :next, last_error = :error "
    "WHERE id = :id AND status = 'sending' AND attempts = :claimed"
)


def _mark_params(row: Row, status: str, nxt: int, last: str | None) -> dict[str, Any]:
    return {"id": row.id, "claimed": row.attempts, "status": status, "next": nxt, "error": last}


def _mark(conn: Connection, rows: list[dict[str, Any]], key: str) -> None:
    """Set the rows' outcomes if each row is still this claim's; Stale (naming `key`, the
    first) otherwise: the transaction is then rolled back, and each is tried alone."""
    if run_many(conn, _MARK, rows) != len(rows):
        raise Stale(key)


def _marker(row: Row, status: str, nxt: int, last: str | None) -> Any:
    """Set the row's outcome, if the row is still this claim's; Stale otherwise."""
    return partial(_mark, rows=[_mark_params(row, status, nxt, last)], key=row.key)


def _bundle_key(rows: list[Row]) -> str:
    joined = ",".join(sorted(r.key for r in rows))
    return "bundle-" + hashlib.sha256(joined.encode()).hexdigest()[:32]


def _webhook_body(ctx: dict[str, Any], key: str, rows: list[Row]) -> dict[str, Any]:
    def one(it: dict[str, Any]) -> dict[str, Any]:
        c = it["case"]
        return {
            "key": it["key"],
            "case": {
                "id": c["id"],
                "title": c["title"],
                "priority": c["priority"],
                "status": c["status"],
                "customer": c["customer"],
                "level": c["level"],
            },
            "level": it["level"],
            "reason": it["reason"],
            "why": it["why"],
            "links": it["links"],
            "handoff": it["handoff"],
        }

    items = [one(it) for it in ctx["items"]]
    body = {"type": "notification", **items[0], "key": key, "person": ctx["person"]}
    if len(items) > 1:
        body["type"] = "bundle"
        body["items"] = items
    return body


# the hook: inside every decision's transaction ------------------------------------------------


class OutboxHook:
    """Runs in each decision's transaction: writes "handled by" notices, claims new rows for
    this process's dispatcher (handed over on commit), or wakes remote dispatchers."""

    def __init__(self, service: Service, dispatcher: Dispatcher | None) -> None:
        self.service = service
        self.dispatcher = dispatcher
        self._stash: list[Row] = []

    def __call__(
        self, conn: Connection, case: Case, effects: list[Any], version: int, now: int
    ) -> None:
        new: list[tuple[str, str, dict[str, Any]]] = []
        opened = False
        for e in effects:
            t = type(e)
            if t is Notify:
                new.append(("notify", e.key, {"person": e.person, "channel": e.channel,
                                              "level": e.level, "reason": e.reason}))  # fmt: skip
            elif t is CallWebhook:
                new.append(("webhook", e.key, {"url": e.url, "body": e.body}))
            elif t is Record:
                kind = e.entry["kind"]
                if kind in ("acknowledged", "resolved"):
                    new.extend(self._notices(conn, case, e.entry, version, now))
                elif kind == "opened":
                    opened = True
        if not new:
            return
        d = self.dispatcher
        settings = channels_of(self.service.policy(version))
        if d is None or not d.running or not settings.declared:
            if is_postgres(self.service.db):
                conn.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))
            return
        lease = self.service.clock.now() + settings.retry.lease
        claimed = {}
        for _, key, _ in new:
            found = run(conn, _CLAIM_NEW, {"key": key, "lease": lease})
            if found is not None:
                claimed[key] = found[0]
        snapshot = None
        if opened:  # the whole timeline is in this decision: no need to read it back
            entries = [e.entry for e in effects if type(e) is Record]
            snapshot = (case, version, entries)
        for kind, key, payload in new:
            if key in claimed:
                self._stash.append(Row(claimed[key], case.id, kind, key, payload, 1, now, snapshot))

    def _notices(
        self, conn: Connection, case: Case, entry: dict[str, Any], version: int, now: int
    ) -> list[tuple[str, str, dict[str, Any]]]:
        policy = self.service.policy(version)
        settings = channels_of(policy)
        if not settings.declared or not settings.handled_notice:
            return []
        paged: dict[str, str] = {}
        for (raw,) in conn.execute(
            select(timeline.c.entry)
            .where(
                timeline.c.case_id == case.id,
                timeline.c.kind.in_(("notified", "opened", "reopened")),
            )
            .order_by(timeline.c.id)
        ):
            e = jsonbytes.loads(raw)
            if e["kind"] != "notified":
                paged = {}  # a new round: only its pages count
            elif e.get("channel") != "voice" or e.get("to") not in paged:
                paged[e["to"]] = e.get("channel") or "email"
        by = entry.get("by")
        action = entry["kind"]
        rows = []
        for person, channel in paged.items():
            if person == by:
                continue
            if channel == "voice":  # nobody wants a phone call to say all is well
                p = policy.people.get(person)
                if p is None or "sms" not in p.contacts:
                    continue
                channel = "sms"
            key = f"{case.id}:{action[:3]}{case.epoch}:{person}"
            if len(key) > 120:
                key = (
                    f"{case.id}:{action[:3]}{case.epoch}:"
                    + hashlib.sha256(person.encode()).hexdigest()[:32]
                )
            payload = {
                "person": person,
                "channel": channel,
                "action": action,
                "by": by,
                "level": case.level,
                "title": case.title,
            }
            rows.append(("notice", key, payload))
        if rows:
            conn.execute(
                insert(outbox),
                [
                    {
                        "case_id": case.id,
                        "kind": "notice",
                        "key": key,
                        "payload": jsonbytes.dumps_text(payload),
                        "status": "pending",
                        "attempts": 0,
                        "next_attempt": now,
                        "created_at": now,
                    }
                    for _, key, payload in rows
                ],
            )
        return rows

    def after_commit(self, committed: bool) -> None:
        stash, self._stash = self._stash, []
        if committed and stash and self.dispatcher is not None:
            self.dispatcher.accept(stash)


def install(service: Service, *, dispatch: bool, workers: int | None = None) -> Dispatcher | None:
    """Hook notices and outbox hand-over into the service; a Dispatcher when `dispatch`.

    `workers` (default `RUNGS_DISPATCH_WORKERS`, else 64): messages in flight at once.
    """
    if workers is None:
        workers = int(os.environ.get("RUNGS_DISPATCH_WORKERS") or 64)
    dispatcher = Dispatcher(service, workers=workers) if dispatch else None
    hook = OutboxHook(service, dispatcher)
    service.after_decide.append(hook)
    previous = service.writer.after_commit

    def after_commit(committed: bool) -> None:
        if previous is not None:
            previous(committed)
        hook.after_commit(committed)

    service.writer.after_commit = after_commit
    if dispatcher is not None:
        service.dispatcher = dispatcher  # type: ignore[attr-defined]
        service.on_stop.append(dispatcher.stop)
    return dispatcher
