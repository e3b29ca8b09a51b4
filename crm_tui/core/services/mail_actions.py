"""What the inbox does with a mail on the CRM side: the records it could be filed on (best first), what is
known about its sender (the related panel), forms prefilled from it, and filing with undo."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import or_, select
from sqlmodel import Session, col

from crm_tui.core import models as m
from crm_tui.core.addresses import domain_of, valid_domain, valid_emails
from crm_tui.core.errors import CrmError, NotFound
from crm_tui.core.form_text import fit_text, ref_text
from crm_tui.core.mail_data import Invitation
from crm_tui.core.mail_identity import format_address
from crm_tui.core.services import (
    activities,
    contacts,
    leads,
    mail_linking,
    organizations,
    records,
    sales_documents,
)
from crm_tui.core.services.rows import id_of, stored_ids
from crm_tui.core.types import RecordRef, RecordType

REASONS = {
    "manual": "filed by hand",
    "address": "sender or recipient address",
    "domain": "organization's domain",
    "thread": "same conversation",
    "subject": "same subject",
    "deal": "open deal of the sender",
}


@dataclass
class Suggestion:
    ref: RecordRef
    label: str
    reason: str  # a key of REASONS
    linked: bool  # the mail is already filed there


@dataclass
class Related:
    """The related panel: who wrote, what is open with them, and why the mail is filed where it is."""

    sender: str
    people: list[tuple[RecordRef, str]] = field(default_factory=list)  # contact / lead / organization
    deals: list[tuple[RecordRef, str, str, int, str]] = field(
        default_factory=list
    )  # ref, title, stage, cents, cur
    activities: list[tuple[RecordRef, str, datetime]] = field(default_factory=list)
    threads: list[tuple[int, str, datetime | None]] = field(
        default_factory=list
    )  # other recent mail of theirs
    links: list[tuple[RecordRef, str, str]] = field(default_factory=list)  # ref, label, reason


def _message(session: Session, message_id: int) -> m.MailMessage:
    message = session.get(m.MailMessage, message_id)
    if message is None:
        raise NotFound(f"no message {message_id}")
    return message


def _people_refs(session: Session, address: str, free_domains: set[str]) -> list[tuple[RecordRef, str]]:
    """Contacts, leads and organizations the address belongs to (the organization also by its domain)."""
    found: list[tuple[RecordRef, str]] = []
    if not address:
        return found
    for contact_id in session.scalars(
        select(col(m.ContactEmail.contact_id)).where(col(m.ContactEmail.address) == address)
    ):
        found.append((RecordRef(RecordType.CONTACT, contact_id), "address"))
    for lead_id in session.scalars(
        select(col(m.LeadEmail.lead_id)).where(col(m.LeadEmail.address) == address)
    ):
        found.append((RecordRef(RecordType.LEAD, lead_id), "address"))
    domain = domain_of(address)
    org_ids = list(
        session.scalars(
            select(col(m.OrganizationEmail.organization_id)).where(
                col(m.OrganizationEmail.address) == address
            )
        )
    )
    if domain and domain not in free_domains:
        org_ids += list(
            session.scalars(
                select(col(m.OrganizationDomain.organization_id)).where(
                    col(m.OrganizationDomain.domain) == domain
                )
            )
        )
    for contact in (session.get(m.Contact, ref.id) for ref, _ in found if ref.type is RecordType.CONTACT):
        if contact is not None and contact.organization_id:
            org_ids.append(contact.organization_id)
    for org_id in dict.fromkeys(org_ids):
        found.append((RecordRef(RecordType.ORGANIZATION, org_id), "domain"))
    return found


def _open_deals(session: Session, people: list[RecordRef]) -> list[m.Opportunity]:
    contact_ids = [r.id for r in people if r.type is RecordType.CONTACT]
    org_ids = [r.id for r in people if r.type is RecordType.ORGANIZATION]
    query = (
        select(m.Opportunity)
        .join(m.Stage, col(m.Stage.id) == col(m.Opportunity.stage_id))
        .where(col(m.Stage.kind) == "open")
    )
    deals: dict[int, m.Opportunity] = {}
    if org_ids:
        for deal in session.scalars(query.where(col(m.Opportunity.organization_id).in_(org_ids))):
            deals[id_of(deal)] = deal
    if contact_ids:
        for deal in session.scalars(
            query.join(
                m.OpportunityContact, col(m.OpportunityContact.opportunity_id) == col(m.Opportunity.id)
            ).where(col(m.OpportunityContact.contact_id).in_(contact_ids))
        ):
            deals[id_of(deal)] = deal
    return sorted(deals.values(), key=lambda d: d.stage_entered_at, reverse=True)


def open_deals_of(session: Session, address: str, *, free_domains: set[str]) -> list[m.Opportunity]:
    """The open deals of whoever writes from ``address`` (their contact's, their organization's by address
    or domain: the deals ``suggestions`` offers first), the most recently updated first."""
    people = [ref for ref, _ in _people_refs(session, address.lower(), free_domains)]
    return sorted(_open_deals(session, people), key=lambda deal: (deal.updated_at, deal.id), reverse=True)


def suggestions(
    session: Session, message_id: int, *, mine: set[str], free_domains: set[str]
) -> list[Suggestion]:
    """Records to file the mail on, best first: the sender's open deals (the deal is what a salesperson files
    on), then what automatic linking finds (address, domain, thread), then the records it is filed on."""
    message = _message(session, message_id)
    linked = {
        (link.record_type, link.record_id): link.reason
        for link in session.scalars(select(m.MailLink).where(col(m.MailLink.message_id) == message_id))
    }
    found: dict[tuple[str, int], str] = {}
    people = [ref for ref, _ in _people_refs(session, message.from_address.lower(), free_domains)]
    if message.is_outgoing:
        for address in mail_linking.addresses_in(message.to_addresses)[:1]:
            people = [ref for ref, _ in _people_refs(session, address, free_domains)]
    for deal in _open_deals(session, people):
        found.setdefault((RecordType.OPPORTUNITY.value, id_of(deal)), "deal")
    for ref, reason in mail_linking.candidates(session, message, mine=mine, free_domains=free_domains):
        found.setdefault((ref.type.value, ref.id), reason)
    for key, reason in linked.items():
        found.setdefault(key, reason)
    result = []
    for (record_type, record_id), reason in found.items():
        ref = RecordRef(RecordType(record_type), record_id)
        try:
            label = records.record_label(session, ref)
        except NotFound:
            continue
        result.append(Suggestion(ref, label, reason, (record_type, record_id) in linked))
    return result


def related(session: Session, message_id: int, *, free_domains: set[str], limit: int = 5) -> Related:
    message = _message(session, message_id)
    address = message.from_address.lower()
    if message.is_outgoing:
        address = next(iter(mail_linking.addresses_in(message.to_addresses)), "")
    panel = Related(sender=f"{message.from_name} <{message.from_address}>" if message.from_name else address)
    if message.is_outgoing:
        panel.sender = f"to {address}"
    people = _people_refs(session, address, free_domains)
    for ref, _ in people:
        try:
            panel.people.append((ref, records.record_label(session, ref)))
        except NotFound:
            continue
    refs = [ref for ref, _ in people]
    for deal in _open_deals(session, refs)[:limit]:
        stage = session.get(m.Stage, deal.stage_id)
        panel.deals.append(
            (
                RecordRef(RecordType.OPPORTUNITY, id_of(deal)),
                deal.title,
                stage.name if stage else "",
                deal.amount_cents,
                deal.currency,
            )
        )
    conditions = []
    for ref in refs + [d[0] for d in panel.deals]:
        column = {
            RecordType.CONTACT: col(m.Activity.contact_id),
            RecordType.LEAD: col(m.Activity.lead_id),
            RecordType.ORGANIZATION: col(m.Activity.organization_id),
            RecordType.OPPORTUNITY: col(m.Activity.opportunity_id),
        }[ref.type]
        conditions.append(column == ref.id)
    if conditions:
        for activity in session.scalars(
            select(m.Activity)
            .where(or_(*conditions), col(m.Activity.status) == "planned")
            .order_by(col(m.Activity.start_at))
            .limit(limit)
        ):
            panel.activities.append(
                (RecordRef(RecordType.ACTIVITY, id_of(activity)), activity.subject, activity.start_at)
            )
    if address:
        for other in session.execute(
            select(col(m.MailMessage.id), col(m.MailMessage.subject), col(m.MailMessage.sent_at))
            .where(col(m.MailMessage.from_address) == address, col(m.MailMessage.id) != message_id)
            .order_by(col(m.MailMessage.sent_at).desc())
            .limit(limit)
        ):
            panel.threads.append((other.id, other.subject, other.sent_at))
    for link in session.scalars(select(m.MailLink).where(col(m.MailLink.message_id) == message_id)):
        ref = RecordRef(RecordType(link.record_type), link.record_id)
        try:
            panel.links.append((ref, records.record_label(session, ref), link.reason))
        except NotFound:
            continue
    return panel


def prefill(session: Session, message_id: int, record_type: str, *, free_domains: set[str]) -> dict[str, str]:
    """Form values for a new record made from the mail (the sender's name and address, the organization found
    by domain or a company name from it, the subject, the body), as plain text for the form.

    Every value passes the form's own checks as it is (the services' limits and address rules, ``fit_text``):
    mail is untrusted text, with CRLFs, control characters, overlong subjects and "addresses" such as
    MAILER-DAEMON. A field left empty is one the user must fill (an organization's name from a free-mail
    sender, say)."""
    message = _message(session, message_id)
    address = (message.from_address or "").lower()
    name = fit_text(message.from_name, 200)
    if message.is_outgoing:
        address = next(iter(mail_linking.addresses_in(message.to_addresses)), "")
        name = ""
    emails = valid_emails([address])
    address = emails[0] if emails else ""
    domain = valid_domain(domain_of(address))
    free = not domain or domain in free_domains
    org = None if free else organizations.find_by_domain(session, domain)
    company = org.name if org else ("" if free else domain.split(".")[0].capitalize())
    org_text = ref_text(org.name, RecordType.ORGANIZATION, org.id) if org else ""
    subject = message.subject or ""
    body = message.body_text or ""
    if record_type == "lead":
        limits = leads.MAX_LENGTHS
        return {
            "title": fit_text(subject, limits["title"])
            or fit_text(f"Inquiry from {name or address or 'an unknown sender'}", limits["title"]),
            "person_name": fit_text(name, limits["person_name"]),
            "emails": address,
            "company_name": fit_text(company, limits["company_name"]),
            "source": "e-mail",
            "organization_id": org_text,
            "description": fit_text(body, min(2000, limits["description"]), multiline=True),
        }
    if record_type == "contact":
        first, _, last = name.partition(" ") if name else ("", "", "")
        limits = contacts.MAX_LENGTHS
        return {
            "first_name": fit_text(first, limits["first_name"]),
            "last_name": fit_text(last, limits["last_name"]),
            "emails": address,
            "organization_id": org_text,
        }
    if record_type == "organization":
        return {
            "name": fit_text(company, organizations.MAX_NAME),
            "domains": "" if free else domain,
            "emails": "",
        }
    if record_type == "ticket":
        contact_id = (
            session.scalars(
                select(col(m.ContactEmail.contact_id)).where(col(m.ContactEmail.address) == address)
            ).first()
            if address
            else None
        )
        contact = session.get(m.Contact, contact_id) if contact_id else None
        limits = sales_documents.TICKET_MAX_LENGTHS
        return {
            "subject": fit_text(subject, limits["subject"]) or "(no subject)",
            "description": fit_text(body, min(2000, limits["description"]), multiline=True),
            "contact_id": ref_text(contact.name, RecordType.CONTACT, contact.id) if contact else "",
            "organization_id": org_text,
        }
    raise NotFound(f"no form for {record_type}")


FIELD_OF_RECORD = {
    RecordType.OPPORTUNITY: "opportunity_id",
    RecordType.CONTACT: "contact_id",
    RecordType.LEAD: "lead_id",
    RecordType.ORGANIZATION: "organization_id",
}


def follow_up_prefill(
    session: Session, message_id: int, start: datetime, *, mine: set[str], free_domains: set[str]
) -> dict[str, str]:
    """The follow-up task's form values (``A`` in the inbox): "Follow up: <subject>" at ``start`` (local time,
    as the form reads it), on the records the mail suggests (the sender's open deal, their contact or lead,
    the organization), each the first of its kind. A deal without a person takes its primary contact: an
    activity needs one. Like ``prefill``, every value passes the activity form's checks."""
    message = _message(session, message_id)
    values = {
        "type": m.ActivityType.TASK.value,
        "subject": fit_text(
            f"Follow up: {message.subject or '(no subject)'}", activities.MAX_LENGTHS["subject"]
        ),
        "start_at": start.strftime("%Y-%m-%d %H:%M"),
    }
    chosen: dict[str, RecordRef] = {}
    for suggestion in suggestions(session, message_id, mine=mine, free_domains=free_domains):
        name = FIELD_OF_RECORD.get(suggestion.ref.type)
        if name is not None and name not in chosen:
            chosen[name] = suggestion.ref
            values[name] = ref_text(suggestion.label, suggestion.ref.type, suggestion.ref.id)
    deal = chosen.get("opportunity_id")
    if deal is not None and "contact_id" not in chosen and "lead_id" not in chosen:
        contact_id = session.scalars(
            select(col(m.OpportunityContact.contact_id))
            .where(col(m.OpportunityContact.opportunity_id) == deal.id)
            .order_by(col(m.OpportunityContact.is_primary).desc())
        ).first()
        contact = session.get(m.Contact, contact_id) if contact_id else None
        if contact is not None:
            values["contact_id"] = ref_text(contact.name, RecordType.CONTACT, contact.id)
    return values


