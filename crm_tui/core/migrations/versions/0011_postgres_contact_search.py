"""postgres contact search

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-22 15:20:00

On PostgreSQL, contact search (a substring of the search text, LIKE '%term%') through a trigram index
(pg_trgm, a trusted extension the database's owner may add). Where the extension cannot be added the search
stays right, only unindexed; SQLite keeps its FTS5 trigram index.
"""

from __future__ import annotations

from alembic import op
from sqlalchemy.exc import DBAPIError

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    savepoint = bind.begin_nested()
    try:
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute("CREATE INDEX ix_contact_search_trgm ON contact USING gin (search_text gin_trgm_ops)")
        savepoint.commit()
    except DBAPIError:
        savepoint.rollback()  # no right to add the extension here: the search stays right, unindexed


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_contact_search_trgm")
