"""No single message stops a sync: messages that cannot be read, linked, indexed or stored whole are kept with
their bytes and a visible problem, every other message arrives, and the next sync changes nothing."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import Session, col

from crm_tui.core import models as m
from crm_tui.core.services import mail_linking
from crm_tui.core.services import mailbox as mailbox_service
from crm_tui.core.services.mail_store import MessageData
from crm_tui.core.types import RecordRef
from tests.conftest import NOW
from tests.integration.conftest import ON_BOTH, Mailbox
from tests.utils.ids import id_of


def _mail(
    subject: str, body: str, *, sender: str = "Kunde <kunde@firma.example>", to: str = "anna@crm.example"
) -> bytes:
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: Fri, 20 Nov 2026 10:00:00 +0100\r\n"
        f"Message-ID: <{subject.replace(' ', '.')}@firma.example>\r\n\r\n{body}\r\n"
    ).encode()


# (subject, raw bytes, a word only its body holds (None: none to find), the problem it is listed with or None)
UNUSABLE = [
    (
        "Undelivered Mail",
        b"From: MAILER-DAEMON\r\nTo: anna@crm.example\r\nSubject: Undelivered Mail\r\n"
        b"Date: Fri, 20 Nov 2026 10:01:00 +0100\r\n\r\nbouncewort: the mail could not be delivered\r\n",
        "bouncewort",
        "'MAILER-DAEMON' is no address",
    ),
    (
        "To the postmaster",
        _mail("To the postmaster", "postwort for nobody in particular", to="postmaster"),
        "postwort",
        "'postmaster' is no address",
    ),
    (
        "Hidden recipients",
        _mail("Hidden recipients", "verstecktwort newsletter", to="undisclosed-recipients:;"),
        "verstecktwort",
        None,  # an empty group is valid: no problem, and no crash
    ),
    (
        "A bare word",
        _mail("A bare word", "wortwort from a bare word", sender="kunde"),
        "wortwort",
        "'kunde' is no address",
    ),
    (
        "Broken MIME",
        b"From: Kunde <kunde@firma.example>\r\nTo: anna@crm.example\r\nSubject: Broken MIME\r\n"
        b"Content-Type: multipart/mixed\r\nDate: Fri, 20 Nov 2026 10:02:00 +0100\r\n\r\n"
        b"--nothing\r\nContent-Type: text/plain\r\n\r\nkaputtwort inside a multipart without a boundary\r\n",
        "kaputtwort",
        "structure: a multipart without usable boundaries",
    ),
    (
        "Nul \x00 in the subject",
        b"From: Kunde <kunde@firma.example>\r\nTo: anna@crm.example\r\nSubject: =?utf-8?q?Nul_=00_in_the_subject?=\r\n"
        b"Date: Fri, 20 Nov 2026 10:03:00 +0100\r\n\r\nnullwort and a NUL \x00 in the body\r\n",
        "nullwort",
        None,  # stored with U+FFFD where the NULs were (PostgreSQL takes no NUL)
    ),
]
GOOD = [(f"Angebot {n}", _mail(f"Angebot {n}", f"gutwort{n} the offer")) for n in range(1, 5)]


def _zero_byte_message(box: Mailbox, folder: str) -> None:
    """A message of 0 bytes: Dovecot refuses one by APPEND, so it goes into the Maildir as a file."""
    directory = box.server.root / "mail" / box.user / "Maildir" / f".{folder}" / "new"
    path = directory / "1700000000.M1P1.crm-test-empty"
    path.write_bytes(b"")
    owner = os.stat(directory)
    os.chown(path, owner.st_uid, owner.st_gid)


def _json(box: Mailbox, capsys: pytest.CaptureFixture[str], *argv: str) -> list[dict[str, Any]]:
    capsys.readouterr()
    assert box.cli(*argv, "--json") == 0, capsys.readouterr().err
    listed: list[dict[str, Any]] = json.loads(capsys.readouterr().out)
    return listed


def _customer(box: Mailbox) -> int:
    """A customer whose organization's domain links mail (so linking runs for every message): its id."""
    from tests.utils import factories

    db = box.database()
    with db.write() as session:
        org = factories.organization(session, NOW, "Firma", domains=["firma.example"])
        factories.contact(
            session, NOW, "Kunde", first_name="Karl", emails=["kunde@firma.example"], organization_id=org.id
        )
        org_id = id_of(org)
    db.dispose()
    return org_id


