"""Each importable record type as a table: its columns, a record written as a row (export), a row read into the
service's input (import, names resolved: an organization by name, a user or contact by address, a stage by
pipeline and name), how a duplicate is found, and how a row merges into an existing record.

Cells that hold several values (addresses, phones, domains) separate them with ``; ``. Custom fields are
``custom.KEY`` columns. Dates are YYYY-MM-DD, date-times ISO-8601 with offset, amounts plain decimals.

A CSV file is opened in spreadsheets, which run a cell starting with ``=``, ``+``, ``-``, ``@``, tab or CR as a
formula (``=HYPERLINK(...)``, ``=cmd|' /C calc'!A0``). So text cells are written as OWASP recommends, with a
leading ``'`` (a phone "+49 30 1" is written "'+49 30 1"), and numbers (amounts, number fields) as plain
numbers. Reading takes one ``'`` off a cell where quotes stand before such a character, so an export reads back
unchanged; a text that itself starts with quotes before one ("'=x") is written with one more ("''=x").
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from datetime import date, datetime
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlmodel import Session, col

from crm_tui.core import models as m
from crm_tui.core.errors import CrmError, ValidationError
from crm_tui.core.money import format_amount, parse_amount
from crm_tui.core.services import (
    contacts,
    custom_fields,
    leads,
    opportunities,
    organizations,
    pipelines,
)
from crm_tui.core.types import RecordRef, RecordType, stored_id

SEP = "; "
TYPES = ("contacts", "organizations", "leads", "opportunities")
ENTITY = {
    "contacts": "contact",
    "organizations": "organization",
    "leads": "lead",
    "opportunities": "opportunity",
}


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def _starts_formula(cell: str) -> bool:
    return cell.lstrip("'")[:1] in FORMULA_START


def spreadsheet_cell(value: str, *, number: bool = False) -> str:
    """``value`` as a CSV cell a spreadsheet cannot run: a number as it is (in a column of numbers), text that
    would start a formula with a leading ``'``."""
    if number and NUMBER.fullmatch(value):
        return value
    return "'" + value if _starts_formula(value) else value


def from_spreadsheet(cell: str) -> str:
    """A CSV cell as the text it stands for: the one ``'`` that ``spreadsheet_cell`` (or a person keeping a
    spreadsheet from running it) put before quotes and ``=``, ``+``, ``-``, ``@``, tab or CR is taken off."""
    return cell[1:] if cell.startswith("'") and _starts_formula(cell) else cell


def number_columns(session: Session, entity: str) -> set[str]:
    """The columns of ``entity``'s table written as numbers: amounts and number fields."""
    numbers = {"amount"}
    for definition in custom_fields.definitions_for(session, entity):
        if definition.field_type == m.CustomFieldType.NUMBER.value:
            numbers.add(f"custom.{definition.key}")
    return numbers


def split(cell: str) -> list[str]:
    return [part.strip() for part in (cell or "").replace("\n", ";").split(";") if part.strip()]


