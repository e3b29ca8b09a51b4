"""what became of a sent mail after the server took it: bounced (a delivery report or a returned message),
replied; and which outbox item an email activity records

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07 19:35:00

``outbox_recipient`` gains ``bounced_at`` with ``bounce_reason`` (the report's diagnostic) and ``replied_at``;
``activity`` gains ``outbox_item_id`` (the mail it records, so a bounce marks it). All NULL on old rows: old
databases open unchanged.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import crm_tui.core.columns

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_recipient") as batch:
        batch.add_column(
            sa.Column("bounced_at", crm_tui.core.columns.UTCDateTime(timezone=True), nullable=True)
        )
        batch.add_column(sa.Column("bounce_reason", sa.String(), nullable=True))
        batch.add_column(
            sa.Column("replied_at", crm_tui.core.columns.UTCDateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("activity") as batch:
        batch.add_column(sa.Column("outbox_item_id", sa.Integer(), nullable=True))
        batch.create_index("ix_activity_outbox_item_id", ["outbox_item_id"])


def downgrade() -> None:
    with op.batch_alter_table("activity") as batch:
        batch.drop_index("ix_activity_outbox_item_id")
        batch.drop_column("outbox_item_id")
    with op.batch_alter_table("outbox_recipient") as batch:
        batch.drop_column("replied_at")
        batch.drop_column("bounce_reason")
        batch.drop_column("bounced_at")
