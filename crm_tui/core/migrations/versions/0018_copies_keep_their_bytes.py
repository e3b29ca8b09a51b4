"""mail: each copy keeps its own bytes

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 12:05:00

Copies of one message (same Message-ID and body) merge into one ``mail_message``, whose ``mail_raw`` holds the
bytes of the copy that completed it. A copy whose bytes differ (other Received lines, another folder's
headers) keeps them in ``mail_location_raw``: ``mail raw ID --folder F`` gives that copy's bytes. A copy
without a row there has the message's bytes.

Copies merged before this revision kept no bytes of their own, and which copy's bytes the message holds is
not known: every copy of a message with more than one is marked so (a row whose ``raw`` is NULL), and its
bytes are fetched from the server when asked for. No stored byte changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mail_location_raw",
        sa.Column("location_id", sa.Integer(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(["location_id"], ["mail_location.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("location_id"),
    )
    op.execute(
        "INSERT INTO mail_location_raw (location_id, raw) SELECT id, NULL FROM mail_location WHERE message_id IN "
        "(SELECT message_id FROM mail_location GROUP BY message_id HAVING count(*) > 1)"
    )


def downgrade() -> None:
    op.drop_table("mail_location_raw")
