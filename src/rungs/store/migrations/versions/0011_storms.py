"""Storms: alerts of grouped, storm-guarded or flap-watched integrations and of maintenance
windows; the group each such case stands for; maintenance windows.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(300), nullable=False),
        sa.Column("integration", sa.String(200), nullable=False),
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("flapping", sa.Integer, nullable=False),
        sa.Column("changes", sa.Text, nullable=False),
        sa.Column("quiet_due", sa.BigInteger),
        sa.Column("held_by", sa.Integer),
        sa.Column("fired_at", sa.BigInteger, nullable=False),
        sa.Column("changed_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_alerts_key", "alerts", ["key", "id"])
    op.create_index("ix_alerts_case", "alerts", ["case_id", "id"])
    op.create_index("ix_alerts_quiet", "alerts", ["quiet_due"])
    op.create_index("ix_alerts_held", "alerts", ["held_by"])
    op.create_table(
        "case_groups",
        sa.Column("case_id", sa.String(64), primary_key=True),
        sa.Column("integration", sa.String(200), nullable=False),
        sa.Column("group_key", sa.String(300), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("opened_at", sa.BigInteger, nullable=False),
        sa.Column("released_at", sa.BigInteger),
    )
    op.create_index("ix_case_groups_key", "case_groups", ["group_key", "opened_at"])
    op.create_index("ix_case_groups_integration", "case_groups", ["integration", "opened_at"])
    op.create_table(
        "maintenance",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("integrations", sa.Text, nullable=False),
        sa.Column("customers", sa.Text, nullable=False),
        sa.Column("starts_at", sa.BigInteger, nullable=False),
        sa.Column("ends_at", sa.BigInteger, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("cancelled_at", sa.BigInteger),
        sa.Column("ended_at", sa.BigInteger),
    )
    op.create_index("ix_maintenance_ends", "maintenance", ["ended_at", "ends_at"])


def downgrade() -> None:
    op.drop_index("ix_maintenance_ends", "maintenance")
    op.drop_table("maintenance")
    op.drop_index("ix_case_groups_integration", "case_groups")
    op.drop_index("ix_case_groups_key", "case_groups")
    op.drop_table("case_groups")
    for ix in ("ix_alerts_held", "ix_alerts_quiet", "ix_alerts_case", "ix_alerts_key"):
        op.drop_index(ix, "alerts")
    op.drop_table("alerts")