def _fill(box: Mailbox) -> None:
    """Good mail and unusable mail in the middle of it, in a folder of its own (and one good mail in INBOX)."""
    client = box.imap()
    client.create_folder("Kunden")
    order = [
        GOOD[0],
        *[(s, r) for s, r, _, _ in UNUSABLE[:3]],
        GOOD[1],
        *[(s, r) for s, r, _, _ in UNUSABLE[3:]],
    ]
    for _subject, raw in order:
        client.append("Kunden", raw)
    client.append("INBOX", GOOD[2][1])
    client.logout()
    _zero_byte_message(box, "Kunden")
    box.append("Kunden", GOOD[3][1])  # after the empty one


@ON_BOTH
def test_unusable_messages_are_kept_with_their_problem_and_the_sync_goes_on(
    mailbox: Mailbox, capsys: pytest.CaptureFixture[str]
) -> None:
    org_id = _customer(mailbox)
    _fill(mailbox)

    capsys.readouterr()
    assert mailbox.cli("sync") == 0, capsys.readouterr().err
    summary = capsys.readouterr().out
    expected_problems = sum(1 for *_, problem in UNUSABLE if problem) + 1  # and the empty message
    assert f"{expected_problems} kept with problems" in summary, summary

    listed = _json(mailbox, capsys, "mail", "list")
    assert len(listed) == len(GOOD) + len(UNUSABLE) + 1, "every message is stored, the unusable ones too"
    assert all(item["has_body"] for item in listed), "no message is left waiting for a body forever"
    # Every other message is stored whole, searchable and (the good ones) linked.
    for n, (subject, _raw) in enumerate(GOOD, 1):
        found = _json(mailbox, capsys, "search", f"gutwort{n}")
        assert [item["subject"] for item in found] == [subject]
        assert {link["record"] for link in found[0]["links"]} >= {f"organization:{org_id}"}
    for subject, _raw, word, _problem in UNUSABLE:
        found = _json(mailbox, capsys, "search", word)
        assert [item["subject"].replace("\ufffd", "\x00") for item in found] == [subject], word

    # The unusable ones are listed with their problem.
    problems = {item["subject"]: item["problems"] for item in _json(mailbox, capsys, "mail", "problems")}
    for subject, _raw, _word, problem in UNUSABLE:
        if problem is None:
            assert subject.replace("\x00", "\ufffd") not in problems
        else:
            assert any(problem in line for line in problems[subject]), (subject, problems.get(subject))
    assert problems[""] == ["message: empty (0 bytes)"]
    steps = [
        line for lines in problems.values() for line in lines if line.startswith(("header:", "link", "stor"))
    ]
    assert not steps, "each of these reads, links and stores as it is: nothing needed the fallback"
    capsys.readouterr()
    assert mailbox.cli("mail", "problems") == 0
    text = capsys.readouterr().out
    assert "message: empty (0 bytes)" in text and "'MAILER-DAEMON' is no address" in text
    empty = next(item for item in listed if not item["subject"] and not item["from"])
    capsys.readouterr()
    assert mailbox.cli("mail", "raw", str(empty["id"])) == 0
    assert capsys.readouterr().out == ""

    # A second sync changes nothing.
    assert mailbox.cli("sync") == 0
    again = capsys.readouterr().out
    assert "0 new, 0 bodies" in again and "kept with problems" not in again, again
    assert _json(mailbox, capsys, "mail", "list") == listed


