"""mail index on completion

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 10:40:00

The mail search index is written once per message when its body arrives, by the sync's batch write, instead
of by a trigger firing per row (half the cost); triggers now fire only for messages already indexed. The index
is rebuilt once: an index made by 0002's rebuild also held provisional (header-only) messages.
"""

from __future__ import annotations

from alembic import op

from crm_tui.core import search_index

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_OLD_INSERT = (
    "INSERT INTO mail_search(rowid, subject, addresses, body) SELECT new.id, new.subject, new.from_name || ' ' "
    "|| new.from_address || ' ' || new.to_addresses || ' ' || new.cc_addresses, new.body_text WHERE new.has_body;"
)
_OLD_TRIGGERS = (
    f"CREATE TRIGGER mail_search_ai AFTER INSERT ON mail_message BEGIN {_OLD_INSERT} END",
    "CREATE TRIGGER mail_search_ad AFTER DELETE ON mail_message BEGIN DELETE FROM mail_search WHERE rowid = "
    "old.id; END",
    "CREATE TRIGGER mail_search_au AFTER UPDATE OF subject, from_name, from_address, to_addresses, "
    "cc_addresses, body_text, has_body ON mail_message BEGIN "
    f"DELETE FROM mail_search WHERE rowid = old.id; {_OLD_INSERT} END",
)


def upgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name != "sqlite":
        return
    for name in ("mail_search_ai", "mail_search_ad", "mail_search_au"):
        connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}")
    search_index.ensure(connection, only=("mail_search",))  # the new triggers, and the index rebuilt


def downgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name != "sqlite":
        return
    for name in ("mail_search_ai", "mail_search_ad", "mail_search_au"):
        connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}")
    for statement in _OLD_TRIGGERS:
        connection.exec_driver_sql(statement)
