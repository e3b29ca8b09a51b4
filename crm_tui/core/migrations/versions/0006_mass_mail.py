"""mass mail

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 11:50:00

Mass mail: campaigns and their recipients; contacts and leads can opt out of mass mail.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import crm_tui.core.columns

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "campaign",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("template_id", sa.Integer(), nullable=True),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("from_name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("from_address", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("per_minute", sa.Integer(), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("created_at", crm_tui.core.columns.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["mail_account.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["template_id"], ["email_template.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_campaign_account_id"), "campaign", ["account_id"], unique=False)
    op.create_index(op.f("ix_campaign_template_id"), "campaign", ["template_id"], unique=False)
    op.create_table(
        "campaign_recipient",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("record_type", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("label", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("address", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("outbox_item_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["outbox_item_id"], ["outbox_item.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("campaign_id", "record_type", "record_id"),
    )
    op.create_index(op.f("ix_campaign_recipient_campaign_id"), "campaign_recipient", ["campaign_id"], unique=False)
    op.create_index(
        op.f("ix_campaign_recipient_outbox_item_id"), "campaign_recipient", ["outbox_item_id"], unique=False
    )
    for table in ("contact", "lead"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("mail_opt_out", sa.Boolean(), nullable=False, server_default=sa.false()))
        with op.batch_alter_table(table) as batch:
            batch.alter_column("mail_opt_out", server_default=None)


def downgrade() -> None:
    for table in ("lead", "contact"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("mail_opt_out")
    op.drop_index(op.f("ix_campaign_recipient_outbox_item_id"), table_name="campaign_recipient")
    op.drop_index(op.f("ix_campaign_recipient_campaign_id"), table_name="campaign_recipient")
    op.drop_table("campaign_recipient")
    op.drop_index(op.f("ix_campaign_template_id"), table_name="campaign")
    op.drop_index(op.f("ix_campaign_account_id"), table_name="campaign")
    op.drop_table("campaign")
