"""Satisfaction surveys: one row per case (never a second, reopens included), and the
requesters who asked for none.

A row is `scheduled` (due: when to send), `sent` (due: when its link expires), then
`answered`, `expired`, `cancelled` (the case reopened before it was sent) or `skipped`
(sampled out, opted out, or surveyed recently: kept so the case is never surveyed later).
`due` is NULL once nothing more is to happen, so the manager's claim reads only live rows.
What the CSAT read needs of the case is copied in at resolution: customer, tier, whether it
was escalated, who resolved it and why.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Index,
    Integer,
    String,
    Table,
    Text,
    insert,
    select,
    update,
)

from rungs.store.tables import metadata

__all__ = [
    "surveys",
    "survey_opt_outs",
    "add_survey",
    "by_token",
    "opt_out",
    "opted_out",
    "recent_for",
    "set_survey",
    "survey_of_case",
]

surveys = Table(
    "surveys",
    metadata,
    Column("token", String(64), primary_key=True),  # the link's credential (random)
    Column("case_id", String(64), nullable=False, unique=True),
    Column("requester", String(320), nullable=False),
    Column("customer", String(200), nullable=False),
    Column("tier", String(200)),
    Column("escalated", Integer, nullable=False, default=0),  # 1: the case went past level 1
    Column("resolved_by", String(200)),
    Column("reason", String(200)),
    Column("status", String(12), nullable=False),
    Column("due", BigInteger),
    Column("resolved_at", BigInteger, nullable=False),
    Column("sent_at", BigInteger),
    Column("expires_at", BigInteger),
    Column("answered_at", BigInteger),
    Column("rating", Integer),
    Column("scale", Integer, nullable=False, default=5),
    Column("comment", Text),
    Index("ix_surveys_due", "due"),
    Index("ix_surveys_requester", "requester", "sent_at"),
)

survey_opt_outs = Table(
    "survey_opt_outs",
    metadata,
    Column("requester", String(320), primary_key=True),
    Column("at", BigInteger, nullable=False),
)


def add_survey(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(surveys).values(**row))


def survey_of_case(conn: Connection, case_id: str) -> dict[str, Any] | None:
    found = conn.execute(select(surveys).where(surveys.c.case_id == case_id)).first()
    return dict(found._mapping) if found is not None else None


def by_token(conn: Connection, token: str, *, lock: bool = False) -> dict[str, Any] | None:
    q = select(surveys).where(surveys.c.token == token)
    if lock and conn.dialect.name == "postgresql":
        q = q.with_for_update()
    found = conn.execute(q).first()
    return dict(found._mapping) if found is not None else None


def set_survey(conn: Connection, token: str, **values: Any) -> None:
    conn.execute(update(surveys).where(surveys.c.token == token).values(**values))


def recent_for(conn: Connection, requester: str, since: int) -> bool:
    """Whether `requester` was sent (or is to be sent) a survey since `since`."""
    t = surveys
    sent = (t.c.sent_at >= since) | (t.c.status == "scheduled")
    q = select(t.c.token).where(t.c.requester == requester, sent).limit(1)
    return conn.execute(q).first() is not None


def opted_out(conn: Connection, requester: str) -> bool:
    q = select(survey_opt_outs.c.at).where(survey_opt_outs.c.requester == requester)
    return conn.execute(q).first() is not None


def opt_out(conn: Connection, requester: str, at: int) -> bool:
    """Record the requester's opt-out; False when they had opted out before."""
    if opted_out(conn, requester):
        return False
    conn.execute(insert(survey_opt_outs).values(requester=requester, at=at))
    return True
