"""The engine's parts on a real database: the effect writer, claims, the loop's `advance`
with a dispatcher's due work, `record`, and the hand-over of claimed rows after commit."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import Connection, text
from sqlalchemy import Engine as Database

from rungs.core.model import Notice, Notify, Record
from rungs.engine import Engine, PolicyStore
from rungs.policy import Policy
from rungs.store.claims import claim_due, first_due
from rungs.store.db import make_engine, upgrade
from rungs.store.effects import write_effects
from rungs.store.listen import OUTBOX_CHANNEL, listen_thread
from rungs.store.outbox import Outcome, Row, mark_params
from rungs.store.tables import timers
from rungs.time.clock import VirtualClock
from rungs.time.instant import parse_instant
from tests.conftest import ROOT, reset_database
from tests.procs import wait_until
from tests.sync import open_case

ACME = ROOT / "src" / "rungs" / "examples" / "acme.yaml"
START = parse_instant("2026-11-24T08:00:00Z")
MINUTE = 60_000_000
BODY = {"customer": "initech", "category": "general", "priority": "P2", "title": "t"}


def _outbox(db: Database) -> list[Any]:
    with db.connect() as conn:
        return conn.execute(
            text("SELECT id, kind, key, payload, status, attempts, next_attempt FROM outbox")
        ).all()


NOTICE = Notice("C1", "ann", "sms", "acknowledged", "bob", 2, "Checkout fails", "C1:ack0:ann")


def test_a_notice_becomes_one_pending_notice_row_with_todays_payload(db: Database) -> None:
    with db.begin() as conn:
        written = write_effects(conn, [NOTICE], 1, START)
    assert written.claimed == [] and written.earliest == 0
    (row,) = _outbox(db)
    assert (row.kind, row.key, row.status, row.attempts) == ("notice", "C1:ack0:ann", "pending", 0)
    assert json.loads(row.payload) == {
        "person": "ann",
        "channel": "sms",
        "action": "acknowledged",
        "by": "bob",
        "level": 2,
        "title": "Checkout fails",
    }


def test_with_a_lease_rows_are_inserted_claimed_and_returned_with_their_ids(db: Database) -> None:
    page = Notify("C1", "ann", "email", 1, "level 1", "C1:n1:ann")
    opened = Record({"case": "C1", "at": START, "kind": "opened"})
    with db.begin() as conn:
        written = write_effects(conn, [opened, page, NOTICE], 1, START, lease=lambda: START + 7)
    rows = _outbox(db)
    assert [(r.kind, r.status, r.attempts, r.next_attempt) for r in rows] == [
        ("notify", "sending", 1, START + 7),
        ("notice", "sending", 1, START + 7),
    ]
    assert [(r.id, r.kind, r.key, r.attempts) for r in written.claimed] == [
        (rows[0].id, "notify", "C1:n1:ann", 1),
        (rows[1].id, "notice", "C1:ack0:ann", 1),
    ]
    assert written.claimed[0].payload == json.loads(rows[0].payload)
    assert written.claimed[0].snapshot is None  # no case given: nothing to snapshot


def test_claim_due_takes_due_rows_in_order_up_to_the_limit(db: Database) -> None:
    with db.begin() as conn:
        for i, due in enumerate((30, 10, 20, 40)):
            conn.execute(
                timers.insert().values(case_id=f"C{i}", key="level", due=due, payload="[]")
            )
    with db.begin() as conn:
        got = claim_due(conn, timers, "due", 30, limit=2, order=("id",))
        assert [r.due for r in got] == [10, 20]
        assert first_due(conn, timers, "due") == 10


class FakeDispatcher:
    """Seam 4 and 5 as the engine calls them: a lease, accepted rows, due deliveries."""

    def __init__(self, policies: PolicyStore, writer: Any, record: Any) -> None:
        self.clock = policies.clock
        self.record = record
        self.accepted: list[Row] = []
        self.due: list[int] = []
        self.ran: list[tuple[int, int]] = []  # (until, the clock then)

    def lease(self, policy: Policy) -> int | None:
        return self.clock.now() + MINUTE

    def accept(self, rows: list[Row]) -> None:
        self.accepted.extend(rows)

    def next_due(self) -> int | None:
        return min(self.due, default=None)

    def run_due(self, until: int) -> int:
        done = [t for t in self.due if t <= until]
        self.due = [t for t in self.due if t > until]
        self.ran.append((until, self.clock.now()))
        return len(done)

    def start(self) -> None: ...

    def stop(self) -> None: ...


@pytest.fixture
def engine(db: Database) -> Iterator[Engine]:
    e = Engine(db, VirtualClock(START), dispatcher=FakeDispatcher)
    e.policies.ensure(ACME.read_text(), str(ACME))
    yield e
    e.stop()


def _fake(engine: Engine) -> FakeDispatcher:
    assert isinstance(engine.dispatcher, FakeDispatcher)
    return engine.dispatcher


def test_claimed_rows_are_handed_over_once_committed(engine: Engine) -> None:
    case, new = asyncio.run(engine.commands.open(dict(BODY)))
    assert new
    accepted = _fake(engine).accepted
    assert accepted and all(r.case_id == case.id and r.attempts == 1 for r in accepted)
    snapshot = accepted[0].snapshot
    assert snapshot is not None and snapshot[0].id == case.id
    assert snapshot[2][0]["kind"] == "opened"
    statuses = {r.status for r in _outbox(engine.db)}
    assert statuses == {"sending"}


def test_a_rolled_back_decision_hands_nothing_over(engine: Engine) -> None:
    def failing(conn: Connection) -> None:
        version = engine.policies.current_version()
        policy = engine.policies.policy(version)
        engine.commands.open_in(conn, dict(BODY), version, policy, engine.clock.now())
        raise RuntimeError("after the decision, before the commit")

    with pytest.raises(RuntimeError):
        engine.writer.call(failing)
    assert _fake(engine).accepted == []
    assert _outbox(engine.db) == []


def test_advance_runs_deliveries_in_instant_order_among_timers(engine: Engine) -> None:
    case, _ = open_case(engine, dict(BODY))  # its level timer is due at 08:30
    fake = _fake(engine)
    fake.due = [START + 10 * MINUTE, START + 40 * MINUTE]
    fired = engine.advance(START + 60 * MINUTE)
    assert [now for _, now in fake.ran] == [START + 10 * MINUTE, START + 40 * MINUTE]
    assert fake.ran[0][0] < START + 40 * MINUTE  # the 08:40 delivery waited for its turn
    assert fake.due == []
    assert fired >= 3
    assert engine.clock.now() == START + 60 * MINUTE
    with engine.db.connect() as conn:
        escalated = conn.execute(
            text("SELECT at FROM timeline WHERE case_id = :c AND kind = 'escalated'"),
            {"c": case.id},
        ).scalar_one()
    assert escalated == START + 30 * MINUTE  # fired before the 08:40 delivery moved the clock


def test_record_marks_rows_and_decides_each_result_in_one_transaction(engine: Engine) -> None:
    """The `record` the dispatcher is given: a burst of results marks their rows and feeds
    each to the core as a `delivery` event, in one writer transaction."""
    case, _ = open_case(engine, dict(BODY))
    dispatcher = engine.dispatcher
    assert isinstance(dispatcher, FakeDispatcher)
    (row, *_) = [r for r in dispatcher.accepted if r.case_id == case.id and r.kind == "notify"]
    result = {"key": row.key, "person": row.payload["person"], "channel": row.payload["channel"],
              "level": 1, "ok": True, "error": None, "permanent": False}  # fmt: skip
    dispatcher.record([Outcome(row, mark_params(row, "sent", START, None), result)]).result(10)
    kinds = [e["kind"] for e in engine.views.timeline(case.id) or []]
    assert "delivered" in kinds
    with engine.db.connect() as conn:
        status = conn.execute(
            text("SELECT status FROM outbox WHERE id = :id"), {"id": row.id}
        ).scalar_one()
    assert status == "sent"


def test_views_page_filter_and_absent_cases(engine: Engine) -> None:
    ids = [open_case(engine, {**BODY, "title": f"t{i}"})[0].id for i in range(3)]
    page = engine.views.cases({"customer": "initech"}, 2, 1)
    assert [c["id"] for c in page["items"]] == ids[1:3] and page["total"] == 3
    assert engine.views.cases({"customer": "nobody"}, 50, 0)["total"] == 0
    assert engine.views.timeline("C999") is None and engine.views.case("C999") is None
    assert engine.views.timeline(ids[0])[0]["kind"] == "opened"  # type: ignore[index]
    assert engine.views.sla(ids[0]) == engine.views.case(ids[0])["sla"]  # type: ignore[index]
    assert engine.views.sla("C999") is None


@pytest.mark.postgres
def test_pending_rows_wake_the_outbox_listeners(pg_url: str) -> None:
    reset_database(pg_url)
    eng = make_engine(pg_url)
    upgrade(eng)
    woken: list[int] = []
    stop = threading.Event()
    thread = listen_thread(eng, OUTBOX_CHANNEL, lambda: woken.append(1), stop)
    keys = itertools.count()

    def write_then_look() -> list[int] | None:
        """A pending row per try (LISTEN may not be in place for the first ones)."""
        with eng.begin() as conn:
            write_effects(conn, [replace(NOTICE, key=f"k{next(keys)}")], 1, START)
        return woken or None

    try:
        wait_until("the outbox wake-up", write_then_look, timeout=10.0, every=0.2)
    finally:
        stop.set()
        assert thread is not None
        thread.join(timeout=5)
        eng.dispose()


def test_overrides_posted_before_a_new_version_apply_to_it(db: Database) -> None:
    """A version stored after an override was posted sees the override at once (in the
    process that stored it too, whose cache it enters)."""
    oncall = ROOT / "tests" / "scenarios" / "oncall" / "policy.yaml"
    e = Engine(db, VirtualClock(START))
    try:
        e.policies.ensure(oncall.read_text(), str(oncall))
        e.policies.add_override("net", START, START + 60 * MINUTE, "frank", None)
        text = oncall.read_text() + "\n# a new version\n"
        version, stored = e.policies.store(text, str(oncall))
        for policy in (stored, e.policies.policy(version)):
            posted = {(o.who, o.start, o.end) for o in policy.schedules["net"].overrides}
            assert ("frank", START, START + 60 * MINUTE) in posted
    finally:
        e.stop()


def test_a_key_opened_by_another_process_at_the_same_moment_is_attached_not_an_error(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race of two processes opening one dedup key: the loser's look-up missed the
    winner's case, and its insert meets the unique key. The hot statements raise the
    driver's own error (sqlite3's, psycopg's), not SQLAlchemy's: the trigger is tried again
    and the alert attaches to the open case."""
    import rungs.engine.commands as commands

    first, new = asyncio.run(engine.commands.trigger({**BODY, "dedup_key": "k1"}, {}))
    assert new
    real, missed = commands.find_open, []

    def racing(conn: Connection, key: str) -> str | None:
        if not missed:  # as if the other process had not committed yet
            missed.append(key)
            return None
        return real(conn, key)

    monkeypatch.setattr(commands, "find_open", racing)
    again, new = asyncio.run(engine.commands.trigger({**BODY, "dedup_key": "k1"}, {"n": 2}))
    assert missed == ["k1"] and not new and again.id == first.id
    with engine.db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM cases")).scalar_one() == 1


