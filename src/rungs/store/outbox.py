"""The outbox table: rows written once, claimed with a lease, marked with their outcome.

A row is claimed by setting `status = 'sending'`, `attempts + 1` and `next_attempt` = the
lease's end, in one transaction: due rows by a poll (`FOR UPDATE SKIP LOCKED` on PostgreSQL,
so several dispatchers share the work), and the rows a decision writes are inserted already
claimed when this process's dispatcher will deliver them (`write_new` with a lease). A
dispatcher killed mid-delivery leaves its rows `sending`; when the lease runs out they are due
again. An outcome is marked only while the row is still that claim's (`Stale` otherwise).

Reads run on their own connections; writes go through the writer (`Submits`): the engine's one
writer thread, so they take turns with decisions. Nothing in `rungs.notify` touches either.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection, Engine, and_, select, update

from rungs.core.model import CallWebhook, Case, Event, Notice, Notify, Refused
from rungs.core.timeline import decode_entry
from rungs.store import jsonbytes
from rungs.store.claims import claim_due, first_due
from rungs.store.listen import OUTBOX_CHANNEL, listen_thread, notify_once
from rungs.store.sql import Sql, run, run_later, run_many, write_many
from rungs.store.tables import cases, outbox, timeline
from rungs.time.clock import Clock

__all__ = [
    "ACTIVE",
    "OUTBOX_CHANNEL",
    "NewRow",
    "Outbox",
    "Outcome",
    "Row",
    "Snapshot",
    "Stale",
    "Submits",
    "mark_params",
    "new_row",
    "record_results",
    "recorder",
    "wake_dispatchers",
    "write_new",
]

ACTIVE = ("pending", "sending")

T = TypeVar("T")
Snapshot = tuple[Case, int, list[dict[str, Any]]]  # the case, its policy version, its timeline
Decide = Callable[[Connection, str, Event, int], object]  # the engine's decision in this tx
# many decisions in this tx, in order: a case gone or refusing its event is left as it is
DecideEach = Callable[[Connection, list[tuple[str, Event]], int], object]


class Submits(Protocol):
    """The writer: runs a function of a connection in its next transaction."""

    def submit(self, fn: Callable[[Connection], T]) -> Future[T]: ...


@dataclass
class Row:
    """A claimed outbox row; `attempts` counts this one. `snapshot`: what a decision that has
    just opened the case knows (no need to read it back)."""

    id: int
    case_id: str
    kind: str  # notify | webhook | notice
    key: str
    payload: dict[str, Any]
    attempts: int
    created_at: int
    snapshot: Snapshot | None = None


@dataclass(frozen=True, slots=True)
class NewRow:
    """A row to write, as one effect of a decision says it."""

    case_id: str
    kind: str
    key: str
    payload: dict[str, Any]


@dataclass(slots=True)
class Outcome:
    """A row's result, waiting for the next flush to the writer."""

    row: Row
    mark: dict[str, Any]  # the row's new status (see _MARK)
    result: dict[str, Any] | None  # the `delivery` event's data; None: the timeline is left


class Stale(Exception):
    """The row is no longer ours (its lease ran out and it was claimed again)."""


# writing new rows (the effect writer, inside a decision's transaction) ------------------------


def new_row(effect: Notify | CallWebhook | Notice) -> NewRow:
    """The one translation of an effect into its outbox row (payloads as the dispatcher reads
    them)."""
    match effect:
        case Notify(case=case, person=person, channel=channel, level=level, reason=reason):
            payload = {"person": person, "channel": channel, "level": level, "reason": reason}
            return NewRow(case, "notify", effect.key, payload)
        case CallWebhook(case=case, url=url, body=body):
            return NewRow(case, "webhook", effect.key, {"url": url, "body": body})
        case Notice():
            payload = {"person": effect.person, "channel": effect.channel,
                       "action": effect.about, "by": effect.by, "level": effect.level,
                       "title": effect.title}  # fmt: skip
            return NewRow(effect.case, "notice", effect.key, payload)


