"""Leads: prospects that convert into a contact, an organization and an opportunity.

Conversion is one use case: the caller runs ``convert_lead`` inside one ``db.write()``. What it will do can be
shown first with ``plan_conversion`` (the UI shows it before the user confirms).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlmodel import Session, col

from crm_tui.core import models as m
from crm_tui.core.addresses import domain_of
from crm_tui.core.automation import fields as rule_fields
from crm_tui.core.automation import schedule
from crm_tui.core.db import execute_core
from crm_tui.core.errors import FieldErrors, ValidationError
from crm_tui.core.field_checks import check_choice, check_emails, check_phones, check_text
from crm_tui.core.free_mail import free_domains, is_free
from crm_tui.core.search_text import search_blob
from crm_tui.core.services import custom_fields
from crm_tui.core.services.attachments import copy_document, documents_on
from crm_tui.core.services.contacts import ContactInput, create_contact, find_by_email
from crm_tui.core.services.mail_store import link_message
from crm_tui.core.services.opportunities import OpportunityInput, create_opportunity
from crm_tui.core.services.organizations import (
    OrganizationInput,
    create_organization,
    find_by_domain,
    find_by_name,
)
from crm_tui.core.services.pipelines import first_open_stage
from crm_tui.core.services.records import delete_record, refuse_if_changed
from crm_tui.core.services.rows import (
    check_exists,
    child_values,
    get_or_404,
    id_of,
    matching_every_word,
    owned_by_default,
)
from crm_tui.core.types import RecordRef, RecordType

EDITABLE_STATUSES = [s.value for s in m.LeadStatus if s is not m.LeadStatus.CONVERTED]
# The longest text each field takes (``_check``; forms prefilled from a mail cut to these).
MAX_LENGTHS = {"title": 200, "person_name": 200, "company_name": 200, "source": 200, "description": 20000}


@dataclass
class LeadInput:
    title: str
    person_name: str | None = None
    emails: list[str] = field(default_factory=list)
    phone: str | None = None
    company_name: str | None = None
    source: str | None = None
    status: str = m.LeadStatus.NEW.value
    owner_id: int | None = None
    organization_id: int | None = None
    contact_id: int | None = None
    description: str | None = None
    custom: dict[str, Any] | None = None
    mail_opt_out: bool = False


def _check(session: Session, data: LeadInput, *, partial_custom: bool) -> tuple[FieldErrors, dict[str, Any]]:
    errors = FieldErrors()
    clean: dict[str, Any] = {
        "title": check_text(errors, "title", data.title, required=True, max_length=MAX_LENGTHS["title"])
    }
    for name in ("person_name", "company_name", "source", "description"):
        clean[name] = check_text(errors, name, getattr(data, name), max_length=MAX_LENGTHS[name])
    clean["emails"] = check_emails(errors, "emails", data.emails)
    phones = check_phones(errors, "phone", [data.phone] if data.phone else [])
    clean["phone"] = phones[0] if phones else None
    check_choice(errors, "status", data.status, EDITABLE_STATUSES)
    check_exists(session, errors, "owner_id", m.User, data.owner_id)
    check_exists(session, errors, "organization_id", m.Organization, data.organization_id)
    check_exists(session, errors, "contact_id", m.Contact, data.contact_id)
    clean["custom"] = custom_fields.check_values(
        session, RecordType.LEAD.value, data.custom, errors=errors, partial=partial_custom
    )
    return errors, clean


def _apply(session: Session, lead: m.Lead, data: LeadInput, clean: dict[str, Any], now: datetime) -> None:
    for name in ("title", "person_name", "company_name", "source", "description", "phone"):
        setattr(lead, name, clean[name])
    lead.owner_id = data.owner_id
    lead.organization_id = data.organization_id
    lead.contact_id = data.contact_id
    lead.mail_opt_out = data.mail_opt_out
    lead.updated_at = now
    lead.search_text = search_blob(
        clean["title"],
        clean["person_name"],
        clean["company_name"],
        *clean["emails"],
        clean["source"],
        phones=[clean["phone"]] if clean["phone"] else [],
    )
    is_new = lead.id is None
    session.add(lead)
    session.flush()
    if not is_new:
        session.execute(delete(m.LeadEmail).where(col(m.LeadEmail.lead_id) == lead.id))
    if clean["emails"]:
        execute_core(
            session,
            insert(m.LeadEmail),
            [{"lead_id": lead.id, "address": a, "position": i} for i, a in enumerate(clean["emails"])],
        )
    custom_fields.store_values(session, id_of(lead), clean["custom"])
    session.flush()


def create_lead(session: Session, data: LeadInput, *, now: datetime, me_id: int | None = None) -> m.Lead:
    data = owned_by_default(data, me_id)
    errors, clean = _check(session, data, partial_custom=False)
    errors.raise_if_any()
    lead = m.Lead(title=clean["title"], status=data.status, created_at=now)
    _apply(session, lead, data, clean, now)
    schedule.record_created(session, "lead", lead, now=now)
    return lead


def update_lead(
    session: Session, lead_id: int, data: LeadInput, *, now: datetime, expected: LeadRecord | None = None
) -> m.Lead:
    """Edit a lead. With ``expected`` (as its form showed it), a lead changed or deleted since is refused
    (RecordChanged) in this same write."""
    refuse_if_changed(lead_record(session, lead_id) if expected else None, expected)
    """Edit a lead. A converted lead keeps its status; other statuses may be set freely (not 'converted')."""
    lead = get_or_404(session, m.Lead, lead_id, "lead")
    errors, clean = _check(session, data, partial_custom=True)
    errors.raise_if_any()
    before = rule_fields.record_values(session, "lead", lead, custom=False)
    previous = lead.status
    _apply(session, lead, data, clean, now)
    if lead.status != m.LeadStatus.CONVERTED.value:
        lead.status = data.status
    session.add(lead)
    session.flush()
    after = rule_fields.record_values(session, "lead", lead, custom=False)
    schedule.status_changed(session, "lead", lead, previous, now=now)
    schedule.fields_changed(session, "lead", lead, [n for n in before if before[n] != after[n]], now=now)
    return lead


def delete_lead(session: Session, lead_id: int) -> list[str]:
    return delete_record(session, RecordRef(RecordType.LEAD, lead_id))


def lead_emails(session: Session, lead_id: int) -> list[str]:
    return child_values(
        session, col(m.LeadEmail.address), col(m.LeadEmail.lead_id), lead_id, col(m.LeadEmail.position)
    )


def search_leads(
    session: Session,
    text: str | None = None,
    *,
    status: str | None = None,
    limit: int | None = 50,
    offset: int = 0,
) -> list[m.Lead]:
    query = select(m.Lead)
    query = matching_every_word(query, col(m.Lead.search_text), text)
    if status:
        query = query.where(col(m.Lead.status) == status)
    query = query.order_by(col(m.Lead.created_at).desc(), col(m.Lead.id).desc()).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


# --- conversion ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConversionPlan:
    """What converting a lead will do. ``*_id`` set: attach to that record; else a new one is created."""

    lead_id: int
    contact_id: int | None
    contact_name: str
    contact_emails: tuple[str, ...]
    organization_id: int | None
    organization_name: str | None
    opportunity_title: str
    reasons: tuple[str, ...]

    @property
    def creates_contact(self) -> bool:
        return self.contact_id is None

    @property
    def creates_organization(self) -> bool:
        return self.organization_id is None and self.organization_name is not None


@dataclass(frozen=True)
class ConversionResult:
    lead_id: int
    contact_id: int
    organization_id: int | None
    opportunity_id: int | None
    created: tuple[str, ...]


def plan_conversion(session: Session, lead_id: int) -> ConversionPlan:
    """Find what the lead attaches to: its own links first, then a contact by address, an organization by
    e-mail domain (not a freemail one) or by company name. Nothing is written."""
    lead = get_or_404(session, m.Lead, lead_id, "lead")
    if lead.status == m.LeadStatus.CONVERTED.value:
        raise ValidationError.single("status", "this lead is converted already")
    emails = lead_emails(session, lead_id)
    reasons: list[str] = []
    contact: m.Contact | None = session.get(m.Contact, lead.contact_id) if lead.contact_id else None
    if contact is not None:
        reasons.append(f"contact: the lead comes from contact:{contact.id}")
    else:
        for address in emails:
            found = find_by_email(session, address)
            if found:
                contact = found[0]
                reasons.append(f"contact: {address} belongs to contact:{contact.id}")
                break
    organization: m.Organization | None = None
    if lead.organization_id:
        organization = session.get(m.Organization, lead.organization_id)
        reasons.append(f"organization: the lead comes from organization:{lead.organization_id}")
    elif contact is not None and contact.organization_id:
        organization = session.get(m.Organization, contact.organization_id)
        reasons.append(f"organization: the contact's organization:{contact.organization_id}")
    else:
        for address in emails:
            domain = domain_of(address)
            if not domain or is_free(domain):
                continue
            organization = find_by_domain(session, domain)
            if organization is not None:
                reasons.append(f"organization: domain {domain} belongs to organization:{organization.id}")
                break
        if organization is None and lead.company_name:
            organization = find_by_name(session, lead.company_name)
            if organization is not None:
                reasons.append(
                    f"organization: the name {lead.company_name!r} matches organization:{organization.id}"
                )
    contact_name = contact.name if contact else (lead.person_name or lead.title)
    return ConversionPlan(
        lead_id=lead_id,
        contact_id=contact.id if contact else None,
        contact_name=contact_name,
        contact_emails=tuple(emails),
        organization_id=organization.id if organization else None,
        organization_name=organization.name if organization else lead.company_name,
        opportunity_title=lead.title,
        reasons=tuple(reasons),
    )


def _split_name(full: str) -> tuple[str, str]:
    parts = full.strip().rsplit(" ", 1)
    return (parts[0], parts[1]) if len(parts) == 2 else ("", parts[0])


def convert_lead(
    session: Session,
    lead_id: int,
    *,
    now: datetime,
    user_id: int | None,
    pipeline_id: int | None,
    stage_id: int | None = None,
    amount_cents: int = 0,
    currency: str = "EUR",
    expected_close: date | None = None,
    opportunity_title: str | None = None,
    contact_id: int | None = None,
    organization_id: int | None = None,
) -> ConversionResult:
    """Convert a lead: contact and organization (found or created, or the ones given), and an opportunity in
    ``pipeline_id`` (None: no opportunity). Activities, mail links, comments and documents come along; the lead
    stays, marked converted, pointing at what it became."""
    lead = get_or_404(session, m.Lead, lead_id, "lead")
    if lead.status == m.LeadStatus.DISQUALIFIED.value:
        raise ValidationError.single("status", "a disqualified lead cannot be converted; requalify it first")
    plan = plan_conversion(session, lead_id)
    errors = FieldErrors()
    chosen_contact = check_exists(session, errors, "contact_id", m.Contact, contact_id)
    chosen_org = check_exists(session, errors, "organization_id", m.Organization, organization_id)
    if pipeline_id is not None:
        check_exists(session, errors, "pipeline_id", m.Pipeline, pipeline_id)
    errors.raise_if_any()
    created: list[str] = []

    org_id = chosen_org.id if chosen_org else plan.organization_id
    if org_id is None and plan.organization_name:
        domains = sorted({domain_of(a) for a in plan.contact_emails} - free_domains() - {""})
        org = create_organization(
            session,
            OrganizationInput(
                name=plan.organization_name, domains=domains, owner_id=lead.owner_id or user_id
            ),
            now=now,
        )
        org_id = org.id
        created.append(f"organization:{org_id}")

    person_id = chosen_contact.id if chosen_contact else plan.contact_id
    if person_id is None:
        first, last = _split_name(lead.person_name or lead.title)
        contact = create_contact(
            session,
            ContactInput(
                first_name=first,
                last_name=last,
                emails=list(plan.contact_emails),
                phones=[lead.phone] if lead.phone else [],
                organization_id=org_id,
                owner_id=lead.owner_id or user_id,
            ),
            now=now,
        )
        person_id = contact.id
        created.append(f"contact:{person_id}")
    assert person_id is not None

    deal_id: int | None = None
    if pipeline_id is not None:
        deal = create_opportunity(
            session,
            OpportunityInput(
                title=opportunity_title or lead.title,
                pipeline_id=pipeline_id,
                stage_id=stage_id if stage_id is not None else first_open_stage(session, pipeline_id).id,
                amount_cents=amount_cents,
                currency=currency,
                expected_close=expected_close,
                owner_id=lead.owner_id or user_id,
                organization_id=org_id,
                contact_ids=[person_id],
                primary_contact_id=person_id,
                source_lead_id=lead_id,
                description=lead.description,
            ),
            now=now,
            user_id=user_id,
        )
        deal_id = deal.id
        created.append(f"opportunity:{deal_id}")

    _carry_over(session, lead_id, person_id, org_id, deal_id, now=now)
    previous_status = lead.status
    lead.status = m.LeadStatus.CONVERTED.value
    lead.converted_contact_id = person_id
    lead.converted_organization_id = org_id
    lead.converted_opportunity_id = deal_id
    lead.converted_at = now
    lead.updated_at = now
    session.add(lead)
    session.flush()
    schedule.status_changed(session, "lead", lead, previous_status, now=now)
    return ConversionResult(lead_id, person_id, org_id, deal_id, tuple(created))


def _carry_over(
    session: Session, lead_id: int, contact_id: int, org_id: int | None, deal_id: int | None, *, now: datetime
) -> None:
    """The lead's activities, mail, comments and documents also belong to what it became. The lead keeps its
    own links, so it still shows its history."""
    session.execute(
        update(m.Activity)
        .where(col(m.Activity.lead_id) == lead_id, col(m.Activity.contact_id).is_(None))
        .values(contact_id=contact_id)
    )
    if deal_id is not None:
        session.execute(
            update(m.Activity)
            .where(col(m.Activity.lead_id) == lead_id, col(m.Activity.opportunity_id).is_(None))
            .values(opportunity_id=deal_id)
        )
    if org_id is not None:
        session.execute(
            update(m.Activity)
            .where(col(m.Activity.lead_id) == lead_id, col(m.Activity.organization_id).is_(None))
            .values(organization_id=org_id)
        )
    lead_ref = RecordRef(RecordType.LEAD, lead_id)
    targets = [RecordRef(RecordType.CONTACT, contact_id)]
    if deal_id is not None:
        targets.append(RecordRef(RecordType.OPPORTUNITY, deal_id))
    message_ids = session.scalars(
        select(col(m.MailLink.message_id)).where(
            col(m.MailLink.record_type) == lead_ref.type.value, col(m.MailLink.record_id) == lead_id
        )
    ).all()
    for message_id in message_ids:
        for target in targets:
            link_message(session, message_id, target, reason=f"converted from {lead_ref}", now=now)
    # Comments and documents go to the deal (where the work continues), or to the contact without one.
    main = targets[-1]
    for comment in session.scalars(
        select(m.Comment).where(
            col(m.Comment.record_type) == lead_ref.type.value, col(m.Comment.record_id) == lead_id
        )
    ).all():
        session.add(
            m.Comment(
                record_type=main.type.value,
                record_id=main.id,
                author_id=comment.author_id,
                body=comment.body,
                created_at=comment.created_at,
            )
        )
    for document in documents_on(session, lead_ref):
        copy_document(session, id_of(document), main, now=now)
    session.flush()


@dataclass(frozen=True)
class LeadRow:
    """A lead as its list shows it."""

    id: int
    title: str
    person_name: str | None
    company_name: str | None
    status: str
    source: str | None
    created_at: datetime


def lead_rows(
    session: Session, text: str = "", *, status: str | None = None, limit: int | None = 50, offset: int = 0
) -> list[LeadRow]:
    """One page of the leads matching every word of ``text`` (in one status if given), newest first."""
    return [
        LeadRow(
            id_of(lead),
            lead.title,
            lead.person_name,
            lead.company_name,
            lead.status,
            lead.source,
            lead.created_at,
        )
        for lead in search_leads(session, text, status=status, limit=limit, offset=offset)
    ]


def count_leads(session: Session, text: str = "") -> int:
    statement = select(func.count()).select_from(m.Lead)
    statement = matching_every_word(statement, col(m.Lead.search_text), text)
    return int(session.scalar(statement) or 0)


@dataclass(frozen=True)
class LeadRecord:
    """A lead as its form shows it (and as an edit expects to find it)."""

    id: int
    title: str
    person_name: str | None
    emails: tuple[str, ...]
    phone: str | None
    company_name: str | None
    source: str | None
    status: str
    owner_id: int | None
    owner_name: str | None = field(compare=False)  # the detail pane's; a renamed user changes nothing here
    description: str | None
    organization_id: int | None
    organization_name: str | None
    contact_id: int | None
    contact_name: str | None
    mail_opt_out: bool
    custom: tuple[tuple[str, Any], ...]
    updated_at: datetime


def lead_record(session: Session, lead_id: int) -> LeadRecord | None:
    lead = session.get(m.Lead, lead_id)
    if lead is None:
        return None
    owner = session.get(m.User, lead.owner_id) if lead.owner_id else None
    org = session.get(m.Organization, lead.organization_id) if lead.organization_id else None
    person = session.get(m.Contact, lead.contact_id) if lead.contact_id else None
    return LeadRecord(
        id=lead_id,
        title=lead.title,
        person_name=lead.person_name,
        emails=tuple(lead_emails(session, lead_id)),
        phone=lead.phone,
        company_name=lead.company_name,
        source=lead.source,
        status=lead.status,
        owner_id=lead.owner_id,
        owner_name=owner.name if owner else None,
        description=lead.description,
        organization_id=lead.organization_id,
        organization_name=org.name if org else None,
        contact_id=lead.contact_id,
        contact_name=person.name if person else None,
        mail_opt_out=bool(lead.mail_opt_out),
        custom=custom_fields.values_of(session, RecordRef(RecordType.LEAD, lead_id)),
        updated_at=lead.updated_at,
    )