def cell_text(value: Any) -> str:
    """A value as a CSV cell holds it: "" for none, true/false, ISO dates and times."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _bool(cell: str, column: str) -> bool:
    value = (cell or "").strip().lower()
    if value in ("", "false", "no", "0", "n"):
        return False
    if value in ("true", "yes", "1", "y", "x"):
        return True
    raise ValidationError.single(column, f"{cell!r} is not yes or no")


def _date(cell: str, column: str) -> date | None:
    if not (cell or "").strip():
        return None
    try:
        return date.fromisoformat(cell.strip()[:10])
    except ValueError:
        raise ValidationError.single(column, f"{cell!r} is not a date (YYYY-MM-DD)") from None


def _opt(cell: str) -> str | None:
    return (cell or "").strip() or None


# --- references by name -------------------------------------------------------------------------------


def user_email(session: Session, user_id: int | None) -> str:
    user = session.get(m.User, user_id) if user_id else None
    return user.email if user else ""


def user_by_email(session: Session, cell: str, column: str) -> int | None:
    if not (cell or "").strip():
        return None
    found = session.scalars(
        select(col(m.User.id)).where(func.lower(col(m.User.email)) == cell.strip().lower())
    ).first()
    if found is None:
        raise ValidationError.single(column, f"no user with the address {cell.strip()!r}")
    return found


def organization_name(session: Session, org_id: int | None) -> str:
    org = session.get(m.Organization, org_id) if org_id else None
    return org.name if org else ""


def organization_by_name(session: Session, cell: str, column: str) -> int | None:
    if not (cell or "").strip():
        return None
    org = organizations.find_by_name(session, cell.strip())
    if org is None:
        raise ValidationError.single(
            column, f"no organization named {cell.strip()!r} (import organizations first)"
        )
    return org.id


def contact_key(session: Session, contact_id: int | None) -> str:
    """A contact as a cell: its first address, else its name."""
    if not contact_id:
        return ""
    address = next(iter(contacts.contact_emails(session, contact_id)), None)
    if address:
        return address
    contact = session.get(m.Contact, contact_id)
    return contact.name if contact else ""


def contact_by_key(session: Session, cell: str, column: str) -> int:
    key = cell.strip()
    if "@" in key:
        found = contacts.find_by_email(session, key)
        if found:
            return stored_id(found[0].id)
        raise ValidationError.single(column, f"no contact with the address {key!r} (import contacts first)")
    matches = [
        stored_id(c.id)
        for c in session.scalars(
            select(m.Contact).where(func.lower(m.Contact.last_name) == key.rsplit(" ", 1)[-1].lower())
        )
        if c.name.lower() == key.lower()
    ]
    if len(matches) != 1:
        raise ValidationError.single(
            column, f"{'no' if not matches else 'more than one'} contact named {key!r}"
        )
    return matches[0]


def _custom_columns(session: Session, entity: str) -> list[str]:
    return [f"custom.{d.key}" for d in custom_fields.definitions_for(session, entity)]


def _custom_out(session: Session, entity: str, record_id: int) -> dict[str, str]:
    values = custom_fields.get_values(session, RecordRef(RecordType(entity), record_id))
    return {f"custom.{k}": cell_text(v) for k, v in values.items()}


def _custom_in(row: dict[str, str]) -> dict[str, Any] | None:
    values = {k[7:]: v for k, v in row.items() if k.startswith("custom.") and (v or "").strip()}
    return values or None


# --- the tables ---------------------------------------------------------------------------------------------


class Stored(Protocol):
    """A table's model: a row with an id (None only before it is flushed)."""

    id: int | None


@dataclass
class Table:
    name: str
    entity: str
    columns: list[str]  # without the custom ones
    to_row: Callable[[Session, Any], dict[str, str]]
    from_row: Callable[[Session, dict[str, str]], Any]  # -> the service input
    duplicate: Callable[[Session, Any], list[int]]  # records the row may be (best first)
    current: Callable[[Session, int], Any]  # the existing record as an input (to merge into)
    create: Callable[[Session, Any, datetime, int | None], Any]
    update: Callable[[Session, int, Any, datetime], Any]
    model: type[Stored]
    after: Callable[[Session, Any, dict[str, str]], None] | None = None  # extras the input cannot carry

    def all_columns(self, session: Session) -> list[str]:
        return self.columns + _custom_columns(session, self.entity)


def merge(existing: Any, incoming: Any) -> Any:
    """The existing record's input with the row's non-empty values; lists are united (existing order first)."""
    values: dict[str, Any] = {}
    for f in fields(existing):
        old, new = getattr(existing, f.name), getattr(incoming, f.name)
        if isinstance(old, list):
            values[f.name] = list(dict.fromkeys([*old, *(new or [])]))
        elif isinstance(old, dict) or f.name == "custom":
            values[f.name] = {**(old or {}), **(new or {})} or None
        elif new not in (None, "", [], False):
            values[f.name] = new
        else:
            values[f.name] = old
    return replace(existing, **values)


# contacts


def _contact_row(session: Session, c: m.Contact) -> dict[str, str]:
    return {
        "first_name": c.first_name, "last_name": c.last_name,
        "emails": SEP.join(contacts.contact_emails(session, stored_id(c.id))),
        "phones": SEP.join(contacts.contact_phones(session, stored_id(c.id))),
        "job_title": cell_text(c.job_title), "organization": organization_name(session, c.organization_id),
        "owner": user_email(session, c.owner_id), "street": cell_text(c.street), "postcode": cell_text(c.postcode),
        "city": cell_text(c.city), "region": cell_text(c.region), "country": cell_text(c.country),
        "mail_opt_out": cell_text(c.mail_opt_out), **_custom_out(session, "contact", stored_id(c.id)),
    }  # fmt: skip