# On every decision and every result, so straight on the driver's cursor in the transaction:
# SQLAlchemy's per-statement work costs more than SQLite's own.
_INSERT = Sql(
    "INSERT INTO outbox (case_id, kind, key, payload, status, attempts, last_error, next_attempt,"
    " created_at) VALUES (:case_id, :kind, :key, :payload, :status, :attempts, :last_error,"
    " :next_attempt, :created_at)"
)  # every value a parameter: a plain insert, whose rows a batch sends at once (`store.sql`)
_INSERT_CLAIMED = Sql(
    "INSERT INTO outbox (case_id, kind, key, payload, status, attempts, next_attempt, created_at) "
    "VALUES (:case_id, :kind, :key, :payload, 'sending', 1, :next_attempt, :created_at) "
    "RETURNING id"
)
# PostgreSQL: a decision's claimed rows in one statement, their ids read at the end of the
# writer's batch (`run_later`): ids come from one sequence, in the rows' order
_INSERT_CLAIMED_ALL = Sql(
    "INSERT INTO outbox (case_id, kind, key, payload, status, attempts, next_attempt, created_at) "
    "SELECT c, k, y, p, 'sending', 1, :next_attempt, :created_at "
    "FROM unnest(CAST(:case_ids AS text[]), CAST(:kinds AS text[]), CAST(:keys AS text[]), "
    "CAST(:payloads AS text[])) AS u(c, k, y, p) "
    "RETURNING id"
)
_RENEW = Sql(
    "UPDATE outbox SET next_attempt = :lease "
    "WHERE id = :id AND status = 'sending' AND attempts = :claimed"
)
_MARK = Sql(
    "UPDATE outbox SET status = :status, next_attempt = :next, last_error = :error "
    "WHERE id = :id AND status = 'sending' AND attempts = :claimed"
)


def write_new(
    conn: Connection,
    rows: list[NewRow],
    now: int,
    lease: int | str | None,
    snapshot: Snapshot | None,
) -> list[Row]:
    """Insert a decision's rows: `pending` (lease None: the poll or another process takes
    them; returns []), `skipped` with `lease` as the reason when it is text (nothing will be
    sent: a policy without channels; returns []), or claimed by this process until `lease`
    (returned, to hand to the dispatcher once the transaction commits: `Dispatcher.accept`)."""
    params = [
        {"case_id": r.case_id, "kind": r.kind, "key": r.key,
         "payload": jsonbytes.dumps_text(r.payload), "next_attempt": now, "created_at": now}
        for r in rows
    ]  # fmt: skip
    if lease is None or isinstance(lease, str):
        status = "pending" if lease is None else "skipped"
        if params:
            write_many(conn, _INSERT, [{**p, "status": status, "attempts": 0, "last_error": lease}
                                       for p in params])  # fmt: skip
        return []
    if conn.dialect.name == "postgresql":
        return _write_claimed_pg(conn, rows, params, now, lease, snapshot)
    out = []
    for r, p in zip(rows, params, strict=True):
        p["next_attempt"] = lease
        (rid,) = run(conn, _INSERT_CLAIMED, p)
        out.append(Row(rid, r.case_id, r.kind, r.key, r.payload, 1, now, snapshot))
    return out


def _write_claimed_pg(
    conn: Connection,
    rows: list[NewRow],
    params: list[dict[str, Any]],
    now: int,
    lease: int,
    snapshot: Snapshot | None,
) -> list[Row]:
    """`write_new`'s claimed rows on PostgreSQL: one statement; the ids are filled in
    before the transaction commits (at once, or at the end of the writer's pipelined batch),
    which is all the dispatcher needs: it gets the rows once the transaction commits."""
    out = [Row(0, r.case_id, r.kind, r.key, r.payload, 1, now, snapshot) for r in rows]

    def fill(returned: list[Any]) -> None:
        for row, (rid,) in zip(out, sorted(returned), strict=True):
            row.id = rid

    args = {
        "case_ids": [p["case_id"] for p in params],
        "kinds": [p["kind"] for p in params],
        "keys": [p["key"] for p in params],
        "payloads": [p["payload"] for p in params],
        "next_attempt": lease,
        "created_at": now,
    }
    run_later(conn, _INSERT_CLAIMED_ALL, args, fill)
    return out


