"""Migrations: the schema they build is exactly the models', and databases from other versions are handled."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text as sa_text
from sqlmodel import SQLModel, select

from crm_tui.core import models as m
from crm_tui.core import search_index
from crm_tui.core.db import MIGRATIONS_DIR, SCHEMA_HEAD, Database, open_database, sqlite_url
from crm_tui.core.errors import DatabaseError
from tests.utils import factories
from tests.utils.ids import id_of


def test_schema_head_constant_matches_the_newest_migration() -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    assert ScriptDirectory.from_config(config).get_heads() == [SCHEMA_HEAD]


def test_migrations_produce_exactly_the_models_schema(tmp_path: Path) -> None:
    db = open_database(sqlite_url(tmp_path / "fresh.sqlite3"))
    with db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        differences = compare_metadata(context, SQLModel.metadata)
    # The full-text index tables are derived (search_index.py), not models: the only allowed difference.
    index_tables = [
        d for d in differences if d[0] == "remove_table" and search_index.is_index_table(d[1].name)
    ]
    assert {d[1].name for d in index_tables} >= {"contact_search"}
    assert [d for d in differences if d not in index_tables] == []
    db.dispose()


def test_reopening_a_database_keeps_its_data(tmp_path: Path, now: datetime) -> None:
    url = sqlite_url(tmp_path / "crm.sqlite3")
    db = open_database(url)
    with db.write() as session:
        factories.contact(session, now, last_name="Kept", emails=["kept@example.com"])
    db.dispose()
    again = open_database(url)
    with again.read() as session:
        assert [c.last_name for c in session.exec(select(m.Contact))] == ["Kept"]
    again.dispose()


def test_a_database_from_a_newer_version_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "crm.sqlite3"
    open_database(sqlite_url(path)).dispose()
    with sqlite3.connect(path) as raw:
        raw.execute("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(DatabaseError, match="newer than this crm-tui knows"):
        open_database(sqlite_url(path))
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT version_num FROM alembic_version").fetchone() == ("9999",)


def test_a_foreign_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite3"
    with sqlite3.connect(path) as raw:
        raw.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    with pytest.raises(DatabaseError, match="not made by crm-tui"):
        open_database(sqlite_url(path))


EXTRA_REVISION = """
import sqlalchemy as sa
from alembic import op

revision = "0099"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A table rebuild on SQLite (batch mode): children with ON DELETE CASCADE must survive it.
    with op.batch_alter_table("contact") as batch:
        batch.add_column(sa.Column("nickname", sa.String(), nullable=True))
        batch.alter_column("job_title", existing_type=sa.String(), type_=sa.Text())


def downgrade() -> None:
    pass
"""


def test_an_older_database_is_backed_up_and_upgraded_without_loss(
    tmp_path: Path, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The upgrade path with a real (test-only) revision after 0001 that rebuilds the contact table."""
    import shutil

    import crm_tui.core.db as db_module

    path = tmp_path / "crm.sqlite3"
    db = open_database(sqlite_url(path))
    with db.write() as session:
        person = factories.contact(
            session, now, last_name="Survivor", emails=["s@example.com", "t@example.com"]
        )
        person_id = person.id
    db.dispose()

    migrations = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, migrations, ignore=shutil.ignore_patterns("__pycache__"))
    (migrations / "versions" / "0099_test_rebuild.py").write_text(
        EXTRA_REVISION.replace("{head}", SCHEMA_HEAD)
    )
    monkeypatch.setattr(db_module, "MIGRATIONS_DIR", migrations)
    monkeypatch.setattr(db_module, "SCHEMA_HEAD", "0099")

    upgraded = open_database(sqlite_url(path), backup_dir=tmp_path / "backups")
    with upgraded.read() as session:
        assert [row[0] for row in session.execute(sa_text("SELECT version_num FROM alembic_version"))] == [
            "0099"
        ]
        names = [row[0] for row in session.execute(sa_text("SELECT last_name FROM contact"))]
        emails = [
            row[0] for row in session.execute(sa_text("SELECT address FROM contact_email ORDER BY position"))
        ]
        assert session.execute(sa_text("PRAGMA foreign_keys")).scalar() == 1
    assert names == ["Survivor"]
    assert emails == ["s@example.com", "t@example.com"], "cascading children survive the table rebuild"
    with upgraded.write() as session:
        # The rebuild dropped the search triggers with the table; the upgrade put them back.
        factories.contact(session, now, last_name="Newcomer")
    with upgraded.read() as session:
        from crm_tui.core.services.contacts import search_contacts

        assert [c.last_name for c in search_contacts(session, "survivor")] == ["Survivor"]
        assert [c.last_name for c in search_contacts(session, "newcomer")] == ["Newcomer"]
    backup = tmp_path / "backups" / "crm.before-0099.bak"
    with sqlite3.connect(backup) as raw:
        assert raw.execute("SELECT version_num FROM alembic_version").fetchone() == (SCHEMA_HEAD,)
        assert raw.execute("SELECT last_name FROM contact WHERE id = ?", (person_id,)).fetchone() == (
            "Survivor",
        )
    upgraded.dispose()