@dataclass
class Filed:
    """Links made by filing, to take back."""

    description: str
    made: list[tuple[int, RecordRef]] = field(default_factory=list)


def file_on(session: Session, message_ids: list[int], ref: RecordRef, *, now: datetime) -> Filed:
    """File the messages on a record by hand (linking remembers it). Returns what to undo."""
    label = records.record_label(session, ref)
    had = {
        row[0]
        for row in session.execute(
            select(col(m.MailLink.message_id)).where(
                col(m.MailLink.message_id).in_(message_ids),
                col(m.MailLink.record_type) == ref.type.value,
                col(m.MailLink.record_id) == ref.id,
            )
        )
    }
    filed = Filed(f"{len(message_ids)} message{'s' if len(message_ids) != 1 else ''} filed on {label}")
    for message_id in message_ids:
        _message(session, message_id)
        mail_linking.link_manually(session, message_id, ref, now=now)
        if message_id not in had:
            filed.made.append((message_id, ref))
    return filed


def unfile(session: Session, filed: Filed) -> str:
    """Undo ``file_on``: the links it made go (without remembering an unlink: the user only took it back)."""
    for message_id, ref in filed.made:
        for link in session.scalars(
            select(m.MailLink).where(
                col(m.MailLink.message_id) == message_id,
                col(m.MailLink.record_type) == ref.type.value,
                col(m.MailLink.record_id) == ref.id,
            )
        ):
            session.delete(link)
    session.flush()
    return f"undone: {filed.description}"