def wake_dispatchers(conn: Connection) -> None:
    """Wake other processes' dispatchers at commit (PostgreSQL; SQLite ones poll)."""
    if conn.dialect.name == "postgresql":
        notify_once(conn, OUTBOX_CHANNEL)


# outcomes -------------------------------------------------------------------------------------


def mark_params(row: Row, status: str, nxt: int, last: str | None) -> dict[str, Any]:
    return {"id": row.id, "claimed": row.attempts, "status": status, "next": nxt, "error": last}


def _mark(conn: Connection, rows: list[dict[str, Any]], key: str) -> None:
    """Set the rows' outcomes if each row is still this claim's; Stale (naming `key`, the
    first) otherwise: the transaction is then rolled back, and each is tried alone."""
    if run_many(conn, _MARK, rows) != len(rows):
        raise Stale(key)


def record_results(
    conn: Connection,
    batch: list[Outcome],
    decide: Decide,
    now: int,
    *,
    decide_each: DecideEach | None = None,
) -> None:
    """In the writer's transaction: each result into the core as a `delivery` event (one
    command for all; with `decide_each`, one call for all, which loads and saves their cases
    together), then the rows' new status (one statement for all: one round trip on
    PostgreSQL)."""
    events = [
        (o.row.case_id, Event("delivery", data=o.result)) for o in batch if o.result is not None
    ]
    if decide_each is not None:
        if events:
            decide_each(conn, events, now)
    else:
        for case_id, event in events:
            with contextlib.suppress(Refused):  # the case is gone: only the row is left
                decide(conn, case_id, event, now)
    _mark(conn, [o.mark for o in batch], batch[0].row.key)


def recorder(
    writer: Submits, decide: Decide, clock: Clock, *, decide_each: DecideEach | None = None
) -> Callable[[list[Outcome]], Future[None]]:
    """The dispatcher's `record`: a batch of outcomes as one writer command (one transaction,
    one fsync), decided at the instant the writer runs it."""

    def record(batch: list[Outcome]) -> Future[None]:
        return writer.submit(
            lambda conn: record_results(conn, batch, decide, clock.now(), decide_each=decide_each)
        )

    return record


# the dispatcher's claims and reads ------------------------------------------------------------