def test_a_database_from_before_the_mail_engine_keeps_its_mail(tmp_path: Path) -> None:
    """0001 -> 0002 on a database with stored mail: nothing lost, identity derived, mail searchable."""
    import crm_tui.core.db as db_module
    from crm_tui.core import mail_identity
    from crm_tui.core.services import mailbox

    path = tmp_path / "old.sqlite3"
    db = open_database(sqlite_url(path), migrate=False)
    _migrate(db, "0001")
    raw = b"Message-ID: <old@example.com>\r\nSubject: Re: Angebot Solar\r\nFrom: a@example.com\r\n\r\nHallo Welt\r\n"
    with sqlite3.connect(path) as connection:
        connection.execute(
            "INSERT INTO mail_message (id, message_id_header, subject, from_name, from_address, to_addresses, "
            "cc_addresses, body_text, has_attachments, raw, size, is_outgoing, is_read, received_at) VALUES "
            "(7, '<old@example.com>', 'Re: Angebot Solar', '', 'a@example.com', '', '', 'Hallo Welt', 0, ?, ?, 0, 1, "
            "'2026-11-01 10:00:00.000000')",
            (raw, len(raw)),
        )
    db.dispose()
    upgraded = open_database(sqlite_url(path), backup_dir=tmp_path / "backups")
    with upgraded.read() as session:
        message = session.get(m.MailMessage, 7)
        assert message is not None and mailbox.raw_of(session, 7) == raw and message.is_read
        assert message.has_body and not message.is_flagged
        assert message.body_hash == mail_identity.body_hash(raw)
        assert message.subject_key == "angebot solar"
        hits = session.execute(
            sa_text("SELECT rowid FROM mail_search WHERE mail_search MATCH 'welt'")
        ).fetchall()
        assert [row[0] for row in hits] == [7]
    assert db_module.SCHEMA_HEAD >= "0002"
    upgraded.dispose()


def _migrate(db: Database, revision: str, *, down: bool = False) -> None:
    """Run Alembic on ``db`` up (or down) to ``revision``, as an older (or newer) crm-tui left it."""
    from alembic import command

    with db._writer.connect() as connection:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.attributes["connection"] = connection
        with connection.begin():
            (command.downgrade if down else command.upgrade)(config, revision)


def _database_at(tmp_path: Path, revision: str) -> Path:
    """A SQLite file migrated up to ``revision`` only (an older crm-tui's database), closed."""
    path = tmp_path / "old.sqlite3"
    db = open_database(sqlite_url(path), migrate=False)
    _migrate(db, revision)
    db.dispose()
    return path


