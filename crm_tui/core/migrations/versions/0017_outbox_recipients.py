"""outbox: each recipient's outcome, who is delivering an item, ids never reused

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 12:00:00

``outbox_recipient``: what the server said to each recipient of an item (accepted, or refused with its
reply), so a mail the server took for some and refused for others says so and goes again only to whoever has
not got it. ``outbox_item.claimed_by``: the process (host:pid) delivering an item, so one left ``sending`` by a
dead process can be decided. On SQLite ``outbox_item`` is rebuilt with AUTOINCREMENT: an id once given (and
named in messages, logs and campaign recipients) is never given again after a drop or a take-back;
PostgreSQL's sequences never reuse ids anyway.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import crm_tui.core.columns

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    column: sa.Column[str] = sa.Column("claimed_by", sqlmodel.sql.sqltypes.AutoString(), nullable=True)
    if bind.dialect.name == "sqlite":
        with op.batch_alter_table(
            "outbox_item", recreate="always", table_kwargs={"sqlite_autoincrement": True}
        ) as batch:
            batch.add_column(column)
    else:
        op.add_column("outbox_item", column)
    op.create_table(
        "outbox_recipient",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("address", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("at", crm_tui.core.columns.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["outbox_item.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("item_id", "address"),
    )
    op.create_index(op.f("ix_outbox_recipient_item_id"), "outbox_recipient", ["item_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_outbox_recipient_item_id"), table_name="outbox_recipient")
    op.drop_table("outbox_recipient")
    with op.batch_alter_table("outbox_item") as batch:
        batch.drop_column("claimed_by")
