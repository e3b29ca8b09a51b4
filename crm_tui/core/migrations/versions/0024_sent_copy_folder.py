"""where an account's sent copies go: the server's \\Sent folder (as before), a folder chosen, or none

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07 19:50:00

``mail_account`` gains ``sent_copy`` (``server``: the folder the server marks ``\\Sent``, else one named Sent,
else a "Sent" made for it; ``folder``: ``sent_copy_folder``; ``none``: no copy saved) and ``sent_copy_folder``.
Old accounts get ``server``: they save their copies as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("mail_account") as batch:
        batch.add_column(sa.Column("sent_copy", sa.String(), nullable=False, server_default="server"))
        batch.add_column(sa.Column("sent_copy_folder", sa.String(), nullable=True))
    with op.batch_alter_table("mail_account") as batch:
        batch.alter_column("sent_copy", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("mail_account") as batch:
        batch.drop_column("sent_copy_folder")
        batch.drop_column("sent_copy")