def test_0003_indexes_each_message_once_its_body_arrives(tmp_path: Path) -> None:
    """A 0002 database whose index also held a provisional message: after the upgrade only whole messages are
    in the index, and a body arriving later makes its message searchable (no duplicate index row)."""
    from datetime import UTC, datetime

    from crm_tui.core.services import mailbox
    from crm_tui.core.services.mail_store import MessageData

    path = _database_at(tmp_path, "0002")
    columns = (
        "id, message_id_header, subject, subject_key, from_name, from_address, to_addresses, cc_addresses, "
        "body_text, has_attachments, attachments, raw, size, is_outgoing, is_read, is_flagged, has_body, received_at"
    )
    with sqlite3.connect(path) as connection:
        for row in (
            (
                1,
                "<a@x>",
                "Angebot",
                "angebot",
                "",
                "a@x.example",
                "",
                "",
                "Wärmepumpe",
                0,
                "",
                b"raw",
                3,
                0,
                0,
                0,
                1,
            ),
            (2, "<b@x>", "Termin", "termin", "", "b@x.example", "", "", "", 0, "", b"", 900, 0, 0, 0, 0),
        ):
            connection.execute(
                f"INSERT INTO mail_message ({columns}) VALUES ({', '.join('?' * 17)}, '2026-11-01 10:00:00.000000')",
                row,
            )
        connection.execute(
            "INSERT INTO mail_search(rowid, subject, addresses, body) SELECT id, subject, from_address, body_text "
            "FROM mail_message WHERE id = 2"
        )  # what 0002's rebuild did: provisional messages too
    upgraded = open_database(sqlite_url(path))

    def hits(word: str) -> list[int]:
        with upgraded.read() as session:
            rows = session.execute(
                sa_text("SELECT rowid FROM mail_search WHERE mail_search MATCH :w"), {"w": word}
            )
            return sorted(row[0] for row in rows)

    assert hits("warmepumpe") == [1] and hits("termin") == []
    now = datetime(2026, 11, 22, tzinfo=UTC)
    with upgraded.write() as session:
        folder = factories.mail_inbox(session, now)
        location = m.MailLocation(message_id=2, folder_id=id_of(folder), uidvalidity=1, uid=7, flags="")
        session.add(location)
        session.flush()
        body = MessageData(
            raw=b"Subject: Termin\r\n\r\nMontag passt\r\n", message_id="<b@x>", subject="Termin"
        )
        body.body_text = "Montag passt"
        mailbox.store_bodies(session, [(id_of(location), body)], now=now)
    assert hits("termin") == [2] and hits("montag") == [2]
    with upgraded.write() as session:
        session.execute(sa_text("UPDATE mail_message SET subject = 'Vertrag' WHERE id = 2"))
    assert hits("termin") == [] and hits("vertrag") == [2], "an indexed message edited is indexed anew"
    upgraded.dispose()


def test_0013_gives_the_batch_writes_dates_the_one_stored_form(tmp_path: Path) -> None:
    """A 0012 database where the sync's batches stored dates without their microseconds: after the upgrade
    every date is in the one form, reads the same, and a message sent at midnight is found by ``after:``."""
    from datetime import UTC

    from crm_tui.core.services import mail_search

    path = _database_at(tmp_path, "0012")
    columns = (
        "id, subject, subject_key, from_name, from_address, to_addresses, cc_addresses, body_text, "
        "has_attachments, attachments, raw, size, is_outgoing, is_read, is_flagged, has_body, sent_at, received_at"
    )
    with sqlite3.connect(path) as connection:
        for n, sent, received in (
            (1, "2026-11-20 00:00:00", "2026-11-21 08:00:00"),  # as the batch writes stored them
            (2, "2026-11-19 23:59:59.000000", "2026-11-21 08:00:00.250000"),  # as every other write did
            (3, None, "2026-11-21 08:00:00"),
        ):
            connection.execute(
                f"INSERT INTO mail_message ({columns}) VALUES (?, ?, ?, '', ?, '', '', '', 0, '', x'', 1, 0, 0, 0, 1,"
                " ?, ?)",
                (n, f"Nachricht {n}", f"nachricht {n}", f"k{n}@firma.example", sent, received),
            )
        connection.execute(
            "INSERT INTO mail_link (message_id, record_type, record_id, reason, created_at) "
            "VALUES (1, 'contact', 7, 'address', '2026-11-21 08:00:00')"
        )
    upgraded = open_database(sqlite_url(path))
    with upgraded.read() as session:
        stored = session.execute(
            sa_text("SELECT id, sent_at, received_at FROM mail_message ORDER BY id")
        ).all()
        link = session.execute(sa_text("SELECT created_at FROM mail_link")).scalar()
        assert stored == [
            (1, "2026-11-20 00:00:00.000000", "2026-11-21 08:00:00.000000"),
            (2, "2026-11-19 23:59:59.000000", "2026-11-21 08:00:00.250000"),
            (3, None, "2026-11-21 08:00:00.000000"),
        ]
        assert link == "2026-11-21 08:00:00.000000"
        message = session.get(m.MailMessage, 1)
        assert message is not None and message.sent_at == datetime(2026, 11, 20, tzinfo=UTC)
        assert mail_search.search_ids(session, "after:2026-11-20", UTC) == [1], "midnight is in its day"
    upgraded.dispose()


