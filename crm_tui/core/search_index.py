"""Full-text indexes that make substring search fast on SQLite (FTS5 with the trigram tokenizer).

The index mirrors ``contact.search_text`` (an external-content FTS table) and triggers keep it current on
every write, whatever path the write takes. A table rebuild in a later migration drops the triggers with the
table, so ``ensure`` runs after every upgrade: it puts back what is missing and rebuilds the index then.
Other databases (PostgreSQL, later) use their own full-text search; ``available`` tells the services which.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

# (index table, source table) pairs. ``*_search``: trigrams (a part of a word); ``*_words``: whole words
# (unicode61, accents folded), for "a word starting with" (the completion of a mail's recipients).
INDEXES = (
    ("contact_search", "contact"),
    ("mail_search", "mail_message"),
    ("contact_words", "contact"),
    ("lead_words", "lead"),
    ("organization_words", "organization"),
)
WORD_INDEXES = ("contact_words", "lead_words", "organization_words")
MIN_TERM = 3  # trigrams: shorter terms are matched with LIKE instead


_MAIL_ADDRESSES = (
    "new.from_name || ' ' || new.from_address || ' ' || new.to_addresses || ' ' || new.cc_addresses"
)


def _mail_statements() -> dict[str, str]:
    """Mail: subject, addresses and body, as words (unicode61, accents folded); its own copy of the text.

    Only complete messages are indexed: a provisional one (headers only, ``has_body`` 0) is indexed when its
    body arrives, so each message is tokenized once (the sync's costliest write), not twice. That moment is
    the sync's batch write (``mailbox.store_bodies``), which calls ``index_messages`` for the batch with the
    values it wrote: one executemany costs less than half of what a trigger firing per row did. Triggers keep
    every other write right (a message stored whole, an indexed message edited or deleted).
    """
    insert = (
        "INSERT INTO mail_search(rowid, subject, addresses, body) "
        f"VALUES (new.id, new.subject, {_MAIL_ADDRESSES}, new.body_text);"
    )
    return {
        "mail_search": (
            "CREATE VIRTUAL TABLE mail_search USING fts5("
            "subject, addresses, body, tokenize='unicode61 remove_diacritics 2')"
        ),
        "mail_search_ai": (
            f"CREATE TRIGGER mail_search_ai AFTER INSERT ON mail_message WHEN new.has_body BEGIN {insert} END"
        ),
        "mail_search_ad": (
            "CREATE TRIGGER mail_search_ad AFTER DELETE ON mail_message WHEN old.has_body BEGIN "
            "DELETE FROM mail_search WHERE rowid = old.id; END"
        ),
        "mail_search_au": (
            "CREATE TRIGGER mail_search_au AFTER UPDATE OF subject, from_name, from_address, to_addresses, "
            "cc_addresses, body_text, has_body ON mail_message WHEN old.has_body BEGIN "
            f"DELETE FROM mail_search WHERE rowid = old.id; {insert} END"
        ),
    }


_MAIL_COLUMNS = "id, subject, " + _MAIL_ADDRESSES.replace("new.", "") + ", body_text"
_MAIL_REBUILD = (
    "DELETE FROM mail_search",
    f"INSERT INTO mail_search(rowid, subject, addresses, body) SELECT {_MAIL_COLUMNS} FROM mail_message "
    "WHERE has_body",
)


def mail_addresses(from_name: str, from_address: str, to_addresses: str, cc_addresses: str) -> str:
    """The addresses column of ``mail_search`` for a message, as the triggers' ``_MAIL_ADDRESSES`` make it."""
    return f"{from_name} {from_address} {to_addresses} {cc_addresses}"


def index_messages(connection: Any, rows: list[tuple[int, str, str, str]]) -> None:
    """Index messages whose body has just arrived (``has_body`` turned true), from the values the caller has
    just written: (id, subject, addresses, body); SQLite only, a no-op elsewhere. Runs inside the caller's
    transaction. A quarter faster than an INSERT ... SELECT reading the rows back (measured)."""
    if connection.dialect.name != "sqlite" or not rows:
        return
    connection.connection.driver_connection.executemany(
        "INSERT INTO mail_search(rowid, subject, addresses, body) VALUES (?, ?, ?, ?)", rows
    )


def _statements(index: str, table: str) -> dict[str, str]:
    if index == "mail_search":
        return _mail_statements()
    tokenize = (
        "tokenize='unicode61 remove_diacritics 2', prefix='2'"
        if index in WORD_INDEXES
        else "tokenize='trigram'"
    )
    return {
        index: (
            f"CREATE VIRTUAL TABLE {index} USING fts5("
            f"search_text, content='{table}', content_rowid='id', {tokenize})"
        ),
        f"{index}_ai": (
            f"CREATE TRIGGER {index}_ai AFTER INSERT ON {table} BEGIN "
            f"INSERT INTO {index}(rowid, search_text) VALUES (new.id, new.search_text); END"
        ),
        f"{index}_ad": (
            f"CREATE TRIGGER {index}_ad AFTER DELETE ON {table} BEGIN "
            f"INSERT INTO {index}({index}, rowid, search_text) VALUES ('delete', old.id, old.search_text); END"
        ),
        f"{index}_au": (
            f"CREATE TRIGGER {index}_au AFTER UPDATE OF search_text ON {table} BEGIN "
            f"INSERT INTO {index}({index}, rowid, search_text) VALUES ('delete', old.id, old.search_text); "
            f"INSERT INTO {index}(rowid, search_text) VALUES (new.id, new.search_text); END"
        ),
    }


def ensure(connection: Any, only: tuple[str, ...] | None = None) -> list[str]:
    """Create whatever index table or trigger is missing (SQLite only); rebuild an index that was touched.

    ``only`` limits the work to these indexes (a migration makes just the ones its schema has columns for).
    Returns the names created. Runs inside the caller's transaction.
    """
    indexes = tuple(pair for pair in INDEXES if only is None or pair[0] in only)
    if connection.dialect.name != "sqlite":
        return []
    definitions = {
        row[0]: row[1]
        for row in connection.exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE type IN ('table', 'trigger')"
        )
    }
    # A trigger whose definition changed in a newer crm-tui is made again; the index it kept stays right, so
    # it is not rebuilt for that. A missing trigger (dropped with its table by a rebuild) means the index may
    # have missed writes: then it is rebuilt.
    replaced: set[str] = set()
    for index, table in indexes:
        for name, statement in _statements(index, table).items():
            if name in definitions and name.startswith(f"{index}_") and definitions[name] != statement:
                connection.exec_driver_sql(f"DROP TRIGGER {name}")
                del definitions[name]
                replaced.add(name)
    existing = set(definitions)
    created: list[str] = []
    for index, table in indexes:
        if table not in existing:
            continue
        for name, statement in _statements(index, table).items():
            if name not in existing:
                connection.exec_driver_sql(statement)
                created.append(name)
        if any(name.startswith(index) and name not in replaced for name in created):
            if index == "mail_search":
                for statement in _MAIL_REBUILD:
                    connection.exec_driver_sql(statement)
            else:
                connection.exec_driver_sql(f"INSERT INTO {index}({index}) VALUES ('rebuild')")
    return created


def is_index_table(name: str) -> bool:
    """FTS tables and their shadow tables: not models, so schema comparisons leave them out."""
    return any(name == index or name.startswith(f"{index}_") for index, _ in INDEXES)


def available(session: Session) -> bool:
    bind = session.get_bind()
    return bind.dialect.name == "sqlite"


def match_expression(terms: list[str]) -> str | None:
    """An FTS5 MATCH string requiring every term of at least MIN_TERM characters (as a substring)."""
    phrases = ['"' + term.replace('"', '""') + '"' for term in terms if len(term) >= MIN_TERM]
    return " AND ".join(phrases) if phrases else None
