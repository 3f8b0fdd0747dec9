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


INITIAL = ("policies", "case_numbers", "cases", "timeline", "timers", "outbox")


def upgrade() -> None:
    metadata.create_all(op.get_bind(), tables=[metadata.tables[t] for t in INITIAL])


def downgrade() -> None:
    metadata.drop_all(op.get_bind(), tables=[metadata.tables[t] for t in INITIAL])
