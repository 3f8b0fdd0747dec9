"""The schema, as SQLAlchemy Core tables. Instants are integer microseconds (UTC)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = [
    "metadata",
    "policies",
    "cases",
    "timeline",
    "timers",
    "outbox",
    "case_numbers",
    "overrides",
]

metadata = MetaData()

policies = Table(
    "policies",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=True),
    Column("yaml", Text, nullable=False),
    Column("source", String(400), nullable=False, default=""),
    Column("created_at", BigInteger, nullable=False),
)

case_numbers = Table(
    "case_numbers",
    metadata,
    Column("n", Integer, primary_key=True, autoincrement=True),
)

cases = Table(
    "cases",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("customer", String(200), nullable=False),
    Column("priority", String(4), nullable=False),
    Column("level", Integer, nullable=False),
    Column("assignee", String(200)),
    Column("open_key", String(300)),  # the dedup key while the case is not resolved
    Column("policy_version", Integer, nullable=False),
    Column("state", Text, nullable=False),  # Case.to_dict() as JSON
    Column("opened_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_cases_open_key", "open_key", unique=True),
    Index("ix_cases_status", "status", "opened_at"),
)

timeline = Table(
    "timeline",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("case_id", String(64), nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("kind", String(40), nullable=False),
    Column("policy_version", Integer, nullable=False),
    Column("entry", Text, nullable=False),
    Index("ix_timeline_case", "case_id", "id"),
)

timers = Table(
    "timers",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("case_id", String(64), nullable=False),
    Column("key", String(80), nullable=False),
    Column("due", BigInteger, nullable=False),
    Column("payload", Text, nullable=False),
    UniqueConstraint("case_id", "key", name="uq_timers_case_key"),
    Index("ix_timers_due", "due", "id"),
)

outbox = Table(
    "outbox",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("case_id", String(64), nullable=False),
    Column("kind", String(16), nullable=False),  # notify | webhook
    Column("key", String(120), nullable=False, unique=True),  # idempotency key
    Column("payload", Text, nullable=False),
    Column("status", String(16), nullable=False, default="pending"),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("last_error", Text),
    Index("ix_outbox_due", "status", "next_attempt"),
)

overrides = Table(
    "schedule_overrides",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("schedule_id", String(200), nullable=False),
    Column("start", BigInteger, nullable=False),
    Column("end", BigInteger, nullable=False),
    Column("who", String(200), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("note", Text),
)