def test_0014_moves_every_message_s_bytes_into_their_own_table(tmp_path: Path) -> None:
    """A 0013 database: after the upgrade each whole message's bytes are in ``mail_raw``, exactly, and the
    message row has no blob; a provisional message has none; the index, links and search are as before, and
    a message deleted takes its bytes with it."""
    from datetime import UTC

    from crm_tui.core.services import mail_search, mailbox

    path = _database_at(tmp_path, "0013")
    whole = b"Message-ID: <w@x>\r\nSubject: Angebot\r\n\r\nDach \xc3\xbcber alles\r\n\x00\xff"
    columns = (
        "id, subject, subject_key, from_name, from_address, to_addresses, cc_addresses, body_text, "
        "has_attachments, attachments, raw, size, is_outgoing, is_read, is_flagged, has_body, received_at"
    )
    with sqlite3.connect(path) as connection:
        for n, raw, has_body in ((1, whole, 1), (2, b"", 0), (3, b"S: x\r\n\r\nzwei", 1)):
            connection.execute(
                f"INSERT INTO mail_message ({columns}) VALUES (?, ?, ?, '', 'k@firma.example', '', '', ?, 0, '', "
                "?, ?, 0, 0, 0, ?, '2026-11-21 08:00:00.000000')",
                (n, f"Angebot {n}", f"angebot {n}", "Dach" if has_body else "", raw, len(raw), has_body),
            )
        connection.execute(
            "INSERT INTO mail_link (message_id, record_type, record_id, reason, created_at) "
            "VALUES (1, 'contact', 7, 'address', '2026-11-21 08:00:00.000000')"
        )
    upgraded = open_database(sqlite_url(path))
    with upgraded.read() as session:
        columns_now = [row[1] for row in session.execute(sa_text("PRAGMA table_info(mail_message)"))]
        assert "raw" not in columns_now and "size" in columns_now
        assert mailbox.raw_of(session, 1) == whole and mailbox.raw_of(session, 3) == b"S: x\r\n\r\nzwei"
        assert mailbox.raw_of(session, 2) is None, "a provisional message has no bytes yet"
        assert session.execute(sa_text("SELECT count(*) FROM mail_link")).scalar() == 1
        assert sorted(mail_search.search_ids(session, "angebot", UTC)) == [1, 3]
    with upgraded.write() as session:
        session.execute(sa_text("DELETE FROM mail_message WHERE id = 3"))
    with upgraded.read() as session:
        assert session.execute(sa_text("SELECT message_id FROM mail_raw")).scalars().all() == [1]
    _migrate(upgraded, "0013", down=True)  # and back: the bytes return to the message rows
    upgraded.dispose()
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT id, raw FROM mail_message ORDER BY id").fetchall() == [
            (1, whole),
            (2, b""),
        ]


