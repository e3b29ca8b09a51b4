"""Stored mail, minimal: the raw bytes plus what the list and preview need, and links to records.

Parsing lives in ``crm_tui.mail`` (it knows the hostile mail out there); the core only stores what it is
handed and keeps the raw bytes as the source of truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlmodel import Session, col

from crm_tui.core import mail_threads
from crm_tui.core import models as m
from crm_tui.core.errors import FieldErrors, ValidationError
from crm_tui.core.mail_data import MessageData
from crm_tui.core.mail_identity import subject_key
from crm_tui.core.services.records import ATTACHABLE, record_exists
from crm_tui.core.services.rows import get_or_404
from crm_tui.core.types import RecordRef

__all__ = ["MessageData"]


@dataclass(frozen=True)
class MessageSummary:
    id: int
    subject: str
    from_name: str
    from_address: str
    sent_at: datetime | None
    is_read: bool
    is_outgoing: bool
    has_attachments: bool
    has_problems: bool
    first_recipient: str = ""
    is_flagged: bool = False


def store_message(
    session: Session, data: MessageData, *, now: datetime, outgoing: bool = False
) -> m.MailMessage:
    if not isinstance(data.raw, bytes | bytearray) or not data.raw:
        raise ValidationError.single("raw", "a message needs its raw bytes")
    message = m.MailMessage(
        message_id_header=data.message_id,
        subject=data.subject,
        from_name=data.from_name,
        from_address=data.from_address.lower(),
        to_addresses="\n".join(data.to),
        cc_addresses="\n".join(data.cc),
        sent_at=data.sent_at,
        in_reply_to=data.in_reply_to,
        references="\n".join(data.references) or None,
        body_text=data.body_text,
        has_attachments=data.has_attachments,
        parse_problems="\n".join(data.problems) or None,
        size=len(data.raw),
        is_outgoing=outgoing,
        received_at=now,
        is_automatic=data.automatic,
        subject_key=subject_key(data.subject),
    )
    session.add(message)
    session.flush()
    assert message.id is not None  # flushed
    message.thread_id = mail_threads.assign(session, [mail_threads.thread_input(message)])[message.id]
    mail_threads.close_answered_follow_ups(session, now=now)
    session.add(m.MailRaw(message_id=message.id, raw=bytes(data.raw)))
    session.flush()
    return message


def link_message(
    session: Session, message_id: int, ref: RecordRef, *, reason: str, now: datetime
) -> m.MailLink:
    """File a message on a record (idempotent: an existing link is returned as it is)."""
    get_or_404(session, m.MailMessage, message_id, "message")
    errors = FieldErrors()
    if ref.type not in ATTACHABLE:
        errors.add("record", f"mail cannot be filed on {ref.type.value} records")
    elif not record_exists(session, ref):
        errors.add("record", f"{ref} does not exist")
    errors.raise_if_any()
    existing = session.scalars(
        select(m.MailLink).where(
            col(m.MailLink.message_id) == message_id,
            col(m.MailLink.record_type) == ref.type.value,
            col(m.MailLink.record_id) == ref.id,
        )
    ).first()
    if existing is not None:
        return existing
    link = m.MailLink(
        message_id=message_id, record_type=ref.type.value, record_id=ref.id, reason=reason, created_at=now
    )
    session.add(link)
    session.flush()
    return link


def links_of(session: Session, message_id: int) -> list[m.MailLink]:
    return list(
        session.scalars(
            select(m.MailLink).where(col(m.MailLink.message_id) == message_id).order_by(col(m.MailLink.id))
        )
    )


def messages_on(session: Session, ref: RecordRef) -> list[MessageSummary]:
    ids = select(col(m.MailLink.message_id)).where(
        col(m.MailLink.record_type) == ref.type.value, col(m.MailLink.record_id) == ref.id
    )
    return _summaries(session, select(m.MailMessage).where(col(m.MailMessage.id).in_(ids)))


def list_messages(
    session: Session, *, limit: int | None = 50, offset: int = 0, where: Any = None
) -> list[MessageSummary]:
    """A page of stored messages, newest first (``where``: a condition, e.g. from ``mail_search``)."""
    query = select(m.MailMessage)
    if where is not None:
        query = query.where(where)
    return _summaries(session, query, limit=limit, offset=offset)


def count_messages(session: Session, *, where: Any = None, cap: int | None = None) -> int:
    """How many messages (match ``where``); with ``cap``, counting stops just past it."""
    query = select(col(m.MailMessage.id))
    if where is not None:
        query = query.where(where)
    if cap is not None:
        query = query.limit(cap + 1)
    return int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)


def _summaries(
    session: Session, query: Select[m.MailMessage], *, limit: int | None = None, offset: int = 0
) -> list[MessageSummary]:
    query = query.order_by(col(m.MailMessage.sent_at).desc(), col(m.MailMessage.id).desc()).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    # Select only the columns a list needs: never the raw blob or the body.
    columns = query.with_only_columns(
        col(m.MailMessage.id),
        col(m.MailMessage.subject),
        col(m.MailMessage.from_name),
        col(m.MailMessage.from_address),
        col(m.MailMessage.sent_at),
        col(m.MailMessage.is_read),
        col(m.MailMessage.is_outgoing),
        col(m.MailMessage.has_attachments),
        col(m.MailMessage.parse_problems),
        col(m.MailMessage.to_addresses),
        col(m.MailMessage.is_flagged),
    )
    return [
        MessageSummary(
            id=row.id,
            subject=row.subject,
            from_name=row.from_name,
            from_address=row.from_address,
            sent_at=row.sent_at,
            is_read=row.is_read,
            is_outgoing=row.is_outgoing,
            has_attachments=row.has_attachments,
            has_problems=bool(row.parse_problems),
            first_recipient=row.to_addresses.split("\n", 1)[0],
            is_flagged=row.is_flagged,
        )
        for row in session.execute(columns)
    ]