@pytest.mark.parametrize("step", ["headers", "link", "store"])
def test_a_message_that_fails_a_step_is_kept_with_the_failure_as_its_problem(
    mailbox: Mailbox, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    """Whatever step fails for one message (its header's store, its linking, its body's store or index), that
    message is kept, with the failure as its problem, and the rest of its batch arrives as usual."""
    store_headers, link_many, store_bodies = (
        mailbox_service.store_headers,
        mail_linking.link_many,
        mailbox_service.store_bodies,
    )

    def failing_headers(
        session: Session,
        folder: m.MailFolder | mailbox_service.FolderRef,
        uidvalidity: int,
        rows: list[mailbox_service.HeaderRow],
        **kwargs: Any,
    ) -> int:
        if any("FAILHERE" in str(row.values[1]) and not row.values[-1] for row in rows):
            raise ValueError("this header cannot be stored")
        return store_headers(session, folder, uidvalidity, rows, **kwargs)

    def failing_links(
        session: Session, message_ids: list[int], **kwargs: Any
    ) -> dict[int, list[tuple[RecordRef, str]]]:
        subjects = set(
            session.scalars(select(col(m.MailMessage.subject)).where(col(m.MailMessage.id).in_(message_ids)))
        )
        if any("FAILHERE" in subject for subject in subjects):
            raise IndexError("list index out of range")
        return link_many(session, message_ids, **kwargs)

    def failing_bodies(
        session: Session, items: list[tuple[int, MessageData]], **kwargs: Any
    ) -> list[tuple[int, bool]]:
        if any("FAILHERE" in data.subject for _, data in items):
            raise UnicodeEncodeError("utf-8", "x", 0, 1, "surrogates not allowed")
        return store_bodies(session, items, **kwargs)

    if step == "headers":  # a value the database refuses: refused again with the body
        monkeypatch.setattr(mailbox_service, "store_headers", failing_headers)
    if step in ("headers", "store"):
        monkeypatch.setattr(mailbox_service, "store_bodies", failing_bodies)
    if step == "link":
        monkeypatch.setattr(mail_linking, "link_many", failing_links)
    _customer(mailbox)
    client = mailbox.imap()
    for n in range(1, 6):
        client.append("INBOX", _mail(f"Angebot {n}" + (" FAILHERE" if n == 3 else ""), f"gutwort{n} offer"))
    client.logout()

    capsys.readouterr()
    assert mailbox.cli("sync") == 0, capsys.readouterr().err
    assert "1 kept with problems" in capsys.readouterr().out
    listed = _json(mailbox, capsys, "mail", "list")
    assert len(listed) == 5 and all(item["has_body"] for item in listed)
    problems = _json(mailbox, capsys, "mail", "problems")
    assert [item["subject"] for item in problems] == ["Angebot 3 FAILHERE"]
    words = {
        "headers": "header: ValueError",
        "link": "linking: IndexError",
        "store": "storing: UnicodeEncodeError",
    }
    assert any(line.startswith(words[step]) for line in problems[0]["problems"]), problems[0]["problems"]
    for n in (1, 2, 4, 5):
        found = _json(mailbox, capsys, "search", f"gutwort{n}")
        assert len(found) == 1 and found[0]["links"], "the rest of the batch is stored and linked as usual"
    assert _json(mailbox, capsys, "search", "FAILHERE"), "the kept message is found by its subject"
    capsys.readouterr()
    assert mailbox.cli("mail", "raw", str(problems[0]["id"])) == 0
    assert "FAILHERE" in capsys.readouterr().out, "the bytes are kept as they came"
    assert mailbox.cli("sync") == 0
    assert "0 new, 0 bodies" in capsys.readouterr().out


def test_a_folder_the_server_refuses_fails_alone(
    mailbox: Mailbox, capsys: pytest.CaptureFixture[str]
) -> None:
    """A folder that goes away between the listing and its turn (the server answers NO to its SELECT, on a
    fresh connection too) is that folder's failure only: every other folder is synced and the summary names
    it. (Before, a NO was read as a dropped link: the whole account failed as "the connection dropped".)"""
    from crm_tui.core.clock import FixedClock
    from crm_tui.mail.sync import sync_account

    client = mailbox.imap()
    for folder in ("Aaa Weg", "Kunden"):
        client.create_folder(folder)
    client.append("Aaa Weg", _mail("Gleich weg", "wegwort"))
    client.append("Kunden", _mail("Bleibt", "bleibwort"))
    client.append("INBOX", _mail("Auch da", "dawort"))
    client.logout()

    def progress(what: str, done: int, total: int) -> None:
        if what == "headers Aaa Weg":  # its turn comes: another client deletes it first
            other = mailbox.imap()
            if other.folder_exists("Aaa Weg"):
                other.delete_folder("Aaa Weg")
            other.logout()

    db = mailbox.database()
    try:
        report = sync_account(db, "work", clock=FixedClock(NOW), progress=progress)
    finally:
        db.dispose()
    assert [line.split(":")[0] for line in report.failed_folders] == ["Aaa Weg"], report.failed_folders
    assert "1 folder not synced: Aaa Weg" in report.summary()
    found = {
        item["subject"] for word in ("bleibwort", "dawort") for item in _json(mailbox, capsys, "search", word)
    }
    assert found == {"Bleibt", "Auch da"}, "the other folders are synced all the same"