def test_0015_threads_the_stored_mail_marks_automatic_mail_and_clears_free_mail_domains(
    tmp_path: Path,
) -> None:
    """A 0014 database: its messages are threaded by their headers (two customers' "Angebot" mails stay two
    threads, a reply with another subject joins its parent), a stored out-of-office reply is marked automatic,
    and an organization loses the free-mail domain a converted lead's private address gave it."""
    path = _database_at(tmp_path, "0014")
    raw_auto = (
        b"From: lea@nordwind.example\r\nAuto-Submitted: auto-replied\r\nSubject: Abwesend\r\n\r\nweg\r\n"
    )
    columns = (
        "id, message_id_header, subject, subject_key, from_name, from_address, to_addresses, cc_addresses, "
        'in_reply_to, "references", body_text, has_attachments, attachments, size, is_outgoing, is_read, '
        "is_flagged, has_body, received_at"
    )
    rows = [
        (1, "<a@x>", "Angebot", "angebot", "", "lea@nordwind.example", "anna@crm.example", "", None, None),
        (2, "<b@y>", "Angebot", "angebot", "", "paul@sued.example", "anna@crm.example", "", None, None),
        (
            3,
            "<c@crm>",
            "Termin",
            "termin",
            "",
            "anna@crm.example",
            "lea@nordwind.example",
            "",
            "<a@x>",
            "<a@x>",
        ),
        (
            4,
            "<d@n>",
            "Abwesend",
            "abwesend",
            "",
            "lea@nordwind.example",
            "anna@crm.example",
            "",
            "<c@crm>",
            None,
        ),
    ]
    with sqlite3.connect(path) as connection:
        connection.execute(
            "INSERT INTO user (id, name, email, active, created_at) VALUES (1, 'Anna', 'anna@crm.example', 1, '2026-01-01')"
        )
        for row in rows:
            connection.execute(
                f"INSERT INTO mail_message ({columns}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', 0, '', 0, 0, 0, 0, 1, "
                "'2026-01-01 00:00:00.000000')",
                row,
            )
        connection.execute("INSERT INTO mail_raw (message_id, raw) VALUES (4, ?)", (raw_auto,))
        connection.execute(
            "INSERT INTO organization (id, name, kind, search_text, created_at, updated_at) "
            "VALUES (1, 'Seeblick Autohaus', 'customer', '', '2026-01-01', '2026-01-01')"
        )
        for domain in ("example.net", "seeblick.example", "gmail.com"):
            connection.execute(
                "INSERT INTO organization_domain (organization_id, domain) VALUES (1, ?)", (domain,)
            )
    upgraded = open_database(sqlite_url(path), backup_dir=tmp_path / "backups")
    with upgraded.read() as session:
        threads = dict(session.execute(sa_text("SELECT id, thread_id FROM mail_message")).all())
        automatic = dict(session.execute(sa_text("SELECT id, is_automatic FROM mail_message")).all())
        domains = [row[0] for row in session.execute(sa_text("SELECT domain FROM organization_domain"))]
    upgraded.dispose()
    assert threads[1] == threads[3] == threads[4] != threads[2]
    assert automatic == {1: 0, 2: 0, 3: 0, 4: 1}
    assert domains == ["seeblick.example"]


