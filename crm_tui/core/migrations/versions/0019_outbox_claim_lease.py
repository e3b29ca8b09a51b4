"""outbox: when an item was claimed, so a claim from another machine expires

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 12:30:00

``outbox_item.claimed_at``: when the process named in ``claimed_by`` took the item to deliver it. Whether a
process on another machine (a team's shared database) is alive cannot be asked; its claim holds for a lease
after ``claimed_at`` and only then is the item counted as cut off. Items claimed before this revision have no
time and count as claimed long ago.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import crm_tui.core.columns

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "outbox_item", sa.Column("claimed_at", crm_tui.core.columns.UTCDateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    with op.batch_alter_table("outbox_item") as batch:
        batch.drop_column("claimed_at")
