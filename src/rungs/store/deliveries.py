"""Deliveries people act on from the console: test notifications and dead letters.

A test notification is an outbox row of kind `test` (no case: `case_id` is empty). The
dispatcher sends it like any page, through the person's contact on one channel; its outcome
stays on the row (`sent`, `pending` with a retry, or `dead` with the reason), never in a
case's timeline. A dead row (given up for good) can be put back: it is due again with a
fresh count of attempts, and its result reaches the case's timeline as any delivery's does.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, func, insert, or_, select, update

from rungs.store import jsonbytes
from rungs.store.outbox import ACTIVE, Row, wake_dispatchers
from rungs.store.tables import outbox

__all__ = [
    "TEST_KIND",
    "DeadRow",
    "TestSend",
    "dead_rows",
    "insert_test",
    "retry_dead",
    "test_sends",
    "test_refused",
    "MAX_TESTS",
    "TEST_WINDOW",
]

TEST_KIND = "test"
MAX_TESTS = 5  # test notifications to one person per TEST_WINDOW
TEST_WINDOW = 10 * 60 * 1_000_000


@dataclass(frozen=True, slots=True)
class TestSend:
    """One test notification and how it went."""

    id: int
    person: str
    channel: str
    by: str | None
    status: str  # pending | sending | sent | dead | skipped
    attempts: int
    created_at: int
    last_error: str | None


@dataclass(frozen=True, slots=True)
class DeadRow:
    """An outbox row given up for good: what it was for, how often it was tried, why."""

    id: int
    case_id: str
    kind: str
    key: str
    person: str | None  # the person paged (a rule webhook: its URL is not shown)
    channel: str | None
    attempts: int
    created_at: int
    last_error: str | None


def insert_test(
    conn: Connection, person: str, channel: str, by: str | None, now: int, lease: int | None
) -> tuple[int, Row | None]:
    """Write a test notification: `pending` (lease None: a dispatcher's poll takes it), or
    claimed until `lease` and returned as a Row to hand over once the transaction commits."""
    key = f"test:{now}:{secrets.token_hex(8)}"
    payload = {"person": person, "channel": channel, "by": by}
    claimed = lease is not None
    rid = conn.execute(
        insert(outbox)
        .values(
            case_id="",
            kind=TEST_KIND,
            key=key,
            payload=jsonbytes.dumps_text(payload),
            status="sending" if claimed else "pending",
            attempts=1 if claimed else 0,
            next_attempt=lease if lease is not None else now,
            created_at=now,
        )
        .returning(outbox.c.id)
    ).scalar_one()
    if lease is None:
        wake_dispatchers(conn)
        return int(rid), None
    return int(rid), Row(int(rid), "", TEST_KIND, key, payload, 1, now)


def test_refused(conn: Connection, person: str, channel: str, since: int) -> tuple[int, str] | None:
    """Why a test to this person on this channel must wait (an HTTP status and the reason),
    or None: one to the same contact is still on its way (409), or `MAX_TESTS` went to the
    person since `since` (429)."""
    rows = conn.execute(
        select(outbox.c.payload, outbox.c.status).where(
            outbox.c.kind == TEST_KIND,
            or_(outbox.c.status.in_(ACTIVE), outbox.c.created_at >= since),
        )
    ).all()
    recent = 0
    for r in rows:
        p = jsonbytes.loads(r.payload)
        if p.get("person") != person:
            continue
        if r.status in ACTIVE and p.get("channel") == channel:
            return 409, f"a test to {person} by {channel} is on its way already"
        recent += 1
    if recent >= MAX_TESTS:
        return 429, f"{person} had {recent} test notifications in ten minutes: wait a little"
    return None


def test_sends(conn: Connection, person: str, limit: int = 20) -> list[TestSend]:
    """The person's latest test notifications, newest first (of the last 500 sent to anyone)."""
    rows = conn.execute(
        select(outbox).where(outbox.c.kind == TEST_KIND).order_by(outbox.c.id.desc()).limit(500)
    ).all()
    out: list[TestSend] = []
    for r in rows:
        p = jsonbytes.loads(r.payload)
        if p.get("person") != person:
            continue
        out.append(
            TestSend(
                r.id,
                person,
                str(p.get("channel")),
                p.get("by"),
                r.status,
                r.attempts,
                r.created_at,
                r.last_error,
            )
        )
        if len(out) >= limit:
            break
    return out


def dead_rows(conn: Connection, limit: int = 100) -> tuple[list[DeadRow], int]:
    """The newest dead rows (at most `limit`) and how many there are in all."""
    total = conn.execute(
        select(func.count()).select_from(outbox).where(outbox.c.status == "dead")
    ).scalar_one()
    rows = conn.execute(
        select(outbox).where(outbox.c.status == "dead").order_by(outbox.c.id.desc()).limit(limit)
    ).all()
    out = []
    for r in rows:
        p: dict[str, Any] = jsonbytes.loads(r.payload)
        person = p.get("person") if r.kind != "webhook" else None
        channel = "webhook" if r.kind == "webhook" else p.get("channel")
        out.append(
            DeadRow(
                r.id,
                r.case_id,
                r.kind,
                r.key,
                person,
                channel,
                r.attempts,
                r.created_at,
                r.last_error,
            )
        )
    return out, int(total)


def retry_dead(
    conn: Connection, row_id: int, now: int, lease: int | None
) -> tuple[bool, Row | None]:
    """Put a dead row back, its attempts counted afresh: due now (lease None), or claimed
    until `lease` (then the Row, to hand over after commit). (False, None) when no dead row
    has this id (it was retried already, or never died)."""
    found = conn.execute(
        select(outbox).where(and_(outbox.c.id == row_id, outbox.c.status == "dead"))
    ).first()
    if found is None:
        return False, None
    claimed = lease is not None
    done = conn.execute(
        update(outbox)
        .where(outbox.c.id == row_id, outbox.c.status == "dead")
        .values(
            status="sending" if claimed else "pending",
            attempts=1 if claimed else 0,
            next_attempt=lease if lease is not None else now,
        )
    ).rowcount
    if done != 1:
        return False, None
    if lease is None:
        wake_dispatchers(conn)
        return True, None
    payload = jsonbytes.loads(found.payload)
    return True, Row(found.id, found.case_id, found.kind, found.key, payload, 1, found.created_at)
