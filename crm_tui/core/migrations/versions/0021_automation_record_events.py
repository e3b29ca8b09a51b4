"""automation rules on record events: a quote accepted or declined, a document signed, declined or expired

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 19:25:00

A rule with the trigger ``event`` names the event in ``record_event`` (``automation.events.EVENTS``); the
other rules keep it NULL, so old databases open unchanged.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("automation_rule") as batch:
        batch.add_column(sa.Column("record_event", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("automation_rule") as batch:
        batch.drop_column("record_event")
