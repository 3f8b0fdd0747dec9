"""A group's (and an integration's storm) latest case is looked up by opened_at, then case
id for cases opened at the same instant: the indexes hold both, so the look-up reads one
index entry instead of sorting the ties.

Revision ID: 0012
Revises: 0011
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_case_groups_key", "case_groups")
    op.drop_index("ix_case_groups_integration", "case_groups")
    op.create_index("ix_case_groups_key", "case_groups", ["group_key", "opened_at", "case_id"])
    op.create_index(
        "ix_case_groups_integration", "case_groups", ["integration", "opened_at", "case_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_case_groups_integration", "case_groups")
    op.drop_index("ix_case_groups_key", "case_groups")
    op.create_index("ix_case_groups_key", "case_groups", ["group_key", "opened_at"])
    op.create_index("ix_case_groups_integration", "case_groups", ["integration", "opened_at"])
