"""The outbox against a real SMTP server (aiosmtpd on 127.0.0.1) and the test Dovecot: delivered once, the
plain text byte for byte, a copy in Sent; refusals for a while and for good; a connection dropped before DATA;
the sending process killed with SIGKILL after it marked the item sending (before DATA: uncertain, never sent
twice) and after the server took the mail (found in Sent: sent)."""

from __future__ import annotations

import email
import email.policy
import json
import subprocess
import sys
from datetime import timedelta
from typing import Any

import pytest

from crm_tui.cli.main import main
from crm_tui.core.services import mail_accounts, outbox
from crm_tui.mail import compose
from tests.conftest import NOW
from tests.integration.conftest import ON_BOTH, Mailbox
from tests.integration.smtp import SmtpServer
from tests.integration.test_triage import server_subjects
from tests.utils.ids import id_of

BODY = "Guten Tag Frau Roth,\n\nanbei <unser> Angebot & die Preise:\n  1. Dach   12.500 EUR\n\nViele Grüße\nAnna\n"


def queue_mail(
    box: Mailbox, *, to: str = "Jana Roth <jana.roth@neu-solar.example>", subject: str = "Angebot"
) -> tuple[int, bytes]:
    raw, message_id, recipients = compose.build(
        compose.Draft("Anna Berg", "anna@crm.example", to=compose.addresses(to), subject=subject, body=BODY),
        now=NOW,
    )
    db = box.database()
    with db.write() as session:
        account = mail_accounts.get_account(session, "work")
        item = outbox.queue(
            session,
            account_id=id_of(account),
            message_id=message_id,
            from_address="anna@crm.example",
            recipients=recipients,
            subject=subject,
            raw=raw,
            now=NOW,
        )
        item_id = id_of(item)
    db.dispose()
    return item_id, raw


def flush_at(box: Mailbox, minutes: int = 0) -> int:
    return main([*box.where(), "--now", (NOW + timedelta(minutes=minutes)).isoformat(), "outbox", "flush"])


def states(box: Mailbox, capsys: pytest.CaptureFixture[str]) -> dict[int, tuple[str, str | None]]:
    capsys.readouterr()
    assert box.cli("outbox", "list", "--json") == 0
    return {item["id"]: (item["state"], item["error"]) for item in json.loads(capsys.readouterr().out)}


