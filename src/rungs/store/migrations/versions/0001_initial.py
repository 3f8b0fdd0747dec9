"""The initial schema: policies, cases, timeline, timers, outbox.

Revision ID: 0001
Revises:
"""

from alembic import op

from rungs.store.tables import metadata

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    metadata.create_all(op.get_bind())


def downgrade() -> None:
    metadata.drop_all(op.get_bind())