def _contact_in(session: Session, row: dict[str, str]) -> contacts.ContactInput:
    first, last = (row.get("first_name") or "").strip(), (row.get("last_name") or "").strip()
    if not first and not last and (row.get("name") or "").strip():
        first, _, last = row["name"].strip().rpartition(" ")
    return contacts.ContactInput(
        first_name=first, last_name=last, emails=split(row.get("emails", "")), phones=split(row.get("phones", "")),
        job_title=_opt(row.get("job_title", "")),
        organization_id=organization_by_name(session, row.get("organization", ""), "organization"),
        owner_id=user_by_email(session, row.get("owner", ""), "owner"), street=_opt(row.get("street", "")),
        postcode=_opt(row.get("postcode", "")), city=_opt(row.get("city", "")), region=_opt(row.get("region", "")),
        country=_opt(row.get("country", "")), mail_opt_out=_bool(row.get("mail_opt_out", ""), "mail_opt_out"),
        custom=_custom_in(row),
    )  # fmt: skip


def _contact_duplicate(session: Session, data: contacts.ContactInput) -> list[int]:
    """Contacts with one of the addresses and the same name (a row without a name: any). Two people may
    share an address (a family's, an office's): a different name there is a different person."""
    name = (data.first_name.strip().casefold(), data.last_name.strip().casefold())
    found_ids: list[int] = []
    for address in data.emails:
        for found in contacts.find_by_email(session, address):
            if (
                not any(name)
                or (found.first_name.strip().casefold(), found.last_name.strip().casefold()) == name
            ):
                found_ids.append(stored_id(found.id))
    return list(dict.fromkeys(found_ids))


def _contact_current(session: Session, contact_id: int) -> contacts.ContactInput:
    c = session.get(m.Contact, contact_id)
    assert c is not None
    return contacts.ContactInput(
        first_name=c.first_name, last_name=c.last_name, emails=contacts.contact_emails(session, contact_id),
        phones=contacts.contact_phones(session, contact_id), job_title=c.job_title, mail_opt_out=c.mail_opt_out,
        organization_id=c.organization_id, owner_id=c.owner_id, street=c.street, postcode=c.postcode, city=c.city,
        region=c.region, country=c.country,
        custom=custom_fields.get_values(session, RecordRef(RecordType.CONTACT, contact_id)) or None,
    )  # fmt: skip


# organizations


def _org_row(session: Session, o: m.Organization) -> dict[str, str]:
    coverage = list(
        session.scalars(
            select(m.PartnerCoverage)
            .where(col(m.PartnerCoverage.organization_id) == o.id)
            .order_by(col(m.PartnerCoverage.id))
        )
    )
    return {
        "name": o.name, "kind": o.kind, "domains": SEP.join(organizations.organization_domains(session, stored_id(o.id))),
        "emails": SEP.join(organizations.organization_emails(session, stored_id(o.id))), "phone": cell_text(o.phone),
        "website": cell_text(o.website), "street": cell_text(o.street), "postcode": cell_text(o.postcode), "city": cell_text(o.city),
        "region": cell_text(o.region), "country": cell_text(o.country), "owner": user_email(session, o.owner_id),
        "coverage_regions": SEP.join(c.region for c in coverage if c.region),
        "coverage_postcodes": SEP.join(c.postcode_prefix for c in coverage if c.postcode_prefix),
        **_custom_out(session, "organization", stored_id(o.id)),
    }  # fmt: skip


def _org_in(session: Session, row: dict[str, str]) -> organizations.OrganizationInput:
    return organizations.OrganizationInput(
        name=(row.get("name") or "").strip(), kind=(row.get("kind") or "customer").strip().lower(),
        domains=split(row.get("domains", "")), emails=split(row.get("emails", "")), phone=_opt(row.get("phone", "")),
        website=_opt(row.get("website", "")), street=_opt(row.get("street", "")), postcode=_opt(row.get("postcode", "")),
        city=_opt(row.get("city", "")), region=_opt(row.get("region", "")), country=_opt(row.get("country", "")),
        owner_id=user_by_email(session, row.get("owner", ""), "owner"),
        coverage_regions=split(row.get("coverage_regions", "")), coverage_postcodes=split(row.get("coverage_postcodes", "")),
        custom=_custom_in(row),
    )  # fmt: skip


