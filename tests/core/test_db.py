"""The database layer: SQLite settings, transactions that queue writers, UTC date-times."""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlmodel import select

from crm_tui.core import models as m
from crm_tui.core.db import Database, open_database, sqlite_url
from crm_tui.core.errors import DatabaseError
from tests.utils import factories


def test_sqlite_runs_in_wal_with_foreign_keys_and_busy_timeout(db: Database) -> None:
    if not db.is_sqlite:
        pytest.skip("SQLite's own settings")
    with db.read() as session:
        assert session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert session.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert session.execute(text("PRAGMA busy_timeout")).scalar() == 30_000


def test_foreign_keys_are_enforced(db: Database, now: datetime) -> None:
    with pytest.raises(DatabaseError), db.write() as session:
        session.add(m.ContactEmail(contact_id=999, address="x@example.com"))
        session.flush()


def test_a_failed_use_case_leaves_nothing_behind(db: Database, now: datetime) -> None:
    with pytest.raises(RuntimeError), db.write() as session:
        factories.contact(session, now, last_name="Ghost")
        raise RuntimeError("boom")
    with db.read() as session:
        assert len(session.exec(select(m.Contact)).all()) == 0


def test_datetimes_come_back_aware_in_utc(db: Database, now: datetime) -> None:
    berlin_time = datetime(2026, 7, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    with db.write() as session:
        person = factories.contact(session, now)
        activity = factories.activity(session, now, contact_id=person.id, start_at=berlin_time)
        activity_id = activity.id
    with db.read() as session:
        stored = session.get(m.Activity, activity_id)
        assert stored is not None
        assert stored.start_at.tzinfo is not None
        assert stored.start_at == berlin_time
        assert stored.start_at.utcoffset() == timedelta(0)
    if db.is_sqlite:
        assert db.engine.url.database is not None
        raw = sqlite3.connect(db.engine.url.database).execute("SELECT start_at FROM activity").fetchone()[0]
        assert raw.startswith("2026-07-01 12:00:00"), "stored in UTC"
    else:
        with db.read() as session:
            raw = session.execute(text("SELECT start_at AT TIME ZONE 'UTC' FROM activity")).scalar()
        assert str(raw).startswith("2026-07-01 12:00:00"), "stored as the same instant"


def test_naive_datetimes_are_refused(db: Database, now: datetime) -> None:
    with pytest.raises(Exception, match="naive"), db.write() as session:
        session.add(m.AppMeta(key="k", value="v"))
        user = factories.user(session, now)
        user.created_at = datetime(2026, 1, 1)
        session.add(user)
        session.flush()


def test_concurrent_writers_queue_instead_of_failing(db: Database, now: datetime) -> None:
    """Two use cases (two instances) that read then write at once: the second waits for the first.

    SQLite: with a deferred BEGIN both would read, then one would fail to upgrade its lock (SQLITE_BUSY at
    once, the busy timeout cannot help a deadlock). PostgreSQL: without the writers' advisory lock both would
    read the same value under READ COMMITTED and a count would be lost.
    """
    first, second = db, open_database(db.url)
    with first.write() as session:
        session.add(m.AppMeta(key="counter", value="0"))
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def increment(database: Database) -> None:
        try:
            barrier.wait()
            for _ in range(20):
                with database.write() as session:
                    row = session.get(m.AppMeta, "counter")
                    assert row is not None
                    value = int(row.value)
                    time.sleep(0.002)  # the thing under test: holding the value read while the other writes
                    row.value = str(value + 1)
                    session.add(row)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=increment, args=(d,)) for d in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with first.read() as session:
        row = session.get(m.AppMeta, "counter")
        assert row is not None and row.value == "40"
    second.dispose()


def test_readers_do_not_block_while_a_writer_holds_the_lock(db: Database, now: datetime) -> None:
    writer, reader = db, open_database(db.url)
    with writer.write() as session:
        factories.contact(session, now, last_name="Before")
        started = time.monotonic()
        with reader.read() as other:
            assert len(other.exec(select(m.Contact)).all()) == 0, "the uncommitted contact is not visible"
        assert time.monotonic() - started < 1
    reader.dispose()


def test_a_file_that_is_not_a_database_gives_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.sqlite3"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(DatabaseError, match="damaged or not a crm-tui database"):
        open_database(sqlite_url(path))


def test_a_data_folder_that_cannot_be_made_gives_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("a file where the data folder should be")
    with pytest.raises(DatabaseError, match="cannot create the database folder"):
        open_database(sqlite_url(blocker / "crm.sqlite3"))


def test_nothing_is_written_at_engine_creation_until_opened(tmp_path: Path) -> None:
    from crm_tui.core.db import make_engine

    make_engine(sqlite_url(tmp_path / "lazy.sqlite3"))
    assert not (tmp_path / "lazy.sqlite3").exists()


def test_rows_read_stay_readable_after_the_read_ends(db: Database, now: datetime) -> None:
    with db.write() as session:
        factories.contact(session, now, last_name="Readable")
    with db.read() as session:
        row = session.exec(select(m.Contact)).one()
    assert row.last_name == "Readable"


