"""drafts

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22 12:00:00

Mail drafts, saved as they are written.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import crm_tui.core.columns

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mail_draft",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("from_address", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("to", sa.Text(), nullable=False),
        sa.Column("cc", sa.Text(), nullable=False),
        sa.Column("bcc", sa.Text(), nullable=False),
        sa.Column("subject", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("in_reply_to", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("references", sa.Text(), nullable=True),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("reply_to_id", sa.Integer(), nullable=True),
        sa.Column("record_type", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("record_id", sa.Integer(), nullable=True),
        sa.Column("server_message_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("updated_at", crm_tui.core.columns.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["mail_account.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["reply_to_id"], ["mail_message.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_mail_draft_account_id"), "mail_draft", ["account_id"], unique=False)
    op.create_index(op.f("ix_mail_draft_reply_to_id"), "mail_draft", ["reply_to_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_mail_draft_reply_to_id"), table_name="mail_draft")
    op.drop_index(op.f("ix_mail_draft_account_id"), table_name="mail_draft")
    op.drop_table("mail_draft")
