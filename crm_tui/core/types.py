"""Column types and the uniform record reference."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """A date-time stored in UTC and always returned timezone-aware.

    SQLite has no time zones, so values are stored as naive UTC there; PostgreSQL gets ``timestamptz``.
    A naive datetime is refused rather than guessed.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
            raise ValueError(f"naive datetime {value.isoformat()} cannot be stored (a time zone is required)")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


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
