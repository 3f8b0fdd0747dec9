"""Delivery results decided together (`Commands.decide_each_in`, the dispatcher's `record`):
one load and one save of their cases, yet the same cases, timelines, journal and facts rows
as deciding each result on its own (`decide_in`), also for two results of one case, a failed
one, and one whose case is gone."""

from __future__ import annotations

from contextlib import suppress
from typing import Any

from sqlalchemy import Connection, text

from rungs.core.model import Event, Refused
from rungs.engine import Engine
from rungs.store.db import make_engine, upgrade
from rungs.store.outbox import Outcome, mark_params, record_results
from rungs.time.clock import VirtualClock
from rungs.time.instant import parse_instant
from tests.conftest import ROOT, reset_database
from tests.integration.test_engine import FakeDispatcher
from tests.sync import open_case

ACME = ROOT / "src" / "rungs" / "examples" / "acme.yaml"
START = parse_instant("2026-11-24T08:00:00Z")
MINUTE = 60_000_000
READ = {
    "cases": "SELECT id, status, level, state, updated_at, sla_due FROM cases ORDER BY id",
    "timeline": "SELECT case_id, at, kind, entry FROM timeline ORDER BY id",
    "journal": "SELECT * FROM journal ORDER BY 1",
    "facts": "SELECT * FROM case_facts ORDER BY case_id",
    "outbox": "SELECT key, status FROM outbox ORDER BY key",
}


def _recorded(db_url: str, *, together: bool) -> dict[str, list[tuple[Any, ...]]]:
    """Open three cases, record a burst of results for their messages (two for a case, one
    failed for good) and one for a case that is gone; what was written."""
    reset_database(db_url)
    db = make_engine(db_url)
    upgrade(db)
    engine = Engine(db, VirtualClock(START), dispatcher=FakeDispatcher)
    try:
        engine.policies.ensure(ACME.read_text(), str(ACME))
        for i in range(3):
            body = {"customer": "initech", "category": "general", "priority": "P2"}
            open_case(engine, {**body, "title": f"t{i}"})
        assert isinstance(engine.dispatcher, FakeDispatcher)
        rows = [r for r in engine.dispatcher.accepted if r.kind == "notify"]
        assert len({r.case_id for r in rows}) == 3 and len(rows) > 3  # a case with two
        twice = next(r.case_id for r in rows if sum(o.case_id == r.case_id for o in rows) > 1)
        first = next(n for n, r in enumerate(rows) if r.case_id == twice)
        outs = []
        for n, r in enumerate(rows):
            ok = n != first  # the case's first result fails for good: its next one sees that
            result = {"key": r.key, "person": r.payload["person"],
                      "channel": r.payload["channel"], "level": 1, "ok": ok,
                      "error": None if ok else "refused", "permanent": not ok}  # fmt: skip
            outs.append(Outcome(r, mark_params(r, "sent" if ok else "dead", START, None), result))
        gone = Event("delivery", data=outs[0].result)
        now = START + MINUTE
        commands = engine.commands
        each = commands.decide_each_in if together else None

        def record(conn: Connection) -> None:
            record_results(conn, outs, commands.decide_in, now, decide_each=each)
            if together:
                commands.decide_each_in(conn, [("C999", gone)], now)
            else:
                with suppress(Refused):
                    commands.decide_in(conn, "C999", gone, now)

        engine.writer.call(record)
        with db.connect() as conn:
            return {t: [tuple(r) for r in conn.execute(text(q)).all()] for t, q in READ.items()}
    finally:
        engine.stop()
        db.dispose()


def test_results_decided_together_write_what_each_alone_writes(db_url: str) -> None:
    alone = _recorded(db_url, together=False)
    together = _recorded(db_url, together=True)
    kinds = [r[2] for r in alone["timeline"]]
    assert kinds.count("delivered") >= 3 and len(set(kinds)) > 3  # and the failure's entries
    assert together == alone
