"""signatures

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 11:58:00

A signature per mail account, put under the mail written from it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("mail_account") as batch:
        batch.add_column(sa.Column("signature", sa.Text(), nullable=False, server_default=""))
    with op.batch_alter_table("mail_account") as batch:
        batch.alter_column("signature", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("mail_account") as batch:
        batch.drop_column("signature")
