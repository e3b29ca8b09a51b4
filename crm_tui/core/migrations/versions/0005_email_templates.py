"""email templates

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 11:35:00

Mail templates (Jinja2 subject and body with merge fields from records). The templates shipped in
assets/templates/email are added here, once per database: one the user deletes stays deleted.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import crm_tui.core.columns

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# The set shipped with this revision; later ones add theirs (0016).
SHIPPED = ("anfrage-danke.txt", "angebot-nachfassen.txt", "termin-bestaetigen.txt")


def upgrade() -> None:
    op.create_table(
        "email_template",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("subject", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("description", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("created_at", crm_tui.core.columns.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", crm_tui.core.columns.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    from crm_tui.core.services.email_templates import read_default
    from crm_tui.core.assets import assets_dir

    now = "2026-11-22 00:00:00.000000"  # when this set shipped (UTC): the same in every database
    table = sa.table(
        "email_template",
        sa.column("name"), sa.column("subject"), sa.column("body"), sa.column("description"),
        sa.column("created_at"), sa.column("updated_at"),
    )  # fmt: skip
    rows = []
    for name in SHIPPED:
        data = read_default(assets_dir() / "templates" / "email" / name)
        rows.append(
            {"name": data.name, "subject": data.subject, "body": data.body, "description": data.description,
             "created_at": now, "updated_at": now}
        )  # fmt: skip
    if rows:
        op.bulk_insert(table, rows)


def downgrade() -> None:
    op.drop_table("email_template")
