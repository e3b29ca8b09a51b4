"""Inbox triage through the keyboard (Pilot) on the test Dovecot: tag three mails and file them at once, undo
that; archive the tagged, sync, undo, sync; a lead from an unknown sender; a follow-up; views and folders;
read, flag, move and delete; each the way a salesperson does it, in at most three keys plus typing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlmodel import SQLModel, col, select

from crm_tui.core import models as m
from crm_tui.ui.app import CrmApp
from crm_tui.ui.screens.inbox import InboxScreen, MessageReader
from crm_tui.ui.screens.pickers import FolderPicker, RecordPicker
from crm_tui.ui.screens.record_form import RecordForm
from crm_tui.ui.widgets.paged_table import PagedTable
from crm_tui.ui.widgets.status_bar import StatusBar
from tests.conftest import NOW
from tests.integration.conftest import Mailbox
from tests.integration.test_sync import message
from tests.integration.test_triage import server_subjects
from tests.ui.helpers import make_context, wait_for
from tests.utils import factories
from tests.utils.ids import id_of


def customer_mailbox(box: Mailbox) -> dict[str, int]:
    """Three mails from a customer with an open deal, one from an unknown sender; synced."""
    db = box.database()
    with db.write() as session:
        org = factories.organization(session, NOW, "Firma Nord", domains=["firma.example"])
        person = factories.contact(session, NOW, "Kunde", first_name="Karl", emails=["kunde@firma.example"])
        person.organization_id = org.id
        pipe = factories.pipeline(session, "Sales")
        deal = factories.deal(
            session, NOW, pipe, title="Dach Nord", organization_id=org.id, amount_cents=1_250_000
        )
        ids = {"org": id_of(org), "contact": id_of(person), "deal": id_of(deal)}
    db.dispose()
    for n in (1, 2, 3):
        box.append("INBOX", message(n, mid=f"<c{n}@firma.example>", subject="Angebot"))
    box.append(
        "INBOX", message(4, mid="<u4@neu.example>", sender="jana.roth@neu-solar.example", subject="Anfrage")
    )
    assert box.cli("sync") == 0
    return ids


async def run(box: Mailbox, scenario: Callable[[CrmApp, Any, PagedTable], Awaitable[None]]) -> None:
    """The inbox open on the four mails of ``customer_mailbox``, then ``scenario`` with the app, pilot and list."""
    app = CrmApp(make_context(box.home, demo=False), start_mode="inbox", sync_mail=False)
    async with app.run_test(size=(160, 48)) as pilot:
        table = app.screen.query_one(PagedTable)
        await wait_for(lambda: table.row_count == 4, pilot)
        await scenario(app, pilot, table)


def status(app: CrmApp) -> str:
    return str(app.screen.query_one(StatusBar).render())


def subject_row(table: PagedTable, subject: str) -> int:
    return next(i for i, row in enumerate(table.loaded_rows) if row.cells[3] == subject)


def links(box: Mailbox) -> set[tuple[str, str, int]]:
    db = box.database()
    with db.read() as session:
        rows = session.execute(
            select(
                m.MailMessage.subject, m.MailLink.record_type, m.MailLink.record_id, m.MailLink.reason
            ).join(m.MailLink, col(m.MailLink.message_id) == m.MailMessage.id)
        ).all()
    db.dispose()
    return {
        (subject, record_type, record_id)
        for subject, record_type, record_id, reason in rows
        if reason == "manual"
    }


async def test_three_tagged_mails_filed_on_the_suggested_deal_at_once_and_undone(mailbox: Mailbox) -> None:
    ids = customer_mailbox(mailbox)

    async def scenario(app: CrmApp, pilot: Any, table: PagedTable) -> None:
        screen = app.screen
        assert isinstance(screen, InboxScreen)
        for subject in ("Angebot 1", "Angebot 2", "Angebot 3"):
            table.move_cursor(row=subject_row(table, subject))
            await pilot.press("t")
        await wait_for(lambda: len(screen.tagged) == 3, pilot)
        await wait_for(lambda: sum(row.cells[0].startswith("*") for row in table.loaded_rows) == 3, pilot)
        # ";" then "e": the picker opens with the customer's open deal first; Enter files all three.
        await pilot.press("semicolon", "e")
        await wait_for(lambda: isinstance(app.screen, RecordPicker), pilot)
        picker = app.screen
        from textual.widgets import OptionList

        await wait_for(lambda: picker.query_one(OptionList).option_count > 0, pilot)
        first = picker.query_one(OptionList).get_option_at_index(0)
        assert first.id == f"opportunity:{ids['deal']}" and "open deal" in str(first.prompt)
        await pilot.press("enter")
        await wait_for(lambda: isinstance(app.screen, InboxScreen), pilot)
        expected = {(f"Angebot {n}", "opportunity", ids["deal"]) for n in (1, 2, 3)}
        await wait_for(lambda: links(mailbox) == expected, pilot)
        await wait_for(lambda: "3 messages filed on Dach Nord" in status(app), pilot)
        assert not screen.tagged, "tags are used up by the action"
        # u takes the filing back: the CRM side restored.
        await pilot.press("u")
        await wait_for(lambda: links(mailbox) == set(), pilot)
        await wait_for(lambda: "undone: 3 messages filed on Dach Nord" in status(app), pilot)

    await run(mailbox, scenario)


async def test_tagged_mails_archived_synced_and_undone_on_the_server_too(mailbox: Mailbox) -> None:
    customer_mailbox(mailbox)

    async def scenario(app: CrmApp, pilot: Any, table: PagedTable) -> None:
        screen = app.screen
        assert isinstance(screen, InboxScreen)
        for subject in ("Angebot 1", "Angebot 3"):
            table.move_cursor(row=subject_row(table, subject))
            await pilot.press("t")
        await pilot.press("semicolon", "a")
        await wait_for(lambda: "2 messages archived" in status(app), pilot)
        # The inbox folder (c, a few letters, Enter) no longer lists them; the Archive does.
        await pilot.press("c")
        await wait_for(lambda: isinstance(app.screen, FolderPicker), pilot)
        await pilot.press(*"work/INBOX", "enter")
        await wait_for(lambda: table.row_count == 2, pilot)
        assert {row.cells[3] for row in table.loaded_rows} == {"Angebot 2", "Anfrage 4"}
        assert mailbox.cli("sync") == 0
        assert server_subjects(mailbox, "Archive") == {"Angebot 1", "Angebot 3"}
        await pilot.press("u")
        await wait_for(lambda: table.row_count == 4, pilot)
        assert screen.undo_stack == []

    await run(mailbox, scenario)
    assert mailbox.cli("sync") == 0
    assert mailbox.cli("sync") == 0
    assert server_subjects(mailbox, "Archive") == set()
    assert len(server_subjects(mailbox, "INBOX")) == 4


async def test_a_lead_from_an_unknown_sender_and_a_follow_up_in_two_keys_each(mailbox: Mailbox) -> None:
    ids = customer_mailbox(mailbox)

    async def scenario(app: CrmApp, pilot: Any, table: PagedTable) -> None:
        table.move_cursor(row=subject_row(table, "Anfrage 4"))
        related = app.screen.query_one("#related")
        await wait_for(lambda: "unknown sender" in str(related.render()), pilot)
        await pilot.press("L")
        await wait_for(lambda: isinstance(app.screen, RecordForm), pilot)
        form = app.screen
        assert isinstance(form, RecordForm)
        assert form.values()["emails"] == "jana.roth@neu-solar.example"
        assert form.values()["person_name"] == "Kunde 4" and form.values()["company_name"] == "Neu-solar"
        await pilot.press("ctrl+s")
        await wait_for(lambda: isinstance(app.screen, InboxScreen), pilot)
        db = mailbox.database()
        with db.read() as session:
            lead = session.scalars(select(m.Lead)).one()
            assert lead.title == "Anfrage 4"
        db.dispose()
        await wait_for(lambda: ("Anfrage 4", "lead", lead.id) in links(mailbox), pilot)
        await wait_for(
            lambda: "filed on" in str(related.render()) and "Anfrage 4" in str(related.render()), pilot
        )
        # A follow-up on the customer's mail: A, then save; due tomorrow 9:00, on the deal.
        table.move_cursor(row=subject_row(table, "Angebot 2"))
        await wait_for(lambda: "Dach Nord" in str(related.render()), pilot)
        assert "12,500 EUR" in str(related.render()), "the open deal with its stage and amount"
        await pilot.press("A")
        await wait_for(lambda: isinstance(app.screen, RecordForm), pilot)
        await pilot.press("ctrl+s")
        await wait_for(lambda: isinstance(app.screen, InboxScreen), pilot)
        db = mailbox.database()
        with db.read() as session:
            task = session.scalars(select(m.Activity)).one()
            assert task.subject == "Follow up: Angebot 2" and task.type == "task"
            assert task.opportunity_id == ids["deal"] and task.status == "planned"
        db.dispose()
        # u removes the follow-up again.
        await pilot.press("u")
        await wait_for(lambda: "undone: follow-up" in status(app), pilot)

    await run(mailbox, scenario)


async def test_views_read_flag_move_delete_and_the_reader(mailbox: Mailbox) -> None:
    customer_mailbox(mailbox)

    async def scenario(app: CrmApp, pilot: Any, table: PagedTable) -> None:
        screen = app.screen
        await pilot.press("c")
        await wait_for(lambda: isinstance(app.screen, FolderPicker), pilot)
        await pilot.press(*"unlinked", "enter")
        await wait_for(lambda: table.row_count == 1, pilot)
        assert table.loaded_rows[0].cells[3] == "Anfrage 4"
        await pilot.press("c", *"all mail", "enter")
        await wait_for(lambda: table.row_count == 4, pilot)
        table.move_cursor(row=subject_row(table, "Angebot 2"))
        # Enter reads the whole mail; q goes back.
        await pilot.press("enter")
        await wait_for(lambda: isinstance(app.screen, MessageReader), pilot)
        await wait_for(lambda: "Angebot 2" in str(app.screen.query_one("#reader-text").render()), pilot)
        await pilot.press("q")
        await wait_for(lambda: app.screen is screen, pilot)
        # Opening it read it; N makes it unread, and read again.
        await pilot.press("N")
        await wait_for(lambda: "1 message marked unread" in status(app), pilot)
        await pilot.press("N")
        await wait_for(lambda: "1 message marked read" in status(app), pilot)
        await pilot.press("F")
        await wait_for(
            lambda: table.loaded_rows[subject_row(table, "Angebot 2")].cells[0].strip() == "!", pilot
        )
        await pilot.press("s")
        await wait_for(lambda: isinstance(app.screen, FolderPicker), pilot)
        await pilot.press(*"arch", "enter")
        await wait_for(lambda: "moved to Archive" in status(app), pilot)
        table.move_cursor(row=subject_row(table, "Angebot 3"))
        await pilot.press("d")
        await wait_for(lambda: "moved to the trash" in status(app), pilot)

    await run(mailbox, scenario)
    assert mailbox.cli("sync") == 0
    assert server_subjects(mailbox, "Archive") == {"Angebot 2"}
    assert server_subjects(mailbox, "Trash") == {"Angebot 3"}
    client = mailbox.imap()
    client.select_folder("Archive", readonly=True)
    flags = next(iter(client.fetch(client.search(["ALL"]), ["FLAGS"]).values()))[b"FLAGS"]
    client.logout()
    assert b"\\Seen" in flags and b"\\Flagged" in flags


async def test_a_calendar_invitation_shows_and_goes_into_the_calendar(mailbox: Mailbox) -> None:
    from datetime import UTC, datetime

    from tests.conftest import corpus_dir

    invite = corpus_dir() / "postal-mime__calendar-event.eml"
    mailbox.append("INBOX", invite.read_bytes())
    assert mailbox.cli("sync") == 0

    app = CrmApp(make_context(mailbox.home, demo=False), start_mode="inbox", sync_mail=False)
    async with app.run_test(size=(160, 48)) as pilot:
        table = app.screen.query_one(PagedTable)
        await wait_for(lambda: table.row_count == 1, pilot)
        preview = app.screen.query_one("#preview")
        await wait_for(lambda: "Invitation: Test event" in str(preview.render()), pilot)
        shown = str(preview.render())
        assert "Thu 11 Apr 2024 10:00–11:00" in shown, "in the user's zone (Berlin, summer time)"
        assert "Andris Reinman" in shown and "andris@ethereal.email" in shown
        await pilot.press("Y")
        await wait_for(lambda: "meeting on Thu 11 Apr 10:00 in the calendar" in status(app), pilot)
        db = mailbox.database()
        with db.read() as session:
            meeting = session.scalars(select(m.Activity)).one()
            assert meeting.type == "meeting" and meeting.subject == "Test event ⏰"
            assert meeting.start_at == datetime(2024, 4, 11, 8, 0, tzinfo=UTC)
            contact = session.get(m.Contact, meeting.contact_id)
            assert contact is not None and contact.name == "Andris Reinman", (
                "the sender became a contact on the way"
            )
        db.dispose()
        assert [(t, i) for _, t, i in links(mailbox)] == [("contact", contact.id)], (
            "the mail is filed on them"
        )
        await pilot.press("u")
        await wait_for(lambda: "undone: the meeting is out of the calendar" in status(app), pilot)
        db = mailbox.database()
        with db.read() as session:
            assert session.scalars(select(m.Activity)).first() is None
            assert session.scalars(select(m.Contact)).first() is None
        db.dispose()


async def test_attachments_saved_opened_on_request_and_kept_on_the_record(
    mailbox: Mailbox, tmp_path: Any, monkeypatch: Any
) -> None:
    import base64

    from textual.widgets import Input

    from crm_tui.core.services import attachments
    from crm_tui.core.types import RecordRef, RecordType
    from crm_tui.ui.screens.attachments import AttachmentsScreen
    from crm_tui.ui.screens.dialogs import PromptDialog

    ids = customer_mailbox(mailbox)
    pdf = b"%PDF-1.4 offer " + bytes(range(256)) * 20
    mailbox.append(
        "INBOX",
        (
            "From: Karl Kunde <kunde@firma.example>\r\nSubject: Angebot mit PDF\r\nMessage-ID: <pdf@firma.example>\r\n"
            'Date: Fri, 20 Nov 2026 11:00:00 +0100\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
            "Content-Type: text/plain\r\n\r\nanbei\r\n--b\r\nContent-Type: application/pdf\r\n"
            'Content-Disposition: attachment; filename="../../Angebot\x1b[31m.pdf"\r\n'
            "Content-Transfer-Encoding: base64\r\n\r\n"
            + base64.encodebytes(pdf).decode().replace("\n", "\r\n")
            + "--b--\r\n"
        ).encode(),
    )
    assert mailbox.cli("sync") == 0
    opened = tmp_path / "opened"
    opener = tmp_path / "opener.sh"
    opener.write_text(f'#!/bin/sh\ncp "$1" {opened}\n')
    opener.chmod(0o755)
    monkeypatch.setenv("CRM_TUI_OPENER", str(opener))
    folder = tmp_path / "saved"

    app = CrmApp(make_context(mailbox.home, demo=False), start_mode="inbox", sync_mail=False)
    async with app.run_test(size=(160, 48)) as pilot:
        table = app.screen.query_one(PagedTable)
        await wait_for(lambda: table.row_count == 5, pilot)
        table.move_cursor(row=subject_row(table, "Angebot mit PDF"))
        await pilot.press("v")
        await wait_for(lambda: isinstance(app.screen, AttachmentsScreen), pilot)
        listing = str(app.screen.query_one("#attachment-list").render())
        assert "\x1b" not in listing
        await pilot.press("s")
        await wait_for(lambda: isinstance(app.screen, PromptDialog), pilot)
        app.screen.query_one(Input).value = str(folder)
        await pilot.press("enter")
        await wait_for(lambda: isinstance(app.screen, AttachmentsScreen) and list(folder.glob("*")), pilot)
        saved = list(folder.iterdir())
        assert [p.read_bytes() for p in saved] == [pdf]
        assert saved[0].name == "Angebot␛[31m.pdf", "no folders from the name, controls shown as placeholders"
        await pilot.press("o")
        await wait_for(lambda: opened.exists(), pilot)
        assert opened.read_bytes() == pdf
        await pilot.press("r")  # filed on the contact and its organization by address: pick the contact
        await wait_for(lambda: app.screen.__class__.__name__ == "ChoiceDialog", pilot)
        await pilot.press("enter")
        db = mailbox.database()

        def kept() -> list[Any]:
            with db.read() as session:
                return [
                    d.filename
                    for ref_type in (RecordType.CONTACT, RecordType.ORGANIZATION)
                    for d in attachments.documents_on(
                        session,
                        RecordRef(ref_type, ids["contact" if ref_type is RecordType.CONTACT else "org"]),
                    )
                ]

        await wait_for(lambda: kept() == ["Angebot␛[31m.pdf"], pilot)
        db.dispose()


async def test_threads_collapse_to_one_row_and_an_action_takes_the_whole_thread(mailbox: Mailbox) -> None:
    customer_mailbox(mailbox)
    for n, subject in enumerate(("Dachziegel", "Re: Dachziegel", "AW: Re: Dachziegel"), start=10):
        raw = message(n, mid=f"<d{n}@firma.example>", subject=subject).replace(
            f"{subject} {n}".encode(), subject.encode()
        )
        mailbox.append("INBOX", raw)
    assert mailbox.cli("sync") == 0

    app = CrmApp(make_context(mailbox.home, demo=False), start_mode="inbox", sync_mail=False)
    async with app.run_test(size=(160, 48)) as pilot:
        table = app.screen.query_one(PagedTable)
        await wait_for(lambda: table.row_count == 7, pilot)
        await pilot.press("V")
        await wait_for(lambda: table.row_count == 5, pilot)
        subjects = [row.cells[3] for row in table.loaded_rows]
        thread = next(s for s in subjects if "Dachziegel" in s)
        assert thread.startswith("(3) "), subjects
        table.move_cursor(row=subjects.index(thread))
        await pilot.press("a")
        await wait_for(lambda: "3 messages archived" in status(app), pilot)
        await wait_for(lambda: table.row_count == 5, pilot)  # archived mail stays in "All mail"
        await pilot.press("V")
        await wait_for(lambda: table.row_count == 7, pilot)
    assert mailbox.cli("sync") == 0
    assert len(server_subjects(mailbox, "Archive")) == 3


async def test_contact_organization_ticket_unlink_and_comment_from_a_mail(mailbox: Mailbox) -> None:
    from crm_tui.core.services import attachments
    from crm_tui.core.types import RecordRef, RecordType
    from crm_tui.ui.screens.dialogs import ChoiceDialog, PromptDialog

    ids = customer_mailbox(mailbox)

    def count(model: Any) -> int:
        db = mailbox.database()
        with db.read() as session:
            n = len(session.scalars(select(model)).all())
        db.dispose()
        return n

    async def one_more(model: type[SQLModel], before: int, pilot: Any) -> None:
        await wait_for(lambda: count(model) == before + 1, pilot)

    made: list[tuple[str, type[SQLModel], Callable[[dict[str, str]], bool]]] = [
        (
            "C",
            m.Contact,
            lambda v: v["emails"] == "jana.roth@neu-solar.example" and v["first_name"] == "Kunde",
        ),
        ("O", m.Organization, lambda v: v["name"] == "Neu-solar" and v["domains"] == "neu-solar.example"),
        ("I", m.Ticket, lambda v: v["subject"] == "Anfrage 4"),
    ]

    async def scenario(app: CrmApp, pilot: Any, table: PagedTable) -> None:
        # j and k move through the list.
        start = table.cursor_row
        await pilot.press("j")
        await wait_for(lambda: table.cursor_row == start + 1, pilot)
        await pilot.press("k")
        await wait_for(lambda: table.cursor_row == start, pilot)
        table.move_cursor(row=subject_row(table, "Anfrage 4"))
        for key, model, check in made:
            before = count(model)
            await pilot.press(key)
            await wait_for(lambda: isinstance(app.screen, RecordForm), pilot)
            form = app.screen
            assert isinstance(form, RecordForm)
            assert check(form.values()), (key, form.values())
            await pilot.press("ctrl+s")
            await wait_for(lambda: isinstance(app.screen, InboxScreen), pilot)
            await one_more(model, before, pilot)
        filed = {(t, i) for s, t, i in links(mailbox) if s == "Anfrage 4"}
        assert {t for t, _ in filed} == {"contact", "organization", "ticket"}
        # n: a comment on the record the mail is filed on (the first of them).
        await pilot.press("n")
        await wait_for(lambda: isinstance(app.screen, PromptDialog), pilot)
        await pilot.press(*"Ruft morgen an", "ctrl+s")
        await wait_for(lambda: isinstance(app.screen, InboxScreen), pilot)
        db = mailbox.database()
        with db.read() as session:
            comments = session.scalars(select(m.Comment)).all()
            assert [c.body for c in comments] == ["Ruft morgen an"]
        db.dispose()
        # x: take the mail off one record; linking remembers that.
        await pilot.press("x")
        await wait_for(lambda: isinstance(app.screen, ChoiceDialog), pilot)
        await pilot.press("enter")
        await wait_for(lambda: len({(t, i) for s, t, i in links(mailbox) if s == "Anfrage 4"}) == 2, pilot)
        db = mailbox.database()
        with db.read() as session:
            assert session.scalars(select(m.MailUnlink)).first() is not None
            assert attachments.comments_on(session, RecordRef(RecordType.ORGANIZATION, ids["org"])) == []
        db.dispose()

    await run(mailbox, scenario)


async def test_the_no_reply_view_uses_the_days_from_the_settings(mailbox: Mailbox) -> None:
    (mailbox.home / "config").mkdir(parents=True, exist_ok=True)
    from crm_tui.runtime.paths import resolve_paths

    config = resolve_paths(mailbox.home).config_file
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("no_reply_days = 20\n")
    mailbox.append(
        "Sent",
        b"From: Anna Berg <anna@crm.example>\r\nTo: y@old.example\r\nSubject: Nachfrage\r\n"
        b"Date: Mon, 09 Nov 2026 09:00:00 +0100\r\nMessage-ID: <n1@crm.example>\r\n\r\nUnd?\r\n",
    )
    assert mailbox.cli("sync") == 0

    app = CrmApp(make_context(mailbox.home, demo=False), start_mode="inbox", sync_mail=False)
    async with app.run_test(size=(160, 48)) as pilot:
        table = app.screen.query_one(PagedTable)
        await wait_for(lambda: table.row_count == 1, pilot)
        await pilot.press("c", *"no reply", "enter")
        await wait_for(lambda: "No reply to me for 20 days" in status(app), pilot)
        assert table.row_count == 0, "13 days without an answer is not 20"
