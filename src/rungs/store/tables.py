"""The schema, as SQLAlchemy Core tables. Instants are integer microseconds (UTC)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
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
    "link_uses",
    "secrets",
    "api_tokens",
    "heartbeats",
    "case_facts",
    "compensation",
    "credentials",
    "journal",
    "alerts",
    "case_groups",
    "maintenance",
    "verifications",
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
    Column("title", Text),  # the console's queue shows and searches it (from `state`)
    Column("sla_due", BigInteger),  # next SLA breach (`core.sla.next_breach`), the queue's order
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
    # ix_outbox_case (case_id): migration 0010, not here (0001 creates this table from this)
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

link_uses = Table(  # one-click action links are single-use: a row per link used
    "link_uses",
    metadata,
    Column("token_id", String(64), primary_key=True),  # the link's signature
    Column("case_id", String(64), nullable=False),
    Column("action", String(20), nullable=False),
    Column("person", String(200), nullable=False),
    Column("used_at", BigInteger, nullable=False),
)

secrets = Table(  # secrets generated once, when the environment gives none (e.g. links)
    "secrets",
    metadata,
    Column("name", String(80), primary_key=True),
    Column("value", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False),
    Column("active_name", String(100)),  # the name while the token is not revoked
    Column("role", String(16), nullable=False),
    Column("hash", String(64), nullable=False),  # SHA-256 of the token; the token is never stored
    Column("person", String(200)),  # the policy's person the token acts as, if any
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger),
    Index("ix_api_tokens_hash", "hash", unique=True),
    Index("ix_api_tokens_active_name", "active_name", unique=True),
)

heartbeats = Table(
    "heartbeats",
    metadata,
    Column("integration", String(200), primary_key=True),
    Column("interval", BigInteger, nullable=False),
    Column("last_beat", BigInteger, nullable=False),
    Column("due", BigInteger),  # when a missed beat opens a case; NULL once it has
    Column("missed_at", BigInteger),
    Index("ix_heartbeats_due", "due"),
)

case_facts = Table(  # one row per case, kept with its timeline (`rungs.store.facts`)
    "case_facts",
    metadata,
    # keyed by (opened_at, case_id): reports scan a window of openings in key order, and on
    # SQLite the table is that one B-tree (WITHOUT ROWID), the cheapest for the write path
    Column("opened_at", BigInteger, primary_key=True),
    Column("case_id", String(64), primary_key=True),
    Column("customer", String(200), nullable=False),
    Column("tier", String(100)),
    Column("category", String(200), nullable=False),
    Column("priority", String(4), nullable=False),
    Column("team", String(200)),  # the holder: the latest `assigned` target
    Column("status", String(16), nullable=False),
    Column("first_ack_at", BigInteger),
    Column("resolved_at", BigInteger),
    Column("escalations", Integer, nullable=False),
    Column("esc_timer", Integer, nullable=False),
    Column("esc_rule", Integer, nullable=False),
    Column("esc_manual", Integer, nullable=False),
    Column("esc_customer", Integer, nullable=False),
    Column("reopens", Integer, nullable=False),
    Column("ping_pong", Integer, nullable=False),
    Column("right_first_time", Integer, nullable=False),
    Column("clock", String(10), nullable=False),  # business | calendar
    *(
        Column(f"{m}_{part}", kind)
        for m in ("fr", "nr", "res")
        for part, kind in (("outcome", String(16)), ("breached_at", BigInteger))
    ),
    Column("reasons", Text),  # {"reason": count} JSON, NULL without any
    Column("pages", Text),  # {"person": [business, off_hours, sleep]} JSON, NULL without any
    Column("state", Text, nullable=False),  # the facts no column holds, as JSON
    # partial: only the rows they list, so the write path pays for them only there
    Index(
        "ix_case_facts_reasons",
        "opened_at",
        sqlite_where=text("reasons IS NOT NULL"),
        postgresql_where=text("reasons IS NOT NULL"),
    ),
    Index(
        "ix_case_facts_ping_pong",
        "opened_at",
        sqlite_where=text("ping_pong = 1"),
        postgresql_where=text("ping_pong = 1"),
    ),
    sqlite_with_rowid=False,
)

compensation = Table(  # credit suggestions per SLA breach, and admins' decisions on them
    "compensation",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("customer", String(200), nullable=False),
    Column("period", String(7), nullable=False),  # YYYY-MM (UTC) of the breach
    Column("case_id", String(64), nullable=False),
    Column("metric", String(20), nullable=False),
    Column("breached_at", BigInteger, nullable=False),
    Column("table_version", String(40), nullable=False),
    Column("credit_percent", Float, nullable=False),
    Column("amount_cents", BigInteger, nullable=False),  # suggested
    Column("currency", String(10), nullable=False),
    Column("rationale", Text, nullable=False),  # JSON: table, band, breach, arithmetic
    Column("status", String(10), nullable=False),  # suggested | approved | rejected
    Column("decided_cents", BigInteger),  # approved (possibly adjusted) amount
    Column("decided_by", String(200)),
    Column("decided_at", BigInteger),
    Column("decision_reason", Text),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("case_id", "metric", "table_version", name="uq_compensation_breach"),
    Index("ix_compensation_period", "period", "customer"),
)

credentials = Table(  # console sign-in: one password per person of the policy
    "credentials",
    metadata,
    Column("person", String(200), primary_key=True),
    Column("hash", Text, nullable=False),  # argon2id; the password is never stored
    Column("failures", Integer, nullable=False, default=0),  # failed sign-ins in a row
    Column("locked_until", BigInteger),  # refused until then after too many failures
    Column("changed_at", BigInteger, nullable=False),
)

journal = Table(  # the input journal: every input a decision took (see store/journal.py)
    "journal",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("case_id", String(64), nullable=False),
    Column("at", BigInteger, nullable=False),  # the instant it was decided at
    Column("policy_version", Integer, nullable=False),  # the version that decided it
    Column("event", Text, nullable=False),  # JSON: rungs.sim.inputs.encode_event
    Index("ix_journal_case", "case_id", "id"),
)

verifications = Table(  # each `rungs verify` run's result, the latest shown by /metrics
    "verifications",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", BigInteger, nullable=False),
    Column("cases", Integer, nullable=False),  # replayable cases checked
    Column("reproduced", Integer, nullable=False),
    Column("not_replayable", Integer, nullable=False),
    Column("divergences", Integer, nullable=False),
    Column("detail", Text, nullable=False),  # JSON: the first divergences, [{case, first}]
)

# storms (issue 17): alerts of integrations that group, guard storms or watch flapping, and
# of maintenance windows; which group (or storm) each such case stands for; the windows
alerts = Table(
    "alerts",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("key", String(300), nullable=False),  # the alert's scoped dedup key
    Column("integration", String(200), nullable=False),
    Column("case_id", String(64), nullable=False),
    Column("status", String(16), nullable=False),  # firing | resolved
    Column("summary", Text, nullable=False, default=""),
    Column("flapping", Integer, nullable=False, default=0),
    Column("changes", Text, nullable=False, default="[]"),  # JSON: recent change instants
    Column("quiet_due", BigInteger),  # a flapping alert's end of flapping, without a change
    Column("held_by", Integer),  # the maintenance window holding its case
    Column("fired_at", BigInteger, nullable=False),
    Column("changed_at", BigInteger, nullable=False),
    Index("ix_alerts_key", "key", "id"),
    Index("ix_alerts_case", "case_id", "id"),
    Index("ix_alerts_quiet", "quiet_due"),
    Index("ix_alerts_held", "held_by"),
)

case_groups = Table(
    "case_groups",
    metadata,
    Column("case_id", String(64), primary_key=True),
    Column("integration", String(200), nullable=False),
    Column("group_key", String(300), nullable=False),  # the group's, or the alert's own key
    Column("kind", String(8), nullable=False),  # group | alert | storm
    Column("opened_at", BigInteger, nullable=False),
    Column("released_at", BigInteger),  # a storm case: when its storm ended
    Index("ix_case_groups_key", "group_key", "opened_at", "case_id"),
    Index("ix_case_groups_integration", "integration", "opened_at", "case_id"),
)

maintenance = Table(
    "maintenance",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("integrations", Text, nullable=False),  # JSON list of integration ids
    Column("customers", Text, nullable=False),  # JSON list of customer ids
    Column("starts_at", BigInteger, nullable=False),
    Column("ends_at", BigInteger, nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("cancelled_at", BigInteger),
    Column("ended_at", BigInteger),  # when its held cases were released
    Index("ix_maintenance_ends", "ended_at", "ends_at"),
)
