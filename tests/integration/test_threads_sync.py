"""Threads from headers through a real sync (Dovecot): `mail list --json` gives each message its thread, two
customers' mails with one subject stay two threads, a reply with another subject joins its parent even when it
arrives first, an out-of-office reply is automatic, and the reply-tracking views follow."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlmodel import col

from crm_tui.core import models as m
from crm_tui.core.services import triage
from tests.conftest import NOW
from tests.integration.conftest import ON_BOTH, Mailbox
from tests.integration.test_sync import mail_json
from tests.utils.ids import id_of

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
                select(col(m.MailMessage.from_address), col(m.MailMessage.subject)).where(
                    triage.view_condition("awaiting", now=NOW + timedelta(days=1))
                )
            )
        )
    # Paul's request waits for an answer, as does Lea's latest mail; the automatic reply never does.
    assert awaiting == {("paul@sued.example", "Angebot"), ("lea@nordwind.example", "Ihr Termin")}


@ON_BOTH
def test_a_free_mail_sender_is_never_linked_by_domain_and_its_lead_converts_without_one(
    mailbox: Mailbox, capsys: pytest.CaptureFixture[str]
) -> None:
    """Synced from Dovecot: mail from a company's domain is linked to its organization, mail from a free-mail
    or private address (gmail.com, example.net) is not; the lead made from it converts to an organization
    without a domain, so the next private sender is not linked to that organization either."""
    from crm_tui.core.services import leads, mail_store, organizations
    from crm_tui.core.types import RecordRef, RecordType
    from tests.utils import factories

    db = mailbox.database()
    with db.write() as session:
        org = factories.organization(session, NOW, name="Nordwind GmbH", domains=["nordwind.example"])
        org_id = id_of(org)
        pipe = factories.pipeline(session)
        pipe_id = id_of(pipe)
    db.dispose()
    day = "Fri, 20 Nov 2026"
    mailbox.append("INBOX", _raw("Info <info@nordwind.example>", ME, "Rechnung", "<n1@nordwind.example>",
                                 date=f"{day} 09:00:00 +0100"))  # fmt: skip
    mailbox.append("INBOX", _raw("Greta Vogel <greta.vogel@gmail.com>", ME, "Anfrage PV", "<g1@gmail.com>",
                                 date=f"{day} 10:00:00 +0100"))  # fmt: skip
    assert mailbox.cli("sync") == 0
    by_from = {item["from"]: item for item in mail_json(mailbox, capsys, "mail", "list")}
    assert {"record": f"organization:{org_id}", "how": "domain"} in [
        {"record": link["record"], "how": link["how"].split()[0]}
        for link in by_from["Info <info@nordwind.example>"]["links"]
    ]
    assert by_from["Greta Vogel <greta.vogel@gmail.com>"]["links"] == []
    db = mailbox.database()
    with db.write() as session:
        lead = factories.lead(session, NOW, title="PV Vogel", person_name="Greta Vogel", company_name="Vogel GbR",
                              emails=["greta.vogel@gmail.com"])  # fmt: skip
        mail_store.link_message(
            session, by_from["Greta Vogel <greta.vogel@gmail.com>"]["id"], RecordRef(RecordType.LEAD, id_of(lead)),
            reason="manual", now=NOW,
        )  # fmt: skip
        result = leads.convert_lead(session, id_of(lead), now=NOW, user_id=None, pipeline_id=pipe_id)
        assert result.organization_id is not None
        assert organizations.organization_domains(session, result.organization_id) == []
        new_org = result.organization_id
    db.dispose()
    mailbox.append(
        "INBOX",
        _raw("Jemand <jemand@gmail.com>", ME, "Frage", "<j1@gmail.com>", date=f"{day} 11:00:00 +0100"),
    )
    assert mailbox.cli("sync") == 0
    by_from = {item["from"]: item for item in mail_json(mailbox, capsys, "mail", "list")}
    assert not [
        link
        for link in by_from["Jemand <jemand@gmail.com>"]["links"]
        if link["record"] == f"organization:{new_org}"
    ]