@dataclass
class Accepted:
    """What accepting an invitation made, to report and to take back."""

    activity_id: int
    person: RecordRef
    created_person: bool


def accept_invitation(
    session: Session,
    message_id: int,
    invitation: Invitation,
    *,
    mine: set[str],
    now: datetime,
    me_id: int | None,
) -> Accepted:
    """Put an invitation in the calendar: a meeting activity at its time, with its attendees, linked to the
    sender's contact or lead; a contact is made from the sender when neither exists. The mail is filed on
    that person."""
    message = _message(session, message_id)
    organizer_name, organizer = invitation.organizer
    address = message.from_address.lower() if not message.is_outgoing else organizer
    if organizer and organizer not in mine and address in mine:
        address = organizer
    name = message.from_name if address == message.from_address.lower() else organizer_name
    contact_id = session.scalars(
        select(col(m.ContactEmail.contact_id)).where(col(m.ContactEmail.address) == address)
    ).first()
    lead_id = None
    if contact_id is None:
        lead_id = session.scalars(
            select(col(m.LeadEmail.lead_id)).where(col(m.LeadEmail.address) == address)
        ).first()
    created = False
    if contact_id is None and lead_id is None:
        first, _, last = " ".join((name or "").split()).partition(" ")
        if not first:
            first = address.rpartition("@")[0] or address or "Unknown"
        domain = domain_of(address)
        organization = organizations.find_by_domain(session, domain) if domain else None
        org_id = organization.id if organization else None
        contact = contacts.create_contact(
            session,
            contacts.ContactInput(first_name=first, last_name=last, emails=[address], organization_id=org_id),
            now=now,
            me_id=me_id,
        )
        contact_id, created = contact.id, True
    others = [a for _, a in invitation.attendees if a and a not in mine and a != address]
    details = [f"Invitation from {name or address}" if name or address else "Invitation"]
    if invitation.location:
        details.append(f"Where: {invitation.location}")
    if invitation.attendees:
        details.append("Attendees: " + ", ".join(n or a for n, a in invitation.attendees))
    activity = activities.create_activity(
        session,
        activities.ActivityInput(
            subject=invitation.summary or message.subject or "Meeting",
            start_at=invitation.start,
            end_at=invitation.end,
            type=m.ActivityType.MEETING.value,
            description="\n".join(details),
            contact_id=contact_id,
            lead_id=lead_id,
            attendee_emails=others[:50],
        ),
        now=now,
        me_id=me_id,
    )
    if contact_id:
        person = RecordRef(RecordType.CONTACT, contact_id)
    else:
        assert lead_id is not None  # without a contact found or made, the lead was found
        person = RecordRef(RecordType.LEAD, lead_id)
    mail_linking.link_manually(session, message_id, person, now=now)
    return Accepted(id_of(activity), person, created)