def _org_duplicate(session: Session, data: organizations.OrganizationInput) -> list[int]:
    """The same name, or one of the same domains."""
    found_ids: list[int] = []
    found = organizations.find_by_name(session, data.name) if data.name else None
    if found is not None:
        found_ids.append(stored_id(found.id))
    for domain in data.domains:
        found = organizations.find_by_domain(session, domain)
        if found is not None:
            found_ids.append(stored_id(found.id))
    return list(dict.fromkeys(found_ids))


def _org_current(session: Session, org_id: int) -> organizations.OrganizationInput:
    o = session.get(m.Organization, org_id)
    assert o is not None
    row = _org_row(session, o)
    return organizations.OrganizationInput(
        name=o.name, kind=o.kind, domains=split(row["domains"]), emails=split(row["emails"]), phone=o.phone,
        website=o.website, street=o.street, postcode=o.postcode, city=o.city, region=o.region, country=o.country,
        owner_id=o.owner_id, coverage_regions=split(row["coverage_regions"]),
        coverage_postcodes=split(row["coverage_postcodes"]),
        custom=custom_fields.get_values(session, RecordRef(RecordType.ORGANIZATION, org_id)) or None,
    )  # fmt: skip


# leads


def _lead_row(session: Session, lead: m.Lead) -> dict[str, str]:
    deal = (
        session.get(m.Opportunity, lead.converted_opportunity_id) if lead.converted_opportunity_id else None
    )
    return {
        "title": lead.title, "person_name": cell_text(lead.person_name), "company_name": cell_text(lead.company_name),
        "emails": SEP.join(leads.lead_emails(session, stored_id(lead.id))), "phone": cell_text(lead.phone),
        "source": cell_text(lead.source), "status": lead.status, "owner": user_email(session, lead.owner_id),
        "organization": organization_name(session, lead.organization_id),
        "contact": contact_key(session, lead.contact_id), "description": cell_text(lead.description),
        "mail_opt_out": cell_text(lead.mail_opt_out), "converted_at": cell_text(lead.converted_at),
        "converted_contact": contact_key(session, lead.converted_contact_id),
        "converted_organization": organization_name(session, lead.converted_organization_id),
        "converted_opportunity": deal.title if deal else "", **_custom_out(session, "lead", stored_id(lead.id)),
    }  # fmt: skip


def _lead_in(session: Session, row: dict[str, str]) -> leads.LeadInput:
    status = (row.get("status") or "new").strip().lower()
    return leads.LeadInput(
        title=(row.get("title") or "").strip(), person_name=_opt(row.get("person_name", "")),
        emails=split(row.get("emails", "")), phone=_opt(row.get("phone", "")),
        company_name=_opt(row.get("company_name", "")), source=_opt(row.get("source", "")),
        status="qualified" if status == "converted" else status,
        owner_id=user_by_email(session, row.get("owner", ""), "owner"),
        organization_id=organization_by_name(session, row.get("organization", ""), "organization"),
        contact_id=contact_by_key(session, row["contact"], "contact") if (row.get("contact") or "").strip() else None,
        description=_opt(row.get("description", "")),
        mail_opt_out=_bool(row.get("mail_opt_out", ""), "mail_opt_out"), custom=_custom_in(row),
    )  # fmt: skip


def _lead_after(session: Session, lead: m.Lead, row: dict[str, str]) -> None:
    """A converted lead keeps what it became (the records must be there: import them first)."""
    if (row.get("status") or "").strip().lower() != "converted":
        return
    lead.status = m.LeadStatus.CONVERTED.value
    if (row.get("converted_contact") or "").strip():
        lead.converted_contact_id = contact_by_key(session, row["converted_contact"], "converted_contact")
    lead.converted_organization_id = organization_by_name(
        session, row.get("converted_organization", ""), "converted_organization"
    )
    title = (row.get("converted_opportunity") or "").strip()
    if title:
        lead.converted_opportunity_id = session.scalars(
            select(col(m.Opportunity.id)).where(col(m.Opportunity.title) == title)
        ).first()
    if (row.get("converted_at") or "").strip():
        try:
            lead.converted_at = datetime.fromisoformat(row["converted_at"].strip())
        except ValueError:
            raise ValidationError.single(
                "converted_at", f"{row['converted_at']!r} is not a date-time"
            ) from None
    session.add(lead)
    session.flush()