def test_0018_marks_the_copies_of_merged_messages_whose_bytes_are_not_known(tmp_path: Path) -> None:
    """A 0017 database: a message with two copies (merged; which one's bytes it holds is not known) has both
    copies marked, to be fetched from the server when asked for; a message with one copy reads its bytes as
    before. No byte changes, and the way back drops only the new table."""
    from crm_tui.core.services import mailbox

    path = _database_at(tmp_path, "0017")
    columns = (
        "id, subject, subject_key, from_name, from_address, to_addresses, cc_addresses, body_text, "
        "has_attachments, attachments, size, is_outgoing, is_read, is_flagged, has_body, received_at"
    )
    raws = {
        1: b"Received: a\r\nMessage-ID: <m@x>\r\n\r\nzwei Kopien\r\n",
        2: b"Subject: eins\r\n\r\neine\r\n",
    }
    with sqlite3.connect(path) as connection:
        connection.execute(
            "INSERT INTO user (id, name, email, active, created_at) "
            "VALUES (1, 'Anna', 'anna@crm.example', 1, '2026-11-21 08:00:00.000000')"
        )
        connection.execute(
            "INSERT INTO mail_account (id, name, user_id, preset, imap_host, imap_port, imap_security, username, "
            "password_source, addresses, refresh_minutes, created_at, signature) VALUES (1, 'work', 1, 'other', "
            "'imap.example', 993, 'tls', 'anna', 'env', 'anna@crm.example', 5, '2026-11-21 08:00:00.000000', '')"
        )
        connection.execute("INSERT INTO mail_folder (id, account_id, name) VALUES (1, 1, 'INBOX')")
        for n, raw in raws.items():
            connection.execute(
                f"INSERT INTO mail_message ({columns}) VALUES (?, ?, ?, '', 'k@firma.example', '', '', '', 0, "
                "'', ?, 0, 0, 0, 1, '2026-11-21 08:00:00.000000')",
                (n, f"Angebot {n}", f"angebot {n}", len(raw)),
            )
            connection.execute("INSERT INTO mail_raw (message_id, raw) VALUES (?, ?)", (n, raw))
        for location_id, message_id, uid in ((1, 1, 10), (2, 1, 11), (3, 2, 12)):
            connection.execute(
                "INSERT INTO mail_location (id, message_id, folder_id, uidvalidity, uid, flags) "
                "VALUES (?, ?, 1, 7, ?, '')",
                (location_id, message_id, uid),
            )
    upgraded = open_database(sqlite_url(path))
    with upgraded.read() as session:
        marked = session.execute(sa_text("SELECT location_id, raw FROM mail_location_raw")).all()
        assert sorted(marked) == [(1, None), (2, None)]
        assert mailbox.copy_raw(session, 1) is None and mailbox.copy_raw(session, 2) is None, (
            "from the server"
        )
        assert mailbox.copy_raw(session, 3) == raws[2]
        assert {n: mailbox.raw_of(session, n) for n in raws} == raws
    with upgraded.write() as session:
        mailbox.keep_copy_raw(session, 1, raws[1])  # fetched: the message's own bytes, so no row is needed
        mailbox.keep_copy_raw(session, 2, b"Received: b\r\nMessage-ID: <m@x>\r\n\r\nzwei Kopien\r\n")
    with upgraded.read() as session:
        assert mailbox.copy_raw(session, 1) == raws[1]
        assert mailbox.copy_raw(session, 2) == b"Received: b\r\nMessage-ID: <m@x>\r\n\r\nzwei Kopien\r\n"
        assert session.execute(sa_text("SELECT location_id FROM mail_location_raw")).scalars().all() == [2]
    _migrate(upgraded, "0017", down=True)
    upgraded.dispose()
    with sqlite3.connect(path) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert "mail_location_raw" not in tables
        assert dict(connection.execute("SELECT message_id, raw FROM mail_raw").fetchall()) == raws


