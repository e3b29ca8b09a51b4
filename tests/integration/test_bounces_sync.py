"""Bounces and replies through a real sync (Dovecot): a delivery report in the shape of the corpus's Postfix
ones (tests.utils.bounces) for a Message-ID we sent marks that recipient bounced, with the diagnostic, on the
outbox item and the mail's email activity, once (a second copy changes nothing); a reply marks its sender
replied; a malformed report, and a report whose noting fails, never stop the sync: the message is kept (with
the failure as its problem) and the rest arrives. `mail report` then counts them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlmodel import col, select

from crm_tui.core import models as m
from crm_tui.core.services import mail_outcomes, outbox
from tests.conftest import NOW
from tests.integration.conftest import Mailbox
from tests.utils import factories
from tests.utils.bounces import postfix_report
from tests.utils.ids import id_of

OFFER_ID = "<offer.20261121@crm.example>"


def _sent_offer(mailbox: Mailbox) -> tuple[int, int]:
    """An offer written from a contact to two, taken by the server a day ago: (outbox item, contact)."""
    db = mailbox.database()
    with db.write() as session:
        account = session.exec(select(m.MailAccount).where(col(m.MailAccount.name) == "work")).one()
        contact = id_of(factories.contact(session, NOW, "Kunde"))
        item = outbox.queue(
            session, account_id=id_of(account), message_id=OFFER_ID, from_address="anna@crm.example",
            recipients=["lea@kunde.example", "max@kunde.example"], subject="Angebot Dach",
            raw=b"Subject: Angebot Dach\r\n\r\nx\r\n", now=NOW, record=("contact", contact),
        )  # fmt: skip
        outbox.mark_sent(session, id_of(item), now=NOW, accepted=["lea@kunde.example", "max@kunde.example"])
        made = id_of(item), contact
    db.dispose()
    return made


def _reply(sender: str, subject: str, message_id: str, *, extra: str) -> bytes:
    return (
        f"From: {sender}\r\nTo: anna@crm.example\r\nSubject: {subject}\r\nDate: Sun, 22 Nov 2026 10:00:00 +0100\r\n"
        f"Message-ID: {message_id}\r\n{extra}MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        "Danke, passt.\r\n"
    ).encode()


def _outcomes(mailbox: Mailbox, item: int) -> dict[str, tuple[Any, ...]]:
    db = mailbox.database()
    with db.read() as session:
        rows = session.exec(select(m.OutboxRecipient).where(col(m.OutboxRecipient.item_id) == item)).all()
        found = {
            r.address: (r.bounced_at is not None, r.bounce_reason, r.replied_at is not None) for r in rows
        }
    db.dispose()
    return found


def _activity_text(mailbox: Mailbox, item: int) -> str:
    db = mailbox.database()
    with db.read() as session:
        (activity,) = session.exec(select(m.Activity).where(col(m.Activity.outbox_item_id) == item)).all()
        text = activity.description or ""
    db.dispose()
    return text


def test_a_report_and_a_reply_through_a_sync(mailbox: Mailbox, capsys: pytest.CaptureFixture[str]) -> None:
    item, _ = _sent_offer(mailbox)
    report = postfix_report(
        returned_message_id=OFFER_ID, sender="anna@crm.example",
        failed=[("max@kunde.example", "550 5.1.1 <max@kunde.example>: Recipient address rejected: User unknown")],
    )  # fmt: skip
    mailbox.append("INBOX", report)
    mailbox.append("INBOX", _reply("Lea <lea@kunde.example>", "Re: Angebot Dach", "<r1@kunde.example>",
                                   extra=f"In-Reply-To: {OFFER_ID}\r\nReferences: {OFFER_ID}\r\n"))  # fmt: skip
    assert mailbox.cli("sync") == 0, capsys.readouterr().err
    reason = "550 5.1.1 <max@kunde.example>: Recipient address rejected: User unknown"
    assert _outcomes(mailbox, item) == {
        "lea@kunde.example": (False, None, True),
        "max@kunde.example": (True, reason, False),
    }
    assert _activity_text(mailbox, item).count(f"Bounced max@kunde.example: {reason}") == 1

    # The same report again (another copy the server kept, with its own id): marked once all the same.
    mailbox.append("INBOX", report.replace(b"37BD05C00A2@mailout", b"37BD05C00A3@mailout"))
    assert mailbox.cli("sync") == 0
    assert _activity_text(mailbox, item).count("Bounced max@kunde.example") == 1

    capsys.readouterr()
    assert mailbox.cli("mail", "report", "--user", "anna@crm.example", "--from", "2026-11-01", "--to",
                       "2026-11-30", "--json") == 0  # fmt: skip
    counts = json.loads(capsys.readouterr().out)["counts"]
    assert counts == {"sent": 2, "failed": 0, "refused": 0, "bounced": 1, "replied": 1}


def test_a_malformed_report_or_a_failing_step_never_stops_the_sync(
    mailbox: Mailbox, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    item, _ = _sent_offer(mailbox)
    broken = postfix_report(
        returned_message_id=OFFER_ID, sender="anna@crm.example", failed=[("lea@kunde.example", "550 gone")]
    )
    # per-recipient fields without a recipient, a boundary never closed, bytes of no charset
    broken = broken.replace(b"Final-Recipient: rfc822; lea@kunde.example", b"Final-Recipient: \xff\xfe;;")
    broken = broken.replace(b"Original-Recipient: rfc822;lea@kunde.example\r\n", b"").rsplit(b"--", 2)[0]
    mailbox.append("INBOX", broken)
    # a second report whose noting fails (a fault of our own, in this step alone)
    failing = postfix_report(
        returned_message_id=OFFER_ID, sender="anna@crm.example", failed=[("max@kunde.example", "550 FAILHERE")],
        message_id="<failing.report@mailout.example.net>",
    )  # fmt: skip
    mailbox.append("INBOX", failing)
    mailbox.append("INBOX", _reply("Paul <paul@else.example>", "Hallo", "<p1@else.example>", extra=""))
    note_arrivals = mail_outcomes.note_arrivals

    def failing_step(session: Any, arrivals: Any, **kwargs: Any) -> Any:
        if any(("max@kunde.example", "550 FAILHERE") in data.bounced for data in arrivals):
            raise KeyError("a fault while noting a bounce")
        return note_arrivals(session, arrivals, **kwargs)

    monkeypatch.setattr(mail_outcomes, "note_arrivals", failing_step)
    capsys.readouterr()
    assert mailbox.cli("sync") == 0, capsys.readouterr().err
    capsys.readouterr()
    assert mailbox.cli("mail", "list", "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert len(listed) == 3 and all(entry["has_body"] for entry in listed)
    assert mailbox.cli("mail", "problems", "--json") == 0
    problems = json.loads(capsys.readouterr().out)
    flagged = [entry for entry in problems if any("KeyError" in line for line in entry["problems"])]
    assert len(flagged) == 1, problems
    # The malformed report names no recipient; its text names lea: marked from the text, as a returned mail.
    assert _outcomes(mailbox, item)["lea@kunde.example"][:2] == (
        True,
        "<lea@kunde.example>: host mx.example.org said: 550 gone",
    )
    assert _outcomes(mailbox, item)["max@kunde.example"][0] is False
