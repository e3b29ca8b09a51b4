"""Linking synced mail to records (address, domain, thread, subject; manual wins) and the search language."""

from __future__ import annotations

import pytest

from crm_tui.core.services import mail_linking
from crm_tui.core.types import RecordRef
from tests.conftest import NOW
from tests.integration.conftest import Mailbox
from tests.integration.test_sync import mail_json, message
from tests.utils import factories
from tests.utils.ids import id_of


def _setup_records(box: Mailbox) -> dict[str, int]:
    db = box.database()
    with db.write() as session:
        org = factories.organization(session, NOW, name="Firma GmbH", domains=["firma.example"])
        person = factories.contact(session, NOW, last_name="Kunde", emails=["kunde@firma.example"])
        pipe = factories.pipeline(session)
        deal = factories.deal(session, NOW, pipe)
        ids = {"org": id_of(org), "contact": id_of(person), "deal": id_of(deal)}
    db.dispose()
    return ids


def test_mail_links_by_address_domain_and_thread_never_by_free_mail_or_my_address(
    mailbox: Mailbox, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = _setup_records(mailbox)
    mailbox.append("INBOX", message(1, mid="<t1@firma.example>"))
    mailbox.append("INBOX", message(2, mid="<t2@firma.example>", sender="chef@firma.example"))
    mailbox.append("INBOX", message(3, mid="<t3@gmail.com>", sender="someone@gmail.com"))
    assert mailbox.cli("sync") == 0
    listed = {item["subject"]: item for item in mail_json(mailbox, capsys, "mail", "list")}
    assert {"record": f"contact:{ids['contact']}", "how": "address"} in listed["Angebot 1"]["links"]
    assert {"record": f"organization:{ids['org']}", "how": "domain"} in listed["Angebot 2"]["links"]
    assert listed["Angebot 3"]["links"] == [], "free-mail senders and my own address link nothing"
    # File message 1 on the deal; a reply (thread headers) and a reply that lost them (subject) follow it.
    db = mailbox.database()
    with db.write() as session:
        mail_linking.link_manually(
            session, listed["Angebot 1"]["id"], RecordRef.parse(f"opportunity:{ids['deal']}"), now=NOW
        )
    db.dispose()
    mailbox.append(
        "INBOX",
        message(
            4,
            mid="<t4@gmail.com>",
            sender="other@gmail.com",
            subject="Re: Anfrage",
            extra="In-Reply-To: <t1@firma.example>",
        ),
    )
    mailbox.append("INBOX", message(1, mid="<t5@gmail.com>", sender="other@gmail.com", subject="AW: Angebot"))
    assert mailbox.cli("sync") == 0
    listed = {item["subject"]: item for item in mail_json(mailbox, capsys, "mail", "list")}
    assert {"record": f"opportunity:{ids['deal']}", "how": "thread"} in listed["Re: Anfrage 4"]["links"]
    assert {"record": f"opportunity:{ids['deal']}", "how": "subject"} in listed["AW: Angebot 1"]["links"]


def test_manual_links_and_unlinks_survive_resyncs(
    mailbox: Mailbox, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = _setup_records(mailbox)
    mailbox.append("INBOX", message(1, mid="<u1@firma.example>"))
    assert mailbox.cli("sync") == 0
    (item,) = mail_json(mailbox, capsys, "mail", "list")
    contact = RecordRef.parse(f"contact:{ids['contact']}")
    db = mailbox.database()
    with db.write() as session:
        assert mail_linking.unlink(session, item["id"], contact, now=NOW)
        mail_linking.link_manually(
            session, item["id"], RecordRef.parse(f"opportunity:{ids['deal']}"), now=NOW
        )
    db.dispose()
    # Resync from scratch: the folder's copies come again under a new UIDVALIDITY.
    client = mailbox.imap()
    client.select_folder("INBOX")
    client.add_flags(client.search(["ALL"]), [b"\\Seen"])
    client.logout()
    assert mailbox.cli("sync") == 0
    (item,) = mail_json(mailbox, capsys, "mail", "list")
    links = {link["record"]: link["how"] for link in item["links"]}
    assert f"contact:{ids['contact']}" not in links, "an unlink is not undone by automatic linking"
    assert links[f"opportunity:{ids['deal']}"] == "manual"


def test_search_language(mailbox: Mailbox, capsys: pytest.CaptureFixture[str]) -> None:
    ids = _setup_records(mailbox)
    mailbox.append("INBOX", message(1, mid="<s1@firma.example>", body="Die Solaranlage kostet 12.000 Euro"))
    mailbox.append(
        "INBOX",
        message(2, mid="<s2@gmail.com>", sender="privat@gmail.com", body="Wärmepumpe bitte"),
        flags=("\\Seen",),
    )
    attachment = (
        b"From: kunde@firma.example\r\nTo: anna@crm.example\r\nSubject: Plan 3\r\nMessage-ID: <s3@firma.example>\r\n"
        b"Date: Sat, 21 Nov 2026 10:00:00 +0100\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n"
        b"--XX\r\nContent-Type: text/plain\r\n\r\nsee plan\r\n--XX\r\nContent-Type: application/pdf\r\n"
        b"Content-Disposition: attachment; filename=plan.pdf\r\n\r\nJVBERi0=\r\n--XX--\r\n"
    )
    mailbox.append("INBOX", attachment)
    assert mailbox.cli("sync") == 0

    def subjects(query: str) -> set[str]:
        return {item["subject"] for item in mail_json(mailbox, capsys, "search", "--json", "--", query)}

    assert subjects("solaranlage") == {"Angebot 1"}
    assert subjects("warmepumpe") == {"Angebot 2"}, "accents fold"
    assert subjects('"kostet 12"') == {"Angebot 1"}
    assert subjects("from:privat") == {"Angebot 2"}
    assert subjects("-from:privat") == {"Angebot 1", "Plan 3"}
    assert subjects("has:attachment") == {"Plan 3"}
    assert subjects("is:unread") == {"Angebot 1", "Plan 3"}
    assert subjects("after:2026-11-21") == {"Plan 3"}
    assert subjects("before:2026-11-21") == {"Angebot 1", "Angebot 2"}
    assert subjects(f"linked:contact:{ids['contact']}") == {"Angebot 1", "Plan 3"}
    assert subjects("unlinked") == {"Angebot 2"}
    assert subjects("solaranlage OR wärmepumpe") == {"Angebot 1", "Angebot 2"}
    assert subjects("subject:plan to:anna") == {"Plan 3"}
    capsys.readouterr()
    assert mailbox.cli("search", "is:nonsense") == 1
    assert "is:nonsense" in capsys.readouterr().err
    # The JSON objects carry links with how they were made.
    (plan,) = mail_json(mailbox, capsys, "search", "has:attachment")
    assert {"record": f"contact:{ids['contact']}", "how": "address"} in plan["links"]
    assert set(plan) >= {"id", "from", "to", "subject", "date", "flags", "locations", "links"}


def test_link_and_unlink_from_the_command_line(mailbox: Mailbox, capsys: pytest.CaptureFixture[str]) -> None:
    ids = _setup_records(mailbox)
    mailbox.append("INBOX", message(1, mid="<c1@firma.example>"))
    assert mailbox.cli("sync") == 0
    (item,) = mail_json(mailbox, capsys, "mail", "list")
    assert mailbox.cli("mail", "link", str(item["id"]), f"opportunity:{ids['deal']}") == 0
    assert mailbox.cli("mail", "unlink", str(item["id"]), f"contact:{ids['contact']}") == 0
    (item,) = mail_json(mailbox, capsys, "mail", "list")
    assert {link["record"]: link["how"] for link in item["links"]} == {
        f"opportunity:{ids['deal']}": "manual",
        f"organization:{ids['org']}": "domain",
    }
    capsys.readouterr()
    assert mailbox.cli("mail", "link", str(item["id"]), "contact:9999") == 1
    assert "contact:9999 does not exist" in capsys.readouterr().err
    assert mailbox.cli("mail", "read", "424242") == 1