@ON_BOTH
def test_a_mail_goes_out_once_as_plain_text_and_lands_in_sent(
    mailbox: Mailbox, smtp: SmtpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    item_id, raw = queue_mail(mailbox)
    assert states(mailbox, capsys)[item_id][0] == "queued"
    assert flush_at(mailbox) == 0
    assert "1 sent" in capsys.readouterr().out
    assert len(smtp.received) == 1
    sender, recipients, delivered = smtp.received[0]
    assert (sender, recipients) == ("anna@crm.example", ["jana.roth@neu-solar.example"])
    assert delivered.replace(b"\r\n", b"\n") == raw.replace(b"\r\n", b"\n"), "the bytes as built"
    message = email.message_from_bytes(delivered, policy=email.policy.default)
    assert message.get_content_type() == "text/plain"
    assert message.get_content().replace("\r\n", "\n") == BODY, (
        "plain text stays plain: no <br>, nothing escaped"
    )
    assert server_subjects(mailbox, "Sent") == {"Angebot"}
    assert states(mailbox, capsys)[item_id] == ("sent", None)
    assert flush_at(mailbox, 5) == 0 and len(smtp.received) == 1, "nothing goes out twice"


def test_refused_for_a_while_then_sent_and_refused_for_good_is_failed(
    mailbox: Mailbox, smtp: SmtpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    later, _ = queue_mail(mailbox, subject="Später")
    smtp.behaviour.refuse_rcpt = ["451 4.7.1 greylisted, try again later"]
    assert flush_at(mailbox) == 1
    state, error = states(mailbox, capsys)[later]
    assert state == "queued" and "451" in (error or "") and "greylisted" in (error or "")
    # Not before its retry time; it has not gone out, and the exit status says so (issue 21).
    assert flush_at(mailbox, 0) == 1 and not smtp.received, "not before its retry time"
    assert flush_at(mailbox, 2) == 0
    assert len(smtp.received) == 1 and states(mailbox, capsys)[later][0] == "sent"
    never, _ = queue_mail(mailbox, to="nobody@neu-solar.example", subject="Nie")
    smtp.behaviour.refuse_rcpt = ["550 5.1.1 no such user"]
    assert flush_at(mailbox, 3) == 1
    state, error = states(mailbox, capsys)[never]
    assert state == "failed" and "550 5.1.1 no such user" in (error or "")
    assert flush_at(mailbox, 100) == 0 and len(smtp.received) == 1, "a failed mail stays failed"


def test_a_connection_dropped_before_data_keeps_the_mail_queued(
    mailbox: Mailbox, smtp: SmtpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    item_id, _ = queue_mail(mailbox)
    smtp.behaviour.drop_at_rcpt = 1
    assert flush_at(mailbox) == 1
    assert states(mailbox, capsys)[item_id][0] == "queued" and not smtp.received
    assert flush_at(mailbox, 2) == 0
    assert len(smtp.received) == 1 and states(mailbox, capsys)[item_id][0] == "sent"


def flush_in_a_process(box: Mailbox) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "crm_tui",
            *box.where(),
            "--now",
            NOW.isoformat(),
            "outbox",
            "flush",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@ON_BOTH
def test_killed_after_marking_sending_before_data_is_uncertain_and_never_sent_twice(
    mailbox: Mailbox, smtp: SmtpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    item_id, _ = queue_mail(mailbox)
    process = flush_in_a_process(mailbox)
    smtp.behaviour.kill_pid, smtp.behaviour.kill_at = process.pid, "rcpt"
    assert process.wait(timeout=60) == -9
    assert states(mailbox, capsys)[item_id][0] == "sending", "marked before DATA, then killed"
    assert flush_at(mailbox, 1) == 1
    state, error = states(mailbox, capsys)[item_id]
    assert state == "uncertain" and "not in Sent" in (error or "")
    assert not smtp.received, "an uncertain mail is not sent again by itself"
    assert flush_at(mailbox, 10) == 0 and not smtp.received
    capsys.readouterr()
    assert mailbox.cli("outbox", "decide", str(item_id), "resend") == 0
    assert flush_at(mailbox, 11) == 0
    assert len(smtp.received) == 1 and states(mailbox, capsys)[item_id][0] == "sent"


def test_killed_after_the_server_took_it_is_found_in_sent(
    mailbox: Mailbox, smtp: SmtpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    item_id, _ = queue_mail(mailbox)

    def provider_files_it(raw: bytes) -> None:
        client = mailbox.imap()
        client.append("Sent", raw, flags=[b"\\Seen"])
        client.logout()

    process = flush_in_a_process(mailbox)
    smtp.behaviour.kill_pid, smtp.behaviour.kill_at, smtp.behaviour.file_in = (
        process.pid,
        "data",
        provider_files_it,
    )
    assert process.wait(timeout=60) == -9
    assert states(mailbox, capsys)[item_id][0] == "sending"
    assert flush_at(mailbox, 1) == 0
    assert "1 found in Sent" in capsys.readouterr().out
    assert states(mailbox, capsys)[item_id][0] == "sent"
    assert len(smtp.received) == 1, "delivered exactly once"


async def test_reply_reply_all_forward_and_a_new_mail_from_the_inbox(
    mailbox: Mailbox, smtp: SmtpServer, capsys: pytest.CaptureFixture[str]
) -> None:

    from textual.widgets import Input, TextArea

    from crm_tui.ui.app import CrmApp
    from crm_tui.ui.screens.compose import ComposeScreen
    from crm_tui.ui.widgets.paged_table import PagedTable
    from tests.ui.helpers import make_context, wait_for
    from tests.utils import factories

    original = (
        b"From: Jana Roth <jana.roth@neu-solar.example>\r\nTo: Anna Berg <anna@crm.example>, "
        b"Bernd Bau <bernd@bau.example>\r\nCc: Carla <carla@neu-solar.example>\r\nSubject: Anfrage Dach\r\n"
        b"Message-ID: <orig@neu-solar.example>\r\nReferences: <first@neu-solar.example>\r\n"
        b'Date: Fri, 20 Nov 2026 10:00:00 +0100\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
        b"Content-Type: text/plain; charset=utf-8\r\n\r\nWas kostet ein Dach?\r\n--b\r\nContent-Type: application/pdf\r\n"
        b'Content-Disposition: attachment; filename="plan.pdf"\r\n\r\n%PDF-plan\r\n--b--\r\n'
    )
    mailbox.append("INBOX", original)
    assert mailbox.cli("sync") == 0
    db = mailbox.database()
    with db.write() as session:
        factories.contact(session, NOW, "Lang", first_name="Lisa", emails=["lisa.lang@kunde.example"])
    db.dispose()

    app = CrmApp(make_context(mailbox.home, demo=False), start_mode="inbox", sync_mail=False)
    async with app.run_test(size=(160, 48)) as pilot:
        table = app.screen.query_one(PagedTable)
        await wait_for(lambda: table.row_count == 1, pilot)
        inbox = app.screen
        # r: to the sender, quoted, threaded; typed at the top; ctrl+s, y.
        await pilot.press("r")
        await wait_for(lambda: isinstance(app.screen, ComposeScreen), pilot)
        screen = app.screen
        assert screen.query_one("#c-to", Input).value == "Jana Roth <jana.roth@neu-solar.example>"
        assert screen.query_one("#c-subject", Input).value == "Re: Anfrage Dach"
        assert "> Was kostet ein Dach?" in screen.query_one("#c-body", TextArea).text
        await pilot.press(*"Gerne, 12.500 EUR.")
        await pilot.press("ctrl+s")  # every recipient an address: queued without asking
        await wait_for(lambda: app.screen is inbox, pilot)
        await wait_for(lambda: len(smtp.received) == 1, pilot, timeout=20)
        # g: everyone but me; f: with the attachment; m: a new mail, the address completed from the CRM.
        await pilot.press("g")
        await wait_for(lambda: isinstance(app.screen, ComposeScreen), pilot)
        cc = app.screen.query_one("#c-cc", Input).value
        assert "bernd@bau.example" in cc and "carla@neu-solar.example" in cc and "anna@crm.example" not in cc
        await pilot.press("escape")
        await wait_for(lambda: app.screen is inbox, pilot)
        await pilot.press("f")
        await wait_for(lambda: isinstance(app.screen, ComposeScreen), pilot)
        forward = app.screen
        assert isinstance(forward, ComposeScreen)
        assert [name for name, _, _ in forward.attachments] == ["plan.pdf"]
        assert forward.query_one("#c-subject", Input).value == "Fwd: Anfrage Dach"
        await pilot.press("escape")
        await wait_for(lambda: app.screen is inbox, pilot)
        await pilot.press("m")
        await wait_for(lambda: isinstance(app.screen, ComposeScreen), pilot)
        await pilot.press(*"Lisa", "right")
        to = app.screen.query_one("#c-to", Input)
        await wait_for(lambda: to.value == "Lisa Lang <lisa.lang@kunde.example>", pilot)
        app.screen.query_one("#c-subject", Input).value = "Termin"
        app.screen.query_one("#c-body", TextArea).text = "Passt Montag?"
        await pilot.press("ctrl+s")  # every recipient an address: queued without asking
        await wait_for(lambda: len(smtp.received) == 2, pilot, timeout=20)
    reply = email.message_from_bytes(smtp.received[0][2], policy=email.policy.default)
    assert reply["In-Reply-To"] == "<orig@neu-solar.example>"
    assert reply["References"] == "<first@neu-solar.example> <orig@neu-solar.example>"
    assert reply.get_content().startswith("Gerne, 12.500 EUR.")
    assert smtp.received[1][1] == ["lisa.lang@kunde.example"]
    assert server_subjects(mailbox, "Sent") == {"Re: Anfrage Dach", "Termin"}


async def test_a_mail_from_a_contact_becomes_an_email_activity_when_sent_and_the_outbox_view_decides(
    mailbox: Mailbox, smtp: SmtpServer
) -> None:

    from sqlmodel import select
    from textual.widgets import DataTable, Input, TextArea

    from crm_tui.core import models as m
    from crm_tui.ui.app import CrmApp
    from crm_tui.ui.screens.compose import ComposeScreen
    from crm_tui.ui.screens.dialogs import ChoiceDialog, ConfirmDialog
    from crm_tui.ui.screens.outbox import OutboxScreen
    from crm_tui.ui.widgets.paged_table import PagedTable
    from tests.ui.helpers import make_context, wait_for
    from tests.utils import factories

    db = mailbox.database()
    with db.write() as session:
        person = factories.contact(
            session, NOW, "Lang", first_name="Lisa", emails=["lisa@kunde.example", "l.lang@privat.example"]
        )
        contact_id = person.id
    db.dispose()
    _, _ = queue_mail(mailbox, to="nobody@neu-solar.example", subject="Wird abgelehnt")
    smtp.behaviour.refuse_rcpt = ["550 5.1.1 no such user"]

    def activities() -> list[tuple[str, str, int | None]]:
        db = mailbox.database()
        with db.read() as session:
            rows = [(a.type, a.status, a.contact_id) for a in session.scalars(select(m.Activity))]
        db.dispose()
        return rows

    app = CrmApp(make_context(mailbox.home, demo=False), start_mode="contacts", sync_mail=False)
    async with app.run_test(size=(160, 48)) as pilot:
        table = app.screen.query_one(PagedTable)
        await wait_for(lambda: table.row_count == 1, pilot)
        await pilot.press("m")
        await wait_for(lambda: isinstance(app.screen, ChoiceDialog), pilot)  # two addresses: which one
        await pilot.press("enter")
        await wait_for(lambda: isinstance(app.screen, ComposeScreen), pilot)
        assert app.screen.query_one("#c-to", Input).value == "Lisa Lang <lisa@kunde.example>"
        app.screen.query_one("#c-subject", Input).value = "Ihr Angebot"
        app.screen.query_one("#c-body", TextArea).text = "Anbei."
        await pilot.press("ctrl+s")  # every recipient an address: queued without asking
        await wait_for(lambda: any(r[1] == ["lisa@kunde.example"] for r in smtp.received), pilot, timeout=20)
        await wait_for(lambda: activities() == [("email", "done", contact_id)], pilot)
        # The outbox view: the refused mail with the server's words; S counts it as sent, D drops.
        await pilot.press("1")
        await pilot.press("o")
        await wait_for(lambda: isinstance(app.screen, OutboxScreen), pilot)
        view = app.screen
        assert isinstance(view, OutboxScreen)
        grid = view.query_one(DataTable)
        await wait_for(lambda: grid.row_count == 2, pilot)
        failed = next(i for i, row in enumerate(view.rows) if row.state == "failed")
        grid.move_cursor(row=failed)
        await wait_for(
            lambda: "550 5.1.1 no such user" in str(view.query_one("#outbox-error").render()), pilot
        )
        await pilot.press("D")  # asked first: y drops
        await wait_for(lambda: isinstance(app.screen, ConfirmDialog), pilot)
        await pilot.press("y")
        await wait_for(lambda: grid.row_count == 1 and view.rows[0].state == "sent", pilot)


async def test_a_template_fills_a_mail_to_a_lead_and_names_what_it_cannot_fill(
    mailbox: Mailbox, smtp: SmtpServer
) -> None:

    from textual.widgets import Input, OptionList, TextArea

    from crm_tui.ui.app import CrmApp
    from crm_tui.ui.screens.compose import ComposeScreen
    from crm_tui.ui.screens.contacts import ContactsScreen
    from crm_tui.ui.screens.template_picker import TemplatePicker
    from crm_tui.ui.widgets.paged_table import PagedTable
    from tests.ui.helpers import make_context, wait_for
    from tests.utils import factories

    db = mailbox.database()
    with db.write() as session:
        factories.lead(
            session, NOW, title="Wärmepumpe Altbau", person_name="Jana Roth", emails=["jana@neu.example"]
        )
    db.dispose()

    app = CrmApp(make_context(mailbox.home, demo=False), start_mode="contacts", sync_mail=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("right_square_bracket", "right_square_bracket")  # contacts, organizations, leads
        await wait_for(
            lambda: isinstance(app.screen, ContactsScreen) and app.screen.kind.singular == "lead", pilot
        )
        table = app.screen.query_one(PagedTable)
        await wait_for(lambda: table.row_count == 1, pilot)
        await pilot.press("m")
        await wait_for(lambda: isinstance(app.screen, ComposeScreen), pilot)
        compose_screen = app.screen
        await pilot.press("ctrl+t")
        await wait_for(lambda: isinstance(app.screen, TemplatePicker), pilot)
        picker = app.screen
        assert isinstance(picker, TemplatePicker)
        options = picker.query_one(OptionList)
        listed = {str(options.get_option_at_index(i).prompt): fit.fits for i, fit in enumerate(picker.shown)}
        # About a deal: this mail has none, so it is listed greyed with the reason and cannot be taken.
        assert listed["Termin bestätigen — needs a deal"] is False
        assert compose_screen.query_one("#c-subject", Input).value == "", "nothing filled in"
        await pilot.press(*"anfrage", "enter")
        await wait_for(lambda: app.screen is compose_screen, pilot)
        assert compose_screen.query_one("#c-subject", Input).value == "Ihre Anfrage: Wärmepumpe Altbau"
        assert compose_screen.query_one("#c-body", TextArea).text.startswith("Guten Tag Jana Roth,")
        await pilot.press("ctrl+s")  # every recipient an address: queued without asking
        await wait_for(lambda: len(smtp.received) == 1, pilot, timeout=20)
    sent = email.message_from_bytes(smtp.received[0][2], policy=email.policy.default)
    assert sent["Subject"] == "Ihre Anfrage: Wärmepumpe Altbau"
    assert sent.get_content().replace("\r\n", "\n").startswith("Guten Tag Jana Roth,\n\nvielen Dank")


async def test_a_meeting_sends_its_attendees_an_invitation(mailbox: Mailbox, smtp: SmtpServer) -> None:
    from datetime import UTC, timedelta

    from textual.widgets import Input

    from crm_tui.core.services import activities
    from crm_tui.mail.invites import find_invitation
    from crm_tui.ui.app import CrmApp
    from crm_tui.ui.screens.calendar import CalendarScreen
    from crm_tui.ui.screens.compose import ComposeScreen
    from tests.ui.helpers import ZONE, make_context, wait_for
    from tests.utils import factories

    start = NOW.replace(hour=11, minute=0)  # later today: in the week the calendar opens on
    db = mailbox.database()
    with db.write() as session:
        person = factories.contact(session, NOW, "Lang", first_name="Lisa", emails=["lisa@kunde.example"])
        meeting = activities.create_activity(
            session,
            activities.ActivityInput(
                subject="Vor-Ort-Termin Dach", start_at=start, end_at=start + timedelta(hours=1),
                type="meeting", contact_id=person.id, attendee_emails=["statiker@buero.example"],
            ),
            now=NOW,
        )  # fmt: skip
        meeting_id = meeting.id
    db.dispose()

    app = CrmApp(make_context(mailbox.home, demo=False), start_mode="calendar", sync_mail=False)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = app.screen
        assert isinstance(screen, CalendarScreen)
        await app.workers.wait_for_complete()  # the calendar's first load
        screen.reload(select=meeting_id)
        await wait_for(lambda: screen.selected_id() == meeting_id, pilot)
        await app.workers.wait_for_complete()  # the week's reload done: a key during it can be lost (known)
        await pilot.press("i")
        await wait_for(lambda: isinstance(app.screen, ComposeScreen), pilot)
        compose_screen = app.screen
        assert isinstance(compose_screen, ComposeScreen)
        to = compose_screen.query_one("#c-to", Input).value
        assert "lisa@kunde.example" in to and "statiker@buero.example" in to
        assert [name for name, _, _ in compose_screen.attachments] == ["invite.ics"]
        await pilot.press("ctrl+s")  # every recipient an address: queued without asking
        await wait_for(lambda: len(smtp.received) == 1, pilot, timeout=20)
    _, recipients, raw = smtp.received[0]
    assert sorted(recipients) == ["lisa@kunde.example", "statiker@buero.example"]
    parts = [
        p
        for p in email.message_from_bytes(raw, policy=email.policy.default).walk()
        if p.get_content_type() == "text/calendar"
    ]
    assert parts and parts[0].get_param("method") == "REQUEST"
    invitation = find_invitation(raw, ZONE)
    assert invitation is not None and invitation.summary == "Vor-Ort-Termin Dach"
    assert invitation.start == start.astimezone(UTC) and invitation.method == "REQUEST"
    assert {a for _, a in invitation.attendees} == {"lisa@kunde.example", "statiker@buero.example"}


def test_killed_after_the_server_took_it_but_not_in_sent_is_uncertain(
    mailbox: Mailbox, smtp: SmtpServer, capsys: pytest.CaptureFixture[str]
) -> None:
    item_id, _ = queue_mail(mailbox)
    process = flush_in_a_process(mailbox)
    smtp.behaviour.kill_pid, smtp.behaviour.kill_at = process.pid, "data"
    assert process.wait(timeout=60) == -9
    assert flush_at(mailbox, 1) == 1
    assert states(mailbox, capsys)[item_id][0] == "uncertain"
    assert flush_at(mailbox, 10) == 0 and len(smtp.received) == 1, "never a silent second delivery"


async def test_signature_forward_attached_and_a_document_from_the_record(
    mailbox: Mailbox, smtp: SmtpServer, tmp_path: Any
) -> None:

    from textual.widgets import Input, TextArea

    from crm_tui.core.services import attachments
    from crm_tui.core.types import RecordRef, RecordType
    from crm_tui.runtime.paths import resolve_paths
    from crm_tui.ui.app import CrmApp
    from crm_tui.ui.screens.compose import ComposeScreen
    from crm_tui.ui.screens.dialogs import ChoiceDialog
    from crm_tui.ui.widgets.paged_table import PagedTable
    from tests.integration.test_sync import message
    from tests.ui.helpers import make_context, wait_for
    from tests.utils import factories

    assert mailbox.cli("account", "edit", "work", "--signature", "Anna Berg\\nSolar Nord GmbH") == 0
    mailbox.append("INBOX", message(1, mid="<fw1@firma.example>", subject="Bauplan", body="Siehe Plan."))
    assert mailbox.cli("sync") == 0
    offer = tmp_path / "angebot.pdf"
    offer.write_bytes(b"%PDF-1.4 Angebot")
    db = mailbox.database()
    with db.write() as session:
        person = factories.contact(session, NOW, "Lang", first_name="Lisa", emails=["lisa@kunde.example"])
        attachments.add_document(
            session, RecordRef(RecordType.CONTACT, id_of(person)), offer,
            store=attachments.FileStore(resolve_paths(mailbox.home).documents_dir()), added_by_id=None, now=NOW,
        )  # fmt: skip
    db.dispose()

    app = CrmApp(make_context(mailbox.home, demo=False), start_mode="inbox", sync_mail=False)
    async with app.run_test(size=(160, 48)) as pilot:
        table = app.screen.query_one(PagedTable)
        await wait_for(lambda: table.row_count == 1, pilot)
        inbox = app.screen
        await pilot.press("f")
        await wait_for(lambda: isinstance(app.screen, ComposeScreen), pilot)
        forward = app.screen
        assert isinstance(forward, ComposeScreen)
        body = forward.query_one("#c-body", TextArea)
        assert body.text.startswith("\n\n-- \nAnna Berg\nSolar Nord GmbH\n"), (
            "the signature above the forward"
        )
        await pilot.press("ctrl+f")
        assert [(n, t) for n, t, _ in forward.attachments] == [("Bauplan 1.eml", "message/rfc822")]
        assert "Forwarded message" not in body.text
        forward.query_one("#c-to", Input).value = "Lisa Lang <lisa@kunde.example>"
        await pilot.press("ctrl+d")  # a document of the recipient's contact
        await wait_for(lambda: isinstance(app.screen, ChoiceDialog), pilot)
        await pilot.press("enter")
        await wait_for(lambda: app.screen is forward, pilot)
        assert [n for n, _, _ in forward.attachments] == ["Bauplan 1.eml", "angebot.pdf"]
        await pilot.press("ctrl+s")  # every recipient an address: queued without asking
        await wait_for(lambda: app.screen is inbox and len(smtp.received) == 1, pilot, timeout=20)
    sent = email.message_from_bytes(smtp.received[0][2], policy=email.policy.default)
    kinds = [part.get_content_type() for part in sent.iter_attachments()]
    assert kinds == ["message/rfc822", "application/pdf"]
    forwarded = next(sent.iter_attachments()).get_content()
    assert forwarded["Subject"] == "Bauplan 1" and "Siehe Plan." in forwarded.get_content()
    plain = sent.get_body(("plain",))
    assert plain is not None
    assert plain.get_content().replace("\r\n", "\n").startswith("\n\n-- \nAnna Berg\nSolar Nord GmbH")


async def test_a_draft_is_saved_as_written_kept_taken_up_again_and_gone_when_sent(
    mailbox: Mailbox, smtp: SmtpServer
) -> None:

    from sqlmodel import select
    from textual.widgets import Input, TextArea

    from crm_tui.core import models as m
    from crm_tui.ui.app import CrmApp
    from crm_tui.ui.screens.compose import ComposeScreen
    from crm_tui.ui.screens.dialogs import ChoiceDialog
    from crm_tui.ui.screens.inbox import InboxScreen
    from tests.ui.helpers import make_context, wait_for

    def drafts_on_server() -> set[str]:
        """The Drafts folder's subjects; the app makes the folder with its first save (none before)."""
        client = mailbox.imap()
        try:
            exists = any(name == "Drafts" for _, _, name in client.list_folders())
        finally:
            client.logout()
        return server_subjects(mailbox, "Drafts") if exists else set()

    def local() -> list[tuple[str, str]]:
        db = mailbox.database()
        with db.read() as session:
            rows = [(d.subject, d.body) for d in session.scalars(select(m.MailDraft))]
        db.dispose()
        return rows

    app = CrmApp(make_context(mailbox.home, demo=False), start_mode="inbox", sync_mail=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(lambda: isinstance(app.screen, InboxScreen), pilot)
        await pilot.press("m")
        await wait_for(lambda: isinstance(app.screen, ComposeScreen), pilot)
        app.screen.query_one("#c-to", Input).value = "Lisa Lang <lisa@kunde.example>"
        app.screen.query_one("#c-subject", Input).value = "Angebot Speicher"
        app.screen.query_one("#c-body", TextArea).text = "Erster Entwurf"
        await wait_for(lambda: local() == [("Angebot Speicher", "Erster Entwurf")], pilot)
        await wait_for(lambda: drafts_on_server() == {"Angebot Speicher"}, pilot)
        await pilot.press("escape")
        await wait_for(lambda: isinstance(app.screen, ChoiceDialog), pilot)
        await pilot.press("enter")  # keep it as a draft
        await wait_for(lambda: isinstance(app.screen, InboxScreen), pilot)
        await pilot.press("R")
        await wait_for(lambda: isinstance(app.screen, ChoiceDialog), pilot)
        await pilot.press("enter")
        await wait_for(lambda: isinstance(app.screen, ComposeScreen), pilot)
        assert app.screen.query_one("#c-body", TextArea).text == "Erster Entwurf"
        assert app.screen.query_one("#c-to", Input).value == "Lisa Lang <lisa@kunde.example>"
        app.screen.query_one("#c-body", TextArea).text = "Erster Entwurf, fertig."
        await wait_for(lambda: local() == [("Angebot Speicher", "Erster Entwurf, fertig.")], pilot)
        await pilot.press("ctrl+s")  # every recipient an address: queued without asking
        await wait_for(lambda: len(smtp.received) == 1, pilot, timeout=20)
        await wait_for(lambda: local() == [], pilot)
        await wait_for(lambda: drafts_on_server() == set(), pilot, timeout=20)


def test_in_demo_mode_the_outbox_holds(demo_home: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--home", str(demo_home), "--demo", "outbox", "flush"]) == 0
    assert "demo mode: nothing is delivered; the outbox holds" in capsys.readouterr().out


async def test_a_queued_mail_waits_the_send_delay_and_u_takes_it_back_until_then(
    mailbox: Mailbox, smtp: SmtpServer
) -> None:
    """ctrl+s queues without asking; with send_delay_seconds the mail waits in the outbox (here on a pinned
    clock: until the test moves it on). u in the inbox takes it back: out of the outbox, a draft again, and
    the SMTP server never sees it. Written again and left alone, it goes out once the delay has passed; u
    then says it is too late."""
    from dataclasses import replace

    from sqlmodel import select
    from textual.widgets import Input, TextArea

    from crm_tui.core import models as m
    from crm_tui.core.clock import FixedClock
    from crm_tui.runtime.settings import Settings
    from crm_tui.ui.app import CrmApp
    from crm_tui.ui.screens.compose import ComposeScreen
    from crm_tui.ui.screens.inbox import InboxScreen
    from tests.ui.helpers import make_context, wait_for

    def rows() -> tuple[list[str], list[str]]:
        db = mailbox.database()
        with db.read() as session:
            queued = [i.state for i in session.scalars(select(m.OutboxItem))]
            drafts = [d.subject for d in session.scalars(select(m.MailDraft))]
        db.dispose()
        return queued, drafts

    context = make_context(mailbox.home, demo=False, settings=replace(Settings(), send_delay_seconds=10))
    app = CrmApp(context, start_mode="inbox", sync_mail=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(lambda: isinstance(app.screen, InboxScreen), pilot)
        inbox = app.screen

        async def write(subject: str) -> None:
            await pilot.press("m")
            await wait_for(lambda: isinstance(app.screen, ComposeScreen), pilot)
            app.screen.query_one("#c-to", Input).value = "Lisa Lang <lisa@kunde.example>"
            app.screen.query_one("#c-subject", Input).value = subject
            app.screen.query_one("#c-body", TextArea).text = "Guten Tag"
            await pilot.press("ctrl+s")
            await wait_for(lambda: app.screen is inbox and rows()[0] == ["queued"], pilot)

        await write("Zu früh")
        app.flush_outbox()  # nothing is due yet: the delay holds it
        await app.workers.wait_for_complete()
        assert smtp.received == []
        await pilot.press("u")
        await wait_for(lambda: rows() == ([], ["Zu früh"]), pilot)
        await write("Angebot")
        clock = context.clock
        assert isinstance(clock, FixedClock)  # make_context pins the clock
        clock.advance(seconds=11)
        app.flush_outbox()
        await wait_for(lambda: len(smtp.received) == 1, pilot, timeout=20)
        await wait_for(lambda: rows()[0] == ["sent"], pilot)
        await pilot.press("u")
        await wait_for(lambda: "too late" in " ".join(str(n.message) for n in app._notifications), pilot)
        assert rows()[0] == ["sent"]
    assert b"Subject: Angebot" in smtp.received[0][2]
