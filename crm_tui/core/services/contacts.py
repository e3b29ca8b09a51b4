"""Contacts: people with several addresses and phones, an organization and an owner."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, delete, func, select
from sqlalchemy import text as sql_text
from sqlmodel import Session, col

from crm_tui.core import models as m
from crm_tui.core import search_index
from crm_tui.core.errors import FieldErrors
from crm_tui.core.field_checks import check_emails, check_phones, check_text
from crm_tui.core.search_text import like_pattern, search_blob, search_terms
from crm_tui.core.services import custom_fields
from crm_tui.core.services.records import delete_record, refuse_if_changed
from crm_tui.core.services.rows import check_exists, child_values, get_or_404, owned_by_default
from crm_tui.core.types import RecordRef, RecordType


@dataclass
class ContactInput:
    first_name: str = ""
    last_name: str = ""
    emails: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)
    job_title: str | None = None
    mail_opt_out: bool = False
    organization_id: int | None = None
    owner_id: int | None = None
    street: str | None = None
    postcode: str | None = None
    city: str | None = None
    region: str | None = None
    country: str | None = None
    custom: dict[str, Any] | None = None


@dataclass(frozen=True)
class ContactSummary:
    """A contact as lists and the CLI show it: plain data, safe to pass between threads."""

    id: int
    first_name: str
    last_name: str
    job_title: str | None
    emails: tuple[str, ...]
    phones: tuple[str, ...]
    organization_id: int | None
    organization_name: str | None
    owner_id: int | None
    owner_name: str | None
    postcode: str | None
    city: str | None
    region: str | None
    created_at: datetime
    updated_at: datetime

    @property
    def name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part)


# The longest text each name takes (``_check``; forms prefilled from a mail cut to these).
MAX_LENGTHS = {"first_name": 100, "last_name": 100}


def _check(
    session: Session, data: ContactInput, *, partial_custom: bool
) -> tuple[FieldErrors, dict[str, Any]]:
    errors = FieldErrors()
    clean: dict[str, Any] = {
        name: check_text(errors, name, getattr(data, name), max_length=MAX_LENGTHS[name]) or ""
        for name in ("first_name", "last_name")
    }
    if not clean["first_name"] and not clean["last_name"] and "first_name" not in errors.errors:
        errors.add("last_name", "a contact needs a first or a last name")
    clean["emails"] = check_emails(errors, "emails", data.emails)
    clean["phones"] = check_phones(errors, "phones", data.phones)
    for name in ("job_title", "street", "postcode", "city", "region", "country"):
        clean[name] = check_text(errors, name, getattr(data, name), max_length=200)
    clean["organization"] = check_exists(
        session, errors, "organization_id", m.Organization, data.organization_id
    )
    check_exists(session, errors, "owner_id", m.User, data.owner_id)
    clean["custom"] = custom_fields.check_values(
        session, RecordType.CONTACT.value, data.custom, errors=errors, partial=partial_custom
    )
    return errors, clean


def _apply(
    session: Session, contact: m.Contact, data: ContactInput, clean: dict[str, Any], now: datetime
) -> None:
    for name in ("first_name", "last_name", "job_title", "street", "postcode", "city", "region", "country"):
        setattr(contact, name, clean[name])
    contact.organization_id = data.organization_id
    contact.owner_id = data.owner_id
    contact.mail_opt_out = data.mail_opt_out
    contact.updated_at = now
    organization = clean["organization"]
    contact.search_text = contact_search_text(
        contact, clean["emails"], clean["phones"], organization.name if organization else None
    )
    session.add(contact)
    session.flush()
    assert contact.id is not None
    session.execute(delete(m.ContactEmail).where(col(m.ContactEmail.contact_id) == contact.id))
    session.execute(delete(m.ContactPhone).where(col(m.ContactPhone.contact_id) == contact.id))
    session.info.get("contact_address_phone", {}).pop(contact.id, None)  # email_templates' memo
    session.add_all(
        m.ContactEmail(contact_id=contact.id, address=address, position=i)
        for i, address in enumerate(clean["emails"])
    )
    session.add_all(
        m.ContactPhone(contact_id=contact.id, number=number, position=i)
        for i, number in enumerate(clean["phones"])
    )
    custom_fields.store_values(session, contact.id, clean["custom"])
    session.flush()


def contact_search_text(
    contact: m.Contact, emails: list[str], phones: list[str], organization_name: str | None
) -> str:
    """What a contact is found by: name, every address, organization, phones, place."""
    return search_blob(
        contact.first_name,
        contact.last_name,
        *emails,
        organization_name,
        contact.city,
        contact.postcode,
        phones=phones,
    )


def create_contact(
    session: Session, data: ContactInput, *, now: datetime, me_id: int | None = None
) -> m.Contact:
    data = owned_by_default(data, me_id)
    errors, clean = _check(session, data, partial_custom=False)
    errors.raise_if_any()
    contact = m.Contact(created_at=now, updated_at=now)
    _apply(session, contact, data, clean, now)
    return contact


def update_contact(
    session: Session,
    contact_id: int,
    data: ContactInput,
    *,
    now: datetime,
    expected: ContactRecord | None = None,
) -> m.Contact:
    """Edit a contact. With ``expected`` (the contact as the form showed it), a contact changed or deleted
    since is refused (RecordChanged) in this same write."""
    refuse_if_changed(contact_record(session, contact_id) if expected else None, expected)
    contact = get_or_404(session, m.Contact, contact_id, "contact")
    errors, clean = _check(session, data, partial_custom=True)
    errors.raise_if_any()
    _apply(session, contact, data, clean, now)
    return contact


def delete_contact(session: Session, contact_id: int) -> list[str]:
    """Delete a contact with its comments, document rows and mail links; activities stay, without it."""
    return delete_record(session, RecordRef(RecordType.CONTACT, contact_id))


def contact_emails(session: Session, contact_id: int) -> list[str]:
    return child_values(
        session,
        col(m.ContactEmail.address),
        col(m.ContactEmail.contact_id),
        contact_id,
        col(m.ContactEmail.position),
    )


def contact_phones(session: Session, contact_id: int) -> list[str]:
    return child_values(
        session,
        col(m.ContactPhone.number),
        col(m.ContactPhone.contact_id),
        contact_id,
        col(m.ContactPhone.position),
    )


def find_by_email(session: Session, address: str) -> list[m.Contact]:
    return list(
        session.scalars(
            select(m.Contact)
            .join(m.ContactEmail, col(m.ContactEmail.contact_id) == col(m.Contact.id))
            .where(col(m.ContactEmail.address) == address.strip().lower())
            .order_by(col(m.Contact.id))
        )
    )


def refresh_search_text(session: Session, contact_ids: list[int]) -> None:
    """Recompute what these contacts are found by (after their organization was renamed or removed)."""
    for contact_id in contact_ids:
        contact = session.get(m.Contact, contact_id)
        if contact is None:
            continue
        organization = (
            session.get(m.Organization, contact.organization_id) if contact.organization_id else None
        )
        contact.search_text = contact_search_text(
            contact,
            contact_emails(session, contact_id),
            contact_phones(session, contact_id),
            organization.name if organization else None,
        )
        session.add(contact)
    session.flush()


def _filtered(session: Session, text: str | None, owner_id: int | None, organization_id: int | None) -> Any:
    query = select(col(m.Contact.id))
    terms = search_terms(text)
    indexed = search_index.match_expression(terms) if search_index.available(session) else None
    if indexed is not None:
        # Substring search through the trigram index; terms too short for trigrams filter the candidates.
        matches = sql_text("SELECT rowid FROM contact_search WHERE contact_search MATCH :match").bindparams(
            match=indexed
        )
        query = query.where(col(m.Contact.id).in_(matches.columns(rowid=Integer)))
        terms = [term for term in terms if len(term) < search_index.MIN_TERM]
    for term in terms:
        query = query.where(col(m.Contact.search_text).like(like_pattern(term), escape="\\"))
    if owner_id is not None:
        query = query.where(col(m.Contact.owner_id) == owner_id)
    if organization_id is not None:
        query = query.where(col(m.Contact.organization_id) == organization_id)
    return query


def search_contacts(
    session: Session,
    text: str | None = None,
    *,
    owner_id: int | None = None,
    organization_id: int | None = None,
    limit: int | None = 50,
    offset: int = 0,
) -> list[ContactSummary]:
    """One page of contacts matching every word of ``text`` (name, any address, organization, phone, place),
    sorted by last and first name. The filtering and paging happen in the database."""
    query = _filtered(session, text, owner_id, organization_id).order_by(
        col(m.Contact.last_name), col(m.Contact.first_name), col(m.Contact.id)
    )
    query = query.offset(offset)
    if limit is not None:
        query = query.limit(limit)
    ids = list(session.scalars(query))
    return summaries(session, ids)


def count_contacts(
    session: Session,
    text: str | None = None,
    *,
    owner_id: int | None = None,
    organization_id: int | None = None,
    cap: int | None = None,
) -> int:
    """How many contacts match; with ``cap``, counting stops after cap + 1 (a list says "1000+"), so a short
    term that no index serves does not scan the whole table on every keystroke."""
    query = _filtered(session, text, owner_id, organization_id)
    if cap is not None:
        query = query.limit(cap + 1)
    return int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)


def summaries(session: Session, ids: list[int]) -> list[ContactSummary]:
    """Plain summaries of the contacts with these ids, in the order given (three queries, whatever the count)."""
    if not ids:
        return []
    rows = session.execute(
        select(m.Contact, col(m.Organization.name), col(m.User.name))
        .outerjoin(m.Organization, col(m.Organization.id) == col(m.Contact.organization_id))
        .outerjoin(m.User, col(m.User.id) == col(m.Contact.owner_id))
        .where(col(m.Contact.id).in_(ids))
    ).all()
    emails: dict[int, list[str]] = defaultdict(list)
    for contact_id, address in session.execute(
        select(col(m.ContactEmail.contact_id), col(m.ContactEmail.address))
        .where(col(m.ContactEmail.contact_id).in_(ids))
        .order_by(col(m.ContactEmail.contact_id), col(m.ContactEmail.position))
    ):
        emails[contact_id].append(address)
    phones: dict[int, list[str]] = defaultdict(list)
    for contact_id, number in session.execute(
        select(col(m.ContactPhone.contact_id), col(m.ContactPhone.number))
        .where(col(m.ContactPhone.contact_id).in_(ids))
        .order_by(col(m.ContactPhone.contact_id), col(m.ContactPhone.position))
    ):
        phones[contact_id].append(number)
    by_id = {}
    for contact, organization_name, owner_name in rows:
        by_id[contact.id] = ContactSummary(
            id=contact.id,
            first_name=contact.first_name,
            last_name=contact.last_name,
            job_title=contact.job_title,
            emails=tuple(emails[contact.id]),
            phones=tuple(phones[contact.id]),
            organization_id=contact.organization_id,
            organization_name=organization_name,
            owner_id=contact.owner_id,
            owner_name=owner_name,
            postcode=contact.postcode,
            city=contact.city,
            region=contact.region,
            created_at=contact.created_at,
            updated_at=contact.updated_at,
        )
    return [by_id[i] for i in ids if i in by_id]


@dataclass(frozen=True)
class ContactRecord:
    """A contact as its form shows it (and as an edit expects to find it)."""

    id: int
    first_name: str
    last_name: str
    job_title: str | None
    emails: tuple[str, ...]
    phones: tuple[str, ...]
    organization_id: int | None
    organization_name: str | None
    owner_id: int | None
    owner_name: str | None = field(compare=False)  # the detail pane's; a renamed user changes no contact
    street: str | None
    postcode: str | None
    city: str | None
    region: str | None
    country: str | None
    mail_opt_out: bool
    custom: tuple[tuple[str, Any], ...]
    updated_at: datetime

    @property
    def name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part)


def contact_record(session: Session, contact_id: int) -> ContactRecord | None:
    """The contact with its addresses, phones, organization's name and custom values; None if there is none."""
    row = session.execute(
        select(m.Contact, col(m.Organization.name), col(m.User.name))
        .outerjoin(m.Organization, col(m.Organization.id) == col(m.Contact.organization_id))
        .outerjoin(m.User, col(m.User.id) == col(m.Contact.owner_id))
        .where(col(m.Contact.id) == contact_id)
    ).first()
    if row is None:
        return None
    contact, organization_name, owner_name = row
    return ContactRecord(
        id=contact_id,
        first_name=contact.first_name,
        last_name=contact.last_name,
        job_title=contact.job_title,
        emails=tuple(contact_emails(session, contact_id)),
        phones=tuple(contact_phones(session, contact_id)),
        organization_id=contact.organization_id,
        organization_name=organization_name,
        owner_id=contact.owner_id,
        owner_name=owner_name,
        street=contact.street,
        postcode=contact.postcode,
        city=contact.city,
        region=contact.region,
        country=contact.country,
        mail_opt_out=bool(contact.mail_opt_out),
        custom=custom_fields.values_of(session, RecordRef(RecordType.CONTACT, contact_id)),
        updated_at=contact.updated_at,
    )
