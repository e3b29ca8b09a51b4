"""The contacts' list rows and form: fields, the text a contact is shown with, the save through the service."""

from __future__ import annotations

from datetime import tzinfo
from typing import Any

from crm_tui.core.errors import ValidationError
from crm_tui.core.form_text import ref_text
from crm_tui.core.services import contacts
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
from crm_tui.ui.widgets.paged_table import COUNT_CAP, Row

COLUMNS = [("Name", 24), ("E-mail", 36), ("Organization", 26), ("Phone", 18), ("City", 16)]


def contact_rows(session: Any, query: str, offset: int, limit: int, *, zone: tzinfo) -> list[Row]:
    return [
        Row(
            str(c.id),
            (
                c.name,
                c.emails[0] if c.emails else "",
                c.organization_name or "",
                c.phones[0] if c.phones else "",
                c.city or "",
            ),
        )
        for c in contacts.search_contacts(session, query, limit=limit, offset=offset)
    ]


def contact_count(session: Any, query: str) -> int:
    return contacts.count_contacts(session, query, cap=COUNT_CAP)


def contact_values(contact: contacts.ContactRecord) -> dict[str, str]:
    """The contact as its form's fields hold it."""
    return {
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "job_title": contact.job_title or "",
        "emails": ", ".join(contact.emails),
        "phones": ", ".join(contact.phones),
        "organization_id": ref_text(contact.organization_name, "organization", contact.organization_id),
        "owner_id": owner_text(contact.owner_id),
        "street": contact.street or "",
        "postcode": contact.postcode or "",
        "city": contact.city or "",
        "region": contact.region or "",
        "country": contact.country or "",
        "mail_opt_out": flag_text(contact.mail_opt_out),
    } | custom_values_text(contact.custom)


def contact_form(context: AppContext, record_id: int | None, prefill: dict[str, str]) -> FormSpec:
    with context.database().read() as session:
        values = dict(prefill)
        record = None
        if record_id is not None:
            record = contacts.contact_record(session, record_id)
            if record is None:
                raise ValidationError.single("contact", f"contact:{record_id} does not exist")
            values |= contact_values(record)
        elif "owner_id" not in values:
            values["owner_id"] = str(context.me_id() or "")
        fields = [
            FieldSpec("first_name", "First name"),
            FieldSpec("last_name", "Last name"),
            FieldSpec("emails", "E-mail addresses", "list"),
            FieldSpec("phones", "Phones", "list"),
            FieldSpec("job_title", "Job title"),
            FieldSpec("organization_id", "Organization", "ref", ref_type="organization"),
            FieldSpec("owner_id", "Owner", "choice", user_choices(session)),
            FieldSpec("street", "Street"),
            FieldSpec("postcode", "Postcode"),
            FieldSpec("city", "City"),
            FieldSpec("region", "Region"),
            FieldSpec("country", "Country"),
            FieldSpec("mail_opt_out", "Mass mail", "choice", [("false", "yes"), ("true", "no (opted out)")]),
            *custom_field_specs(session, "contact"),
        ]
    opened = OpenedAs(record)

    def save(v: dict[str, str]) -> int:
        def work(session: Any, c: Converter) -> int:
            data = contacts.ContactInput(
                first_name=v.get("first_name", ""),
                last_name=v.get("last_name", ""),
                emails=c.items(v, "emails"),
                phones=c.items(v, "phones"),
                job_title=c.text(v, "job_title"),
                organization_id=c.ref(v, "organization_id", "organization"),
                owner_id=c.owner(v),
                street=c.text(v, "street"),
                postcode=c.text(v, "postcode"),
                city=c.text(v, "city"),
                region=c.text(v, "region"),
                country=c.text(v, "country"),
                custom=c.custom(v),
                mail_opt_out=v.get("mail_opt_out") == "true",
            )
            c.raise_if_any()
            now = context.clock.now()
            if record_id is None:
                return saved_id(contacts.create_contact(session, data, now=now).id)
            contacts.update_contact(session, record_id, data, now=now, expected=opened.record)
            return record_id

        return save_record(context, work)

    spec = FormSpec(
        "Edit contact" if record_id else "New contact", fields, values, save, suggest=suggester(context)
    )
    return checks_edits(spec, opened, contact_values)