def test_a_change_watch_sees_commits_of_other_connections_once(db: Database, now: datetime) -> None:
    """What lets two app instances on one database show each other's changes: SQLite's data_version, or on
    PostgreSQL the notices the tables' triggers send at commit (never for a rolled-back transaction)."""
    from crm_tui.core.db import ChangeWatch

    watch = ChangeWatch(db)
    try:
        assert watch.changed() is False, "the first look only starts watching"
        assert watch.changed() is False
        with db.write() as session:
            factories.contact(session, now, last_name="Seen")
        assert watch.changed() is True
        assert watch.changed() is False, "one commit, one change"
        with pytest.raises(RuntimeError), db.write() as session:
            factories.contact(session, now, last_name="Rolled back")
            session.flush()
            raise RuntimeError("undo")
        assert watch.changed() is False, "nothing committed"
        with db.write() as session:  # a table a later migration made would notify too: every table does
            session.add(m.DocumentContent(sha256="0" * 64, part=0, data=b"x"))
        assert watch.changed() is True
    finally:
        watch.close()


def test_background_checkpoints_move_a_bulk_writers_log_into_the_file(tmp_path: Path) -> None:
    """The mail sync writes its bodies inside ``checkpointing``: another thread copies the log into the
    database file meanwhile, so the writer's commits need not. Shown with the writer's own checkpoints off:
    only the background thread can have moved the rows into the file."""
    db = open_database(sqlite_url(tmp_path / "crm.sqlite3"))
    path = tmp_path / "crm.sqlite3"
    before = path.stat().st_size
    blob = b"x" * 2**20
    with db.write() as session:
        session.connection().exec_driver_sql("CREATE TABLE blob_test (data BLOB)")
    with db.checkpointing(interval=0.01):
        for _ in range(6):
            with db.write() as session:
                session.connection().exec_driver_sql("PRAGMA wal_autocheckpoint = 0")
                session.connection().exec_driver_sql("INSERT INTO blob_test VALUES (?)", (blob,))
        deadline = time.monotonic() + 10
        while path.stat().st_size < before + 6 * 2**20 and time.monotonic() < deadline:
            time.sleep(0.02)  # polls the condition above (the file has grown), for up to 10 s
    assert path.stat().st_size >= before + 6 * 2**20, "the log was copied into the file while the block ran"
    assert not [t for t in threading.enumerate() if t.name == "crm-tui checkpoint"], "the thread ended"
    db.dispose()
    copy = sqlite3.connect(path)
    assert copy.execute("SELECT count(*), sum(length(data)) FROM blob_test").fetchone() == (6, 6 * 2**20)
    copy.close()


def test_checkpointing_is_a_no_op_for_a_database_in_memory() -> None:
    db = open_database("sqlite://")
    with db.checkpointing(interval=0.01), db.write() as session:
        session.connection().exec_driver_sql("CREATE TABLE t (x)")
    assert not [t for t in threading.enumerate() if t.name == "crm-tui checkpoint"]


def test_bulk_inserts_store_what_the_orm_stores(db: Database, now: datetime) -> None:
    """``core.bulk`` (the sync's batches) writes each value in the form an ORM write gives it: dates in UTC,
    booleans, None; also when a batch repeats a value (it converts a repeat once) or alternates values."""
    from crm_tui.core import bulk

    plus_one = timezone(timedelta(hours=1))
    moments = [now, now, now.astimezone(plus_one), None, now + timedelta(seconds=1, microseconds=5), now]
    flags = [True, True, False, True, False, False]
    columns = ("subject", "subject_key", "from_name", "from_address", "to_addresses", "cc_addresses",
               "body_text", "has_attachments", "attachments", "size", "is_outgoing", "is_read",
               "is_flagged", "has_body", "received_at", "sent_at")  # fmt: skip

    def values(n: int, sent: datetime | None, flag: bool) -> dict[str, Any]:
        return dict(zip(columns, (f"s{n}", f"s{n}", "", "a@b.example", "", "", "", flag, "", 1, not flag,
                                  flag, not flag, flag, now, sent), strict=True))  # fmt: skip

    with db.write() as session:
        for n, (sent, flag) in enumerate(zip(moments, flags, strict=True)):
            session.add(m.MailMessage(**values(n, sent, flag)))
        session.flush()
        table = m.MailMessage.metadata.tables["mail_message"]
        rows = [tuple(values(n, s, f).values()) for n, (s, f) in enumerate(zip(moments, flags, strict=True))]
        bulk.insert_tuples(session, table, columns, [(f"b{row[0][1:]}", *row[1:]) for row in rows])
    stored = (
        "SELECT subject, sent_at, received_at, is_read, is_flagged, is_outgoing, has_body FROM mail_message"
    )
    with db.read() as session:
        found = {row[0]: tuple(row[1:]) for row in session.execute(text(stored))}
        by_orm = {int(subject[1:]): row for subject, row in found.items() if subject.startswith("s")}
        by_bulk = {int(subject[1:]): row for subject, row in found.items() if subject.startswith("b")}
    assert len(by_orm) == len(by_bulk) == len(moments)
    assert by_bulk == by_orm, "the very stored forms, value for value"
    assert by_bulk[2][0] == by_bulk[0][0] and by_bulk[3][0] is None, (
        "one moment in any zone is one stored value"
    )