def test_0017_on_postgresql_keeps_the_outbox_its_ids_and_bytes(postgres_urls: Any, now: datetime) -> None:
    """A team's 0016 database (PostgreSQL) upgraded to the head: what was queued stays with its ids and bytes,
    each recipient's outcome and the claims can be kept, and a dropped item's id is not given again. An item
    an older crm-tui left ``sending`` names no claim: it is cut off, for the user to decide."""
    from crm_tui.core.services import outbox

    url = postgres_urls()
    old = open_database(url, migrate=False)
    _migrate(old, "0016")
    with old.engine.begin() as connection:
        connection.execute(
            sa_text(
                'INSERT INTO "user" (name, email, active, created_at) '
                "VALUES ('Anna Berg', 'anna@crm.example', true, '2026-11-01 10:00:00+00')"
            )
        )
        account_id = connection.execute(
            sa_text(
                "INSERT INTO mail_account (name, user_id, preset, imap_host, imap_port, imap_security, username, "
                "password_source, addresses, refresh_minutes, created_at, signature) VALUES ('work', "
                "(SELECT id FROM \"user\"), 'other', 'imap.example', 993, 'ssl', 'anna', 'env', "
                "'anna@crm.example', 5, '2026-11-01 10:00:00+00', '') RETURNING id"
            )
        ).scalar_one()
        ids = [
            connection.execute(
                sa_text(
                    "INSERT INTO outbox_item (account_id, message_id_header, from_address, recipients, subject, "
                    "raw, state, attempts, created_at) VALUES (:account, :mid, 'anna@crm.example', "
                    "'jana@neu.example', :subject, :raw, :state, 1, '2026-11-01 10:00:00+00') RETURNING id"
                ),
                {
                    "account": account_id,
                    "mid": f"<m{n}@crm.example>",
                    "subject": f"Mail {n}",
                    "raw": f"Subject: Mail {n}\r\n\r\nHallo \xfc".encode("latin-1"),
                    "state": state,
                },
            ).scalar_one()
            for n, state in ((1, "queued"), (2, "queued"), (3, "sending"))
        ]
    old.dispose()

    db = open_database(url)
    with db.read() as session:
        assert session.execute(sa_text("SELECT version_num FROM alembic_version")).scalar() == SCHEMA_HEAD
        rows = {r.id: r for r in outbox.rows(session, now=now)}
        assert sorted(rows) == ids
        assert [rows[i].subject for i in ids] == ["Mail 1", "Mail 2", "Mail 3"]
        assert [rows[i].needs_decision for i in ids] == [False, False, True], "left sending by an older one"
        assert rows[ids[2]].shown_state == "sending, cut off"
        for n, item_id in enumerate(ids, 1):
            item = session.get(m.OutboxItem, item_id)
            assert item is not None and item.claimed_by is None and item.claimed_at is None
            assert bytes(item.raw) == f"Subject: Mail {n}\r\n\r\nHallo \xfc".encode("latin-1")
    with db.write() as session:
        outbox.decide(session, ids[1], "drop", now=now)
        assert outbox.mark_sending(session, ids[0], now=now)
        outbox.mark_sent(session, ids[0], now=now, accepted=["jana@neu.example"])
        again = outbox.queue(
            session, account_id=account_id, message_id="<m4@crm.example>", from_address="anna@crm.example",
            recipients=["jana@neu.example"], subject="Mail 4", raw=b"Subject: Mail 4\r\n\r\nHallo", now=now,
        )  # fmt: skip
        assert again.id is not None and again.id > ids[2], "not a dropped mail's id"
    with db.read() as session:
        assert [(r.address, r.state) for r in session.scalars(select(m.OutboxRecipient))] == [
            ("jana@neu.example", "accepted")
        ]
    db.dispose()