def take_back_acceptance(session: Session, message_id: int, accepted: Accepted, *, now: datetime) -> str:
    """Undo ``accept_invitation``: the meeting goes, and the contact it made (with the mail's link to it)."""
    activities.delete_activity(session, accepted.activity_id)
    if accepted.created_person:
        records.delete_record(session, accepted.person)
    else:
        mail_linking.unlink(session, message_id, accepted.person, now=now)
    session.flush()
    return "undone: the meeting is out of the calendar again"


def record_addresses(session: Session, ref: RecordRef) -> list[str]:
    """Where a mail written from a record can go: "Name <address>" of every address the record has (a deal's
    and a quote's: its contacts', the primary first; an organization's: its own and its contacts')."""

    def of_contacts(contact_ids: list[int]) -> list[str]:
        found = []
        for contact_id in contact_ids:
            contact = session.get(m.Contact, contact_id)
            if contact is None:
                continue
            for address in contacts.contact_emails(session, contact_id):  # the first is the main one
                found.append(format_address(contact.name, address))
        return found

    row = records.get_record(session, ref)
    if ref.type is RecordType.CONTACT:
        return of_contacts([ref.id])
    if ref.type is RecordType.LEAD:
        name = getattr(row, "person_name", None) or ""
        return [format_address(name, a) for a in leads.lead_emails(session, ref.id)]
    if ref.type is RecordType.ORGANIZATION:
        own = [
            format_address(getattr(row, "name", ""), a)
            for a in session.scalars(
                select(col(m.OrganizationEmail.address)).where(
                    col(m.OrganizationEmail.organization_id) == ref.id
                )
            )
        ]
        people = stored_ids(
            session.scalars(select(col(m.Contact.id)).where(col(m.Contact.organization_id) == ref.id))
        )
        return own + of_contacts(people)
    if ref.type in (RecordType.OPPORTUNITY, RecordType.QUOTE):
        deal_id = ref.id if ref.type is RecordType.OPPORTUNITY else getattr(row, "opportunity_id", None)
        deal_contacts = session.execute(
            select(col(m.OpportunityContact.contact_id), col(m.OpportunityContact.is_primary)).where(
                col(m.OpportunityContact.opportunity_id) == deal_id
            )
        ).all()
        ordered = [c for c, _primary in sorted(deal_contacts, key=lambda row: not row[1])]
        found = of_contacts(ordered)
        deal = session.get(m.Opportunity, deal_id)
        if not found and deal is not None and deal.organization_id:
            found = record_addresses(session, RecordRef(RecordType.ORGANIZATION, deal.organization_id))
        return found
    if ref.type is RecordType.TICKET:
        contact_id = getattr(row, "contact_id", None)
        return of_contacts([contact_id]) if contact_id else []
    return []


