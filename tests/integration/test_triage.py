"""Triage on the test Dovecot: several messages at once, undo before and after the server saw the change,
folders as they will be, and the inbox views."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import ColumnElement

from crm_tui.core import models as m
from crm_tui.core.db import Database
from crm_tui.core.services import mail_store, triage
from tests.conftest import NOW
from tests.integration.conftest import Mailbox
from tests.integration.test_sync import _ids_by_subject, message
from tests.utils.ids import id_of


def server_subjects(box: Mailbox, folder: str) -> set[str]:
    client = box.imap()
    client.select_folder(folder, readonly=True)
    uids = client.search(["ALL"])
    found = client.fetch(uids, ["BODY.PEEK[HEADER.FIELDS (SUBJECT)]"]) if uids else {}
    client.logout()
    return {
        data[b"BODY[HEADER.FIELDS (SUBJECT)]"].decode().strip().removeprefix("Subject: ")
        for data in found.values()
    }


def listed(db: Database, condition: ColumnElement[bool] | None) -> set[str]:
    with db.read() as session:
        return {row.subject for row in mail_store.list_messages(session, limit=None, where=condition)}


def test_three_messages_archived_at_once_and_undone_before_and_after_the_server_saw_it(
    mailbox: Mailbox, capsys: pytest.CaptureFixture[str]
) -> None:
    for n in range(1, 5):
        mailbox.append("INBOX", message(n, mid=f"<t{n}@firma.example>"))
    assert mailbox.cli("sync") == 0
    ids = _ids_by_subject(mailbox, capsys)
    chosen = [ids[f"Angebot {n}"] for n in (1, 2, 3)]
    db = mailbox.database()
    with db.read() as session:
        inbox_id = next(f for f, _, name, _ in triage.folders(session) if name == "INBOX")
        archive_id = next(f for f, _, name, _ in triage.folders(session) if name == "Archive")
        in_inbox = triage.folder_condition(session, inbox_id)
        in_archive = triage.folder_condition(session, archive_id)
    with db.write() as session:
        entry = triage.apply(session, chosen, "archive", now=NOW)
    assert entry.description == "3 messages archived"
    assert listed(db, in_inbox) == {"Angebot 4"} and listed(db, in_archive) == {
        "Angebot 1",
        "Angebot 2",
        "Angebot 3",
    }
    # Undo before any sync: the changes are withdrawn and never reach the server.
    with db.write() as session:
        assert triage.undo(session, entry, now=NOW) == "undone: 3 messages archived"
    assert len(listed(db, in_inbox)) == 4 and listed(db, in_archive) == set()
    assert mailbox.cli("sync") == 0
    assert len(server_subjects(mailbox, "INBOX")) == 4 and server_subjects(mailbox, "Archive") == set()
    # Again, and this time the server moves them before the undo.
    with db.write() as session:
        entry = triage.apply(session, chosen, "archive", now=NOW)
        flagged = triage.apply(session, [ids["Angebot 4"]], "flag", now=NOW)
    assert mailbox.cli("sync") == 0
    assert server_subjects(mailbox, "Archive") == {"Angebot 1", "Angebot 2", "Angebot 3"}
    with db.write() as session:
        triage.undo(session, entry, now=NOW)
        triage.undo(session, flagged, now=NOW)
        assert not session.get_one(m.MailMessage, ids["Angebot 4"]).is_flagged
    assert mailbox.cli("sync") == 0
    assert mailbox.cli("sync") == 0
    assert len(server_subjects(mailbox, "INBOX")) == 4 and server_subjects(mailbox, "Archive") == set()
    client = mailbox.imap()
    client.select_folder("INBOX", readonly=True)
    flags = [data[b"FLAGS"] for data in client.fetch(client.search(["ALL"]), ["FLAGS"]).values()]
    client.logout()
    assert not any(b"\\Flagged" in f for f in flags), "the flag was taken back on the server too"
    assert len(listed(db, in_inbox)) == 4
    assert sorted(_ids_by_subject(mailbox, capsys).values()) == sorted(ids.values()), "ids kept throughout"
    db.dispose()


def test_views_list_what_they_promise(mailbox: Mailbox, capsys: pytest.CaptureFixture[str]) -> None:
    from crm_tui.core.services import organizations

    mailbox.append("INBOX", message(1, mid="<v1@firma.example>", subject="Angebot Dach"))
    mailbox.append(
        "INBOX", message(2, mid="<v2@unknown.example>", sender="x@unknown.example", subject="Frage")
    )
    mailbox.append(
        "Sent",
        (
            b"From: Anna Berg <anna@crm.example>\r\nTo: kunde@firma.example\r\nSubject: Re: Angebot Dach 1\r\n"
            b"Date: Sat, 21 Nov 2026 09:00:00 +0100\r\nMessage-ID: <v3@crm.example>\r\n\r\nGerne.\r\n"
        ),
    )
    mailbox.append(
        "Sent",
        (
            b"From: Anna Berg <anna@crm.example>\r\nTo: y@old.example\r\nSubject: Nachfrage\r\n"
            b"Date: Mon, 02 Nov 2026 09:00:00 +0100\r\nMessage-ID: <v4@crm.example>\r\n\r\nUnd?\r\n"
        ),
    )
    db = mailbox.database()
    with db.write() as session:
        organizations.create_organization(
            session, organizations.OrganizationInput(name="Firma", domains=["firma.example"]), now=NOW
        )
    assert mailbox.cli("sync") == 0
    now = NOW + timedelta(days=1)
    assert listed(db, triage.view_condition("unlinked", now=now)) == {"Frage 2"}
    assert listed(db, triage.view_condition("awaiting", now=now)) == {"Frage 2"}, (
        "Angebot has my reply after it"
    )
    assert listed(db, triage.view_condition("no-reply", now=now)) == {"Nachfrage"}
    assert len(listed(db, triage.view_condition("all", now=now))) == 4
    # Linked to open deals: a mail filed on a deal, until the deal is won.
    from crm_tui.core.services import mail_actions, opportunities
    from crm_tui.core.types import RecordRef, RecordType
    from tests.utils import factories

    ids = _ids_by_subject(mailbox, capsys)
    with db.write() as session:
        pipe = factories.pipeline(session, "Sales")
        deal = factories.deal(session, NOW, pipe, title="Dach")
        mail_actions.file_on(
            session, [ids["Angebot Dach 1"]], RecordRef(RecordType.OPPORTUNITY, id_of(deal)), now=NOW
        )
        deal_id, pipe_id = id_of(deal), id_of(pipe)
    assert listed(db, triage.view_condition("deals", now=now)) == {"Angebot Dach 1"}
    with db.write() as session:
        from sqlmodel import select as select_

        won = session.scalars(
            select_(m.Stage).where(m.Stage.pipeline_id == pipe_id, m.Stage.kind == "won")
        ).one()
        opportunities.move_to_stage(session, deal_id, id_of(won), now=NOW, user_id=None)
    assert listed(db, triage.view_condition("deals", now=now)) == set()
    db.dispose()
