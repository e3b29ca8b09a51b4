"""The tickets' list rows and form: fields, the text a ticket is shown with, the save through the service."""

from __future__ import annotations

from datetime import tzinfo
from typing import Any

from crm_tui.core.errors import ValidationError
from crm_tui.core.form_text import ref_text
from crm_tui.core.services import sales_documents
from crm_tui.core.types import TicketStatus
from crm_tui.runtime.context import AppContext
from crm_tui.ui.forms.converter import Converter, owner_text, user_choices
from crm_tui.ui.forms.edits import OpenedAs, checks_edits, save_record
from crm_tui.ui.forms.references import suggester
from crm_tui.ui.screens.record_form import FieldSpec, FormSpec, saved_id
from crm_tui.ui.widgets.paged_table import Row

COLUMNS = [("Subject", 40), ("Status", 10), ("Contact", 24), ("Updated", 12)]


def ticket_rows(session: Any, query: str, offset: int, limit: int, *, zone: tzinfo) -> list[Row]:
    return [
        Row(
            str(t.id),
            (t.subject, t.status, t.contact_name, t.updated_at.astimezone(zone).strftime("%Y-%m-%d")),
            "dim" if t.status == "closed" else "",
        )
        for t in sales_documents.ticket_rows(session, query, limit=limit, offset=offset)
    ]


def ticket_count(session: Any, query: str) -> int:
    return sales_documents.count_tickets(session, query)


def ticket_values(ticket: sales_documents.TicketRecord) -> dict[str, str]:
    """The ticket as its form's fields hold it."""
    return {
        "subject": ticket.subject,
        "description": ticket.description or "",
        "status": ticket.status,
        "contact_id": ref_text(ticket.contact_name, "contact", ticket.contact_id),
        "organization_id": ref_text(ticket.organization_name, "organization", ticket.organization_id),
        "owner_id": owner_text(ticket.owner_id),
    }


def ticket_form(context: AppContext, record_id: int | None, prefill: dict[str, str]) -> FormSpec:
    with context.database().read() as session:
        values = {"status": "open"} | dict(prefill)
        record = None
        if record_id is not None:
            record = sales_documents.ticket_record(session, record_id)
            if record is None:
                raise ValidationError.single("ticket", f"ticket:{record_id} does not exist")
            values |= ticket_values(record)
        elif "owner_id" not in values:
            values["owner_id"] = str(context.me_id() or "")
        fields = [
            FieldSpec("subject", "Subject", required=True),
            FieldSpec(
                "status", "Status", "choice", [(s.value, s.value) for s in TicketStatus], required=True
            ),
            FieldSpec("contact_id", "Contact", "ref", ref_type="contact"),
            FieldSpec("organization_id", "Organization", "ref", ref_type="organization"),
            FieldSpec("owner_id", "Owner", "choice", user_choices(session)),
            FieldSpec("description", "Description", "textarea"),
        ]
    opened = OpenedAs(record)

    def save(v: dict[str, str]) -> int:
        def work(session: Any, c: Converter) -> int:
            data = sales_documents.TicketInput(
                subject=v.get("subject", ""),
                description=c.text(v, "description"),
                status=v.get("status") or "open",
                contact_id=c.ref(v, "contact_id", "contact"),
                organization_id=c.ref(v, "organization_id", "organization"),
                owner_id=c.owner(v),
            )
            c.raise_if_any()
            now = context.clock.now()
            if record_id is None:
                return saved_id(sales_documents.create_ticket(session, data, now=now).id)
            sales_documents.update_ticket(session, record_id, data, now=now, expected=opened.record)
            return record_id

        return save_record(context, work)

    spec = FormSpec(
        "Edit ticket" if record_id else "New ticket", fields, values, save, suggest=suggester(context)
    )
    return checks_edits(spec, opened, ticket_values)