def _lead_duplicate(session: Session, data: leads.LeadInput) -> list[int]:
    found_ids: list[int] = []
    for address in data.emails:
        found_ids.extend(
            session.scalars(
                select(col(m.LeadEmail.lead_id))
                .where(func.lower(col(m.LeadEmail.address)) == address.lower())
                .order_by(col(m.LeadEmail.lead_id))
            )
        )
    return list(dict.fromkeys(found_ids))


def _lead_current(session: Session, lead_id: int) -> leads.LeadInput:
    lead = session.get(m.Lead, lead_id)
    assert lead is not None
    return leads.LeadInput(
        title=lead.title, person_name=lead.person_name, emails=leads.lead_emails(session, lead_id), phone=lead.phone,
        company_name=lead.company_name, source=lead.source,
        status=lead.status if lead.status != "converted" else "qualified", owner_id=lead.owner_id,
        organization_id=lead.organization_id, contact_id=lead.contact_id, description=lead.description,
        mail_opt_out=lead.mail_opt_out,
        custom=custom_fields.get_values(session, RecordRef(RecordType.LEAD, lead_id)) or None,
    )  # fmt: skip


# opportunities


def _deal_row(session: Session, d: m.Opportunity) -> dict[str, str]:
    stage = session.get(m.Stage, d.stage_id)
    pipeline = session.get(m.Pipeline, d.pipeline_id)
    people = opportunities.contacts_of(session, stored_id(d.id))
    return {
        "title": d.title, "pipeline": pipeline.name if pipeline else "", "stage": stage.name if stage else "",
        "amount": format_amount(d.amount_cents), "currency": d.currency, "expected_close": cell_text(d.expected_close),
        "owner": user_email(session, d.owner_id), "organization": organization_name(session, d.organization_id),
        "installer": organization_name(session, d.installer_id), "reseller": organization_name(session, d.reseller_id),
        "contacts": SEP.join(contact_key(session, c) for c, _ in people),
        "primary_contact": next((contact_key(session, c) for c, primary in people if primary), ""),
        "lost_reason": cell_text(d.lost_reason), "description": cell_text(d.description),
        **_custom_out(session, "opportunity", stored_id(d.id)),
    }  # fmt: skip


def _deal_in(session: Session, row: dict[str, str]) -> opportunities.OpportunityInput:
    pipeline_name = (row.get("pipeline") or "").strip()
    if not pipeline_name:
        raise ValidationError.single("pipeline", "required")
    pipeline = session.scalars(
        select(m.Pipeline).where(func.lower(m.Pipeline.name) == pipeline_name.lower())
    ).first()
    if pipeline is None:
        raise ValidationError.single("pipeline", f"no pipeline named {pipeline_name!r}")
    stage_id = None
    stage_name = (row.get("stage") or "").strip()
    if stage_name:
        assert pipeline.id is not None  # read from the database
        stage = next(
            (s for s in pipelines.stages_of(session, pipeline.id) if s.name.lower() == stage_name.lower()),
            None,
        )
        if stage is None:
            raise ValidationError.single("stage", f"{pipeline.name} has no stage {stage_name!r}")
        stage_id = stage.id
    try:
        amount = parse_amount(row.get("amount") or "0")
    except ValueError as exc:
        raise ValidationError.single("amount", str(exc)) from None
    people = [contact_by_key(session, key, "contacts") for key in split(row.get("contacts", ""))]
    primary = (
        contact_by_key(session, row["primary_contact"], "primary_contact")
        if (row.get("primary_contact") or "").strip()
        else None
    )
    return opportunities.OpportunityInput(
        title=(row.get("title") or "").strip(), pipeline_id=stored_id(pipeline.id), stage_id=stage_id, amount_cents=amount,
        currency=(row.get("currency") or "EUR").strip().upper(),
        expected_close=_date(row.get("expected_close", ""), "expected_close"),
        owner_id=user_by_email(session, row.get("owner", ""), "owner"),
        organization_id=organization_by_name(session, row.get("organization", ""), "organization"),
        installer_id=organization_by_name(session, row.get("installer", ""), "installer"),
        reseller_id=organization_by_name(session, row.get("reseller", ""), "reseller"),
        contact_ids=people, primary_contact_id=primary, lost_reason=_opt(row.get("lost_reason", "")),
        description=_opt(row.get("description", "")), custom=_custom_in(row),
    )  # fmt: skip


