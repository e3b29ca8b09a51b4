"""The organizations' list rows and form: fields, the text an organization is shown with, the save."""

from __future__ import annotations

from datetime import tzinfo
from typing import Any

from crm_tui.core.errors import ValidationError
from crm_tui.core.services import organizations
from crm_tui.runtime.context import AppContext
from crm_tui.ui.forms.converter import (
    Converter,
    custom_field_specs,
    custom_values_text,
    owner_text,
    user_choices,
)
from crm_tui.ui.forms.edits import OpenedAs, checks_edits, save_record
from crm_tui.ui.forms.references import suggester
from crm_tui.ui.screens.record_form import FieldSpec, FormSpec, saved_id
from crm_tui.ui.widgets.paged_table import Row

COLUMNS = [("Name", 30), ("Kind", 10), ("Place", 24), ("Region", 20), ("Phone", 18)]

ORGANIZATION_KINDS = [
    ("customer", "customer"),
    ("installer", "installer partner"),
    ("reseller", "reseller partner"),
]


def organization_rows(session: Any, query: str, offset: int, limit: int, *, zone: tzinfo) -> list[Row]:
    return [
        Row(
            str(o.id),
            (o.name, o.kind, " ".join(p for p in (o.postcode, o.city) if p), o.region or "", o.phone or ""),
        )
        for o in organizations.organization_rows(session, query, limit=limit, offset=offset)
    ]


def organization_count(session: Any, query: str) -> int:
    return organizations.count_organizations(session, query)


def organization_values(org: organizations.OrganizationRecord) -> dict[str, str]:
    """The organization as its form's fields hold it."""
    return {
        "name": org.name,
        "kind": org.kind,
        "domains": ", ".join(org.domains),
        "emails": ", ".join(org.emails),
        "phone": org.phone or "",
        "website": org.website or "",
        "street": org.street or "",
        "postcode": org.postcode or "",
        "city": org.city or "",
        "region": org.region or "",
        "country": org.country or "",
        "owner_id": owner_text(org.owner_id),
        "coverage_regions": ", ".join(org.coverage_regions),
        "coverage_postcodes": ", ".join(org.coverage_postcodes),
    } | custom_values_text(org.custom)


def organization_form(context: AppContext, record_id: int | None, prefill: dict[str, str]) -> FormSpec:
    with context.database().read() as session:
        values = {"kind": "customer"} | dict(prefill)
        record = None
        if record_id is not None:
            record = organizations.organization_record(session, record_id)
            if record is None:
                raise ValidationError.single("organization", f"organization:{record_id} does not exist")
            values |= organization_values(record)
        elif "owner_id" not in values:
            values["owner_id"] = str(context.me_id() or "")
        fields = [
            FieldSpec("name", "Name", required=True),
            FieldSpec("kind", "Kind", "choice", ORGANIZATION_KINDS, required=True),
            FieldSpec("domains", "E-mail domains", "list"),
            FieldSpec("emails", "General addresses", "list"),
            FieldSpec("phone", "Phone"),
            FieldSpec("website", "Website"),
            FieldSpec("street", "Street"),
            FieldSpec("postcode", "Postcode"),
            FieldSpec("city", "City"),
            FieldSpec("region", "Region"),
            FieldSpec("country", "Country"),
            FieldSpec("owner_id", "Owner", "choice", user_choices(session)),
            FieldSpec("coverage_regions", "Partner covers regions", "list"),
            FieldSpec("coverage_postcodes", "Partner covers postcodes (prefixes)", "list"),
            *custom_field_specs(session, "organization"),
        ]
    opened = OpenedAs(record)

    def save(v: dict[str, str]) -> int:
        def work(session: Any, c: Converter) -> int:
            data = organizations.OrganizationInput(
                name=v.get("name", ""),
                kind=v.get("kind") or "customer",
                domains=c.items(v, "domains"),
                emails=c.items(v, "emails"),
                phone=c.text(v, "phone"),
                website=c.text(v, "website"),
                street=c.text(v, "street"),
                postcode=c.text(v, "postcode"),
                city=c.text(v, "city"),
                region=c.text(v, "region"),
                country=c.text(v, "country"),
                owner_id=c.owner(v),
                coverage_regions=c.items(v, "coverage_regions"),
                coverage_postcodes=c.items(v, "coverage_postcodes"),
                custom=c.custom(v),
            )
            c.raise_if_any()
            now = context.clock.now()
            if record_id is None:
                return saved_id(organizations.create_organization(session, data, now=now).id)
            organizations.update_organization(session, record_id, data, now=now, expected=opened.record)
            return record_id

        return save_record(context, work)

    spec = FormSpec(
        "Edit organization" if record_id else "New organization",
        fields,
        values,
        save,
        suggest=suggester(context),
    )
    return checks_edits(spec, opened, organization_values)
