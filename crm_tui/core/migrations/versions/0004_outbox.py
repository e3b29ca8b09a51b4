"""outbox

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 11:20:00

The outbox: messages on their way out, with their state (queued, sending, sent, failed, uncertain).
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import crm_tui.core.columns

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbox_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("message_id_header", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("from_address", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("recipients", sa.Text(), nullable=False),
        sa.Column("subject", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", crm_tui.core.columns.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("reply_to_id", sa.Integer(), nullable=True),
        sa.Column("record_type", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("record_id", sa.Integer(), nullable=True),
        sa.Column("created_at", crm_tui.core.columns.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", crm_tui.core.columns.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["mail_account.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["reply_to_id"], ["mail_message.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    for column in ("account_id", "message_id_header", "reply_to_id", "state"):
        op.create_index(op.f(f"ix_outbox_item_{column}"), "outbox_item", [column], unique=False)


def downgrade() -> None:
    for column in ("account_id", "message_id_header", "reply_to_id", "state"):
        op.drop_index(op.f(f"ix_outbox_item_{column}"), table_name="outbox_item")
    op.drop_table("outbox_item")
