"""mail dates stored alike

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-22 20:20:00

The sync's batch writes (``core.bulk``) stored a date-time whose microseconds are zero without them on SQLite
("2026-11-20 09:30:00"), where every other write stores "2026-11-20 09:30:00.000000". The values read back the
same, but SQLite compares them as text: a message sent at a day's first second fell outside ``after:`` that
day. This gives those values the one stored form. Nothing else changes; PostgreSQL stores real timestamps.
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# The date-time columns the batch writes touched.
COLUMNS = (("mail_message", "sent_at"), ("mail_message", "received_at"), ("mail_link", "created_at"))


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table, column in COLUMNS:
        op.execute(
            f"UPDATE {table} SET {column} = {column} || '.000000' "
            f"WHERE {column} IS NOT NULL AND length({column}) = 19"
        )


def downgrade() -> None:
    pass  # the longer form is what every version reads
