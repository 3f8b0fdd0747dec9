"""The dispatcher: outbox rows out through the channels, every result back into the timeline.

Rows are claimed (status `sending`, `attempts` + 1, `next_attempt` = now + lease) in a
transaction: due rows by a poll (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so several
dispatchers share the work), and the rows a decision of this process writes in that decision's
own transaction, handed over the moment it commits (no poll, no second commit on the way out).
A dispatcher killed mid-delivery leaves its rows `sending`; when their lease runs out they are
due again, and the retry carries the same idempotency key.

Each result goes into the core as a `delivery` event (`Service.submit_delivery`, the
`record_delivery` that does not wait) in the same transaction as the row's new status: `sent`;
`pending` again with exponential backoff and jitter after a transient failure; `dead` after a
permanent failure or the last attempt (the core then pages the person's next contact method).
Results are handed to the writer in bursts (at most `flush` apart) so several share a commit;
until then the row stays claimed, so a crash only means a resend with the same key.
"Handled by" notices are delivered the same way but leave the timeline alone.

Hygiene, per process: within `channels.bundle` of a message to one person on one channel,
further ones wait for the window's end and go as one message; `channels.rate_limits` per
person and per channel hold messages until a slot frees (then also as one message). P1 goes
past both.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import queue
import random
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, insert, select, text, update

from rungs.core.model import CallWebhook, Case, Notify, Record, Refused
from rungs.engine.service import Service
from rungs.notify.adapters import Adapters, DeliveryError
from rungs.notify.links import Links, base_url_of, ttl_of
from rungs.notify.messages import Message, Renderer
from rungs.policy.channels import Channels, RateLimit, Retry, channels_of
from rungs.policy.model import Policy
from rungs.store.db import is_postgres
from rungs.store.tables import cases, outbox, timeline

__all__ = ["Dispatcher", "OutboxHook", "Row", "NOTIFY_CHANNEL", "install"]

log = logging.getLogger("rungs.notify")
NOTIFY_CHANNEL = "rungs_outbox"
ACTIVE = ("pending", "sending")
NO_CHANNELS = "not sent: the policy has no channels section"
_dumps = json.JSONEncoder(separators=(",", ":")).encode


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
    def __init__(
        self,
        service: Service,
        *,
        workers: int = 8,
        batch: int = 256,
        poll: float = 0.5,
        flush: float = 0.05,
    ) -> None:
        self.service = service
        self.workers = workers
        self.batch = batch
        self.poll_s = poll
        self.links = Links(service.db)
        self.renderer = Renderer()
        self.adapters = Adapters()
        self.limiter = Limiter()
        self.running = False
        self.sent = self.failed = self.dead = 0
        self._ready: deque[Row] = deque()
        self._inflight: set[int] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._poll_at = 0  # µs: when to look for due rows next (0: at once)
        self._hygiene = False
        self._warned = False
        self._thread: threading.Thread | None = None
        self._listener: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self.flush_s = flush
        self._results: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._reporter: threading.Thread | None = None

    # life ------------------------------------------------------------------------------------

    def start(self) -> None:
        if self.running:
            return
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="rungs-deliver")
        self.running = True
        self._reporter = threading.Thread(
            target=self._report_loop, name="rungs-report", daemon=True
        )
        self._reporter.start()
        self._thread = threading.Thread(target=self._run, name="rungs-dispatcher", daemon=True)
        self._thread.start()
        if is_postgres(self.service.db):
            self._listener = threading.Thread(
                target=self._listen, name="rungs-outbox-listen", daemon=True
            )
            self._listener.start()

    def stop(self) -> None:
        if not self.running:
            return
        self.running = False
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._results.put(None)  # after the workers: their results are handed over first
        if self._reporter is not None:
            self._reporter.join(timeout=10)
        self.adapters.close()

    def wake(self) -> None:
        self._poll_at = 0
        self._wake.set()

    def accept(self, rows: list[Row]) -> None:
        """Rows claimed inside a transaction that has just committed (any thread)."""
        if not self.running:
            return
        if not self._hygiene and self._pool is not None:
            with self._lock:
                self._inflight.update(r.id for r in rows)
            for r in rows:
                self._pool.submit(self._deliver, [r])
            return
        self._ready.extend(rows)
        self._wake.set()

    # the loop --------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            wait = self.poll_s
            try:
                current = self._current()
                settings = channels_of(current)
                self._hygiene = bool(
                    settings.bundle or settings.person_limit or settings.channel_limits
                )
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
                    wait = self.poll_s  # enough in hand: wait for the workers (they wake us)
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
                    json.loads(r.payload),
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

    def run_once(self) -> int:
        """Claim every due row and deliver it on this thread (tests, tools); returns how many."""
        now = self.service.clock.now()
        settings = channels_of(self._current())
        rows, _ = self._claim(now, settings)
        self._attach(rows)
        for job in self._plan(rows, now, settings):
            for f in self._deliver(job):
                f.result()
        return len(rows)

    # planning: hygiene -----------------------------------------------------------------------

    def _dispatch(self, rows: list[Row], now: int, settings: Channels) -> None:
        self._attach(rows)
        jobs = self._plan(rows, now, settings)
        assert self._pool is not None
        with self._lock:
            self._inflight.update(r.id for job in jobs for r in job)
        # one task per worker, each sending its share in turn: as many messages in flight as
        # there are workers, and far fewer thread hand-overs than a task per message
        for share in (jobs[i :: self.workers] for i in range(min(self.workers, len(jobs)))):
            self._pool.submit(self._deliver_all, share)

    def _deliver_all(self, jobs: list[list[Row]]) -> None:
        for job in jobs:
            self._deliver(job)

    def _plan(self, rows: list[Row], now: int, settings: Channels) -> list[list[Row]]:
        """Messages to send now (each a list of rows); rows held back are put back for later."""
        if not (settings.bundle or settings.person_limit or settings.channel_limits):
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

    # delivery --------------------------------------------------------------------------------

    def _deliver(self, job: list[Row]) -> list[Future[Any]]:
        """Send one message; its rows' results go to the writer without waiting (returned)."""
        futures: list[Future[Any]] = []
        try:
            now = self.service.clock.now()
            current = self._current()
            settings = channels_of(current)
            if not settings.declared:  # the policy changed under claimed rows
                for r in job:
                    self._settle(r, "skipped", now, NO_CHANNELS)
                self._done(job)
                return futures
            first = job[0]
            error: DeliveryError | None = None
            try:
                if first.kind == "webhook":
                    self._rule_webhook(first, settings, now)
                elif first.kind == "notice":
                    self._notice(first, current, settings)
                else:
                    self._notify(job, current, settings, now)
            except DeliveryError as exc:
                error = exc
            except Exception as exc:  # a bug or bad template: retried, and logged
                log.exception("delivering %s failed", [r.key for r in job])
                error = DeliveryError(f"internal error: {type(exc).__name__}: {exc}")
            for r in job:
                futures.append(self._report(r, error, settings.retry))
        except Exception:
            log.exception("reporting %s failed; the lease will bring it back", [r.key for r in job])
            self._done(job)
        return futures

    def _done(self, rows: list[Row]) -> None:
        with self._lock:
            self._inflight.difference_update(r.id for r in rows)
            low = len(self._inflight) < self.batch
        if low and self._poll_at <= self.service.clock.now():
            self._wake.set()  # room for more: a backlog is claimed as fast as it is sent

    def _attach(self, rows: list[Row]) -> None:
        """Read the cases and timelines of a batch at once (one connection, two queries)."""
        if any(r.snapshot is None for r in rows):
            found = self._load(rows)
            for r in rows:
                if r.snapshot is None:
                    r.snapshot = found.get(r.case_id)

    def _load(self, rows: list[Row]) -> dict[str, tuple[Case, int, list[dict[str, Any]]]]:
        out = {r.case_id: r.snapshot for r in rows if r.snapshot is not None}
        want = {r.case_id for r in rows} - set(out)
        if want:
            with self.service.db.connect() as conn:
                found = conn.execute(
                    select(cases.c.id, cases.c.state, cases.c.policy_version).where(
                        cases.c.id.in_(want)
                    )
                ).all()
                entries: dict[str, list[dict[str, Any]]] = {}
                for cid, raw in conn.execute(
                    select(timeline.c.case_id, timeline.c.entry)
                    .where(timeline.c.case_id.in_(want))
                    .order_by(timeline.c.id)
                ):
                    entries.setdefault(cid, []).append(json.loads(raw))
            for cid, state, version in found:
                out[cid] = (Case.from_dict(json.loads(state)), version, entries.get(cid, []))
        return out

    def _person(self, pid: str, *policies: Policy) -> Any:
        for p in policies:
            found = p.people.get(pid)
            if found is not None:
                return found
        return None

    def _notify(self, job: list[Row], current: Policy, settings: Channels, now: int) -> None:
        pid, channel = job[0].payload["person"], job[0].payload["channel"]
        loaded = self._load(job)
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
                links,
            )  # fmt: skip
            ctx["key"] = r.key
            items.append(ctx)
        key = job[0].key if len(job) == 1 else _bundle_key(job)
        who = {"id": person.id, "name": person.name}
        msg = self.renderer.message(
            current, channel, who, items, webhook_body=lambda c: _webhook_body(c, key, job)
        )
        self._send(channel, address, cfg, msg, key, now)

    def _send(self, channel: str, address: str, cfg: Any, msg: Message, key: str, now: int):
        a = self.adapters
        if channel == "email":
            a.send_email(address, cfg, msg, key)
        elif channel == "sms":
            a.send_sms(address, cfg, msg.text, key)
        elif channel == "voice":
            a.send_voice(address, cfg, msg.text, key)
        elif channel == "slack":
            a.send_slack(address, cfg, msg.data or {"text": msg.text}, key)
        elif channel == "webhook":
            a.send_webhook(address, cfg, msg.data or {}, key, now // 1_000_000)
        elif channel == "apprise":
            a.send_apprise(address, cfg, msg, key)
        else:
            raise DeliveryError(f"unknown channel '{channel}'", permanent=True)

    def _rule_webhook(self, row: Row, settings: Channels, now: int) -> None:
        url = str(row.payload.get("url") or "")
        body = {"type": "rule", "key": row.key, **(row.payload.get("body") or {})}
        self.adapters.send_webhook(url, settings["webhook"], body, row.key, now // 1_000_000)

    def _notice(self, row: Row, current: Policy, settings: Channels) -> None:
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
        self._send(channel, person.contacts[channel], settings[channel], msg, row.key,
                   self.service.clock.now())  # fmt: skip

    def _settle(self, row: Row, status: str, now: int, last: str | None) -> None:
        with contextlib.suppress(Stale):
            self.service.writer.call(_marker(row, status, now, last))

    def _report(self, row: Row, error: DeliveryError | None, retry: Retry) -> Future[Any]:
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

        mark = _marker(row, status, nxt, last)
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
        out: Future[Any] = Future()

        def reported(f: Future[Any]) -> None:  # on the writer thread: never wait here
            exc = f.exception()
            if isinstance(exc, Refused):  # the case is gone: only the row is left to settle
                again = self.service.writer.submit(mark)
                again.add_done_callback(reported)
                return
            if isinstance(exc, Stale):
                log.warning("%s was claimed again elsewhere; its result is theirs", row.key)
            elif exc is not None:
                log.error("recording the result of %s failed: %s", row.key, exc)
            self._done([row])
            out.set_result(None)

        def submit() -> None:
            if result is None:
                fut = self.service.writer.submit(mark)
            else:
                fut = self.service.submit_delivery(row.case_id, result, also=mark)
            fut.add_done_callback(reported)

        if self._reporter is not None and self.running:
            self._results.put(submit)
        else:
            submit()
        return out

    def _report_loop(self) -> None:
        """Hand results to the writer in bursts, so that several share one commit: a result
        waits at most `flush` (it is safe meanwhile: the row stays claimed under its lease)."""
        q = self._results
        while True:
            first = q.get()
            if first is None:
                return
            batch = [first]
            end = time.monotonic() + self.flush_s
            stop = False
            while len(batch) < self.batch:
                left = end - time.monotonic()
                if left <= 0:
                    break
                try:
                    item = q.get(timeout=left)
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            for submit in batch:
                try:
                    submit()
                except Exception:
                    log.exception("handing a result to the writer failed")
            if stop:
                return


_CLAIM_NEW = (  # the rows a decision has just written, for this process's dispatcher
    update(outbox)
    .where(outbox.c.key.in_(bindparam("keys", expanding=True)), outbox.c.status == "pending")
    .values(status="sending", attempts=1, next_attempt=bindparam("lease"))
    .returning(outbox.c.key, outbox.c.id)
)

_MARK = (
    update(outbox)
    .where(
        outbox.c.id == bindparam("row_id"),
        outbox.c.status == "sending",
        outbox.c.attempts == bindparam("claimed"),
    )
    .values(
        status=bindparam("new_status"),
        next_attempt=bindparam("new_next"),
        last_error=bindparam("new_error"),
    )
)


def _marker(row: Row, status: str, nxt: int, last: str | None) -> Any:
    """Set the row's outcome, if the row is still this claim's; Stale otherwise."""
    params = {"row_id": row.id, "claimed": row.attempts, "new_status": status,
              "new_next": nxt, "new_error": last}  # fmt: skip

    def mark(conn: Connection) -> None:
        if not conn.execute(_MARK, params).rowcount:
            raise Stale(row.key)

    return mark


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
        keys = [k for _, k, _ in new]
        claimed = dict(conn.execute(_CLAIM_NEW, {"keys": keys, "lease": lease}).all())
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
            e = json.loads(raw)
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
                        "payload": _dumps(payload),
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

    `workers` (default `RUNGS_DISPATCH_WORKERS`, else 8): messages in flight at once.
    """
    if workers is None:
        workers = int(os.environ.get("RUNGS_DISPATCH_WORKERS") or 8)
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
