"""postgres mail search

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-22 15:15:00

On PostgreSQL, a GIN index over the words of each message (subject, addresses, body): the mail search's
full-text condition (services.mail_search.postgres_document) uses it. SQLite keeps its FTS5 index.
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

DOCUMENT = (
    "to_tsvector('simple'::regconfig, translate(coalesce(subject, '') || ' ' || coalesce(from_name, '') || ' ' || "
    "coalesce(from_address, '') || ' ' || coalesce(to_addresses, '') || ' ' || coalesce(cc_addresses, '') || ' ' || "
    "coalesce(body_text, ''), '@.', '  '))"
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE INDEX ix_mail_message_words ON mail_message USING gin ({DOCUMENT})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_mail_message_words")
