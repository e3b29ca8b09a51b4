"""Sync against a real Dovecot: the corpus, identity and merging, flags, expunges, UIDVALIDITY, offline changes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from crm_tui.core import models as m
from crm_tui.core.mail_identity import body_hash
from crm_tui.mail.parse import parse_message
from tests.conftest import corpus_dir
from tests.mail.conftest import Mailbox


def corpus_messages() -> list[Path]:
    return sorted(p for p in corpus_dir().iterdir() if p.suffix == ".eml")


def mail_json(box: Mailbox, capsys: pytest.CaptureFixture[str], *argv: str) -> list[dict]:
    capsys.readouterr()
    assert box.cli(*argv, "--json") == 0
    return json.loads(capsys.readouterr().out)


def message(
    n: int,
    *,
    mid: str | None = None,
    body: str = "Hello",
    sender: str = "kunde@firma.example",
    subject: str = "Angebot",
    extra: str = "",
) -> bytes:
    lines = [
        f"From: Kunde {n} <{sender}>",
        "To: Anna Berg <anna@crm.example>",
        f"Subject: {subject} {n}",
        "Date: Fri, 20 Nov 2026 10:00:00 +0100",
    ]
    if mid is not None:
        lines.append(f"Message-ID: {mid}")
    if extra:
        lines.append(extra)
    return ("\r\n".join(lines) + "\r\n\r\n" + body + "\r\n").encode()


def test_the_whole_corpus_syncs_and_lists(mailbox: Mailbox, capsys: pytest.CaptureFixture[str]) -> None:
    files = corpus_messages()
    client = mailbox.imap()
    for path in files:
        client.append("INBOX", path.read_bytes())
    client.logout()
    assert mailbox.cli("sync") == 0
    out = capsys.readouterr().out
    assert f"{len(files)} new" in out and f"{len(files)} bodies" in out
    listed = mail_json(mailbox, capsys, "mail", "list")
    client = mailbox.imap()
    client.select_folder("INBOX", readonly=True)
    served = [data[b"BODY[]"] for data in client.fetch(client.search(["ALL"]), ["BODY.PEEK[]"]).values()]
    client.logout()
    # The corpus holds some messages twice (the same sample in two test suites): one message, two copies.
    identities = {
        (parse_message(raw).message_id, body_hash(raw, has_message_id=bool(parse_message(raw).message_id)))
        for raw in served
    }
    assert len(listed) == len(identities), "every corpus message is listed exactly once"
    assert sum(len(item["locations"]) for item in listed) == len(files), "every server copy is a location"
    assert all(item["locations"] and item["has_body"] for item in listed)
    # Raw bytes are kept exactly as the server sent them (Dovecot serves CRLF).
    db = mailbox.database()
    with db.read() as session:
        raws = set(session.scalars(select(m.MailMessage.raw)))
    db.dispose()
    assert raws <= set(served) and len(raws) == len(identities)


def test_copies_of_one_message_are_one_and_shared_message_ids_stay_two(
    mailbox: Mailbox, capsys: pytest.CaptureFixture[str]
) -> None:
    same_body = message(1, mid="<one@firma.example>")
    mailbox.append("INBOX", b"Received: from a by b; Fri, 20 Nov 2026 10:00:01 +0100\r\n" + same_body)
    mailbox.append("Archive", b"Received: from c by d; Fri, 20 Nov 2026 10:05:00 +0100\r\n" + same_body)
    mailbox.append("INBOX", message(2, mid="<one@firma.example>", body="A different message, same id"))
    assert mailbox.cli("sync") == 0
    listed = mail_json(mailbox, capsys, "mail", "list")
    assert len(listed) == 2
    copies = sorted(len(item["locations"]) for item in listed)
    assert copies == [1, 2]
    both = next(item for item in listed if len(item["locations"]) == 2)
    assert {loc["folder"] for loc in both["locations"]} == {"INBOX", "Archive"}
    # A second pass changes nothing.
    assert mailbox.cli("sync") == 0
    assert len(mail_json(mailbox, capsys, "mail", "list")) == 2
