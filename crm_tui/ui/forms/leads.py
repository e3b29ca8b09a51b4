"""The leads' list rows and form: fields, the text a lead is shown with, the save through the service."""

from __future__ import annotations

from datetime import tzinfo
from typing import Any

from crm_tui.core.errors import ValidationError
from crm_tui.core.form_text import ref_text
from crm_tui.core.services import leads
from crm_tui.runtime.context import AppContext
from crm_tui.ui.forms.converter import (
    Converter,
    custom_field_specs,
    custom_values_text,
    flag_text,
    owner_text,
    user_choices,
)
from crm_tui.ui.forms.edits import OpenedAs, checks_edits, save_record
from crm_tui.ui.forms.references import suggester
from crm_tui.ui.screens.record_form import FieldSpec, FormSpec, saved_id
from crm_tui.ui.widgets.paged_table import Row

COLUMNS = [("Title", 36), ("Person", 20), ("Company", 26), ("Status", 12), ("Source", 12)]


def lead_rows(session: Any, query: str, offset: int, limit: int, *, zone: tzinfo) -> list[Row]:
    return [
        Row(
            str(lead.id),
            (lead.title, lead.person_name or "", lead.company_name or "", lead.status, lead.source or ""),
            "dim" if lead.status in ("converted", "disqualified") else "",
        )
        for lead in leads.lead_rows(session, query, limit=limit, offset=offset)
    ]


def lead_count(session: Any, query: str) -> int:
    return leads.count_leads(session, query)


def lead_values(lead: leads.LeadRecord) -> dict[str, str]:
    """The lead as its form's fields hold it."""
    return {
        "title": lead.title,
        "person_name": lead.person_name or "",
        "emails": ", ".join(lead.emails),
        "phone": lead.phone or "",
        "company_name": lead.company_name or "",
        "source": lead.source or "",
        "status": lead.status,
        "owner_id": owner_text(lead.owner_id),
        "description": lead.description or "",
        "organization_id": ref_text(lead.organization_name, "organization", lead.organization_id),
        "contact_id": ref_text(lead.contact_name, "contact", lead.contact_id),
        "mail_opt_out": flag_text(lead.mail_opt_out),
    } | custom_values_text(lead.custom)


def lead_form(context: AppContext, record_id: int | None, prefill: dict[str, str]) -> FormSpec:
    with context.database().read() as session:
        values = {"status": "new"} | dict(prefill)
        record = None
        if record_id is not None:
            record = leads.lead_record(session, record_id)
            if record is None:
                raise ValidationError.single("lead", f"lead:{record_id} does not exist")
            values |= lead_values(record)
        elif "owner_id" not in values:
            values["owner_id"] = str(context.me_id() or "")
        converted = record is not None and record.status == "converted"
        statuses = [(s, s) for s in leads.EDITABLE_STATUSES] + (
            [("converted", "converted")] if converted else []
        )
        fields = [
            FieldSpec("title", "Title", required=True),
            FieldSpec("person_name", "Person"),
            FieldSpec("emails", "E-mail addresses", "list"),
            FieldSpec("phone", "Phone"),
            FieldSpec("company_name", "Company"),
            FieldSpec("source", "Source"),
            FieldSpec("status", "Status", "choice", statuses, required=True, disabled=converted),
            FieldSpec("owner_id", "Owner", "choice", user_choices(session)),
            FieldSpec(
                "organization_id", "Existing customer (repeat business)", "ref", ref_type="organization"
            ),
            FieldSpec("contact_id", "Existing contact", "ref", ref_type="contact"),
            FieldSpec("description", "Description", "textarea"),
            FieldSpec("mail_opt_out", "Mass mail", "choice", [("false", "yes"), ("true", "no (opted out)")]),
            *custom_field_specs(session, "lead"),
        ]
    opened = OpenedAs(record)

    def save(v: dict[str, str]) -> int:
        def work(session: Any, c: Converter) -> int:
            data = leads.LeadInput(
                title=v.get("title", ""),
                person_name=c.text(v, "person_name"),
                emails=c.items(v, "emails"),
                phone=c.text(v, "phone"),
                company_name=c.text(v, "company_name"),
                source=c.text(v, "source"),
                status=v.get("status") or "new" if v.get("status") != "converted" else "qualified",
                owner_id=c.owner(v),
                organization_id=c.ref(v, "organization_id", "organization"),
                contact_id=c.ref(v, "contact_id", "contact"),
                description=c.text(v, "description"),
                custom=c.custom(v),
                mail_opt_out=v.get("mail_opt_out") == "true",
            )
            c.raise_if_any()
            now = context.clock.now()
            if record_id is None:
                return saved_id(leads.create_lead(session, data, now=now).id)
            leads.update_lead(session, record_id, data, now=now, expected=opened.record)
            return record_id

        return save_record(context, work)

    spec = FormSpec(
        "Edit lead" if record_id else "New lead", fields, values, save, suggest=suggester(context)
    )
    return checks_edits(spec, opened, lead_values)
