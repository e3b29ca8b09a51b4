"""Mail coming back, built in the shape of the shared corpus's Postfix delivery reports
(``mail/postal-mime__bounce.eml``, ``mail2/chatmail__ndn_with_attachment.eml``): a ``multipart/report;
report-type=delivery-status`` (RFC 3464) with a notification, the per-recipient fields and the returned
message, addressed to a Message-ID we sent. Built here, never copied from the corpus."""

from __future__ import annotations


def postfix_report(
    *,
    returned_message_id: str,
    sender: str,
    failed: list[tuple[str, str]],
    action: str = "failed",
    status: str = "5.0.0",
    subject: str = "Angebot",
    message_id: str = "<20261102090000.37BD05C00A2@mailout.example.net>",
    date: str = "Mon, 02 Nov 2026 10:30:00 +0100",
) -> bytes:
    """A delivery report of the mail ``returned_message_id`` from ``sender``: each (recipient, reply) of
    ``failed`` with ``action`` and ``status``; the returned mail whole, as message/rfc822."""
    boundary = "38C145C00A7.1667379600/mailout.example.net"
    recipients = "\r\n".join(
        f"Final-Recipient: rfc822; {address}\r\nOriginal-Recipient: rfc822;{address}\r\nAction: {action}\r\n"
        f"Status: {status}\r\nRemote-MTA: dns; mx.example.org\r\nDiagnostic-Code: smtp; {reply}\r\n"
        for address, reply in failed
    )
    return (
        "Return-Path: <>\r\n"
        "Received: by mailout.example.net (Postfix)\r\n\tid 37BD05C00A2; Mon, 02 Nov 2026 10:30:00 +0100 (CET)\r\n"
        f"Date: {date}\r\n"
        "From: MAILER-DAEMON@mailout.example.net (Mail Delivery System)\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"To: {sender}\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/report; report-type=delivery-status;\r\n"
        f'\tboundary="{boundary}"\r\n'
        f"Message-Id: {message_id}\r\n"
        "\r\n"
        "This is a MIME-encapsulated message.\r\n"
        "\r\n"
        f"--{boundary}\r\n"
        "Content-Description: Notification\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        "\r\n"
        "This is the mail system at host mailout.example.net.\r\n"
        "\r\n"
        "I'm sorry to have to inform you that your message could not\r\n"
        "be delivered to one or more recipients. It's attached below.\r\n"
        "\r\n"
        + "".join(f"<{address}>: host mx.example.org said: {reply}\r\n" for address, reply in failed)
        + "\r\n"
        f"--{boundary}\r\n"
        "Content-Description: Delivery report\r\n"
        "Content-Type: message/delivery-status\r\n"
        "\r\n"
        "Reporting-MTA: dns; mailout.example.net\r\n"
        "X-Postfix-Queue-ID: 38C145C00A7\r\n"
        f"X-Postfix-Sender: rfc822; {sender}\r\n"
        "Arrival-Date: Mon, 02 Nov 2026 10:29:58 +0100 (CET)\r\n"
        "\r\n"
        f"{recipients}"
        "\r\n"
        f"--{boundary}\r\n"
        "Content-Description: Undelivered Message\r\n"
        "Content-Type: message/rfc822\r\n"
        "\r\n"
        f"Return-Path: <{sender}>\r\n"
        f"From: {sender}\r\n"
        f"To: {', '.join(address for address, _ in failed)}\r\n"
        f"Subject: {subject}\r\n"
        f"Message-ID: {returned_message_id}\r\n"
        "Date: Mon, 02 Nov 2026 10:29:57 +0100\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        "Guten Tag, anbei unser Angebot.\r\n"
        "\r\n"
        f"--{boundary}--\r\n"
    ).encode()


def returned_without_report(*, returned_message_id: str, sender: str, recipient: str) -> bytes:
    """A bounce that is no delivery report (an old qmail-like one): its text names the recipient, the
    returned mail is attached as message/rfc822."""
    boundary = "returned-mail-boundary"
    return (
        "From: Mail Delivery Subsystem <MAILER-DAEMON@relay.example.net>\r\n"
        f"To: {sender}\r\n"
        "Subject: failure notice\r\n"
        "Date: Mon, 02 Nov 2026 11:00:00 +0100\r\n"
        "Message-ID: <returned.1@relay.example.net>\r\n"
        "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n'
        "\r\n"
        f"--{boundary}\r\n"
        "Content-Type: text/plain\r\n"
        "\r\n"
        "Hi. This is the qmail-send program at relay.example.net.\r\n"
        "I'm afraid I wasn't able to deliver your message to the following addresses.\r\n"
        "\r\n"
        f"<{recipient}>: 552 mailbox full\r\n"
        "\r\n"
        f"--{boundary}\r\n"
        "Content-Type: message/rfc822\r\n"
        "\r\n"
        f"From: {sender}\r\n"
        f"To: {recipient}\r\n"
        "Subject: Angebot\r\n"
        f"Message-ID: {returned_message_id}\r\n"
        "\r\n"
        "Guten Tag.\r\n"
        "\r\n"
        f"--{boundary}--\r\n"
    ).encode()
