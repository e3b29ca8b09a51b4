"""recipient completion: word indexes; templates that need only a contact

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 10:30:00

To, Cc and Bcc complete from any word of a name ("Lea Sch", "Scholz") on every key: on SQLite a word index
(FTS5 unicode61, accents folded) over the search text of contacts, leads and organizations; on PostgreSQL
trigram indexes (pg_trgm, as 0011 for contacts) on the search text of leads and organizations, which serve the
same "a word starting with" patterns. The shipped templates that need only a contact (or a colleague) are
added to databases that do not have a template of that name yet.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.exc import DBAPIError

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

# The templates this revision ships (assets/templates/email): added once; one the user deletes stays deleted.
TEMPLATES = ("danke-nachricht.txt", "nachfassen.txt", "terminvorschlag.txt", "team-info.txt")


def upgrade() -> None:
    from crm_tui.core import search_index

    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        search_index.ensure(bind, only=search_index.WORD_INDEXES)
    elif bind.dialect.name == "postgresql":
        savepoint = bind.begin_nested()
        try:
            op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            op.execute("CREATE INDEX ix_lead_search_trgm ON lead USING gin (search_text gin_trgm_ops)")
            op.execute(
                "CREATE INDEX ix_organization_search_trgm ON organization USING gin (search_text gin_trgm_ops)"
            )
            savepoint.commit()
        except DBAPIError:
            savepoint.rollback()  # no right to add the extension: completion stays right, unindexed
    add_templates(TEMPLATES)


def add_templates(names: tuple[str, ...]) -> None:
    """Add these shipped templates where no template has their name."""
    from crm_tui.core.services.email_templates import read_default
    from crm_tui.core.assets import assets_dir

    now = "2026-12-07 00:00:00.000000"  # when this set shipped (UTC): the same in every database
    table = sa.table(
        "email_template",
        sa.column("name"), sa.column("subject"), sa.column("body"), sa.column("description"),
        sa.column("created_at"), sa.column("updated_at"),
    )  # fmt: skip
    bind = op.get_bind()
    existing = {row[0] for row in bind.execute(sa.text("SELECT name FROM email_template"))}
    rows = []
    for name in names:
        data = read_default(assets_dir() / "templates" / "email" / name)
        if data.name not in existing:
            rows.append(
                {"name": data.name, "subject": data.subject, "body": data.body, "description": data.description,
                 "created_at": now, "updated_at": now}
            )  # fmt: skip
    if rows:
        op.bulk_insert(table, rows)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        from crm_tui.core import search_index

        for index in search_index.WORD_INDEXES:
            for suffix in ("_ai", "_ad", "_au"):
                bind.exec_driver_sql(f"DROP TRIGGER IF EXISTS {index}{suffix}")
            bind.exec_driver_sql(f"DROP TABLE IF EXISTS {index}")
    elif bind.dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_lead_search_trgm")
        op.execute("DROP INDEX IF EXISTS ix_organization_search_trgm")
