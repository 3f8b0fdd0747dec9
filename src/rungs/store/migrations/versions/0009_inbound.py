"""Customers' mail and satisfaction surveys: message ids with their case, unmatched mail,
attachments; surveys and opt-outs (`rungs.store.mail`, `rungs.store.surveys`).

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mail_messages",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(998), nullable=False),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("case_id", sa.String(64)),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("peer", sa.String(320), nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("date", sa.String(200)),
        sa.Column("at", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "ix_mail_messages_message_id", "mail_messages", ["message_id", "direction"], unique=True
    )
    op.create_index("ix_mail_messages_peer", "mail_messages", ["peer", "kind", "at"])
    op.create_index("ix_mail_messages_case", "mail_messages", ["case_id"])
    op.create_table(
        "mail_unmatched",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(998), nullable=False),
        sa.Column("sender", sa.String(320), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("received_at", sa.BigInteger, nullable=False),
        sa.Column("answered_at", sa.BigInteger),
    )
    op.create_index("ix_mail_unmatched_sender", "mail_unmatched", ["sender"])
    op.create_table(
        "mail_attachments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("message_id", sa.String(998), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("content_type", sa.String(255), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_mail_attachments_case", "mail_attachments", ["case_id"])
    op.create_table(
        "surveys",
        sa.Column("token", sa.String(64), primary_key=True),
        sa.Column("case_id", sa.String(64), nullable=False, unique=True),
        sa.Column("requester", sa.String(320), nullable=False),
        sa.Column("customer", sa.String(200), nullable=False),
        sa.Column("tier", sa.String(200)),
        sa.Column("escalated", sa.Integer, nullable=False),
        sa.Column("resolved_by", sa.String(200)),
        sa.Column("reason", sa.String(200)),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("due", sa.BigInteger),
        sa.Column("resolved_at", sa.BigInteger, nullable=False),
        sa.Column("sent_at", sa.BigInteger),
        sa.Column("expires_at", sa.BigInteger),
        sa.Column("answered_at", sa.BigInteger),
        sa.Column("rating", sa.Integer),
        sa.Column("scale", sa.Integer, nullable=False),
        sa.Column("comment", sa.Text),
    )
    op.create_index("ix_surveys_due", "surveys", ["due"])
    op.create_index("ix_surveys_requester", "surveys", ["requester", "sent_at"])
    op.create_table(
        "survey_opt_outs",
        sa.Column("requester", sa.String(320), primary_key=True),
        sa.Column("at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for table in ("survey_opt_outs", "surveys", "mail_attachments", "mail_unmatched"):
        op.drop_table(table)
    op.drop_table("mail_messages")
