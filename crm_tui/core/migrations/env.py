"""Alembic environment: migrations run on the connection crm-tui hands over (see core/db.py)."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import crm_tui.core.models  # noqa: F401  (registers the tables on SQLModel.metadata)

config = context.config
target_metadata = SQLModel.metadata


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("crm-tui migrations run through crm_tui.core.db.upgrade(), not the alembic CLI")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
