"""The uniform record reference in use: resolve ``TYPE:ID``, label it, and detach what hangs on it."""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlmodel import Session, SQLModel, col

from crm_tui.core import models as m
from crm_tui.core.errors import NotFound, RecordChanged
from crm_tui.core.types import RecordRef, RecordType

MODEL_FOR: dict[RecordType, type[SQLModel]] = {
    RecordType.USER: m.User,
    RecordType.ORGANIZATION: m.Organization,
    RecordType.CONTACT: m.Contact,
    RecordType.LEAD: m.Lead,
    RecordType.PIPELINE: m.Pipeline,
    RecordType.STAGE: m.Stage,
    RecordType.OPPORTUNITY: m.Opportunity,
    RecordType.ACTIVITY: m.Activity,
    RecordType.QUOTE: m.Quote,
    RecordType.TICKET: m.Ticket,
    RecordType.COMMENT: m.Comment,
    RecordType.DOCUMENT: m.Document,
    RecordType.MESSAGE: m.MailMessage,
}

# Record types that comments, documents, mail links and custom fields can hang on.
ATTACHABLE = frozenset(
    {
        RecordType.ORGANIZATION,
        RecordType.CONTACT,
        RecordType.LEAD,
        RecordType.OPPORTUNITY,
        RecordType.ACTIVITY,
        RecordType.QUOTE,
        RecordType.TICKET,
    }
)


def get_record(session: Session, ref: RecordRef) -> SQLModel:
    row = session.get(MODEL_FOR[ref.type], ref.id)
    if row is None:
        raise NotFound(f"{ref} does not exist")
    return row


def record_exists(session: Session, ref: RecordRef) -> bool:
    return session.get(MODEL_FOR[ref.type], ref.id) is not None


def record_label(session: Session, ref: RecordRef) -> str:
    """A short human name for the record ("Anna Berg", "Q-2026-0003", "Solar roof for Nordwind")."""
    row = get_record(session, ref)
    if isinstance(row, m.Contact):
        return row.name or f"contact {row.id}"
    if isinstance(row, m.Quote):
        return row.number
    if isinstance(row, m.MailMessage | m.Ticket):
        return row.subject or "(no subject)"
    if isinstance(row, m.Document):
        return row.filename
    if isinstance(row, m.Comment):
        return row.body.splitlines()[0][:60] if row.body else "(empty comment)"
    for attribute in ("title", "name", "subject", "person_name", "company_name"):
        value = getattr(row, attribute, None)
        if value:
            return str(value)
    return str(ref)


# What a person calls each kind in a sentence (the reference's word otherwise).
NOUNS = {RecordType.OPPORTUNITY: "deal", RecordType.MESSAGE: "mail"}


def record_noun(record_type: RecordType) -> str:
    return NOUNS.get(record_type, record_type.value)


def record_named(session: Session, ref: RecordRef, *, max_length: int = 60) -> str:
    """The record's kind and name for a message ('lead “Wärmepumpe für den Neubau”', 'deal “Solar roof”',
    'activity “Angebot nachfassen”'), never its id; a long name is cut (with an ellipsis). Raises NotFound for a
    record that is gone."""
    label = " ".join(record_label(session, ref).split())
    if len(label) > max_length:
        label = label[: max_length - 1] + "…"
    return f"{record_noun(ref.type)} “{label}”"


def delete_record(session: Session, ref: RecordRef) -> list[str]:
    """Delete a record with what hangs on it (comments, document rows, mail links, custom values).

    Returns the stored files no document row refers to any more: the caller removes them once the transaction
    has committed (``attachments.remove_files``), so a rolled-back delete never loses a file.
    """
    row = get_record(session, ref)
    stored = detach_record(session, ref)
    if isinstance(row, m.Document):
        stored.append(row.stored_name)
    session.delete(row)
    session.flush()
    return [
        name
        for name in dict.fromkeys(stored)
        if not session.scalar(
            select(func.count()).select_from(m.Document).where(col(m.Document.stored_name) == name)
        )
    ]


def detach_record(session: Session, ref: RecordRef) -> list[str]:
    """Remove the comments, document rows, mail links and custom values of a record about to be deleted.

    Returns the stored names of the documents whose rows were removed (other rows may still share a file).
    """
    rtype = ref.type.value
    stored = list(
        session.scalars(
            select(col(m.Document.stored_name)).where(
                col(m.Document.record_type) == rtype, col(m.Document.record_id) == ref.id
            )
        )
    )
    for model in (m.Comment, m.Document, m.MailLink):
        session.execute(delete(model).where(col(model.record_type) == rtype, col(model.record_id) == ref.id))
    definition_ids = select(col(m.CustomFieldDefinition.id)).where(
        col(m.CustomFieldDefinition.entity_type) == rtype
    )
    session.execute(
        delete(m.CustomFieldValue).where(
            col(m.CustomFieldValue.record_id) == ref.id,
            col(m.CustomFieldValue.definition_id).in_(definition_ids),
        )
    )
    return stored


def refuse_if_changed(current: object | None, expected: object | None) -> None:
    """An edit's check inside its write: ``expected`` is the record as the form showed it (a service's plain
    record with its ``updated_at``; None: no check); the record as it is now differs, or is gone:
    RecordChanged. Comparing the fields too catches an edit made at the same instant by another clock."""
    if expected is not None and current != expected:
        raise RecordChanged(current)
