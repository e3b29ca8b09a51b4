"""Threads from headers through a real sync (Dovecot): `mail list --json` gives each message its thread, two
customers' mails with one subject stay two threads, a reply with another subject joins its parent even when it
arrives first, an out-of-office reply is automatic, and the reply-tracking views follow."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from crm_tui.core import models as m
from crm_tui.core.services import triage
from tests.conftest import NOW
from tests.mail.conftest import ON_BOTH, Mailbox
from tests.mail.test_sync import mail_json

ME = "anna@crm.example"


def _raw(sender: str, to: str, subject: str, mid: str, *, date: str, extra: str = "") -> bytes:
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: {date}\r\nMessage-ID: {mid}\r\n{extra}"
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHallo,\r\n\r\nText.\r\n"
    ).encode()


@ON_BOTH
def test_threads_from_headers_after_a_sync(mailbox: Mailbox, capsys: pytest.CaptureFixture[str]) -> None:
    day = "Fri, 20 Nov 2026"
    # The reply (another subject) is on the server before the mail it answers: one thread all the same.
    mailbox.append("INBOX", _raw("Lea <lea@nordwind.example>", ME, "Ihr Termin", "<r1@nordwind.example>",
                                 date=f"{day} 12:00:00 +0100",
                                 extra="In-Reply-To: <o1@crm.example>\r\nReferences: <q1@nordwind.example> <o1@crm.example>\r\n"))  # fmt: skip
    mailbox.append("INBOX", _raw("Lea <lea@nordwind.example>", ME, "Angebot", "<q1@nordwind.example>",
                                 date=f"{day} 09:00:00 +0100"))  # fmt: skip
    mailbox.append("INBOX", _raw("Paul <paul@sued.example>", ME, "Angebot", "<q2@sued.example>",
                                 date=f"{day} 10:00:00 +0100"))  # fmt: skip
    mailbox.append("INBOX", _raw("Lea <lea@nordwind.example>", ME, "Abwesend: Re: Angebot", "<auto@nordwind.example>",
                                 date=f"{day} 11:01:00 +0100",
                                 extra="Auto-Submitted: auto-replied\r\nIn-Reply-To: <o1@crm.example>\r\n"))  # fmt: skip
    assert mailbox.cli("sync") == 0
    by_sender = {(item["from"], item["subject"]): item for item in mail_json(mailbox, capsys, "mail", "list")}
    lea = by_sender[("Lea <lea@nordwind.example>", "Angebot")]
    paul = by_sender[("Paul <paul@sued.example>", "Angebot")]
    reply = by_sender[("Lea <lea@nordwind.example>", "Ihr Termin")]
    away = by_sender[("Lea <lea@nordwind.example>", "Abwesend: Re: Angebot")]
    assert lea["thread"] == reply["thread"] == away["thread"] != paul["thread"]
    assert away["automatic"] is True and reply["automatic"] is False
    with mailbox.database().read() as session:
        awaiting = set(
            session.execute(
                select(m.MailMessage.from_address, m.MailMessage.subject).where(
                    triage.view_condition("awaiting", now=NOW + timedelta(days=1))
                )
            )
        )
    # Paul's request waits for an answer, as does Lea's latest mail; the automatic reply never does.
    assert awaiting == {("paul@sued.example", "Angebot"), ("lea@nordwind.example", "Ihr Termin")}
