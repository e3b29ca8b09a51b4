"""What the parser derives from one message: plain data, importable without the database layer (the parse
process imports only this and the email package, so it starts fast)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from crm_tui.core.mail_identity import subject_key


@dataclass
class MessageData:
    """What the parser derived from one message. Text here is decoded, not yet made terminal-safe."""

    raw: bytes
    message_id: str | None = None
    subject: str = ""
    from_name: str = ""
    from_address: str = ""
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    sent_at: datetime | None = None
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    body_text: str = ""
    has_attachments: bool = False
    attachments: list[tuple[str, str, int]] = field(default_factory=list)  # (name, type, size)
    problems: list[str] = field(default_factory=list)
    body_hash: str | None = None  # the identity hash (``core.mail_identity``), when the parser made it
    size: int = (
        0  # len(raw), kept when the bytes were stored apart (the sync's helper: ``mail.store.raw_writer``)
    )
    automatic: bool = False  # a bounce, report or automatic reply (``mail_identity.is_automatic``)
    # Mail coming back (an automatic one: a delivery report, RFC 3464, or a bounce quoting what it returns): the
    # Message-IDs of the returned mail, and (address, diagnostic) of each recipient a report says failed.
    returned_ids: list[str] = field(default_factory=list)
    bounced: list[tuple[str, str]] = field(default_factory=list)


# The header columns of ``mail_message``, in the order ``header_values`` gives them.
HEADER_COLUMNS = (
    "message_id_header",
    "subject",
    "subject_key",
    "from_name",
    "from_address",
    "to_addresses",
    "cc_addresses",
    "sent_at",
    "in_reply_to",
    "references",
    "parse_problems",
)


def header_values(data: MessageData) -> tuple[Any, ...]:
    """The stored form of a message's header fields, in ``HEADER_COLUMNS`` order.

    One rule for every write of them (headers first, then the body). The sync's helper process calls it too:
    a plain tuple crosses between processes ten times faster than a ``MessageData`` (1 against 11 µs a row to
    unpickle, measured), and the process that stores is the one a first sync waits for."""
    return (
        data.message_id,
        data.subject,
        subject_key(data.subject),
        data.from_name,
        data.from_address.lower(),
        "\n".join(data.to),
        "\n".join(data.cc),
        data.sent_at,
        data.in_reply_to,
        "\n".join(data.references) or None,
        "\n".join(data.problems) or None,
    )


@dataclass
class Invitation:
    """A calendar invitation (iCalendar VEVENT) found in a mail. Times are aware (UTC); text not yet safe."""

    summary: str
    start: datetime
    end: datetime | None = None
    location: str = ""
    organizer: tuple[str, str] = ("", "")  # (name, address)
    attendees: list[tuple[str, str]] = field(default_factory=list)
    method: str = ""  # REQUEST, CANCEL, ...
    uid: str = ""
    all_day: bool = False