@dataclass
class Meeting:
    """What an invitation needs of a meeting activity (plain values)."""

    activity_id: int
    subject: str
    start: datetime
    end: datetime | None
    description: str
    attendees: list[tuple[str, str]]  # (name, address)


def meeting_of(session: Session, activity_id: int, *, mine: set[str]) -> Meeting:
    """A meeting and the addresses of its attendees (its contact or lead and the further attendees; me left
    out). A meeting nobody can be mailed about is a CrmError that says so."""
    activity = session.get(m.Activity, activity_id)
    if activity is None:
        raise NotFound(f"no activity {activity_id}")
    if activity.type != m.ActivityType.MEETING.value:
        raise CrmError("invitations are sent for meetings; this is a " + activity.type)

    def contact_addresses(contact_id: int) -> list[tuple[str, str]]:
        contact = session.get(m.Contact, contact_id)
        address = next(iter(contacts.contact_emails(session, contact_id)), None)
        return [(contact.name, address)] if contact is not None and address else []

    def lead_addresses(lead_id: int) -> list[tuple[str, str]]:
        lead = session.get(m.Lead, lead_id)
        address = next(iter(leads.lead_emails(session, lead_id)), None)
        return [(lead.person_name or "", address)] if lead is not None and address else []

    found: list[tuple[str, str]] = []
    if activity.contact_id:
        found += contact_addresses(activity.contact_id)
    if activity.lead_id:
        found += lead_addresses(activity.lead_id)
    for attendee in session.scalars(
        select(m.ActivityAttendee).where(col(m.ActivityAttendee.activity_id) == activity_id)
    ):
        if attendee.contact_id:
            found += contact_addresses(attendee.contact_id)
        elif attendee.lead_id:
            found += lead_addresses(attendee.lead_id)
        elif attendee.user_id:
            user = session.get(m.User, attendee.user_id)
            if user is not None:
                found.append((user.name, user.email))
        elif attendee.email:
            found.append(("", attendee.email))
    attendees = list(
        {address.lower(): (name, address) for name, address in found if address.lower() not in mine}.values()
    )
    if not attendees:
        raise CrmError("this meeting has no attendee with an e-mail address")
    return Meeting(
        activity_id,
        activity.subject,
        activity.start_at,
        activity.end_at,
        activity.description or "",
        attendees,
    )


def filed_on(session: Session, message_id: int) -> list[tuple[str, str]]:
    """("type:id", label) of every record the mail is filed on."""
    found = []
    for link in session.scalars(select(m.MailLink).where(col(m.MailLink.message_id) == message_id)):
        ref = RecordRef(RecordType(link.record_type), link.record_id)
        try:
            found.append((str(ref), records.record_label(session, ref)))
        except NotFound:
            continue
    return found
