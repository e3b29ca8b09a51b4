"""mail raw bytes in a table of their own

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-22 22:20:00

A message's raw bytes move from ``mail_message.raw`` to ``mail_raw`` (one row per message with a body). The
message row then holds only derived, short values: a list or lookup no longer steps over the blob in the
middle of each row, and the sync's helper processes write the bytes into their own table while the sync
stores the rest. Every stored byte is copied before the column goes; provisional messages (no body yet, no bytes) get no row.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mail_raw",
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["message_id"], ["mail_message.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("message_id"),
    )
    op.execute("INSERT INTO mail_raw (message_id, raw) SELECT id, raw FROM mail_message WHERE length(raw) > 0")
    # SQLite (3.35 and later) drops a column in place: rebuilding the table would drop its search triggers, and
    # with foreign keys on, the rows that refer to it.
    op.execute("ALTER TABLE mail_message DROP COLUMN raw")


def downgrade() -> None:
    empty = "x''" if op.get_bind().dialect.name == "sqlite" else "''"  # an empty blob (bytea)
    op.add_column("mail_message", sa.Column("raw", sa.LargeBinary(), nullable=False, server_default=sa.text(empty)))
    op.execute(
        "UPDATE mail_message SET raw = (SELECT raw FROM mail_raw WHERE mail_raw.message_id = mail_message.id) "
        "WHERE id IN (SELECT message_id FROM mail_raw)"
    )
    op.drop_table("mail_raw")
