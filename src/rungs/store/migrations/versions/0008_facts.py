"""Case facts for reports (`case_facts`), backfilled from the stored timelines, and the
compensation ledger (`compensation`).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_BATCH = 500


def upgrade() -> None:
    metric_columns = [
        sa.Column(f"{m}_{part}", kind)
        for m in ("fr", "nr", "res")
        for part, kind in (("outcome", sa.String(16)), ("breached_at", sa.BigInteger))
    ]
    op.create_table(
        "case_facts",
        sa.Column("opened_at", sa.BigInteger, primary_key=True),
        sa.Column("case_id", sa.String(64), primary_key=True),
        sa.Column("customer", sa.String(200), nullable=False),
        sa.Column("tier", sa.String(100)),
        sa.Column("category", sa.String(200), nullable=False),
        sa.Column("priority", sa.String(4), nullable=False),
        sa.Column("team", sa.String(200)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("first_ack_at", sa.BigInteger),
        sa.Column("resolved_at", sa.BigInteger),
        sa.Column("escalations", sa.Integer, nullable=False),
        sa.Column("esc_timer", sa.Integer, nullable=False),
        sa.Column("esc_rule", sa.Integer, nullable=False),
        sa.Column("esc_manual", sa.Integer, nullable=False),
        sa.Column("esc_customer", sa.Integer, nullable=False),
        sa.Column("reopens", sa.Integer, nullable=False),
        sa.Column("ping_pong", sa.Integer, nullable=False),
        sa.Column("right_first_time", sa.Integer, nullable=False),
        sa.Column("clock", sa.String(10), nullable=False),
        *metric_columns,
        sa.Column("reasons", sa.Text),
        sa.Column("pages", sa.Text),
        sa.Column("state", sa.Text, nullable=False),
        sqlite_with_rowid=False,
    )
    for name, where in (("reasons", "reasons IS NOT NULL"), ("ping_pong", "ping_pong = 1")):
        op.create_index(
            f"ix_case_facts_{name}",
            "case_facts",
            ["opened_at"],
            sqlite_where=sa.text(where),
            postgresql_where=sa.text(where),
        )
    op.create_table(
        "compensation",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("customer", sa.String(200), nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("metric", sa.String(20), nullable=False),
        sa.Column("breached_at", sa.BigInteger, nullable=False),
        sa.Column("table_version", sa.String(40), nullable=False),
        sa.Column("credit_percent", sa.Float, nullable=False),
        sa.Column("amount_cents", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(10), nullable=False),
        sa.Column("rationale", sa.Text, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("decided_cents", sa.BigInteger),
        sa.Column("decided_by", sa.String(200)),
        sa.Column("decided_at", sa.BigInteger),
        sa.Column("decision_reason", sa.Text),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("case_id", "metric", "table_version", name="uq_compensation_breach"),
    )
    op.create_index("ix_compensation_period", "compensation", ["period", "customer"])
    _backfill(op.get_bind())


def _backfill(conn: sa.Connection) -> None:
    """Every stored case's facts from its whole timeline, under its own policy version."""
    from rungs.core.facts import Terms, terms_for
    from rungs.policy import load_policy_text
    from rungs.store.facts import rebuild

    policies: dict[int, object] = {}

    def terms_of(version: int) -> object:
        if version not in policies:
            row = conn.execute(
                sa.text("SELECT yaml FROM policies WHERE version = :v"), {"v": version}
            ).first()
            found = None
            if row is not None:
                found, _ = load_policy_text(row[0], f"version {version}", secret_prefix=None)
            policies[version] = found
        return policies[version]

    after = ""
    while True:
        rows = conn.execute(
            sa.text("SELECT id, policy_version FROM cases WHERE id > :after ORDER BY id LIMIT :n"),
            {"after": after, "n": _BATCH},
        ).all()
        if not rows:
            return
        for cid, version in rows:
            policy = terms_of(version)
            rebuild(
                conn,
                [cid],
                lambda customer, p=policy: terms_for(p, customer) if p is not None else Terms(),  # type: ignore[arg-type]
            )
        after = rows[-1][0]


def downgrade() -> None:
    op.drop_index("ix_compensation_period", "compensation")
    op.drop_table("compensation")
    op.drop_index("ix_case_facts_ping_pong", "case_facts")
    op.drop_index("ix_case_facts_reasons", "case_facts")
    op.drop_table("case_facts")
