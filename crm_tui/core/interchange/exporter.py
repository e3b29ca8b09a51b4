"""Exporting: every record type as CSV (safe to open in a spreadsheet), contacts also as vCard 3.0, activities as
an iCalendar file."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from crm_tui.core import models as m
from crm_tui.core.errors import CrmError
from crm_tui.core.interchange import tables, vcard
from crm_tui.core.services import contacts as contact_service

EXPORT_ONLY = ("activities", "tickets")
EXPORT_TYPES = (*tables.TYPES, *EXPORT_ONLY)


def _activity_row(session: Session, a: m.Activity) -> dict[str, str]:
    def title(model: Any, record_id: int | None, attribute: str) -> str:
        row = session.get(model, record_id) if record_id else None
        return str(getattr(row, attribute)) if row is not None else ""

    return {
        "type": a.type, "task_type": tables.cell_text(a.task_type), "subject": a.subject,
        "description": tables.cell_text(a.description), "start": tables.cell_text(a.start_at), "end": tables.cell_text(a.end_at),
        "status": a.status, "owner": tables.user_email(session, a.owner_id),
        "contact": tables.contact_key(session, a.contact_id), "lead": title(m.Lead, a.lead_id, "title"),
        "organization": tables.organization_name(session, a.organization_id),
        "opportunity": title(m.Opportunity, a.opportunity_id, "title"), "ticket": title(m.Ticket, a.ticket_id, "subject"),
        "reminder": tables.cell_text(a.reminder_at), "completed": tables.cell_text(a.completed_at),
    }  # fmt: skip


def _ticket_row(session: Session, t: m.Ticket) -> dict[str, str]:
    return {
        "subject": t.subject, "description": tables.cell_text(t.description), "status": t.status,
        "contact": tables.contact_key(session, t.contact_id),
        "organization": tables.organization_name(session, t.organization_id),
        "owner": tables.user_email(session, t.owner_id), "created": tables.cell_text(t.created_at),
    }  # fmt: skip


_EXTRA: dict[str, tuple[type[tables.Stored], list[str], Any]] = {
    "activities": (m.Activity, ["type", "task_type", "subject", "description", "start", "end", "status", "owner",
                                "contact", "lead", "organization", "opportunity", "ticket", "reminder", "completed"],
                   _activity_row),
    "tickets": (m.Ticket, ["subject", "description", "status", "contact", "organization", "owner", "created"],
                _ticket_row),
}  # fmt: skip


def export_csv(session: Session, type_name: str) -> tuple[str, int]:
    """(the CSV text, how many records)."""
    numbers: set[str] = set()
    if type_name in tables.TABLES:
        table = tables.TABLES[type_name]
        model, columns, to_row = table.model, table.all_columns(session), table.to_row
        numbers = tables.number_columns(session, table.entity)
    elif type_name in _EXTRA:
        model, columns, to_row = _EXTRA[type_name]
    else:
        raise CrmError(f"unknown record type {type_name!r}; one of {', '.join(EXPORT_TYPES)}")
    numbers |= {column for column in columns if column == "id" or column.endswith("_id")}
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    count = 0
    for record in session.scalars(select(model).order_by(col(model.id))):
        row = to_row(session, record)
        # Safe to open in a spreadsheet: no text cell starts a formula (tables' docstring).
        writer.writerow(
            {key: tables.spreadsheet_cell(value, number=key in numbers) for key, value in row.items()}
        )
        count += 1
    return out.getvalue(), count


def export_vcards(session: Session) -> tuple[str, int]:
    cards = []
    for c in session.scalars(select(m.Contact).order_by(col(m.Contact.id))):
        row = tables.TABLES["contacts"].to_row(session, c)
        extra = {k: v for k, v in row.items() if k.startswith("custom.") and v}
        if row["owner"]:
            extra["owner"] = row["owner"]
        if c.mail_opt_out:
            extra["mail_opt_out"] = "true"
        assert c.id is not None  # read from the database
        cards.append(
            vcard.Card(
                line=0,
                first_name=c.first_name,
                last_name=c.last_name,
                full_name=c.name,
                organization=row["organization"],
                title=row["job_title"],
                emails=contact_service.contact_emails(session, c.id),
                phones=contact_service.contact_phones(session, c.id),
                street=row["street"],
                postcode=row["postcode"],
                city=row["city"],
                region=row["region"],
                country=row["country"],
                extra=extra,
            )  # fmt: skip
        )
    return vcard.write(cards), len(cards)


STATUS = {"planned": "CONFIRMED", "done": "CONFIRMED", "cancelled": "CANCELLED"}


def export_calendar(session: Session, *, owner_email: str | None, now: datetime) -> tuple[bytes, int]:
    """Activities as VEVENTs (one UID per activity, so a calendar that imports the file again updates them)."""
    # icalendar loads slowly: only when the calendar is exported
    from icalendar import Calendar, Event, vCalAddress, vText

    query = select(m.Activity).order_by(col(m.Activity.start_at), col(m.Activity.id))
    if owner_email:
        owner = session.scalars(
            select(m.User).where(col(m.User.email) == owner_email.strip().lower())
        ).first()
        if owner is None:
            raise CrmError(f"no user with the address {owner_email!r}")
        query = query.where(col(m.Activity.owner_id) == owner.id)
    calendar = Calendar()
    calendar.add("prodid", "-//crm-tui//activities//EN")
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", "crm-tui activities" + (f" of {owner_email}" if owner_email else ""))
    count = 0
    for a in session.scalars(query):
        event = Event()
        event.add("uid", f"activity-{a.id}@crm-tui")
        event.add("dtstamp", now)
        event.add("dtstart", a.start_at)
        event.add("dtend", a.end_at or a.start_at + timedelta(minutes=30))
        event.add("summary", a.subject)
        if a.description:
            event.add("description", a.description)
        event.add("categories", [a.type] + ([a.task_type] if a.task_type else []))
        event.add("status", STATUS.get(a.status, "CONFIRMED"))
        event.add("x-crm-tui-status", a.status)
        owner = session.get(m.User, a.owner_id) if a.owner_id else None
        if owner is not None:
            organizer = vCalAddress(f"mailto:{owner.email}")
            organizer.params["cn"] = vText(owner.name)
            event.add("organizer", organizer)
        for attendee in session.scalars(
            select(m.ActivityAttendee).where(col(m.ActivityAttendee.activity_id) == a.id)
        ):
            address = attendee.email or (
                tables.contact_key(session, attendee.contact_id) if attendee.contact_id else ""
            )
            if "@" in address:
                event.add("attendee", vCalAddress(f"mailto:{address}"))
        if a.reminder_at is not None:
            # icalendar loads slowly: only when the calendar is exported
            from icalendar import Alarm

            alarm = Alarm()
            alarm.add("action", "DISPLAY")
            alarm.add("description", a.subject)
            alarm.add("trigger", a.reminder_at - a.start_at)
            event.add_component(alarm)
        calendar.add_component(event)
        count += 1
    return calendar.to_ical(), count