def _deal_duplicate(session: Session, data: opportunities.OpportunityInput) -> list[int]:
    """The same title for the same customer in the same pipeline."""
    query = select(col(m.Opportunity.id)).where(
        func.lower(col(m.Opportunity.title)) == data.title.lower(),
        col(m.Opportunity.pipeline_id) == data.pipeline_id,
    )
    query = query.where(
        col(m.Opportunity.organization_id) == data.organization_id
        if data.organization_id is not None
        else col(m.Opportunity.organization_id).is_(None)
    )
    return list(session.scalars(query.order_by(col(m.Opportunity.id))))


def _deal_current(session: Session, deal_id: int) -> opportunities.OpportunityInput:
    d = session.get(m.Opportunity, deal_id)
    assert d is not None
    people = opportunities.contacts_of(session, deal_id)
    return opportunities.OpportunityInput(
        title=d.title, pipeline_id=d.pipeline_id, stage_id=d.stage_id, amount_cents=d.amount_cents, currency=d.currency,
        expected_close=d.expected_close, owner_id=d.owner_id, organization_id=d.organization_id,
        installer_id=d.installer_id, reseller_id=d.reseller_id, contact_ids=[c for c, _ in people],
        primary_contact_id=next((c for c, p in people if p), None), lost_reason=d.lost_reason,
        description=d.description, source_lead_id=d.source_lead_id,
        custom=custom_fields.get_values(session, RecordRef(RecordType.OPPORTUNITY, deal_id)) or None,
    )  # fmt: skip


TABLES: dict[str, Table] = {
    "contacts": Table(
        "contacts", "contact",
        ["first_name", "last_name", "emails", "phones", "job_title", "organization", "owner", "street", "postcode",
         "city", "region", "country", "mail_opt_out"],
        _contact_row, _contact_in, _contact_duplicate, _contact_current,
        lambda s, d, now, me: contacts.create_contact(s, d, now=now, me_id=me),
        lambda s, i, d, now: contacts.update_contact(s, i, d, now=now), m.Contact,
    ),
    "organizations": Table(
        "organizations", "organization",
        ["name", "kind", "domains", "emails", "phone", "website", "street", "postcode", "city", "region", "country",
         "owner", "coverage_regions", "coverage_postcodes"],
        _org_row, _org_in, _org_duplicate, _org_current,
        lambda s, d, now, me: organizations.create_organization(s, d, now=now, me_id=me),
        lambda s, i, d, now: organizations.update_organization(s, i, d, now=now), m.Organization,
    ),
    "leads": Table(
        "leads", "lead",
        ["title", "person_name", "company_name", "emails", "phone", "source", "status", "owner", "organization",
         "contact", "description", "mail_opt_out", "converted_at", "converted_contact", "converted_organization",
         "converted_opportunity"],
        _lead_row, _lead_in, _lead_duplicate, _lead_current,
        lambda s, d, now, me: leads.create_lead(s, d, now=now, me_id=me),
        lambda s, i, d, now: leads.update_lead(s, i, d, now=now), m.Lead, after=_lead_after,
    ),
    "opportunities": Table(
        "opportunities", "opportunity",
        ["title", "pipeline", "stage", "amount", "currency", "expected_close", "owner", "organization", "installer",
         "reseller", "contacts", "primary_contact", "lost_reason", "description"],
        _deal_row, _deal_in, _deal_duplicate, _deal_current,
        lambda s, d, now, me: opportunities.create_opportunity(s, d, now=now, user_id=me),
        lambda s, i, d, now: opportunities.update_opportunity(s, i, d, now=now, user_id=None), m.Opportunity,
    ),
}  # fmt: skip


def table(name: str) -> Table:
    if name not in TABLES:
        raise CrmError(f"unknown record type {name!r}; one of {', '.join(TABLES)}")
    return TABLES[name]
