"""activities: an index by deal and start, for a deal's timeline

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07 19:50:00

The deal screen lists a deal's activities newest first, a page at a time: ``ix_activity_opportunity_start``
(opportunity_id, start_at) reads them in that order. Without it SQLite walked the start_at index over every
activity of every deal (100 ms on 100,000 activities) to find the 60 of one deal.
"""

from __future__ import annotations

from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_activity_opportunity_start", "activity", ["opportunity_id", "start_at"])


def downgrade() -> None:
    op.drop_index("ix_activity_opportunity_start", table_name="activity")
