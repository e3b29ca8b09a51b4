"""What the parser derives from one message: plain data, importable without the database layer (the parse
process imports only this and the email package, so it starts fast)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


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