def test_a_failed_timer_batch_hands_over_only_the_rows_that_were_kept(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two cases escalate at 08:30 in one batch of timers and the second's decision fails:
    the batch's savepoint is rolled back and each timer fired alone. The first case's pages
    from the rolled-back try must not reach the dispatcher (they would be sent twice, or
    under the id of a row that does not exist)."""
    one, _ = open_case(engine, dict(BODY))
    two, _ = open_case(engine, dict(BODY))
    fake = _fake(engine)
    fake.accepted.clear()
    real = engine.commands.decide_loaded

    def failing(conn: Connection, case: Any, *args: Any, **kwargs: Any) -> Any:
        if case.id == two.id:
            raise RuntimeError("this case's decision fails")
        return real(conn, case, *args, **kwargs)

    monkeypatch.setattr(engine.commands, "decide_loaded", failing)
    engine.advance(START + 31 * MINUTE)
    with engine.db.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT id, case_id, key FROM outbox WHERE status = 'sending' AND created_at > :t"
            ),
            {"t": START},
        ).all()
    kept = {(r.id, r.case_id, r.key) for r in rows}
    handed = [(r.id, r.case_id, r.key) for r in fake.accepted]
    assert kept and {c for _, c, _ in kept} == {one.id}  # the first escalated, paged once
    assert sorted(handed) == sorted(kept), "exactly the committed rows, each once"


def test_a_batch_of_alerts_reads_its_keys_open_cases_at_once_and_keeps_them_current(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Alerts decided in one writer batch: on PostgreSQL the open cases of all their dedup
    keys are read in one statement (not a round trip each), and what the batch itself does
    to a key (opens a case, resolves it, opens another) is seen by the alerts after it."""
    from rungs.core.model import Event

    before, _ = asyncio.run(engine.commands.trigger({**BODY, "dedup_key": "known"}, {}))
    sent: list[str] = []
    if engine.db.dialect.name == "postgresql":
        import psycopg

        original = psycopg.Cursor.execute

        def execute(self: Any, query: Any, params: Any = None, **kw: Any) -> Any:
            sent.append(str(query))
            return original(self, query, params, **kw)

        monkeypatch.setattr(psycopg.Cursor, "execute", execute)
    gate = threading.Event()
    held = engine.writer.submit(lambda conn: gate.wait(5))
    resolve = Event("resolve", by="integration:test")

    async def alerts() -> list[Any]:
        cmds = engine.commands
        asyncio.get_running_loop().call_later(0.2, gate.set)
        return await asyncio.gather(
            cmds.trigger({**BODY, "dedup_key": "known"}, {"n": 2}),
            cmds.trigger({**BODY, "dedup_key": "k2"}, {}),
            cmds.trigger({**BODY, "dedup_key": "k2"}, {"n": 2}),
            cmds.act_on_key("k2", resolve),
            cmds.trigger({**BODY, "dedup_key": "k2"}, {}),
            cmds.act_on_key("never", resolve),
        )

    known, first, again, resolved, second, never = asyncio.run(alerts())
    held.result()
    assert known[0].id == before.id and not known[1]
    assert first[1] and again[0].id == first[0].id and not again[1]
    assert resolved[0] is not None and resolved[0].id == first[0].id and resolved[1]
    assert second[1] and second[0].id != first[0].id
    assert never == (None, False)
    with engine.db.connect() as conn:
        open_keys = conn.execute(
            text("SELECT open_key, id FROM cases WHERE open_key IS NOT NULL ORDER BY id")
        ).all()
    assert sorted((k, i) for k, i in open_keys) == sorted(
        [("known", before.id), ("k2", second[0].id)]
    )
    if engine.db.dialect.name == "postgresql":
        # one look-up of its own: "known", open when the batch began (see the next test)
        assert len([q for q in sent if "WHERE open_key = %(key)s" in q]) == 1
        assert len([q for q in sent if "open_key = ANY" in q]) == 1


def test_a_key_open_when_read_ahead_is_looked_up_again(engine: Engine) -> None:
    """Another process may end a case between the batch's read-ahead and the alert that
    comes to it: only the keys without an open case are answered from the read-ahead."""
    from rungs.store.cases import find_open, open_keys_ahead

    case, _ = asyncio.run(engine.commands.trigger({**BODY, "dedup_key": "k"}, {}))
    with engine.db.begin() as conn, open_keys_ahead(conn, ["k", "free"]):
        with engine.db.begin() as other:  # another process resolves it and commits
            other.execute(text("UPDATE cases SET open_key = NULL WHERE id = :i"), {"i": case.id})
        assert find_open(conn, "k") is None
        assert find_open(conn, "free") is None
