"""automation log: an index by record, for a deal's timeline

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 19:15:00

The deal screen's timeline lists what automation fired on one deal, newest first: ``ix_automation_log_record``
(record_type, record_id, at) finds them without stepping over every other record's log rows.
"""

from __future__ import annotations

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_automation_log_record", "automation_log", ["record_type", "record_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_automation_log_record", table_name="automation_log")
