"""Commands: the one way in for writes. Each is async and answered once committed.

A command is a function of the writer's connection: it loads the case (row-locked on
PostgreSQL), runs `decide` with the case's policy version, and writes the new state and the
effects (`rungs.store.effects`) in the same transaction. The writer commits many at once.
Managers (timers, heartbeats, the dispatcher's results) decide inside their own
transactions through `decide_in` and `open_in`: the two places every decision goes
through, where its input is journaled too (`rungs.store.journal`, for verify and replay).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Connection

from rungs.core.decide import decide
from rungs.core.model import Case, Effect, Event, Refused
from rungs.engine.alerts import keys_ahead
from rungs.engine.changes import Changes
from rungs.engine.console_commands import ConsoleCommands
from rungs.engine.heartbeats import beat_in
from rungs.engine.mail import Compose, Inbound, Taken, take_in
from rungs.engine.policies import PolicyChange, PolicyStore
from rungs.engine.storm_commands import AlertCall, AlertOutcome, StormCommands
from rungs.engine.surveys import answer_in, opt_out_in, watch
from rungs.engine.wake import Wake
from rungs.engine.writer import Writer, looks_up
from rungs.policy import Policy
from rungs.policy.model import Integration
from rungs.store import journal
from rungs.store.cases import (
    find_open,
    insert_case,
    load_case,
    load_cases,
    new_case_id,
    save_case,
    save_cases,
)
from rungs.store.changes import record_change
from rungs.store.effects import write_effects
from rungs.store.facts import facts_batch
from rungs.store.links import LinkUse, record_use
from rungs.store.outbox import NewRow, Row, wake_dispatchers, write_new
from rungs.store.sql import DUPLICATE, savepoint
from rungs.store.tokens import check_person, create_token, revoke_token
from rungs.time.clock import Clock

if TYPE_CHECKING:  # the router is made by the engine, given this object
    from rungs.engine.alerts import AlertRouter

__all__ = ["AlertCall", "AlertOutcome", "Commands", "Deliveries"]


class Deliveries(Protocol):
    """What the effect writer needs of this process's dispatcher: a lease to insert rows
    already claimed with, and the hand-over once the transaction commits."""

    def lease(self, policy: Policy) -> int | str | None:
        """The instant a claim taken now runs out; None: insert rows pending; text: insert
        them skipped, for that reason (nothing will be sent)."""
        ...

    def accept(self, rows: list[Row]) -> None:
        """Rows claimed in a transaction that has just committed (on the writer's thread)."""
        ...


class Commands(ConsoleCommands, StormCommands):
    """Every write, as an awaited method (see the module's docstring); the console's and the
    storms' own commands are in `console_commands.py` and `storm_commands.py`."""

    def __init__(
        self,
        writer: Writer,
        policies: PolicyStore,
        clock: Clock,
        wake: Wake,
        *,
        deliveries: Deliveries | None = None,
        changes: Changes | None = None,
    ) -> None:
        self.writer = writer
        self.changes = changes  # told the ids of the cases each commit wrote (console SSE)
        self._changed: set[str] = set()
        self.policies = policies
        self.clock = clock
        self.wake = wake
        self.deliveries = deliveries
        self._claimed: list[Row] = []  # rows for the dispatcher, once the batch commits
        self.alerts: AlertRouter | None = None  # grouping, storms, maintenance, flapping

    # inside a transaction --------------------------------------------------------------------

    def decide_in(self, conn: Connection, case_id: str, event: Event, now: int) -> tuple[Case, int]:
        """Decide and write; returns the new case and the earliest timer it set (0 for none)."""
        loaded = load_case(conn, case_id, lock=True)
        if loaded is None:
            raise Refused(f"no case '{case_id}'", 404)
        case, version = loaded
        if event.kind == "reopen":
            version = self.policies.current_version()  # decided by the version it reopens under
        new, earliest, policy = self.decide_loaded(conn, case, version, event, now)
        save_case(conn, new, version, policy)
        return new, earliest

    def decide_each_in(self, conn: Connection, events: list[tuple[str, Event]], now: int) -> None:
        """Decide many events in their order, as `decide_in` would one after another, with
        their cases loaded in one statement, saved in one, and their facts rows read and
        written in one (`facts_batch`): the dispatcher's delivery results. A case that is
        gone or refuses its event is left as it is (the caller's `decide_in` was told
        `Refused` before writing anything, and went on)."""
        loaded = load_cases(conn, dict.fromkeys(cid for cid, _ in events), lock=True)
        dirty: dict[str, tuple[Case, int, Policy]] = {}
        with facts_batch(conn, [(case.opened_at, case.id) for case, _ in loaded.values()]):
            for case_id, event in events:
                found = loaded.get(case_id)
                if found is None:
                    continue
                try:
                    new, _, policy = self.decide_loaded(conn, *found, event, now)
                except Refused:
                    continue
                loaded[case_id] = (new, found[1])
                dirty[case_id] = (new, found[1], policy)
        if dirty:
            save_cases(conn, dirty.values())

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
            existing = find_open(conn, key)
            if existing is not None:
                if repeat is not None:
                    event = Event("alert_repeated", data=repeat)
                    return self.decide_in(conn, existing, event, now)[0], False
                loaded = load_case(conn, existing, lock=False)
                assert loaded is not None
                return loaded[0], False
        case_id = new_case_id(conn)
        event = Event("open", data=data)
        case, effects = decide(None, event, now, policy, case_id=case_id)
        insert_case(conn, case, version, policy)
        journal.append(conn, case_id, event, now, version)
        self._write(conn, case, effects, version, policy, now, fresh=True)
        return case, True

    def _write(
        self,
        conn: Connection,
        case: Case,
        effects: list[Effect],
        version: int,
        policy: Policy,
        now: int,
        *,
        fresh: bool,
    ) -> int:
        d = self.deliveries
        lease = None if d is None else partial(d.lease, policy)
        written = write_effects(
            conn, effects, version, now, fresh=fresh, lease=lease, case=case, policy=policy
        )
        if self.changes is not None:
            self._changed.add(case.id)
            self.changes.written(conn)
        self.wake.timer_set(conn, written.earliest)
        if written.claimed:
            self._claimed.extend(written.claimed)
        return written.earliest

    @contextmanager
    def undoable(self, conn: Connection, name: str) -> Iterator[None]:
        """A savepoint that a caller may roll back and go on (a batch of timers): its rollback
        also forgets the rows claimed and the cases changed inside it, which would otherwise
        reach the dispatcher (pages sent twice) and the consoles after the commit."""
        claimed, changed = len(self._claimed), set(self._changed)
        try:
            with savepoint(conn, name):
                yield
        except BaseException:
            del self._claimed[claimed:]
            self._changed = changed
            raise

    def committed(self, ok: bool) -> None:
        """On the writer's thread after each transaction: wake the loop, hand rows over."""
        self.wake.committed(ok)
        if self._changed:
            ids, self._changed = frozenset(self._changed), set()
            if ok and self.changes is not None:
                self.changes.publish(ids)
        if self._claimed:
            rows, self._claimed = self._claimed, []
            if ok and self.deliveries is not None:
                self.deliveries.accept(rows)

    # commands --------------------------------------------------------------------------------

    async def open(self, data: dict[str, Any]) -> tuple[Case, bool]:
        """Open a case (or return the open one with the same dedup key); True when new."""
        version = self.policies.current_version()
        policy = self.policies.policy(version)
        return await self.writer.submit_async(
            looks_up(
                lambda conn: self.open_in(conn, data, version, policy, self.clock.now()),
                [data.get("dedup_key")],
            )
        )

    async def trigger(self, data: dict[str, Any], repeat: dict[str, Any]) -> tuple[Case, bool]:
        """An alert: open a case, or add it to the open case with the same dedup key (True
        when a case was opened). `repeat` is the `alert_repeated` event's data."""
        version = self.policies.current_version()
        policy = self.policies.policy(version)

        def run(conn: Connection) -> tuple[Case, bool]:
            return self.trigger_in(conn, data, repeat, version, policy)

        looks_up(run, keys_ahead(policy, data))
        try:
            return await self.writer.submit_async(run)
        except DUPLICATE:  # another process opened the same key at the same moment
            return await self.writer.submit_async(run)

    def trigger_in(
        self,
        conn: Connection,
        data: dict[str, Any],
        repeat: dict[str, Any],
        version: int,
        policy: Policy,
    ) -> tuple[Case, bool]:
        """`trigger` in this transaction."""
        now = self.clock.now()
        router = self.alerts
        if router is not None:
            router.windows.fresh(conn)  # at most every second: windows other processes added
            taken = router.takes_trigger(policy, data, now)
            if taken is not None:  # grouped, storm-guarded, flap-watched, or held
                integ, window = taken
                return router.trigger_in(conn, integ, data, repeat, version, policy, now, window)
        return self.open_in(conn, data, version, policy, now, repeat=repeat)

    async def act_on_key(self, dedup_key: str, event: Event) -> tuple[Case | None, bool]:
        """Decide `event` on the open case with this dedup key: (case or None, True
        when the core took it). An event the case's state refuses (a second
        acknowledgement) is no error."""
        return await self.writer.submit_async(
            looks_up(lambda conn: self.act_on_key_in(conn, dedup_key, event), [dedup_key])
        )

    def act_on_key_in(
        self, conn: Connection, dedup_key: str, event: Event
    ) -> tuple[Case | None, bool]:
        """`act_on_key` in this transaction."""
        router = self.alerts
        integ = router.takes_act(self.policies.current(), dedup_key) if router else None
        if router is not None and integ is not None:  # maybe one of a group's alerts
            done = router.act_in(conn, integ, dedup_key, event, self.clock.now())
            if done is not None:
                return done
        existing = find_open(conn, dedup_key)
        if existing is None:
            return None, False
        try:
            return self.decide_in(conn, existing, event, self.clock.now())[0], True
        except Refused:  # refused before anything was written
            loaded = load_case(conn, existing, lock=False)
            return (loaded[0] if loaded else None), False

    async def act(self, case_id: str, event: Event, *, link: LinkUse | None = None) -> Case:
        """Decide one event. Taken through a one-click `link`, its use is recorded in the
        same transaction: a link used by a racing request (AlreadyUsed) undoes the action."""

        def run(conn: Connection) -> Case:
            now = self.clock.now()
            new = self.decide_in(conn, case_id, event, now)[0]
            if link is not None:
                record_use(conn, link, now)
            return new

        return await self.writer.submit_async(run)

    async def adopt(self, case_id: str) -> Case:
        """Move one case to the current policy version, keeping its level and SLA clocks."""
        version = self.policies.current_version()
        policy = self.policies.policy(version)

        def run(conn: Connection) -> Case:
            loaded = load_case(conn, case_id, lock=True)
            if loaded is None:
                raise Refused(f"no case '{case_id}'", 404)
            case = loaded[0]
            if not any(m.id == case.matrix for m in policy.matrices):
                raise Refused(f"policy version {version} has no matrix '{case.matrix}'", 409)
            save_case(conn, case, version, policy)
            return case

        return await self.writer.submit_async(run)

    async def beat(self, integ: Integration) -> dict[str, Any]:
        """A heartbeat from `integ` (see `rungs.engine.heartbeats`)."""
        return await self.writer.submit_async(
            lambda conn: beat_in(conn, self, self.wake, integ, self.clock.now())
        )

    async def change_policy(
        self, yaml_text: str, source: str, *, dry_run: bool = False, force: bool = False
    ) -> PolicyChange:
        """`PUT /v1/policy`: see `PolicyStore.change` (PolicyError, PolicyConflict)."""
        return await asyncio.to_thread(
            partial(self.policies.change, yaml_text, source, dry_run=dry_run, force=force)
        )

    async def add_override(
        self, schedule_id: str, start: int, end: int, who: str, note: str | None
    ) -> int:
        """A temporary on-call override of a schedule; Refused, with nothing written, when it
        cannot be (see `PolicyStore.add_override`)."""
        return await asyncio.to_thread(
            self.policies.add_override, schedule_id, start, end, who, note
        )

    async def create_token(self, name: str, role: str, person: str | None = None) -> str:
        """A new API token, belonging to `person` of the policy in force when given
        (TokenError when the name, role or person is refused)."""
        if person is not None:
            current = await asyncio.to_thread(self.policies.current)
            check_person(current.people, person)
        now = self.clock.now()
        return await self.writer.submit_async(
            lambda conn: create_token(conn, name, role, now, person)
        )

    async def revoke_token(self, name: str) -> bool:
        """Revoke the active token with this name; False when there is none."""
        now = self.clock.now()
        return await self.writer.submit_async(lambda conn: revoke_token(conn, name, now))

    async def record_change(self, change: dict[str, Any]) -> int:
        """Keep a change event (`rungs.store.changes`): it opens nothing, the handoff shows it."""
        now = self.clock.now()
        return await self.writer.submit_async(lambda conn: record_change(conn, change, now))

    # customers' mail (issue 15) --------------------------------------------------------------

    def queue_in(self, conn: Connection, rows: list[NewRow], now: int) -> None:
        """Outbox rows the shell makes (mail to customers) in this transaction: claimed by
        this process's dispatcher and handed over at commit, like a decision's."""
        if not rows:
            return
        until = None
        if self.deliveries is not None:
            until = self.deliveries.lease(self.policies.policy(self.policies.current_version()))
        self._claimed.extend(write_new(conn, rows, now, until, None))
        if until is None:
            wake_dispatchers(conn)

    async def take_mail(self, mail: Inbound, compose: Compose) -> Taken:
        """A customer's mail (see `rungs.engine.mail`): answered once all it leads to is
        committed. A mail the core refuses (no matrix for it) leaves nothing behind."""

        def run(conn: Connection) -> Taken:
            now = self.clock.now()
            with self.undoable(conn, "rungs_mail"):
                taken = take_in(conn, self, mail, now, compose)
                self.queue_in(conn, taken.rows, now)
            return taken

        try:
            return await self.writer.submit_async(run)
        except DUPLICATE:  # the same mail taken by another process at the same moment
            return await self.writer.submit_async(run)

    async def answer_survey(self, token: str, rating: int, comment: str) -> dict[str, Any]:
        """`POST /s/{token}`: recorded once (`rungs.engine.surveys.Gone` afterwards, or once
        expired; ValueError for a rating off the scale)."""
        return await self.writer.submit_async(
            lambda conn: answer_in(self, conn, token, rating, comment, self.clock.now())
        )

    async def survey_opt_out(self, token: str) -> str:
        """The survey's requester wants no more surveys; returns the requester."""
        return await self.writer.submit_async(
            lambda conn: opt_out_in(self, conn, token, self.clock.now())
        )

    async def run_compensation(self, period: str) -> dict[str, Any]:
        """Credit suggestions for the period's SLA breaches (`rungs.engine.compensation`)."""
        from rungs.engine.compensation import run_period_in

        policy = self.policies.current()
        now = self.clock.now()
        return await self.writer.submit_async(lambda conn: run_period_in(conn, policy, period, now))

    async def decide_compensation(
        self,
        ident: int,
        decision: str,
        reason: str,
        *,
        by: str | None,
        actor: str | None,
        cents: int | None = None,
    ) -> dict[str, Any]:
        """Approve (maybe another amount) or reject a credit suggestion, with a reason."""
        from rungs.engine.compensation import decide_in

        now = self.clock.now()
        return await self.writer.submit_async(
            lambda conn: decide_in(conn, self, ident, decision, reason, by, actor, cents, now)
        )

    # storms (issue 17): the alert router's writes, maintenance windows ---------------------

    def decide_loaded(
        self, conn: Connection, case: Case, version: int, event: Event, now: int
    ) -> tuple[Case, int, Policy]:
        """Decide, journal the input, write the effects and watch surveys, for a case the
        caller loaded (locked) and will save with the policy returned: `decide_in` saves it
        at once; the timer manager saves a batch's cases in one statement."""
        policy = self.policies.policy(version)
        new, effects = decide(case, event, now, policy)
        journal.append(conn, case.id, event, now, version)
        earliest = self._write(conn, new, effects, version, policy, now, fresh=False)
        if new.status != case.status:  # resolved or reopened: surveys (`rungs.engine.surveys`)
            watch(self, conn, case, new, event, now)
        return new, earliest, policy

    def apply_in(
        self,
        conn: Connection,
        case: Case,
        effects: list[Effect],
        version: int,
        policy: Policy,
        now: int,
        *,
        fresh: bool = False,
    ) -> int:
        """Store a decision made outside `decide` (the router's entries, a held case): the
        case (inserted when `fresh`) and its effects; the earliest timer it set."""
        (insert_case if fresh else save_case)(conn, case, version, policy)
        journal.mark_not_replayable(conn, case.id, now, version)  # the router decided it
        return self._write(conn, case, effects, version, policy, now, fresh=fresh)
