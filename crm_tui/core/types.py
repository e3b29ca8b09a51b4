"""Plain types the UI may use as well as the core: the records' enumerations and the uniform record
reference. No SQLAlchemy here (the column type is ``core.columns``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

# --- the records' enumerations (stored as their string values) --------------------------------------


class OrganizationKind(StrEnum):
    CUSTOMER = "customer"
    INSTALLER = "installer"
    RESELLER = "reseller"


class LeadStatus(StrEnum):
    NEW = "new"
    CONTACTED = "contacted"
    QUALIFIED = "qualified"
    DISQUALIFIED = "disqualified"
    CONVERTED = "converted"


class StageKind(StrEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


class ActivityType(StrEnum):
    CALL = "call"
    MEETING = "meeting"
    TASK = "task"
    EMAIL = "email"
    OTHER = "other"


class ActivityStatus(StrEnum):
    PLANNED = "planned"
    DONE = "done"
    CANCELLED = "cancelled"


class QuoteStatus(StrEnum):
    DRAFT = "draft"
    SENT = "sent"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class TicketStatus(StrEnum):
    OPEN = "open"
    PENDING = "pending"
    CLOSED = "closed"


class CustomFieldType(StrEnum):
    TEXT = "text"
    NUMBER = "number"
    DATE = "date"
    BOOLEAN = "boolean"
    CHOICE = "choice"


class HistoryKind(StrEnum):
    STAGE = "stage"
    SUBSTATE = "substate"


class RecordType(StrEnum):
    """Every kind of record a reference can point at (``TYPE:ID``)."""

    USER = "user"
    ORGANIZATION = "organization"
    CONTACT = "contact"
    LEAD = "lead"
    PIPELINE = "pipeline"
    STAGE = "stage"
    OPPORTUNITY = "opportunity"
    ACTIVITY = "activity"
    QUOTE = "quote"
    TICKET = "ticket"
    COMMENT = "comment"
    DOCUMENT = "document"
    MESSAGE = "message"


_REF_RE = re.compile(r"^([a-z]+):([1-9][0-9]{0,17})$")


@dataclass(frozen=True, order=True)
class RecordRef:
    """A record named by type and id, written ``TYPE:ID`` (``contact:42``)."""

    type: RecordType
    id: int

    def __str__(self) -> str:
        return f"{self.type.value}:{self.id}"

    @classmethod
    def parse(cls, text: str) -> RecordRef:
        match = _REF_RE.match(text.strip().lower())
        if not match:
            raise ValueError(f"not a record reference (TYPE:ID, e.g. contact:42): {text!r}")
        try:
            record_type = RecordType(match.group(1))
        except ValueError:
            known = ", ".join(t.value for t in RecordType)
            raise ValueError(f"unknown record type {match.group(1)!r} (known: {known})") from None
        return cls(record_type, int(match.group(2)))

    @classmethod
    def of(cls, record_type: RecordType | str, record_id: int) -> RecordRef:
        return cls(RecordType(record_type), int(record_id))


def ref_str(record_type: RecordType | str, record_id: int | None) -> str | None:
    """``TYPE:ID`` for an optional id (None stays None): the form ids take in JSON output."""
    if record_id is None:
        return None
    return f"{RecordType(record_type).value}:{record_id}"


def stored_id(record_id: int | None) -> int:
    """The id of a row read from the database or flushed to it: a model types its id ``int | None``, None
    only before the row is written."""
    if record_id is None:
        raise ValueError("a row without its id: it was never written")
    return record_id
