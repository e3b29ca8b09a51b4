"""Body batches stay bounded in bytes, not only in count: a mailbox of huge attachments cannot exhaust memory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import col, select

from crm_tui.core.db import Database
from crm_tui.core.services.mailbox import PendingBody
from crm_tui.mail.sync.batches import BATCH_BYTES, BODY_BATCH, batches_by_size
from tests.utils import factories


def test_batches_are_bounded_by_count_and_by_bytes() -> None:
    small = [PendingBody(i, i, 1, "INBOX", 7, i, 10_000) for i in range(BODY_BATCH * 2 + 5)]
    huge = [PendingBody(9000 + i, 9000 + i, 1, "INBOX", 7, 9000 + i, BATCH_BYTES + 1) for i in range(3)]
    batches = batches_by_size(small + huge)
    assert [len(b) for b in batches] == [BODY_BATCH, BODY_BATCH, 5, 1, 1, 1]
    assert all(sum(i.size for i in b) <= BATCH_BYTES for b in batches if len(b) > 1)
    assert [i.uid for b in batches for i in b] == [i.uid for i in small + huge], "order and completeness kept"


def test_a_body_whose_headers_read_differently_from_the_header_pass_rewrites_them(
    db: Database, now: datetime
) -> None:
    """The body batch leaves the header columns alone when they hold the body's values already (they were
    written with the headers); where one message's body reads differently (the server's header block and
    the message disagree, say), the body's values are stored, and search finds it by them."""
    from crm_tui.core import models as m
    from crm_tui.core.mail_data import header_values
    from crm_tui.core.services import mail_search, mailbox
    from crm_tui.mail.parse import parse_header_block, parse_safely

    def message(n: int, subject: str) -> bytes:
        return (
            f"From: Kunde {n} <k{n}@firma.example>\r\nTo: anna@crm.example\r\nSubject: {subject}\r\n"
            f"Date: Fri, 20 Nov 2026 09:{n:02d}:00 +0100\r\nMessage-ID: <m{n}@firma.example>\r\n\r\n"
            f"Inhalt {n}\r\n"
        ).encode()

    with db.write() as session:
        folder = factories.mail_inbox(session, now)
        account_id = folder.account_id
        rows = []
        for n in range(1, 6):
            header = message(n, "Angebot" if n != 3 else "Vorschau").split(b"\r\n\r\n")[0] + b"\r\n\r\n"
            rows.append(mailbox.HeaderRow(n, [], None, header_values(parse_header_block(header)), 200))
        mailbox.store_headers(session, folder, 1, rows, now=now)
    with db.read() as session:
        pending = mailbox.pending_bodies(session, account_id)
    with db.write() as session:
        bodies = [(p.location_id, parse_safely(message(p.uid, "Angebot"))) for p in pending]
        mailbox.store_bodies(session, bodies, now=now)
    with db.read() as session:
        stored = session.exec(select(m.MailMessage).order_by(col(m.MailMessage.id))).all()
        assert [s.subject for s in stored] == ["Angebot"] * 5, "the third took its body's subject"
        assert [s.subject_key for s in stored] == ["angebot"] * 5
        assert all(s.has_body and s.body_text.startswith("Inhalt") for s in stored)
        assert all(s.sent_at is not None and s.sent_at.minute == i for i, s in enumerate(stored, 1))
        assert len(mail_search.search_ids(session, "subject:angebot", UTC)) == 5
        assert mail_search.search_ids(session, "vorschau", UTC) == []


