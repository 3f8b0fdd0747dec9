"""The input journal (`rungs verify`, `rungs replay`): every input a decision took; and
each verification's result; an index of the outbox by case (verify reads a case's messages).

Cases stored before it have no journal: each gets one `not_replayable` row, so verify and
replay say so instead of re-running half a history.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    id_type = sa.BigInteger().with_variant(sa.Integer, "sqlite")
    op.create_table(
        "journal",
        sa.Column("id", id_type, primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("policy_version", sa.Integer, nullable=False),
        sa.Column("event", sa.Text, nullable=False),
    )
    op.create_index("ix_journal_case", "journal", ["case_id", "id"])
    op.create_index("ix_outbox_case", "outbox", ["case_id"])  # verify reads a case's messages
    op.create_table(
        "verifications",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("cases", sa.Integer, nullable=False),
        sa.Column("reproduced", sa.Integer, nullable=False),
        sa.Column("not_replayable", sa.Integer, nullable=False),
        sa.Column("divergences", sa.Integer, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.execute(
        "INSERT INTO journal (case_id, at, policy_version, event) "
        'SELECT id, updated_at, policy_version, \'{"kind":"not_replayable"}\' FROM cases '
        "ORDER BY opened_at, id"
    )


def downgrade() -> None:
    op.drop_table("verifications")
    op.drop_index("ix_outbox_case", "outbox")
    op.drop_index("ix_journal_case", "journal")
    op.drop_table("journal")
