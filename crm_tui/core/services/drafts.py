"""Drafts: a mail being written is saved as it is written; it can be taken up again (R in the inbox) and goes
when the mail is sent or discarded. The copy in the account's Drafts folder is kept by ``mail.drafts``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session, col

from crm_tui.core import models as m
from crm_tui.core.errors import NotFound
from crm_tui.core.services.rows import id_of


@dataclass
class DraftFields:
    account_id: int
    from_address: str
    to: str
    cc: str
    bcc: str
    subject: str
    body: str
    in_reply_to: str | None
    references: list[str]
    raw: bytes
    reply_to_id: int | None = None
    record: tuple[str, int] | None = None


def save(session: Session, draft_id: int | None, fields: DraftFields, *, now: datetime) -> m.MailDraft:
    """Create or update a draft. Returns it (its id to save it again)."""
    draft = session.get(m.MailDraft, draft_id) if draft_id is not None else None
    if draft is None:
        draft = m.MailDraft(account_id=fields.account_id, from_address=fields.from_address)
        session.add(draft)
    draft.account_id, draft.from_address = fields.account_id, fields.from_address
    draft.to, draft.cc, draft.bcc = fields.to, fields.cc, fields.bcc
    draft.subject, draft.body, draft.raw = fields.subject, fields.body, fields.raw
    draft.in_reply_to, draft.references = fields.in_reply_to, "\n".join(fields.references) or None
    draft.reply_to_id = fields.reply_to_id
    draft.record_type, draft.record_id = fields.record if fields.record else (None, None)
    draft.updated_at = now
    session.flush()
    return draft


def get(session: Session, draft_id: int) -> m.MailDraft:
    draft = session.get(m.MailDraft, draft_id)
    if draft is None:
        raise NotFound(f"no draft {draft_id}")
    return draft


def list_drafts(session: Session) -> list[m.MailDraft]:
    return list(session.scalars(select(m.MailDraft).order_by(col(m.MailDraft.updated_at).desc())))


@dataclass(frozen=True)
class SavedDraft:
    """A saved draft as the drafts list names it and as compose takes it up again."""

    id: int
    account_id: int
    from_address: str
    to: str
    cc: str
    bcc: str
    subject: str
    body: str
    in_reply_to: str | None
    references: tuple[str, ...]
    raw: bytes
    reply_to_id: int | None
    record: tuple[str, int] | None
    updated_at: datetime


def _saved(draft: m.MailDraft) -> SavedDraft:
    return SavedDraft(
        id=id_of(draft),
        account_id=draft.account_id,
        from_address=draft.from_address,
        to=draft.to,
        cc=draft.cc,
        bcc=draft.bcc,
        subject=draft.subject,
        body=draft.body,
        in_reply_to=draft.in_reply_to,
        references=tuple((draft.references or "").splitlines()),
        raw=bytes(draft.raw or b""),
        reply_to_id=draft.reply_to_id,
        record=(draft.record_type, draft.record_id) if draft.record_type and draft.record_id else None,
        updated_at=draft.updated_at,
    )


def saved_drafts(session: Session) -> list[SavedDraft]:
    """Every saved draft, the newest first."""
    return [_saved(draft) for draft in list_drafts(session)]


def saved_draft(session: Session, draft_id: int) -> SavedDraft:
    """One saved draft (NotFound: gone)."""
    return _saved(get(session, draft_id))


def remove(session: Session, draft_id: int) -> tuple[int, str] | None:
    """Delete a draft (sent or discarded); returns where its copy in the Drafts folder is (account id,
    Message-ID), for that to go too, or None when it has none."""
    draft = session.get(m.MailDraft, draft_id)
    if draft is None:
        return None
    session.delete(draft)
    session.flush()
    return (draft.account_id, draft.server_message_id) if draft.server_message_id else None