def test_a_sync_longer_than_the_lock_lease_keeps_its_lock(db: Database, now: datetime) -> None:
    """The lock is renewed with the batches' writes, often enough that a second sync is refused however long
    the first one runs, and not on every batch (that was a write of its own each time)."""
    import pytest

    from crm_tui.core import models as m
    from crm_tui.core.clock import FixedClock
    from crm_tui.core.services import mailbox
    from crm_tui.mail.sync import AccountSync

    clock = FixedClock(now)
    with db.write() as session:
        account_id = factories.mail_inbox(session, now).account_id
        account = session.get(m.MailAccount, account_id)
        assert account is not None
        name = account.name
    sync = AccountSync(db, name, clock=clock, password="unused")
    sync._take_lock()

    def renewed_at() -> datetime:
        with db.read() as session:
            lock = session.get(m.MailSyncLock, account_id)
            assert lock is not None
            return lock.renewed_at

    clock.advance(seconds=5)
    with db.write() as session:
        sync._renew(session)
    assert renewed_at() == now, "a batch 5 s in does not rewrite the lock"
    for _ in range(12):  # a batch every 25 s: five minutes, more than twice the lease
        clock.advance(seconds=25)
        with db.write() as session:
            sync._renew(session)
        with pytest.raises(mailbox.SyncBusy, match="already running"), db.write() as session:
            mailbox.acquire_lock(session, account_id, "elsewhere:1", now=clock.now())
    assert clock.now() - renewed_at() < mailbox.LOCK_RENEWAL + timedelta(seconds=25)


def test_the_helpers_raw_writes_complete_what_the_body_store_finishes(tmp_path: Path, now: datetime) -> None:
    """The sync's helpers write a batch's bytes into ``mail_raw`` themselves (SQLite); the body store then
    completes those messages without the bytes. A write never replaces a whole message's bytes nor makes
    bytes for a message that is gone, and a database restored at the same path gets the next writes."""
    import shutil
    import sqlite3

    from crm_tui.core import models as m
    from crm_tui.core.db import open_database, sqlite_url
    from crm_tui.core.mail_data import header_values
    from crm_tui.core.services import mailbox
    from crm_tui.mail.parse import parse_header_block, parse_safely
    from crm_tui.mail.store import raw_writer

    path = tmp_path / "crm.sqlite3"
    db = open_database(sqlite_url(path))
    raws = {
        n: f"Subject: Nachricht {n}\r\nMessage-ID: <r{n}@x>\r\n\r\nInhalt {n}\r\n".encode() for n in (1, 2)
    }
    with db.write() as session:
        folder = factories.mail_inbox(session, now)
        rows = [
            mailbox.HeaderRow(n, [], None, header_values(parse_header_block(raw.split(b"\r\n\r\n")[0])), 0)
            for n, raw in raws.items()
        ]
        mailbox.store_headers(session, folder, 1, rows, now=now)
        pending = mailbox.pending_bodies(session, folder.account_id)
    first, second = pending
    raw_writer.store(str(path), [(first.message_id, raws[1]), (999, b"no such message")])
    data = parse_safely(raws[1])
    data.raw, data.size = b"", len(raws[1])
    with db.write() as session:
        mailbox.store_bodies(session, [(first.location_id, data)], now=now)
    raw_writer.store(str(path), [(first.message_id, b"a second write")])  # whole by now: left alone
    with db.read() as session:
        assert mailbox.raw_of(session, first.message_id) == raws[1]
        message = session.get(m.MailMessage, first.message_id)
        assert message is not None and message.size == len(raws[1])
        assert mailbox.raw_of(session, 999) is None
    db.dispose()
    # A restore moves the database (with its log) aside and puts another file at the path: the next write
    # goes there, not into the file set aside.
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copy(path, tmp_path / "restored.sqlite3")
    (tmp_path / "aside").mkdir()
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{path}{suffix}").exists():
            shutil.move(f"{path}{suffix}", tmp_path / "aside")
    (tmp_path / "restored.sqlite3").replace(path)
    raw_writer.store(str(path), [(second.message_id, raws[2])])
    raw_writer.close_all()
    db = open_database(sqlite_url(path))
    with db.read() as session:
        assert mailbox.raw_of(session, second.message_id) == raws[2]
    db.dispose()