class Outbox:
    """Claim, hold back and settle rows for a dispatcher; read what its messages show."""

    def __init__(self, db: Engine, writer: Submits, *, batch: int = 256) -> None:
        self.db = db
        self.writer = writer
        self.batch = batch

    def listen(self, wake: Callable[[], None], stop: threading.Event) -> threading.Thread | None:
        """Call `wake` when another process writes a row (PostgreSQL's `NOTIFY`), on a thread
        of its own until `stop`; None on SQLite, where this process writes every row."""
        return listen_thread(self.db, OUTBOX_CHANNEL, wake, stop)

    def peek(self, now: int) -> tuple[bool, int | None]:
        """Whether a row is due at `now`; if none is, when the next one will be (or None)."""
        due = and_(outbox.c.status.in_(ACTIVE), outbox.c.next_attempt <= now)
        with self.db.connect() as conn:
            if conn.execute(select(outbox.c.id).where(due).limit(1)).first() is not None:
                return True, None
            return False, self._next(conn)

    def next_due(self) -> int | None:
        """When the earliest active row is due (a claimed row: when its lease runs out)."""
        with self.db.connect() as conn:
            return self._next(conn)

    def _next(self, conn: Connection) -> int | None:
        return first_due(conn, outbox, "next_attempt", where=[outbox.c.status.in_(ACTIVE)])

    def claim(self, now: int, lease: int, mine: Iterable[int]) -> list[Row]:
        """Claim up to a batch of rows due at `now` until `lease`, past the ids in `mine`
        (rows this process has in hand). Waits for the writer."""
        return self.writer.submit(
            partial(self._claim, now=now, lease=lease, mine=set(mine))
        ).result()

    def _claim(self, conn: Connection, now: int, lease: int, mine: set[int]) -> list[Row]:
        rows = claim_due(
            conn, outbox, "next_attempt", now, limit=self.batch, order=("id",),
            where=[outbox.c.status.in_(ACTIVE)],
        )  # fmt: skip
        found = [r for r in rows if r.id not in mine]
        if not found:
            return []
        conn.execute(
            update(outbox)
            .where(outbox.c.id.in_([r.id for r in found]))
            .values(status="sending", attempts=outbox.c.attempts + 1, next_attempt=lease)
        )
        return [
            Row(r.id, r.case_id, r.kind, r.key, jsonbytes.loads(r.payload), r.attempts + 1,
                r.created_at)
            for r in found
        ]  # fmt: skip

    def renew(self, rows: list[Row], lease: int) -> Future[int]:
        """Extend the claims of rows still in hand until `lease` (a send under way must not
        be claimed again); rows settled or claimed again meanwhile are left alone. Answers
        how many were renewed."""
        params = [{"id": r.id, "claimed": r.attempts, "lease": lease} for r in rows]
        return self.writer.submit(lambda conn: run_many(conn, _RENEW, params))

    def skip(self, now: int, reason: str) -> Future[int]:
        """Mark every pending row due at `now` `skipped` (nothing is sent: no channels);
        answers how many."""

        def run_(conn: Connection) -> int:
            return conn.execute(
                update(outbox)
                .where(outbox.c.status == "pending", outbox.c.next_attempt <= now)
                .values(status="skipped", last_error=reason)
            ).rowcount

        return self.writer.submit(run_)

    def hold(self, ids: list[int], at: int) -> Future[None]:
        """Give claimed rows back, due at `at`, their claim uncounted (held by a limit)."""

        def run_(conn: Connection) -> None:
            conn.execute(
                update(outbox)
                .where(outbox.c.id.in_(ids), outbox.c.status == "sending")
                .values(status="pending", next_attempt=at, attempts=outbox.c.attempts - 1)
            )

        return self.writer.submit(run_)

    def settle(self, row: Row, status: str, now: int, last: str | None) -> Future[None]:
        """Set one row's outcome without a result for the timeline; Stale if no longer ours."""
        return self.writer.submit(
            partial(_mark, rows=[mark_params(row, status, now, last)], key=row.key)
        )

    def snapshots(self, ids: set[str]) -> dict[str, Snapshot]:
        """The cases and timelines that a batch's pages show, at once (two queries)."""
        out: dict[str, Snapshot] = {}
        with self.db.connect() as conn:
            found = conn.execute(
                select(cases.c.id, cases.c.state, cases.c.policy_version).where(cases.c.id.in_(ids))
            ).all()
            entries: dict[str, list[dict[str, Any]]] = {}
            for cid, raw in conn.execute(
                select(timeline.c.case_id, timeline.c.entry)
                .where(timeline.c.case_id.in_(ids))
                .order_by(timeline.c.id)
            ):
                entries.setdefault(cid, []).append(decode_entry(raw))
        for cid, state, version in found:
            out[cid] = (Case.from_dict(jsonbytes.loads(state)), version, entries.get(cid, []))
        return out

    def priorities(self, ids: set[str]) -> dict[str, str]:
        with self.db.connect() as conn:
            q = select(cases.c.id, cases.c.priority).where(cases.c.id.in_(ids))
            return {cid: prio for cid, prio in conn.execute(q).all()}
