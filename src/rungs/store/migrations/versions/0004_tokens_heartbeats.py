"""API tokens (only their SHA-256 is stored) and heartbeat integrations' state.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("active_name", sa.String(100)),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("revoked_at", sa.BigInteger),
    )
    op.create_index("ix_api_tokens_hash", "api_tokens", ["hash"], unique=True)
    op.create_index("ix_api_tokens_active_name", "api_tokens", ["active_name"], unique=True)
    op.create_table(
        "heartbeats",
        sa.Column("integration", sa.String(200), primary_key=True),
        sa.Column("interval", sa.BigInteger, nullable=False),
        sa.Column("last_beat", sa.BigInteger, nullable=False),
        sa.Column("due", sa.BigInteger),
        sa.Column("missed_at", sa.BigInteger),
    )
    op.create_index("ix_heartbeats_due", "heartbeats", ["due"])


def downgrade() -> None:
    op.drop_index("ix_heartbeats_due", "heartbeats")
    op.drop_table("heartbeats")
    op.drop_index("ix_api_tokens_active_name", "api_tokens")
    op.drop_index("ix_api_tokens_hash", "api_tokens")
    op.drop_table("api_tokens")
