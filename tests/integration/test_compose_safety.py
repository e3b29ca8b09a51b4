"""A synced mail whose subject, sender's name, body and attachment name hold escape sequences (ESC, CSI, C1
CSI) and bidi overrides: a reply and a forward written from it show none of them in their fields, and the
bytes the SMTP server gets hold none of them."""

from __future__ import annotations

import base64
import email
import email.policy
from dataclasses import replace
from typing import Any

from crm_tui.core.sanitize import strip_unsafe
from tests.integration.conftest import Mailbox
from tests.integration.smtp import SmtpServer

UNSAFE = ("\x1b", "\x9b", "\u202e", "\u202c", "\x07")


def _word(text: str) -> str:
    return "=?utf-8?b?" + base64.b64encode(text.encode()).decode() + "?="


def hostile() -> bytes:
    body = "Guten Tag,\n\x1b[2J\x1b]0;pwned\x07bitte \x9b31mrot\x1b[0m und \u202eevil\u202c.\n"
    name = "Angebot \x1b[31m\u202efdp.exe"
    sender = _word("Kunde \u202eBöse\u202c \x1b[1mFett")
    subject = _word("\x1b[31mrot \x9b1m\u202egnuldnaB")
    quoted = "".join(f"%{b:02X}" for b in name.encode())
    head = [
        f"From: {sender} <kunde@firma.example>",
        "To: Anna Berg <anna@crm.example>",
        f"Subject: Anfrage 4 {subject}",
        "Date: Fri, 20 Nov 2026 10:00:00 +0100",
        "Message-ID: <hostile4@firma.example>",
        "MIME-Version: 1.0",
        'Content-Type: multipart/mixed; boundary="b"',
        "",
        "--b",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: base64",
        "",
        base64.b64encode(body.encode()).decode(),
        "--b",
        "Content-Type: application/pdf",
        f"Content-Disposition: attachment; filename*=utf-8''{quoted}",
        "Content-Transfer-Encoding: base64",
        "",
        base64.b64encode(b"%PDF-1.4 data").decode(),
        "--b--",
        "",
    ]
    return "\r\n".join(head).encode()


def test_strip_unsafe_takes_whole_escape_sequences_and_keeps_text() -> None:
    assert strip_unsafe("Anfrage 4 \x1b[31mrot") == "Anfrage 4 rot"
    assert strip_unsafe("a\x9b31mb\u202ec\x1b]0;t\x07d") == "abcd"
    assert strip_unsafe("eins\r\nzwei\tdrei", single_line=False) == "eins\nzwei\tdrei"
    assert strip_unsafe("Grüße 👩\u200d💻") == "Grüße 👩\u200d💻"


async def test_a_reply_and_a_forward_to_a_hostile_mail_carry_no_escape_or_bidi_character(
    mailbox: Mailbox,
    smtp: SmtpServer,  # noqa: F811
) -> None:
    from textual.widgets import Input, TextArea

    from crm_tui.runtime.settings import Settings
    from crm_tui.ui.app import CrmApp
    from crm_tui.ui.screens.compose import ComposeScreen
    from crm_tui.ui.screens.inbox import InboxScreen
    from crm_tui.ui.widgets.paged_table import PagedTable
    from tests.ui.helpers import make_context, wait_for

    mailbox.append("INBOX", hostile())
    assert mailbox.cli("sync") == 0
    seen: dict[str, dict[str, str]] = {}

    context = make_context(mailbox.home, demo=False, settings=replace(Settings(), send_delay_seconds=0))
    app = CrmApp(context, start_mode="inbox", sync_mail=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(lambda: isinstance(app.screen, InboxScreen), pilot)
        inbox = app.screen
        table = inbox.query_one(PagedTable)
        await wait_for(lambda: table.row_count > 0 and table.selected_key is not None, pilot)
        for key in ("r", "f"):
            await pilot.press(key)
            await wait_for(lambda: isinstance(app.screen, ComposeScreen), pilot)
            screen: Any = app.screen
            fields = {name: screen.query_one(f"#c-{name}", Input).value for name in ("to", "subject")}
            fields["body"] = screen.query_one("#c-body", TextArea).text
            fields["files"] = " ".join(name for name, _, _ in screen.attachments)
            seen[key] = fields
            if key == "f":
                screen.query_one("#c-to", Input).value = "Lisa Lang <lisa@kunde.example>"
            await pilot.press("ctrl+s")
            await wait_for(lambda: app.screen is inbox, pilot)
            await wait_for(lambda: len(smtp.received) == len(seen), pilot, timeout=20)  # one mail a key
    reply, forward = seen["r"], seen["f"]
    assert reply["subject"] == "Re: Anfrage 4 rot gnuldnaB"
    assert forward["subject"] == "Fwd: Anfrage 4 rot gnuldnaB"
    assert reply["to"] == "Kunde Böse Fett <kunde@firma.example>"
    assert "> bitte rot und evil." in reply["body"] and "Kunde Böse Fett wrote:" in reply["body"]
    assert "bitte rot und evil." in forward["body"]
    assert forward["files"] == "Angebot fdp.exe"
    for fields in (reply, forward):
        for key, value in fields.items():
            assert not any(c in value for c in UNSAFE), (key, value)
    for _, _, raw in smtp.received:
        assert b"\x1b" not in raw and b"\x07" not in raw, raw
        sent = email.message_from_bytes(raw, policy=email.policy.default)
        texts = [str(sent["Subject"]), str(sent["To"])]
        texts += [part.get_content() for part in sent.walk() if part.get_content_type() == "text/plain"]
        texts += [part.get_filename() or "" for part in sent.iter_attachments()]
        for text in texts:
            assert not any(c in text for c in UNSAFE), text
    assert str(email.message_from_bytes(smtp.received[0][2], policy=email.policy.default)["Subject"]) == (
        "Re: Anfrage 4 rot gnuldnaB"
    )
