"""The durable engine: the pure core inside one transaction per command or due timer.

Every command and every due timer loads the case (row-locked on PostgreSQL), runs `decide`
with the case's policy version, and writes the new state, timeline, timer changes and outbox
rows in the same transaction. Timers are rows taken by due time in batches
(`FOR UPDATE SKIP LOCKED` on PostgreSQL), so the work per tick follows what is due.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, text
from sqlalchemy.exc import IntegrityError

from rungs.core.decide import decide
from rungs.core.model import Case, Event, Refused, Timer
from rungs.engine import heartbeats
from rungs.engine.writer import Writer
from rungs.policy import Policy, PolicyError, load_policy_text
from rungs.schedules.oncall import Override
from rungs.store import repo
from rungs.store.db import is_postgres
from rungs.store.tables import overrides, policies, timers
from rungs.time.clock import Clock, VirtualClock

__all__ = ["Service", "Stats"]

log = logging.getLogger("rungs.engine")
NOTIFY_CHANNEL = "rungs_timers"
RETRY_US = 60_000_000  # a timer whose decision failed is tried again after a minute
IDLE_S = 0.05  # the least wait when due timers are held by another engine
VERSION_TTL_S = 1.0  # how stale this process's idea of the current policy version may be


@dataclass
class Stats:
    fired: int = 0
    last_lateness_us: int = 0
    lateness_sum_us: int = 0


class Service:
    """Commands in, durable state out; also the timer loop when this process runs the engine."""

    def __init__(self, engine: Engine, clock: Clock, *, batch: int = 500) -> None:
        self.db = engine
        self.clock = clock
        self.batch = batch
        self.writer = Writer(engine)
        self._wake_at_commit = False  # a timer this transaction set is due before _planned
        self.writer.after_commit = self._committed
        self.stats = Stats()
        self._policies: dict[int, Policy] = {}
        self._overrides_seen = 0
        self._current: int | None = None
        self._checked = 0.0
        self._wake = threading.Event()
        # the instant the engine loop next wakes by itself (0 while it is busy): a new timer
        # due later than that needs no wake-up, so opening cases does not spin the loop
        self._planned = 0
        self._stop = threading.Event()
        self._loop: threading.Thread | None = None
        self._listener: threading.Thread | None = None
        self.on_fired: Callable[[int], None] | None = None  # lateness observer (metrics)
        # called inside the transaction of every decision: (conn, case, effects, version, now)
        self.after_decide: list[Callable[[Connection, Case, list[Any], int, int], None]] = []
        self.on_stop: list[Callable[[], None]] = []  # run by stop() before the writer closes

    # policy versions -------------------------------------------------------------------

    def policy(self, version: int) -> Policy:
        """The compiled policy of a version, with the overrides posted through the API."""
        found = self._policies.get(version)
        if found is None:
            with self.db.connect() as conn:
                row = conn.execute(
                    select(policies.c.yaml, policies.c.source).where(policies.c.version == version)
                ).first()
            if row is None:
                raise KeyError(f"policy version {version} is not stored")
            found, problems = load_policy_text(row.yaml, row.source or f"version {version}")
            if found is None:
                raise PolicyError(problems)
            found = self._with_overrides(found)
            self._policies[version] = found
        return found

    def _with_overrides(self, policy: Policy) -> Policy:
        with self.db.connect() as conn:
            rows = conn.execute(select(overrides).order_by(overrides.c.id)).all()
        self._overrides_seen = max((r.id for r in rows), default=0)
        extra: dict[str, list[Override]] = {}
        for r in rows:
            extra.setdefault(r.schedule_id, []).append(Override(r.start, r.end, r.who))
        if not extra:
            return policy
        schedules = {
            sid: replace(s, overrides=(*s.overrides, *extra.get(sid, ())))
            for sid, s in policy.schedules.items()
        }
        return replace(policy, schedules=schedules)

    def refresh_overrides(self) -> None:
        """Drop cached policies when another process (or this one) stored an override."""
        with self.db.connect() as conn:
            latest = conn.execute(select(func.max(overrides.c.id))).scalar() or 0
        if latest != self._overrides_seen:
            self._policies.clear()

    def add_override(
        self, schedule_id: str, start: int, end: int, who: str, note: str | None
    ) -> int:
        now = self.clock.now()

        def write(conn: Connection) -> int:
            return conn.execute(
                insert(overrides)
                .values(
                    schedule_id=schedule_id,
                    start=start,
                    end=end,
                    who=who,
                    created_at=now,
                    note=note,
                )
                .returning(overrides.c.id)
            ).scalar_one()

        oid = self.writer.call(write)
        self._policies.clear()
        return oid

    def current_version(self) -> int:
        """The newest stored version; re-read at most every second (other processes PUT too)."""
        tick = time.monotonic()
        if self._current is None or tick - self._checked > VERSION_TTL_S:
            with self.db.connect() as conn:
                v = conn.execute(select(func.max(policies.c.version))).scalar()
            if v is None:
                raise RuntimeError("no policy is stored; start with --policy FILE")
            self._current, self._checked = v, tick
        return self._current

    def store_policy(self, yaml_text: str, source: str) -> tuple[int, Policy]:
        """Validate and store a new version (raises PolicyError with every problem)."""
        policy, problems = load_policy_text(yaml_text, source)
        if policy is None:
            raise PolicyError(problems)
        now = self.clock.now()

        def write(conn: Connection) -> int:
            return conn.execute(
                insert(policies)
                .values(yaml=yaml_text, source=source, created_at=now)
                .returning(policies.c.version)
            ).scalar_one()

        version = self.writer.call(write)
        self._policies[version] = policy
        self._current, self._checked = version, time.monotonic()
        return version, policy

    def policy_text(self, version: int) -> str:
        with self.db.connect() as conn:
            return conn.execute(
                select(policies.c.yaml).where(policies.c.version == version)
            ).scalar_one()

    def ensure_policy(self, yaml_text: str, source: str) -> int:
        """Store the policy unless the current version already holds exactly this text."""
        try:
            current = self.current_version()
            if self.policy_text(current) == yaml_text:
                self.policy(current)
                return current
        except RuntimeError:
            pass
        return self.store_policy(yaml_text, source)[0]

    # commands --------------------------------------------------------------------------

    def decide_in(self, conn: Connection, case_id: str, event: Event, now: int) -> tuple[Case, int]:
        """Decide and write; returns the new case and the earliest timer it set (0 for none)."""
        loaded = repo.load_case(conn, case_id, lock=True)
        if loaded is None:
            raise Refused(f"no case '{case_id}'", 404)
        case, version = loaded
        if event.kind == "reopen":
            version = self.current_version()  # decided by the version it was last reopened under
        new, effects = decide(case, event, now, self.policy(version))
        repo.save_case(conn, new, version)
        earliest = repo.apply_effects(conn, effects, version, now)
        self._after_write(conn, earliest)
        self._decided(conn, new, effects, version, now)
        return new, earliest

    def _decided(self, conn: Connection, case: Case, effects: list[Any], version: int, now: int):
        for hook in self.after_decide:
            hook(conn, case, effects, version, now)

    def open(self, data: dict[str, Any]) -> tuple[Case, bool]:
        """Open a case (or return the open one with the same dedup key); True when new."""
        return self.open_future(data).result()

    def open_future(self, data: dict[str, Any]) -> Future[tuple[Case, bool]]:
        """`open`, answered when the writer has committed it."""
        return self.writer.submit(self._open_command(data))

    def open_async(self, data: dict[str, Any]) -> asyncio.Future[tuple[Case, bool]]:
        """`open` from the event loop: await it; answered once committed."""
        return self.writer.submit_async(self._open_command(data))

    def _open_command(self, data: dict[str, Any]) -> Callable[[Connection], tuple[Case, bool]]:
        version = self.current_version()
        policy = self.policy(version)
        return lambda conn: self.open_in(conn, data, version, policy, self.clock.now())

    def open_in(
        self,
        conn: Connection,
        data: dict[str, Any],
        version: int,
        policy: Policy,
        now: int,
        *,
        repeat: dict[str, Any] | None = None,
    ) -> tuple[Case, bool]:
        """Open a case in this transaction, unless one with its dedup key is open: then return
        that one, after folding `repeat` into it as an `alert_repeated` event when given."""
        key = data.get("dedup_key")
        if key:
            existing = repo.find_open(conn, key)
            if existing is not None:
                if repeat is not None:
                    event = Event("alert_repeated", data=repeat)
                    return self.decide_in(conn, existing, event, now)[0], False
                loaded = repo.load_case(conn, existing, lock=False)
                assert loaded is not None
                return loaded[0], False
        case_id = repo.new_case_id(conn)
        case, effects = decide(None, Event("open", data=data), now, policy, case_id=case_id)
        repo.insert_case(conn, case, version)
        self._after_write(conn, repo.apply_effects(conn, effects, version, now, fresh=True))
        self._decided(conn, case, effects, version, now)
        return case, True

    async def trigger(self, data: dict[str, Any], repeat: dict[str, Any]) -> tuple[Case, bool]:
        """An alert, from the event loop: open a case, or add it to the open case with the same
        dedup key (True when a case was opened). `repeat` is the `alert_repeated` event's data."""
        version = self.current_version()
        policy = self.policy(version)

        def run(conn: Connection) -> tuple[Case, bool]:
            return self.open_in(conn, data, version, policy, self.clock.now(), repeat=repeat)

        try:
            return await self.writer.submit_async(run)
        except IntegrityError:  # another process opened the same key at the same moment
            return await self.writer.submit_async(run)

    def act_on_key(self, dedup_key: str, event: Event) -> asyncio.Future[tuple[Case | None, bool]]:
        """Decide `event` on the open case with this dedup key, from the event loop (await it):
        (case or None, True when the core took it). An event the case's state refuses (a
        second acknowledgement) is no error."""

        def run(conn: Connection) -> tuple[Case | None, bool]:
            existing = repo.find_open(conn, dedup_key)
            if existing is None:
                return None, False
            try:
                return self.decide_in(conn, existing, event, self.clock.now())[0], True
            except Refused:  # refused before anything was written
                loaded = repo.load_case(conn, existing, lock=False)
                return (loaded[0] if loaded else None), False

        return self.writer.submit_async(run)

    def act(
        self, case_id: str, event: Event, also: Callable[[Connection], Any] | None = None
    ) -> Case:
        """Decide one event; `also` runs after it in the same transaction (it may raise)."""
        return self.submit(case_id, event, also).result()

    def submit(
        self, case_id: str, event: Event, also: Callable[[Connection], Any] | None = None
    ) -> Future[Case]:
        """`act` without waiting: the future is resolved once the decision is committed."""

        def run(conn: Connection) -> Case:
            new = self.decide_in(conn, case_id, event, self.clock.now())[0]
            if also is not None:
                also(conn)
            return new

        return self.writer.submit(run)

    def alert_repeated(self, case_id: str, data: dict[str, Any]) -> Case:
        """Fold another trigger into an open case (an `alert_repeated` entry with a count)."""
        event = Event("alert_repeated", data=data)
        return self.writer.call(
            lambda conn: self.decide_in(conn, case_id, event, self.clock.now())[0]
        )

    def adopt_policy(self, case_id: str) -> Case:
        """Move one case to the current policy version, keeping its level and SLA clocks."""
        version = self.current_version()
        policy = self.policy(version)

        def run(conn: Connection) -> Case:
            loaded = repo.load_case(conn, case_id, lock=True)
            if loaded is None:
                raise Refused(f"no case '{case_id}'", 404)
            case, _ = loaded
            if not any(m.id == case.matrix for m in policy.matrices):
                raise Refused(f"policy version {version} has no matrix '{case.matrix}'", 409)
            repo.save_case(conn, case, version)
            repo.apply_effects(conn, [], version, self.clock.now())
            return case

        return self.writer.call(run)

    # timers ----------------------------------------------------------------------------

    def _after_write(self, conn: Connection, earliest: int) -> None:
        """Wake engines for a new timer: this one at once, others by one NOTIFY per transaction
        (PostgreSQL delivers it at commit; a batch of commands needs only one)."""
        if earliest:
            if is_postgres(self.db):
                tx = conn.get_transaction()  # held, so its identity is not reused
                if conn.info.get("rungs_notified") is not tx:
                    conn.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))
                    conn.info["rungs_notified"] = tx
            if not self._planned or earliest < self._planned:
                self._wake_at_commit = True  # woken before the commit, it would not see it

    def _committed(self, committed: bool) -> None:
        """On the writer thread after each transaction: wake this engine for what it set."""
        if self._wake_at_commit:
            self._wake_at_commit = False
            if committed:
                self._wake.set()

    def fire_due(self, until: int, *, virtual: bool = False) -> int:
        """Fire up to one batch of timers due at or before `until`; returns how many fired."""

        def run(conn: Connection) -> int:
            q = (
                select(timers.c.id, timers.c.case_id, timers.c.key, timers.c.due, timers.c.payload)
                .where(timers.c.due <= until)
                .order_by(timers.c.due, timers.c.id)
                .limit(self.batch)
            )
            if is_postgres(self.db):
                q = q.with_for_update(skip_locked=True)
            rows = conn.execute(q).all()
            fired = 0
            set_before = 0
            for i, row in enumerate(rows):
                if i and set_before and set_before < row.due:
                    break  # a timer set by this batch comes first: re-select, keep the order
                gone = conn.execute(delete(timers).where(timers.c.id == row.id)).rowcount
                if not gone:
                    continue  # replaced or cancelled by an earlier timer of this batch
                now = max(self.clock.now(), row.due)
                if virtual and isinstance(self.clock, VirtualClock):
                    self.clock.set(max(self.clock.now(), row.due))
                timer = Timer(row.key, row.due, tuple(json.loads(row.payload)))
                try:
                    _, earliest = self.decide_in(
                        conn, row.case_id, Event("timer", timer=timer), now
                    )
                except Refused:
                    earliest = 0  # the case is gone: nothing to do
                except Exception:
                    # decide() failed before writing: keep the timer, retry it a minute later
                    log.exception("timer %s of case %s failed; retrying", row.key, row.case_id)
                    conn.execute(
                        insert(timers).values(
                            case_id=row.case_id,
                            key=row.key,
                            due=now + RETRY_US,
                            payload=row.payload,
                        )
                    )
                    continue
                if earliest:
                    set_before = min(set_before or earliest, earliest)
                fired += 1
                late = max(0, self.clock.now() - row.due)
                self.stats.fired += 1
                self.stats.last_lateness_us = late
                self.stats.lateness_sum_us += late
                if self.on_fired:
                    self.on_fired(late)
            return fired

        return self.writer.call(run)

    def advance(self, to: int) -> int:
        """Virtual clock: run, in order, every timer and missed heartbeat due up to `to`, then
        stand at `to`."""
        clock = self.clock
        if not isinstance(clock, VirtualClock):
            raise RuntimeError("advance needs the virtual clock")
        if to < clock.now():
            raise ValueError("the virtual clock cannot go backwards")
        total = 0
        while True:
            beat = heartbeats.next_due(self, to)  # missed heartbeats take their turn by due
            n = self.fire_due(to if beat is None else beat, virtual=True)
            total += n
            if n:
                continue
            if beat is None:
                break
            fired = heartbeats.fire_due(self, beat, virtual=True)
            total += fired
            if not fired and heartbeats.next_due(self, to) == beat:
                break  # held by another engine: nothing this one can do
        clock.set(to)
        return total

    def next_due(self) -> int | None:
        with self.db.connect() as conn:
            return conn.execute(select(func.min(timers.c.due))).scalar()

    def start_engine(self) -> None:
        """Run due timers in the background until `stop` (real clock only)."""
        if self.clock.virtual or self._loop is not None:
            return
        self._loop = threading.Thread(target=self._run_loop, name="rungs-engine", daemon=True)
        self._loop.start()
        if is_postgres(self.db):
            self._listener = threading.Thread(target=self._listen, name="rungs-listen", daemon=True)
            self._listener.start()

    def _run_loop(self) -> None:
        while not self._stop.is_set():
            self._planned = 0
            try:
                self.refresh_overrides()
                heartbeats.fire_due(self, self.clock.now())
                n = self.fire_due(self.clock.now())
                if n >= self.batch:
                    continue
                nxt = self.next_due()
                beat = heartbeats.next_due(self)
                nxt = beat if nxt is None or (beat is not None and beat < nxt) else nxt
            except Exception:  # keep the engine alive through a database restart
                log.exception("engine tick failed; retrying")
                self._stop.wait(1.0)
                continue
            wait = 1.0 if nxt is None else max(0.0, min(1.0, (nxt - self.clock.now()) / 1e6))
            if n == 0:
                wait = max(wait, IDLE_S)  # due rows locked by another engine: do not spin
            self._planned = self.clock.now() + int(wait * 1e6)
            if wait > 0:
                self._wake.wait(wait)
            self._wake.clear()

    def _listen(self) -> None:
        """LISTEN for timers written by other processes, to wake this engine early."""
        import psycopg

        url = self.db.url.set(drivername="postgresql").render_as_string(hide_password=False)
        while not self._stop.is_set():
            try:
                with psycopg.connect(url, autocommit=True) as pg:
                    pg.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    for _ in pg.notifies(timeout=1.0):
                        self._wake.set()
                        if self._stop.is_set():
                            return
            except Exception:
                log.exception("LISTEN failed; retrying")
                self._stop.wait(1.0)

    def stop(self) -> None:
        for fn in self.on_stop:
            fn()
        self._stop.set()
        self._wake.set()
        if self._loop:
            self._loop.join(timeout=5)
        self.writer.close()
