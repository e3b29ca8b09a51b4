"""Activities: calls, meetings, tasks, e-mails. Cancelling keeps the record."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlmodel import Session, col

from crm_tui.core import models as m
from crm_tui.core.automation import schedule
from crm_tui.core.errors import FieldErrors, ValidationError
from crm_tui.core.field_checks import check_aware, check_choice, check_emails, check_text
from crm_tui.core.services import custom_fields
from crm_tui.core.services.records import delete_record, record_label, refuse_if_changed
from crm_tui.core.services.rows import check_exists, get_or_404, owned_by_default
from crm_tui.core.types import RecordRef, RecordType

# Calls, meetings and tasks; anything longer is not an activity (and range queries rely on this bound).
MAX_DURATION = timedelta(days=31)


@dataclass
class ActivityInput:
    subject: str
    start_at: datetime
    type: str = m.ActivityType.TASK.value
    task_type: str | None = None
    description: str | None = None
    contact_id: int | None = None
    lead_id: int | None = None
    organization_id: int | None = None
    opportunity_id: int | None = None
    ticket_id: int | None = None
    quote_id: int | None = None
    end_at: datetime | None = None
    owner_id: int | None = None
    reminder_at: datetime | None = None
    attendee_contact_ids: list[int] = field(default_factory=list)
    attendee_lead_ids: list[int] = field(default_factory=list)
    attendee_user_ids: list[int] = field(default_factory=list)
    attendee_emails: list[str] = field(default_factory=list)
    custom: dict[str, Any] | None = None
    follow_up_of: int | None = None  # the mail this follows up (``A`` in the inbox): done once it is answered


@dataclass(frozen=True)
class ActivitySummary:
    id: int
    type: str
    task_type: str | None
    subject: str
    status: str
    start_at: datetime
    end_at: datetime | None
    owner_id: int | None
    owner_name: str | None
    contact_id: int | None
    lead_id: int | None
    person_name: str | None
    organization_id: int | None
    opportunity_id: int | None
    reminder_at: datetime | None


# The longest text each field takes (``_check``; forms prefilled from a mail cut to these).
MAX_LENGTHS = {"subject": 300, "task_type": 80, "description": 20000}


def _check(
    session: Session, data: ActivityInput, *, partial_custom: bool
) -> tuple[FieldErrors, dict[str, Any]]:
    errors = FieldErrors()
    clean: dict[str, Any] = {
        "subject": check_text(
            errors, "subject", data.subject, required=True, max_length=MAX_LENGTHS["subject"]
        ),
        "task_type": check_text(errors, "task_type", data.task_type, max_length=MAX_LENGTHS["task_type"]),
        "description": check_text(
            errors, "description", data.description, max_length=MAX_LENGTHS["description"]
        ),
    }
    check_choice(errors, "type", data.type, [t.value for t in m.ActivityType])
    if data.contact_id is None and data.lead_id is None:
        errors.add("person", "an activity needs a person: a contact or a lead")
    check_exists(session, errors, "contact_id", m.Contact, data.contact_id)
    check_exists(session, errors, "lead_id", m.Lead, data.lead_id)
    check_exists(session, errors, "organization_id", m.Organization, data.organization_id)
    check_exists(session, errors, "opportunity_id", m.Opportunity, data.opportunity_id)
    check_exists(session, errors, "ticket_id", m.Ticket, data.ticket_id)
    check_exists(session, errors, "quote_id", m.Quote, data.quote_id)
    check_exists(session, errors, "owner_id", m.User, data.owner_id)
    check_aware(errors, "start_at", data.start_at, required=True)
    check_aware(errors, "end_at", data.end_at)
    check_aware(errors, "reminder_at", data.reminder_at)
    both_valid = "start_at" not in errors.errors and "end_at" not in errors.errors
    if both_valid and data.end_at is not None and data.end_at < data.start_at:
        errors.add("end_at", "ends before it starts")
    elif both_valid and data.end_at is not None and data.end_at - data.start_at > MAX_DURATION:
        errors.add("end_at", f"an activity lasts at most {MAX_DURATION.days} days")
    for contact_id in data.attendee_contact_ids:
        check_exists(session, errors, "attendees", m.Contact, contact_id)
    for lead_id in data.attendee_lead_ids:
        check_exists(session, errors, "attendees", m.Lead, lead_id)
    for user_id in data.attendee_user_ids:
        check_exists(session, errors, "attendees", m.User, user_id)
    clean["attendee_emails"] = check_emails(errors, "attendees", data.attendee_emails)
    clean["custom"] = custom_fields.check_values(
        session, RecordType.ACTIVITY.value, data.custom, errors=errors, partial=partial_custom
    )
    return errors, clean


def _apply(
    session: Session, activity: m.Activity, data: ActivityInput, clean: dict[str, Any], now: datetime
) -> None:
    activity.type = data.type
    activity.subject = clean["subject"]
    activity.task_type = clean["task_type"]
    activity.description = clean["description"]
    for name in (
        "contact_id",
        "lead_id",
        "organization_id",
        "opportunity_id",
        "ticket_id",
        "quote_id",
        "owner_id",
    ):
        setattr(activity, name, getattr(data, name))
    activity.start_at = data.start_at
    activity.end_at = data.end_at
    activity.reminder_at = data.reminder_at
    activity.updated_at = now
    is_new = activity.id is None
    session.add(activity)
    session.flush()
    assert activity.id is not None  # flushed
    if not is_new:
        session.execute(delete(m.ActivityAttendee).where(col(m.ActivityAttendee.activity_id) == activity.id))
    attendees = (
        [
            m.ActivityAttendee(activity_id=activity.id, contact_id=i)
            for i in dict.fromkeys(data.attendee_contact_ids)
        ]
        + [
            m.ActivityAttendee(activity_id=activity.id, lead_id=i)
            for i in dict.fromkeys(data.attendee_lead_ids)
        ]
        + [
            m.ActivityAttendee(activity_id=activity.id, user_id=i)
            for i in dict.fromkeys(data.attendee_user_ids)
        ]
        + [m.ActivityAttendee(activity_id=activity.id, email=e) for e in clean["attendee_emails"]]
    )
    session.add_all(attendees)
    custom_fields.store_values(session, activity.id, clean["custom"])
    session.flush()


def create_activity(
    session: Session, data: ActivityInput, *, now: datetime, me_id: int | None = None
) -> m.Activity:
    data = owned_by_default(data, me_id)
    errors, clean = _check(session, data, partial_custom=False)
    errors.raise_if_any()
    activity = m.Activity(
        subject=clean["subject"], start_at=data.start_at, created_at=now, follow_up_of=data.follow_up_of
    )
    _apply(session, activity, data, clean, now)
    return activity


def update_activity(
    session: Session,
    activity_id: int,
    data: ActivityInput,
    *,
    now: datetime,
    expected: ActivityRecord | None = None,
) -> m.Activity:
    """Edit an activity (its type too). A cancelled one must be reopened first. With ``expected`` (as its form
    showed it), an activity changed or deleted since is refused (RecordChanged) in this same write."""
    refuse_if_changed(activity_record(session, activity_id) if expected else None, expected)
    activity = get_or_404(session, m.Activity, activity_id, "activity")
    errors, clean = _check(session, data, partial_custom=True)
    if activity.status == m.ActivityStatus.CANCELLED.value:
        errors.add("status", "this activity is cancelled; reopen it to edit it")
    errors.raise_if_any()
    _apply(session, activity, data, clean, now)
    return activity


def complete_activity(session: Session, activity_id: int, *, now: datetime) -> m.Activity:
    activity = get_or_404(session, m.Activity, activity_id, "activity")
    if activity.status == m.ActivityStatus.CANCELLED.value:
        raise ValidationError.single("status", "a cancelled activity cannot be marked done; reopen it first")
    if activity.status != m.ActivityStatus.DONE.value:
        activity.status = m.ActivityStatus.DONE.value
        activity.completed_at = now
        activity.updated_at = now
        session.add(activity)
        session.flush()
        schedule.activity_completed(session, activity, now=now)
    return activity


def cancel_activity(session: Session, activity_id: int, *, now: datetime) -> m.Activity:
    """Cancel: the activity stays, marked cancelled (and can be hidden from views)."""
    activity = get_or_404(session, m.Activity, activity_id, "activity")
    if activity.status == m.ActivityStatus.DONE.value:
        raise ValidationError.single("status", "a done activity cannot be cancelled")
    activity.status = m.ActivityStatus.CANCELLED.value
    activity.reminder_at = None
    activity.updated_at = now
    session.add(activity)
    session.flush()
    return activity


def reopen_activity(session: Session, activity_id: int, *, now: datetime) -> m.Activity:
    activity = get_or_404(session, m.Activity, activity_id, "activity")
    activity.status = m.ActivityStatus.PLANNED.value
    activity.completed_at = None
    activity.updated_at = now
    session.add(activity)
    session.flush()
    return activity


def delete_activity(session: Session, activity_id: int) -> list[str]:
    return delete_record(session, RecordRef(RecordType.ACTIVITY, activity_id))


def list_activities(
    session: Session,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    owner_id: int | None = None,
    statuses: list[str] | None = None,
    record: RecordRef | None = None,
    activity_ids: Collection[int] | None = None,
    limit: int | None = None,
    offset: int = 0,
    newest_first: bool = False,
) -> list[ActivitySummary]:
    """Activities that overlap [start, end) (either bound optional), by start time; with ``activity_ids``, only those."""
    query = (
        select(
            m.Activity,
            col(m.User.name),
            col(m.Contact.first_name),
            col(m.Contact.last_name),
            col(m.Lead.person_name),
            col(m.Lead.title),
        )
        .outerjoin(m.User, col(m.User.id) == col(m.Activity.owner_id))
        .outerjoin(m.Contact, col(m.Contact.id) == col(m.Activity.contact_id))
        .outerjoin(m.Lead, col(m.Lead.id) == col(m.Activity.lead_id))
    )
    if start is not None:
        # The lower bound lets the start_at index do the work: nothing lasts longer than MAX_DURATION.
        query = query.where(
            col(m.Activity.start_at) >= start - MAX_DURATION,
            func.coalesce(col(m.Activity.end_at), col(m.Activity.start_at)) >= start,
        )
    if end is not None:
        query = query.where(col(m.Activity.start_at) < end)
    if owner_id is not None:
        query = query.where(col(m.Activity.owner_id) == owner_id)
    if statuses:
        query = query.where(col(m.Activity.status).in_(statuses))
    if activity_ids is not None:
        query = query.where(col(m.Activity.id).in_(activity_ids))
    if record is not None:
        column = {
            RecordType.CONTACT: col(m.Activity.contact_id),
            RecordType.LEAD: col(m.Activity.lead_id),
            RecordType.ORGANIZATION: col(m.Activity.organization_id),
            RecordType.OPPORTUNITY: col(m.Activity.opportunity_id),
            RecordType.TICKET: col(m.Activity.ticket_id),
            RecordType.QUOTE: col(m.Activity.quote_id),
        }.get(record.type)
        if column is None:
            raise ValidationError.single("record", f"{record.type.value} records have no activities")
        condition = column == record.id
        if record.type in (RecordType.CONTACT, RecordType.LEAD):
            attendee = (
                col(m.ActivityAttendee.contact_id)
                if record.type == RecordType.CONTACT
                else col(m.ActivityAttendee.lead_id)
            )
            # A UNION of two indexed lookups: an OR across the two would scan every activity.
            ids = (
                select(col(m.Activity.id))
                .where(column == record.id)
                .union(select(col(m.ActivityAttendee.activity_id)).where(attendee == record.id))
            )
            condition = col(m.Activity.id).in_(ids)
        query = query.where(condition)
    if newest_first:
        query = query.order_by(col(m.Activity.start_at).desc(), col(m.Activity.id).desc()).offset(offset)
    else:
        query = query.order_by(col(m.Activity.start_at), col(m.Activity.id)).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    result = []
    for activity, owner_name, first, last, lead_person, lead_title in session.execute(query):
        person = " ".join(p for p in (first, last) if p) or lead_person or lead_title
        result.append(
            ActivitySummary(
                id=activity.id,
                type=activity.type,
                task_type=activity.task_type,
                subject=activity.subject,
                status=activity.status,
                start_at=activity.start_at,
                end_at=activity.end_at,
                owner_id=activity.owner_id,
                owner_name=owner_name,
                contact_id=activity.contact_id,
                lead_id=activity.lead_id,
                person_name=person,
                organization_id=activity.organization_id,
                opportunity_id=activity.opportunity_id,
                reminder_at=activity.reminder_at,
            )
        )
    return result


def activity_summary(session: Session, activity_id: int) -> ActivitySummary | None:
    """One activity as the lists show it (with its status and owner's name); None if there is none."""
    found = list_activities(session, activity_ids=[activity_id])
    return found[0] if found else None


def due_reminders(session: Session, *, now: datetime, since: datetime) -> list[m.Activity]:
    """Planned activities whose reminder time falls in (since, now]."""
    return list(
        session.scalars(
            select(m.Activity)
            .where(
                col(m.Activity.status) == m.ActivityStatus.PLANNED.value,
                col(m.Activity.reminder_at) > since,
                col(m.Activity.reminder_at) <= now,
            )
            .order_by(col(m.Activity.reminder_at))
        )
    )


def reminders_due(session: Session, *, now: datetime, since: datetime) -> list[tuple[str, datetime]]:
    """(subject, start) of the planned activities whose reminder time falls in (since, now]."""
    return [
        (activity.subject, activity.start_at) for activity in due_reminders(session, now=now, since=since)
    ]


@dataclass(frozen=True)
class ActivityRecord:
    """An activity as its form shows it (and as an edit expects to find it)."""

    id: int
    type: str
    task_type: str | None
    subject: str
    description: str | None
    start_at: datetime
    end_at: datetime | None
    reminder_at: datetime | None
    owner_id: int | None
    contact_id: int | None
    contact_name: str | None
    lead_id: int | None
    lead_title: str | None
    organization_id: int | None
    organization_name: str | None
    opportunity_id: int | None
    opportunity_title: str | None
    custom: tuple[tuple[str, Any], ...]
    updated_at: datetime


def activity_record(session: Session, activity_id: int) -> ActivityRecord | None:
    act = session.get(m.Activity, activity_id)
    if act is None:
        return None

    def label(model: Any, record_id: int | None, attribute: str = "name") -> str | None:
        row = session.get(model, record_id) if record_id else None
        return getattr(row, attribute, None) if row is not None else None

    return ActivityRecord(
        id=activity_id,
        type=act.type,
        task_type=act.task_type,
        subject=act.subject,
        description=act.description,
        start_at=act.start_at,
        end_at=act.end_at,
        reminder_at=act.reminder_at,
        owner_id=act.owner_id,
        contact_id=act.contact_id,
        contact_name=label(m.Contact, act.contact_id),
        lead_id=act.lead_id,
        lead_title=label(m.Lead, act.lead_id, "title"),
        organization_id=act.organization_id,
        organization_name=label(m.Organization, act.organization_id),
        opportunity_id=act.opportunity_id,
        opportunity_title=label(m.Opportunity, act.opportunity_id, "title"),
        custom=custom_fields.values_of(session, RecordRef(RecordType.ACTIVITY, activity_id)),
        updated_at=act.updated_at,
    )


@dataclass(frozen=True)
class PlannedFrom:
    """What an activity planned from a record starts with: the records it belongs to, each as (field of
    ActivityInput, its reference, its label), and a subject."""

    links: tuple[tuple[str, RecordRef, str], ...]
    subject: str


def planned_from(session: Session, ref: RecordRef) -> PlannedFrom:
    """An activity planned from ``ref`` is about that record and what it belongs to (a contact's organization,
    a deal's customer and first contact, a quote's deal). Raises NotFound for a record that is gone."""
    links: list[tuple[str, RecordRef, str]] = []

    def put(name: str, record_type: RecordType, record_id: int | None) -> None:
        if record_id:
            linked = RecordRef(record_type, record_id)
            links.append((name, linked, record_label(session, linked)))

    subject = f"Follow up: {record_label(session, ref)}"
    row: Any = session.get(MODELS[ref.type], ref.id) if ref.type in MODELS else None
    if ref.type is RecordType.CONTACT:
        put("contact_id", RecordType.CONTACT, ref.id)
        put("organization_id", RecordType.ORGANIZATION, row.organization_id)
    elif ref.type is RecordType.LEAD:
        put("lead_id", RecordType.LEAD, ref.id)
    elif ref.type is RecordType.ORGANIZATION:
        put("organization_id", RecordType.ORGANIZATION, ref.id)
    elif ref.type is RecordType.OPPORTUNITY:
        put("opportunity_id", RecordType.OPPORTUNITY, ref.id)
        put("organization_id", RecordType.ORGANIZATION, row.organization_id)
        first_contact = session.scalar(
            select(col(m.OpportunityContact.contact_id))
            .where(col(m.OpportunityContact.opportunity_id) == ref.id)
            .order_by(col(m.OpportunityContact.is_primary).desc(), col(m.OpportunityContact.contact_id))
        )
        put("contact_id", RecordType.CONTACT, first_contact)
    elif ref.type is RecordType.TICKET:
        put("contact_id", RecordType.CONTACT, row.contact_id)
        put("organization_id", RecordType.ORGANIZATION, row.organization_id)
    elif ref.type is RecordType.QUOTE:
        put("opportunity_id", RecordType.OPPORTUNITY, row.opportunity_id)
    return PlannedFrom(tuple(links), subject)


MODELS: dict[RecordType, Any] = {
    RecordType.CONTACT: m.Contact,
    RecordType.OPPORTUNITY: m.Opportunity,
    RecordType.TICKET: m.Ticket,
    RecordType.QUOTE: m.Quote,
}
