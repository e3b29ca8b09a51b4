"""Mail coming back, read by the parser: the shared corpus's delivery reports (RFC 3464) give the returned
mail's Message-ID and each failed recipient with the diagnostic; delayed and relayed reports, and a person's
mail with a mail attached, are no bounce; our own report (tests.utils.bounces) reads as the corpus's do."""

from __future__ import annotations

from crm_tui.mail.parse import parse_message, parse_safely
from tests.conftest import corpus2_dir, corpus_dir
from tests.utils.bounces import postfix_report, returned_without_report


def test_the_corpus_reports() -> None:
    mail, mail2 = corpus_dir(), corpus2_dir()
    postal = parse_message((mail / "postal-mime__bounce.eml").read_bytes())
    assert postal.automatic
    assert postal.returned_ids == ["<e85f1c9b-9b51-4028-8ec0-0a657155028e@app.fastmail.com>"]
    assert postal.bounced == [("htfgvhyufthdgcvhgjyfthgc@ethereal.email", "550 No such user here")]
    two = parse_message((mail2 / "chatmail__ndn_with_attachment.eml").read_bytes())
    assert [address for address, _ in two.bounced] == ["bob@example.org", "bob2@example.net"]
    assert two.bounced[0][1].startswith("552 5.2.2 <bob@example.org>: Recipient address rejected")
    # the returned mail's headers only (text/rfc822-headers)
    headers_only = parse_message((mail2 / "chatmail__posteo_ndn.eml").read_bytes())
    assert headers_only.returned_ids == ["<04422840-f884-3e37-5778-8192fe22d8e1@posteo.de>"]
    assert headers_only.bounced == [
        ("hanerthaertidiuea@gmx.de", "550 Requested action not taken: mailbox unavailable")
    ]
    # a Final-Recipient in angle brackets, no diagnostic: its status says it
    brackets = parse_message((mail / "mikel-mail__multipart_report_multiple_status.eml").read_bytes())
    assert brackets.bounced == [("u@ci.com", "status 5.3.0")]
    # still on its way: no bounce
    for name, folder in (("flanker__no-mx.eml", mail), ("mikel-mail__report_422.eml", mail),
                         ("chatmail__dsn_relayed.eml", mail2)):  # fmt: skip
        data = parse_message((folder / name).read_bytes())
        assert (data.returned_ids, data.bounced) == ([], []), name


def test_our_report_and_a_returned_mail_read_as_the_corpus_does() -> None:
    ours = parse_message(
        postfix_report(
            returned_message_id="<offer.1@crm.example.net>", sender="ann@firm.example",
            failed=[("max@kunde.example", "550 5.1.1 <max@kunde.example>: Recipient address rejected")],
        )
    )  # fmt: skip
    assert ours.returned_ids == ["<offer.1@crm.example.net>"]
    assert ours.bounced == [
        ("max@kunde.example", "550 5.1.1 <max@kunde.example>: Recipient address rejected")
    ]
    delayed = parse_message(
        postfix_report(
            returned_message_id="<offer.1@crm.example.net>", sender="ann@firm.example",
            failed=[("max@kunde.example", "451 try later")], action="delayed", status="4.4.1",
        )
    )  # fmt: skip
    assert (delayed.returned_ids, delayed.bounced) == ([], [])
    qmail = parse_message(
        returned_without_report(
            returned_message_id="<offer.1@crm.example.net>",
            sender="ann@firm.example",
            recipient="lea@kunde.example",
        )
    )
    assert qmail.automatic and qmail.returned_ids == ["<offer.1@crm.example.net>"] and qmail.bounced == []
    # a person forwarding our mail as an attachment: not mail coming back
    forwarded = returned_without_report(
        returned_message_id="<offer.1@crm.example.net>",
        sender="ann@firm.example",
        recipient="lea@kunde.example",
    ).replace(b"Mail Delivery Subsystem <MAILER-DAEMON@relay.example.net>", b"Lea <lea@kunde.example>")
    assert parse_message(forwarded).returned_ids == []


def test_a_malformed_report_is_no_bounce_and_no_failure() -> None:
    broken = postfix_report(
        returned_message_id="<offer.1@crm.example.net>",
        sender="ann@firm.example",
        failed=[("max@kunde.example", "550 no")],
    ).replace(b"Final-Recipient: rfc822; max@kunde.example", b"Final-Recipient: \xff\xfe garbage;;;")
    broken = broken.replace(b"Original-Recipient: rfc822;max@kunde.example\r\n", b"")
    data = parse_safely(broken[: len(broken) - 40])  # cut off inside the returned mail too
    assert data.bounced == []
    assert data.returned_ids == ["<offer.1@crm.example.net>"]  # still mail coming back: its text is read
