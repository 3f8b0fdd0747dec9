"""The web console: passwords (with the lockout state), and the queue's columns on cases.

Revision ID: 0007
Revises: 0006
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "credentials",
        sa.Column("person", sa.String(200), primary_key=True),
        sa.Column("hash", sa.Text, nullable=False),
        sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("locked_until", sa.BigInteger),
        sa.Column("changed_at", sa.BigInteger, nullable=False),
    )
    # 0001 creates `cases` from today's tables.py, with these columns already
    have = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("cases")}
    with op.batch_alter_table("cases") as batch:
        if "title" not in have:
            batch.add_column(sa.Column("title", sa.Text))
        if "sla_due" not in have:
            batch.add_column(sa.Column("sla_due", sa.BigInteger))
    # titles of the cases stored before (sla_due is set on each case's next decision: it
    # needs the policy, which a migration does not compile)
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, state FROM cases")).all()
    for case_id, state in rows:
        title = json.loads(state).get("title")
        conn.execute(
            sa.text("UPDATE cases SET title = :t WHERE id = :id"), {"t": title, "id": case_id}
        )


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("sla_due")
        batch.drop_column("title")
    op.drop_table("credentials")