def test_0018_on_postgresql_marks_the_copies_of_merged_messages(postgres_urls: Any) -> None:
    """A team's 0017 database (PostgreSQL) upgraded to the head: the copies of a merged message are marked
    (their bytes fetched from the server when asked for), a single copy reads its message's bytes, no byte
    changes (bytea), a copy's own bytes can be kept; the way back drops only the new table."""
    from crm_tui.core.services import mailbox

    url = postgres_urls()
    old = open_database(url, migrate=False)
    _migrate(old, "0017")
    raws = {
        1: b"Received: a\r\nMessage-ID: <m@x>\r\n\r\nzwei Kopien \xfc\x00\r\n",
        2: b"Subject: eins\r\n\r\neine\r\n",
    }
    with old.engine.begin() as connection:
        connection.execute(
            sa_text(
                'INSERT INTO "user" (id, name, email, active, created_at) '
                "VALUES (1, 'Anna', 'anna@crm.example', true, '2026-11-21 08:00:00+00')"
            )
        )
        connection.execute(
            sa_text(
                "INSERT INTO mail_account (id, name, user_id, preset, imap_host, imap_port, imap_security, "
                "username, password_source, addresses, refresh_minutes, created_at, signature) VALUES (1, 'work', "
                "1, 'other', 'imap.example', 993, 'tls', 'anna', 'env', 'anna@crm.example', 5, "
                "'2026-11-21 08:00:00+00', '')"
            )
        )
        connection.execute(sa_text("INSERT INTO mail_folder (id, account_id, name) VALUES (1, 1, 'INBOX')"))
        for n, raw in raws.items():
            connection.execute(
                sa_text(
                    "INSERT INTO mail_message (id, subject, subject_key, from_name, from_address, to_addresses, "
                    "cc_addresses, body_text, has_attachments, attachments, size, is_outgoing, is_read, "
                    "is_flagged, has_body, received_at) VALUES (:id, :subject, :key, '', 'k@firma.example', '', "
                    "'', '', false, '', :size, false, false, false, true, '2026-11-21 08:00:00+00')"
                ),
                {"id": n, "subject": f"Angebot {n}", "key": f"angebot {n}", "size": len(raw)},
            )
            connection.execute(
                sa_text("INSERT INTO mail_raw (message_id, raw) VALUES (:id, :raw)"), {"id": n, "raw": raw}
            )
        for location_id, message_id, uid in ((1, 1, 10), (2, 1, 11), (3, 2, 12)):
            connection.execute(
                sa_text(
                    "INSERT INTO mail_location (id, message_id, folder_id, uidvalidity, uid, flags) "
                    "VALUES (:id, :message, 1, 7, :uid, '')"
                ),
                {"id": location_id, "message": message_id, "uid": uid},
            )
    old.dispose()

    upgraded = open_database(url)
    with upgraded.read() as session:
        assert session.execute(sa_text("SELECT version_num FROM alembic_version")).scalar() == SCHEMA_HEAD
        marked = session.execute(sa_text("SELECT location_id, raw FROM mail_location_raw")).all()
        assert sorted(marked) == [(1, None), (2, None)]
        assert mailbox.copy_raw(session, 1) is None and mailbox.copy_raw(session, 2) is None
        assert mailbox.copy_raw(session, 3) == raws[2]
        assert {n: mailbox.raw_of(session, n) for n in raws} == raws
    other = b"Received: b\r\nMessage-ID: <m@x>\r\n\r\nzwei Kopien \xfc\x00\r\n"
    with upgraded.write() as session:
        mailbox.keep_copy_raw(session, 1, raws[1])  # the message's own bytes: no row is needed
        mailbox.keep_copy_raw(session, 2, other)
    with upgraded.read() as session:
        assert mailbox.copy_raw(session, 1) == raws[1] and mailbox.copy_raw(session, 2) == other
        assert session.execute(sa_text("SELECT location_id FROM mail_location_raw")).scalars().all() == [2]
    _migrate(upgraded, "0017", down=True)
    with upgraded.engine.connect() as connection:
        assert connection.execute(sa_text("SELECT to_regclass('mail_location_raw')")).scalar() is None
        rows = connection.execute(sa_text("SELECT message_id, raw FROM mail_raw")).all()
        assert {n: bytes(raw) for n, raw in rows} == raws
    upgraded.dispose()


def _revision(path: Path) -> str:
    connection = sqlite3.connect(path)
    try:
        return str(connection.execute("SELECT version_num FROM alembic_version").fetchone()[0])
    finally:
        connection.close()


def test_an_older_database_another_crm_tui_has_open_is_not_upgraded_under_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crm-tui started before this version was installed (the app, a sync) goes on using the old schema: the
    upgrade waits for it to close, then says so and changes nothing; once it is closed the upgrade runs. Two of
    this version starting together both open it, one of them upgrading."""
    import threading

    from crm_tui.core import db as db_module

    path = _database_at(tmp_path, "0016")
    other = open_database(sqlite_url(path), migrate=False)  # holds the database's lock, as any crm-tui does
    monkeypatch.setattr(db_module, "RESTORE_WAIT", 0.3)
    try:
        with pytest.raises(DatabaseError, match="another crm-tui .* has it open: close it"):
            open_database(sqlite_url(path))
        assert _revision(path) == "0016", "nothing changed under the running one"
    finally:
        other.dispose()
    monkeypatch.setattr(db_module, "RESTORE_WAIT", 15.0)
    opened: list[Database] = []
    failed: list[BaseException] = []

    def start() -> None:
        try:
            opened.append(open_database(sqlite_url(path)))
        except BaseException as exc:  # noqa: BLE001 - reported below
            failed.append(exc)

    starting = [threading.Thread(target=start) for _ in range(2)]
    for thread in starting:
        thread.start()
    for thread in starting:
        thread.join()
    assert not failed and len(opened) == 2
    assert _revision(path) == SCHEMA_HEAD
    for db in opened:
        db.dispose()
