"""document content in the database

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-22 15:50:00

The bytes of documents, in parts of 1 MiB keyed by their SHA-256: on a shared (PostgreSQL) database every
instance reads the same documents. A local SQLite database keeps its documents as files beside it (the table
stays empty there).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "document_content",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("sha256", "part"),
    )


def downgrade() -> None:
    op.drop_table("document_content")
