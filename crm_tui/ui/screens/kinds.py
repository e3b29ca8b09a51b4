"""Each kind of record as the screens handle it: its list (columns, paged fetch, count), its form (fields,
initial values, save through the service) and how a typed reference to it is resolved. No widgets here."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo
from typing import Any

from rich.text import Text
from sqlalchemy import func, select
from sqlmodel import Session

from crm_tui.core import models as m
from crm_tui.core.clock import parse_date
from crm_tui.core.errors import CrmError, FieldErrors, ValidationError
from crm_tui.core.form_text import ref_text
from crm_tui.core.money import format_amount, format_money, parse_amount
from crm_tui.core.sanitize import terminal_safe
from crm_tui.core.services import (
    activities,
    contacts,
    custom_fields,
    leads,
    opportunities,
    organizations,
    pipelines,
    sales_documents,
    users,
)
from crm_tui.core.types import RecordRef, RecordType
from crm_tui.runtime.context import AppContext
from crm_tui.ui.screens.forms import FieldSpec, FormSpec
from crm_tui.ui.widgets.paged_table import COUNT_CAP, Row

_REF_IN_TEXT = re.compile(r"\[([a-z]+):(\d+)\]\s*$")


# --- typed values <-> form text ------------------------------------------------------------------


class Converter:
    """Turns form text into typed values, collecting a message per bad field."""

    def __init__(self, session: Session, context: AppContext):
        self.session, self.context = session, context
        self.errors = FieldErrors()

    def text(self, values: dict[str, str], name: str) -> str | None:
        return values.get(name, "").strip() or None

    def items(self, values: dict[str, str], name: str) -> list[str]:
        return [part.strip() for part in re.split(r"[,;\n]", values.get(name, "")) if part.strip()]

    def date(self, values: dict[str, str], name: str) -> Any:
        raw = values.get(name, "").strip()
        if not raw:
            return None
        try:
            return parse_date(raw)
        except ValueError as exc:
            self.errors.add(name, str(exc))
            return None

    def instant(self, values: dict[str, str], name: str) -> datetime | None:
        raw = values.get(name, "").strip()
        if not raw:
            return None
        try:
            return datetime.strptime(raw, "%Y-%m-%d %H:%M").replace(tzinfo=self.context.zone)
        except ValueError:
            try:
                return datetime.combine(parse_date(raw), time(9, 0), tzinfo=self.context.zone)
            except ValueError:
                self.errors.add(name, f"{raw!r} is not a date and time (YYYY-MM-DD HH:MM)")
                return None

    def money(self, values: dict[str, str], name: str) -> int:
        raw = values.get(name, "").strip()
        if not raw:
            return 0
        try:
            return parse_amount(raw)
        except ValueError as exc:
            self.errors.add(name, str(exc))
            return 0

    def ref(self, values: dict[str, str], name: str, ref_type: str) -> int | None:
        raw = values.get(name, "").strip()
        if not raw:
            return None
        try:
            return resolve_reference(self.session, ref_type, raw)
        except ValueError as exc:
            self.errors.add(name, str(exc))
            return None

    def custom(self, values: dict[str, str]) -> dict[str, str]:
        return {
            name.removeprefix("custom."): value
            for name, value in values.items()
            if name.startswith("custom.")
        }

    def raise_if_any(self) -> None:
        self.errors.raise_if_any()


def _name_query(session: Session, ref_type: str, text: str, limit: int) -> list[tuple[int, str]]:
    """(id, label) of records of ``ref_type`` whose name matches ``text``."""
    if ref_type == "contact":
        return [(c.id, c.name) for c in contacts.search_contacts(session, text, limit=limit)]
    if ref_type == "organization":
        return [(o.id, o.name) for o in organizations.search_organizations(session, text, limit=limit)]  # type: ignore[misc]
    if ref_type == "lead":
        return [(lead.id, lead.title) for lead in leads.search_leads(session, text, limit=limit)]  # type: ignore[misc]
    if ref_type == "opportunity":
        return [(d.id, d.title) for d in opportunities.list_opportunities(session, text=text, limit=limit)]
    if ref_type == "user":
        pattern = f"%{text.lower()}%"
        rows = session.scalars(
            select(m.User)
            .where(func.lower(m.User.name).like(pattern) | func.lower(m.User.email).like(pattern))
            .limit(limit)
        )
        return [(u.id, u.name) for u in rows]  # type: ignore[misc]
    raise ValueError(f"cannot look up {ref_type} records by name")


def resolve_reference(session: Session, ref_type: str, text: str) -> int:
    """The id of the record typed as ``Name [type:id]``, ``type:id`` or a name that matches one record."""
    marked = _REF_IN_TEXT.search(text)
    candidate = f"{marked.group(1)}:{marked.group(2)}" if marked else text
    if re.fullmatch(r"[a-z]+:\d+", candidate.strip().lower()):
        ref = RecordRef.parse(candidate)
        if ref.type.value != ref_type:
            raise ValueError(f"{ref} is not a {ref_type}")
        from crm_tui.core.services.records import record_exists

        if not record_exists(session, ref):
            raise ValueError(f"{ref} does not exist")
        return ref.id
    matches = _name_query(session, ref_type, text, 2)
    exact = [(i, label) for i, label in matches if label.lower() == text.strip().lower()]
    if len(exact) == 1 or len(matches) == 1:
        return (exact or matches)[0][0]
    if not matches:
        raise ValueError(f"no {ref_type} matches {text.strip()!r}")
    raise ValueError(
        f"several {ref_type}s match {text.strip()!r}: type more, or pick one from the completion"
    )


def suggest_reference(session: Session, ref_type: str, text: str) -> str | None:
    matches = _name_query(session, ref_type, text, 1)
    if not matches:
        return None
    record_id, label = matches[0]
    completion = ref_text(label, ref_type, record_id)
    return completion if completion.lower().startswith(text.lower()) else None


def custom_field_specs(session: Session, entity_type: str) -> list[FieldSpec]:
    specs = []
    for definition in custom_fields.definitions_for(session, entity_type):
        kind, choices = "text", []
        if definition.field_type == "choice":
            kind, choices = "choice", [(c, c) for c in (definition.choices or "").split("\n")]
        elif definition.field_type == "boolean":
            kind, choices = "choice", [("true", "yes"), ("false", "no")]
        elif definition.field_type == "date":
            kind = "date"
        elif definition.field_type == "number":
            kind = "number"
        specs.append(
            FieldSpec(
                f"custom.{definition.key}", definition.label, kind, choices, required=definition.required
            )
        )
    return specs


def custom_values_text(session: Session, ref: RecordRef | None) -> dict[str, str]:
    if ref is None:
        return {}
    result = {}
    for key, value in custom_fields.get_values(session, ref).items():
        if isinstance(value, bool):
            value = "true" if value else "false"
        result[f"custom.{key}"] = str(value)
    return result


def user_choices(session: Session) -> list[tuple[str, str]]:
    return [(str(u.id), u.name) for u in users.list_users(session)]


def local_text(value: datetime | None, context: AppContext) -> str:
    return value.astimezone(context.zone).strftime("%Y-%m-%d %H:%M") if value else ""


# --- the kinds ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordKind:
    type: RecordType
    title: str
    columns: list[tuple[str, int]]
    fetch: Callable[[Session, str, int, int], list[Row]]
    count: Callable[[Session, str], int]
    form: Callable[[AppContext, int | None, dict[str, str]], FormSpec]

    @property
    def singular(self) -> str:
        return self.type.value


def _persist(
    c: Converter, session: Session, record_id: int | None, data: Any, create: Any, update: Any
) -> int:
    """The end of every form's save: conversion errors first, then create or update through the service."""
    c.raise_if_any()
    now = c.context.clock.now()
    if record_id is None:
        return create(session, data, now=now).id  # type: ignore[no-any-return]
    return update(session, record_id, data, now=now).id  # type: ignore[no-any-return]


def _save(context: AppContext, work: Callable[[Session, Converter], int]) -> int:
    """Run one form save as one use case: conversion errors and service errors together, nothing on failure.
    An edit whose record changed since its form opened (``_EXPECTED``) is refused inside the same write
    transaction, so no other writer can slip in between the check and the save."""
    with context.database().write() as session:
        expected = _EXPECTED.get()
        if expected is not None:
            model, record_id_, version, unchanged = expected
            current = session.get(model, record_id_)
            if current is None:
                raise CrmError("this record was deleted by someone else meanwhile: nothing was saved")
            # The time of the last change, and the form's fields as stored now (two instances' clocks, another
            # laptop's or a pinned one, may give two edits one time). Both under the write lock: no other
            # writer can commit between this check and the save.
            if current.updated_at != version or not unchanged():
                raise RecordChanged(current.updated_at)
        converter = Converter(session, context)
        record_id = work(session, converter)
        return record_id


class RecordChanged(CrmError):
    def __init__(self, version: datetime) -> None:
        super().__init__("changed meanwhile")
        self.version = version


_EXPECTED: ContextVar[tuple[Any, int, datetime, Callable[[], bool]] | None] = ContextVar(
    "crm_expected_version", default=None
)


def guarded(model: Any) -> Callable[[Callable[..., FormSpec]], Callable[..., FormSpec]]:
    """Form builders for records that others may edit too (another crm-tui, a second window, a rule): saving
    an edit of a record changed since the form opened is refused with both versions of each field that differs;
    saving again then writes yours over theirs (knowingly)."""

    def wrap(build: Callable[..., FormSpec]) -> Callable[..., FormSpec]:
        @functools.wraps(build)
        def builder(context: AppContext, record_id: int | None, prefill: dict[str, str]) -> FormSpec:
            spec = build(context, record_id, prefill)
            if record_id is None:
                return spec
            with context.database().read() as session:
                row = session.get(model, record_id)
                if row is None:
                    return spec
                state: dict[str, Any] = {"version": row.updated_at, "values": dict(spec.values)}
            labels = {f.name: f.label for f in spec.fields}
            inner = spec.save

            def unchanged() -> bool:
                return build(context, record_id, {}).values == state["values"]

            def save(values: dict[str, str]) -> int:
                token = _EXPECTED.set((model, record_id, state["version"], unchanged))
                try:
                    return inner(values)
                except RecordChanged as changed:
                    theirs = build(context, record_id, {}).values
                    differ = [
                        f"  {labels.get(k, k)}: now {terminal_safe(theirs.get(k, ''), max_length=60)!r}, "
                        f"yours {terminal_safe(values.get(k, ''), max_length=60)!r}"
                        for k in labels
                        if theirs.get(k, "") != state["values"].get(k, "")
                    ]
                    state["version"], state["values"] = changed.version, theirs
                    raise CrmError(
                        "Someone else changed this record while you edited it; your edit was not saved.\n"
                        + ("\n".join(differ) if differ else "  (no field of this form differs)")
                        + "\nctrl+s saves yours over theirs · esc keeps theirs"
                    ) from None
                finally:
                    _EXPECTED.reset(token)

            spec.save = save
            return spec

        return builder

    return wrap


def _suggest(context: AppContext) -> Callable[[str, str], str | None]:
    def suggest(ref_type: str, text: str) -> str | None:
        with context.database().read() as session:
            return suggest_reference(session, ref_type, text)

    return suggest


# contacts


def _contact_rows(session: Session, query: str, offset: int, limit: int, *, zone: tzinfo) -> list[Row]:
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


@guarded(m.Contact)
def _contact_form(context: AppContext, record_id: int | None, prefill: dict[str, str]) -> FormSpec:
    with context.database().read() as session:
        values = dict(prefill)
        if record_id is not None:
            contact = session.get(m.Contact, record_id)
            if contact is None:
                raise ValidationError.single("contact", f"contact:{record_id} does not exist")
            org = session.get(m.Organization, contact.organization_id) if contact.organization_id else None
            values |= {
                "first_name": contact.first_name,
                "last_name": contact.last_name,
                "job_title": contact.job_title or "",
                "emails": ", ".join(contacts.contact_emails(session, record_id)),
                "phones": ", ".join(contacts.contact_phones(session, record_id)),
                "organization_id": ref_text(
                    org.name if org else None, "organization", contact.organization_id
                ),
                "owner_id": str(contact.owner_id or ""),
                "street": contact.street or "",
                "postcode": contact.postcode or "",
                "city": contact.city or "",
                "region": contact.region or "",
                "country": contact.country or "",
                "mail_opt_out": "true" if contact.mail_opt_out else "false",
            } | custom_values_text(session, RecordRef(RecordType.CONTACT, record_id))
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

    def save(v: dict[str, str]) -> int:
        def work(session: Session, c: Converter) -> int:
            data = contacts.ContactInput(
                first_name=v.get("first_name", ""),
                last_name=v.get("last_name", ""),
                emails=c.items(v, "emails"),
                phones=c.items(v, "phones"),
                job_title=c.text(v, "job_title"),
                organization_id=c.ref(v, "organization_id", "organization"),
                owner_id=int(v["owner_id"]) if v.get("owner_id") else None,
                street=c.text(v, "street"),
                postcode=c.text(v, "postcode"),
                city=c.text(v, "city"),
                region=c.text(v, "region"),
                country=c.text(v, "country"),
                custom=c.custom(v),
                mail_opt_out=v.get("mail_opt_out") == "true",
            )
            return _persist(c, session, record_id, data, contacts.create_contact, contacts.update_contact)

        return _save(context, work)

    return FormSpec(
        "Edit contact" if record_id else "New contact", fields, values, save, suggest=_suggest(context)
    )


# organizations


def _organization_rows(session: Session, query: str, offset: int, limit: int, *, zone: tzinfo) -> list[Row]:
    return [
        Row(
            str(o.id),
            (o.name, o.kind, " ".join(p for p in (o.postcode, o.city) if p), o.region or "", o.phone or ""),
        )
        for o in organizations.search_organizations(session, query, limit=limit, offset=offset)
    ]


def _organization_count(session: Session, query: str) -> int:
    from crm_tui.core.search_text import like_pattern, search_terms

    statement = select(func.count()).select_from(m.Organization)
    for term in search_terms(query):
        statement = statement.where(m.Organization.search_text.like(like_pattern(term), escape="\\"))
    return int(session.scalar(statement) or 0)


@guarded(m.Organization)
def _organization_form(context: AppContext, record_id: int | None, prefill: dict[str, str]) -> FormSpec:
    with context.database().read() as session:
        values = {"kind": "customer"} | dict(prefill)
        if record_id is not None:
            org = session.get(m.Organization, record_id)
            if org is None:
                raise ValidationError.single("organization", f"organization:{record_id} does not exist")
            coverage = session.scalars(
                select(m.PartnerCoverage).where(m.PartnerCoverage.organization_id == record_id)
            ).all()
            values |= {
                "name": org.name,
                "kind": org.kind,
                "domains": ", ".join(organizations.organization_domains(session, record_id)),
                "emails": ", ".join(organizations.organization_emails(session, record_id)),
                "phone": org.phone or "",
                "website": org.website or "",
                "street": org.street or "",
                "postcode": org.postcode or "",
                "city": org.city or "",
                "region": org.region or "",
                "country": org.country or "",
                "owner_id": str(org.owner_id or ""),
                "coverage_regions": ", ".join(c.region for c in coverage if c.region),
                "coverage_postcodes": ", ".join(c.postcode_prefix for c in coverage if c.postcode_prefix),
            } | custom_values_text(session, RecordRef(RecordType.ORGANIZATION, record_id))
        elif "owner_id" not in values:
            values["owner_id"] = str(context.me_id() or "")
        fields = [
            FieldSpec("name", "Name", required=True),
            FieldSpec(
                "kind",
                "Kind",
                "choice",
                [
                    ("customer", "customer"),
                    ("installer", "installer partner"),
                    ("reseller", "reseller partner"),
                ],
                required=True,
            ),
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

    def save(v: dict[str, str]) -> int:
        def work(session: Session, c: Converter) -> int:
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
                owner_id=int(v["owner_id"]) if v.get("owner_id") else None,
                coverage_regions=c.items(v, "coverage_regions"),
                coverage_postcodes=c.items(v, "coverage_postcodes"),
                custom=c.custom(v),
            )
            return _persist(
                c,
                session,
                record_id,
                data,
                organizations.create_organization,
                organizations.update_organization,
            )

        return _save(context, work)

    return FormSpec(
        "Edit organization" if record_id else "New organization",
        fields,
        values,
        save,
        suggest=_suggest(context),
    )


# leads


def _lead_rows(session: Session, query: str, offset: int, limit: int, *, zone: tzinfo) -> list[Row]:
    rows = []
    for lead in leads.search_leads(session, query, limit=limit, offset=offset):
        style = "dim" if lead.status in ("converted", "disqualified") else ""
        rows.append(
            Row(
                str(lead.id),
                (lead.title, lead.person_name or "", lead.company_name or "", lead.status, lead.source or ""),
                style,
            )
        )
    return rows


def _lead_count(session: Session, query: str) -> int:
    from crm_tui.core.search_text import like_pattern, search_terms

    statement = select(func.count()).select_from(m.Lead)
    for term in search_terms(query):
        statement = statement.where(m.Lead.search_text.like(like_pattern(term), escape="\\"))
    return int(session.scalar(statement) or 0)


@guarded(m.Lead)
def _lead_form(context: AppContext, record_id: int | None, prefill: dict[str, str]) -> FormSpec:
    with context.database().read() as session:
        values = {"status": "new"} | dict(prefill)
        converted = False
        if record_id is not None:
            lead = session.get(m.Lead, record_id)
            if lead is None:
                raise ValidationError.single("lead", f"lead:{record_id} does not exist")
            converted = lead.status == "converted"
            org = session.get(m.Organization, lead.organization_id) if lead.organization_id else None
            person = session.get(m.Contact, lead.contact_id) if lead.contact_id else None
            values |= {
                "title": lead.title,
                "person_name": lead.person_name or "",
                "emails": ", ".join(leads.lead_emails(session, record_id)),
                "phone": lead.phone or "",
                "company_name": lead.company_name or "",
                "source": lead.source or "",
                "status": lead.status,
                "owner_id": str(lead.owner_id or ""),
                "description": lead.description or "",
                "organization_id": ref_text(org.name if org else None, "organization", lead.organization_id),
                "contact_id": ref_text(person.name if person else None, "contact", lead.contact_id),
                "mail_opt_out": "true" if lead.mail_opt_out else "false",
            } | custom_values_text(session, RecordRef(RecordType.LEAD, record_id))
        elif "owner_id" not in values:
            values["owner_id"] = str(context.me_id() or "")
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

    def save(v: dict[str, str]) -> int:
        def work(session: Session, c: Converter) -> int:
            data = leads.LeadInput(
                title=v.get("title", ""),
                person_name=c.text(v, "person_name"),
                emails=c.items(v, "emails"),
                phone=c.text(v, "phone"),
                company_name=c.text(v, "company_name"),
                source=c.text(v, "source"),
                status=v.get("status") or "new" if v.get("status") != "converted" else "qualified",
                owner_id=int(v["owner_id"]) if v.get("owner_id") else None,
                organization_id=c.ref(v, "organization_id", "organization"),
                contact_id=c.ref(v, "contact_id", "contact"),
                description=c.text(v, "description"),
                custom=c.custom(v),
                mail_opt_out=v.get("mail_opt_out") == "true",
            )
            return _persist(c, session, record_id, data, leads.create_lead, leads.update_lead)

        return _save(context, work)

    return FormSpec("Edit lead" if record_id else "New lead", fields, values, save, suggest=_suggest(context))


# tickets


def _ticket_rows(session: Session, query: str, offset: int, limit: int, *, zone: tzinfo) -> list[Row]:
    names = {}
    rows = sales_documents.search_tickets(session, query, limit=limit, offset=offset)
    ids = [t.contact_id for t in rows if t.contact_id]
    if ids:
        names = {c.id: c.name for c in contacts.summaries(session, ids)}  # type: ignore[misc]
    return [
        Row(
            str(t.id),
            (
                t.subject,
                t.status,
                names.get(t.contact_id, ""),
                t.updated_at.astimezone(zone).strftime("%Y-%m-%d"),
            ),
            "dim" if t.status == "closed" else "",
        )
        for t in rows
    ]


def _ticket_count(session: Session, query: str) -> int:
    return sales_documents.count_tickets(session, query)


@guarded(m.Ticket)
def _ticket_form(context: AppContext, record_id: int | None, prefill: dict[str, str]) -> FormSpec:
    with context.database().read() as session:
        values = {"status": "open"} | dict(prefill)
        if record_id is not None:
            ticket = session.get(m.Ticket, record_id)
            if ticket is None:
                raise ValidationError.single("ticket", f"ticket:{record_id} does not exist")
            person = session.get(m.Contact, ticket.contact_id) if ticket.contact_id else None
            org = session.get(m.Organization, ticket.organization_id) if ticket.organization_id else None
            values |= {
                "subject": ticket.subject,
                "description": ticket.description or "",
                "status": ticket.status,
                "contact_id": ref_text(person.name if person else None, "contact", ticket.contact_id),
                "organization_id": ref_text(
                    org.name if org else None, "organization", ticket.organization_id
                ),
                "owner_id": str(ticket.owner_id or ""),
            }
        elif "owner_id" not in values:
            values["owner_id"] = str(context.me_id() or "")
        fields = [
            FieldSpec("subject", "Subject", required=True),
            FieldSpec(
                "status", "Status", "choice", [(s.value, s.value) for s in m.TicketStatus], required=True
            ),
            FieldSpec("contact_id", "Contact", "ref", ref_type="contact"),
            FieldSpec("organization_id", "Organization", "ref", ref_type="organization"),
            FieldSpec("owner_id", "Owner", "choice", user_choices(session)),
            FieldSpec("description", "Description", "textarea"),
        ]

    def save(v: dict[str, str]) -> int:
        def work(session: Session, c: Converter) -> int:
            data = sales_documents.TicketInput(
                subject=v.get("subject", ""),
                description=c.text(v, "description"),
                status=v.get("status") or "open",
                contact_id=c.ref(v, "contact_id", "contact"),
                organization_id=c.ref(v, "organization_id", "organization"),
                owner_id=int(v["owner_id"]) if v.get("owner_id") else None,
            )
            return _persist(
                c, session, record_id, data, sales_documents.create_ticket, sales_documents.update_ticket
            )

        return _save(context, work)

    return FormSpec(
        "Edit ticket" if record_id else "New ticket", fields, values, save, suggest=_suggest(context)
    )


# quotes


def _quote_rows(session: Session, query: str, offset: int, limit: int, *, zone: tzinfo) -> list[Row]:
    rows = sales_documents.search_quotes(session, query, limit=limit, offset=offset)
    titles = sales_documents.deal_titles(session, (q.opportunity_id for q in rows))
    return [
        Row(
            str(q.id),
            (
                q.number,
                titles.get(q.opportunity_id, ""),
                q.status,
                format_money(q.total_cents, q.currency),
                q.valid_until.isoformat() if q.valid_until else "",
            ),
        )
        for q in rows
    ]


def _quote_count(session: Session, query: str) -> int:
    return sales_documents.count_quotes(session, query)


_ITEM_LINE = re.compile(r"^\s*([0-9.,]+)\s*[x×]\s*(.+?)\s*@\s*([0-9.,]+)\s*$")


@guarded(m.Quote)
def _quote_form(context: AppContext, record_id: int | None, prefill: dict[str, str]) -> FormSpec:
    with context.database().read() as session:
        values = {"status": "draft"} | dict(prefill)
        if record_id is not None:
            quote = session.get(m.Quote, record_id)
            if quote is None:
                raise ValidationError.single("quote", f"quote:{record_id} does not exist")
            deal = session.get(m.Opportunity, quote.opportunity_id)
            lines = [
                f"{format_amount(i.quantity_milli // 10).rstrip('0').rstrip('.')} x {i.description} @ {format_amount(i.unit_price_cents)}"
                for i in sales_documents.quote_items(session, record_id)
            ]
            values |= {
                "number": quote.number,
                "opportunity_id": ref_text(deal.title if deal else None, "opportunity", quote.opportunity_id),
                "status": quote.status,
                "currency": quote.currency,
                "valid_until": quote.valid_until.isoformat() if quote.valid_until else "",
                "items": "\n".join(lines),
            }
        fields = [
            FieldSpec("opportunity_id", "Opportunity", "ref", required=True, ref_type="opportunity"),
            FieldSpec("number", "Number", placeholder="next free number"),
            FieldSpec(
                "status", "Status", "choice", [(s.value, s.value) for s in m.QuoteStatus], required=True
            ),
            FieldSpec("currency", "Currency", placeholder="the deal's currency"),
            FieldSpec("valid_until", "Valid until", "date"),
            FieldSpec("items", "Line items: one per line, QUANTITY x DESCRIPTION @ UNIT PRICE", "textarea"),
        ]

    def save(v: dict[str, str]) -> int:
        def work(session: Session, c: Converter) -> int:
            items = []
            for number, line in enumerate(v.get("items", "").splitlines(), 1):
                if not line.strip():
                    continue
                match = _ITEM_LINE.match(line)
                if not match:
                    c.errors.add("items", f"line {number}: write QUANTITY x DESCRIPTION @ UNIT PRICE")
                    continue
                try:
                    price = parse_amount(match.group(3))
                except ValueError as exc:
                    c.errors.add("items", f"line {number}: {exc}")
                    continue
                items.append(
                    sales_documents.QuoteItemInput(match.group(2), match.group(1).replace(",", "."), price)
                )
            deal_id = c.ref(v, "opportunity_id", "opportunity")
            if deal_id is None and "opportunity_id" not in c.errors.errors:
                c.errors.add("opportunity_id", "is required")
            data = sales_documents.QuoteInput(
                opportunity_id=deal_id or 0,
                items=items,
                number=c.text(v, "number"),
                status=v.get("status") or "draft",
                currency=(c.text(v, "currency") or None),
                valid_until=c.date(v, "valid_until"),
            )
            return _persist(
                c, session, record_id, data, sales_documents.create_quote, sales_documents.update_quote
            )

        return _save(context, work)

    return FormSpec(
        "Edit quote" if record_id else "New quote", fields, values, save, suggest=_suggest(context)
    )


# opportunities and activities (forms only: they have their own screens)


@guarded(m.Opportunity)
def opportunity_form(context: AppContext, record_id: int | None, prefill: dict[str, str]) -> FormSpec:
    with context.database().read() as session:
        all_pipelines = pipelines.pipelines(session)
        stage_choices = [
            (str(s.id), f"{p.name} › {s.name}")
            for p in all_pipelines
            for s in pipelines.stages_of(session, p.id)  # type: ignore[arg-type]
        ]
        values = {"currency": "EUR"} | dict(prefill)
        if record_id is not None:
            deal = session.get(m.Opportunity, record_id)
            if deal is None:
                raise ValidationError.single("opportunity", f"opportunity:{record_id} does not exist")

            def label(model: Any, rid: int | None) -> str | None:
                row = session.get(model, rid) if rid else None
                return getattr(row, "name", None) if row else None

            people = opportunities.contacts_of(session, record_id)
            primary = next((cid for cid, is_primary in people if is_primary), None)
            others = [cid for cid, is_primary in people if not is_primary]
            names = {c.id: c.name for c in contacts.summaries(session, [cid for cid, _ in people])}
            values |= {
                "title": deal.title,
                "stage_id": str(deal.stage_id),
                "amount": format_amount(deal.amount_cents),
                "currency": deal.currency,
                "expected_close": deal.expected_close.isoformat() if deal.expected_close else "",
                "owner_id": str(deal.owner_id or ""),
                "lost_reason": deal.lost_reason or "",
                "description": deal.description or "",
                "organization_id": ref_text(
                    label(m.Organization, deal.organization_id), "organization", deal.organization_id
                ),
                "installer_id": ref_text(
                    label(m.Organization, deal.installer_id), "organization", deal.installer_id
                ),
                "reseller_id": ref_text(
                    label(m.Organization, deal.reseller_id), "organization", deal.reseller_id
                ),
                "primary_contact_id": ref_text(names.get(primary), "contact", primary),
                "contact_ids": ", ".join(ref_text(names.get(cid), "contact", cid) for cid in others),
            } | custom_values_text(session, RecordRef(RecordType.OPPORTUNITY, record_id))
        else:
            values.setdefault("owner_id", str(context.me_id() or ""))
            if "stage_id" not in values and stage_choices:
                first = pipelines.first_open_stage(session, all_pipelines[0].id)  # type: ignore[arg-type]
                values["stage_id"] = str(first.id)
        fields = [
            FieldSpec("title", "Title", required=True),
            FieldSpec("stage_id", "Pipeline › stage", "choice", stage_choices, required=True),
            FieldSpec("amount", "Amount", "money"),
            FieldSpec("currency", "Currency"),
            FieldSpec("expected_close", "Expected close", "date"),
            FieldSpec("organization_id", "Customer", "ref", ref_type="organization"),
            FieldSpec("primary_contact_id", "Primary contact", "ref", ref_type="contact"),
            FieldSpec("contact_ids", "Other contacts", "list", placeholder="Name [contact:ID], ..."),
            FieldSpec("owner_id", "Owner", "choice", user_choices(session)),
            FieldSpec("installer_id", "Installer partner", "ref", ref_type="organization"),
            FieldSpec("reseller_id", "Reseller partner", "ref", ref_type="organization"),
            FieldSpec("lost_reason", "Lost reason"),
            FieldSpec("description", "Description", "textarea"),
            *custom_field_specs(session, "opportunity"),
        ]

    def save(v: dict[str, str]) -> int:
        def work(session: Session, c: Converter) -> int:
            stage = session.get(m.Stage, int(v["stage_id"])) if v.get("stage_id") else None
            if stage is None:
                c.errors.add("stage_id", "is required")
            others = []
            for item in re.split(r",(?![^\[]*\])", v.get("contact_ids", "")):
                if item.strip():
                    try:
                        others.append(resolve_reference(session, "contact", item.strip()))
                    except ValueError as exc:
                        c.errors.add("contact_ids", str(exc))
            primary = c.ref(v, "primary_contact_id", "contact")
            data = opportunities.OpportunityInput(
                title=v.get("title", ""),
                pipeline_id=stage.pipeline_id if stage else 0,
                stage_id=stage.id if stage else None,
                amount_cents=c.money(v, "amount"),
                currency=(v.get("currency") or "EUR").strip(),
                expected_close=c.date(v, "expected_close"),
                owner_id=int(v["owner_id"]) if v.get("owner_id") else None,
                organization_id=c.ref(v, "organization_id", "organization"),
                installer_id=c.ref(v, "installer_id", "organization"),
                reseller_id=c.ref(v, "reseller_id", "organization"),
                contact_ids=([primary] if primary else []) + others,
                primary_contact_id=primary,
                lost_reason=c.text(v, "lost_reason"),
                description=c.text(v, "description"),
                custom=c.custom(v),
            )
            c.raise_if_any()
            now, me = context.clock.now(), context.me_id()
            if record_id is None:
                return opportunities.create_opportunity(session, data, now=now, user_id=me).id  # type: ignore[return-value]
            return opportunities.update_opportunity(session, record_id, data, now=now, user_id=me).id  # type: ignore[return-value]

        return _save(context, work)

    return FormSpec(
        "Edit opportunity" if record_id else "New opportunity",
        fields,
        values,
        save,
        suggest=_suggest(context),
    )


@guarded(m.Activity)
def activity_form(context: AppContext, record_id: int | None, prefill: dict[str, str]) -> FormSpec:
    """The activity form; beside it, the other activities of the chosen day."""
    with context.database().read() as session:
        values = {"type": "call"} | dict(prefill)
        if record_id is not None:
            act = session.get(m.Activity, record_id)
            if act is None:
                raise ValidationError.single("activity", f"activity:{record_id} does not exist")

            def label(model: Any, rid: int | None, attr: str = "name") -> str | None:
                row = session.get(model, rid) if rid else None
                return getattr(row, attr, None) if row else None

            values |= {
                "type": act.type,
                "task_type": act.task_type or "",
                "subject": act.subject,
                "description": act.description or "",
                "start_at": local_text(act.start_at, context),
                "end_at": local_text(act.end_at, context),
                "reminder_at": local_text(act.reminder_at, context),
                "owner_id": str(act.owner_id or ""),
                "contact_id": ref_text(label(m.Contact, act.contact_id), "contact", act.contact_id),
                "lead_id": ref_text(label(m.Lead, act.lead_id, "title"), "lead", act.lead_id),
                "organization_id": ref_text(
                    label(m.Organization, act.organization_id), "organization", act.organization_id
                ),
                "opportunity_id": ref_text(
                    label(m.Opportunity, act.opportunity_id, "title"), "opportunity", act.opportunity_id
                ),
            } | custom_values_text(session, RecordRef(RecordType.ACTIVITY, record_id))
        else:
            values.setdefault("owner_id", str(context.me_id() or ""))
            if "start_at" not in values:
                start = (
                    (context.clock.now() + timedelta(hours=1))
                    .astimezone(context.zone)
                    .replace(minute=0, second=0, microsecond=0)
                )
                values["start_at"] = start.strftime("%Y-%m-%d %H:%M")
        fields = [
            FieldSpec("type", "Type", "choice", [(t.value, t.value) for t in m.ActivityType], required=True),
            FieldSpec("subject", "Subject", required=True),
            FieldSpec("start_at", "Start", "datetime", required=True),
            FieldSpec("end_at", "End", "datetime"),
            FieldSpec("contact_id", "Contact", "ref", ref_type="contact"),
            FieldSpec("lead_id", "or lead", "ref", ref_type="lead"),
            FieldSpec("organization_id", "Organization", "ref", ref_type="organization"),
            FieldSpec("opportunity_id", "Opportunity", "ref", ref_type="opportunity"),
            FieldSpec("owner_id", "Owner", "choice", user_choices(session)),
            FieldSpec("task_type", "Task type", placeholder="e.g. Outbound call"),
            FieldSpec("reminder_at", "Reminder", "datetime"),
            FieldSpec("description", "Description", "textarea"),
            *custom_field_specs(session, "activity"),
        ]

    def side(v: dict[str, str]) -> Text:
        with context.database().read() as session:
            converter = Converter(session, context)
            start = converter.instant(v, "start_at")
            if start is None:
                return Text("Pick a start to see that day.", style="dim")
            day = start.astimezone(context.zone).date()
            from crm_tui.core.clock import local_day_bounds

            begin, end = local_day_bounds(day, context.zone)
            rows = activities.list_activities(session, start=begin, end=end)
        text = Text(f"{day:%A %d %B %Y}\n", style="bold")
        if not rows:
            text.append("Nothing else planned.", style="dim")
        for row in rows:
            if row.id == record_id:
                continue
            begin_text = row.start_at.astimezone(context.zone).strftime("%H:%M")
            end_text = row.end_at.astimezone(context.zone).strftime("%H:%M") if row.end_at else ""
            style = "dim strike" if row.status == "cancelled" else ("dim" if row.status == "done" else "")
            text.append(f"{begin_text}–{end_text} ", style="cyan")
            text.append(f"{row.type}: {terminal_safe(row.subject, max_length=40)}", style=style)
            text.append(f"  {terminal_safe(row.owner_name or '', max_length=20)}\n", style="dim")
        return text

    def save(v: dict[str, str]) -> int:
        def work(session: Session, c: Converter) -> int:
            start = c.instant(v, "start_at")
            if start is None and "start_at" not in c.errors.errors:
                c.errors.add("start_at", "is required")
            data = activities.ActivityInput(
                subject=v.get("subject", ""),
                start_at=start or context.clock.now(),
                type=v.get("type") or "call",
                task_type=c.text(v, "task_type"),
                description=c.text(v, "description"),
                contact_id=c.ref(v, "contact_id", "contact"),
                lead_id=c.ref(v, "lead_id", "lead"),
                organization_id=c.ref(v, "organization_id", "organization"),
                opportunity_id=c.ref(v, "opportunity_id", "opportunity"),
                end_at=c.instant(v, "end_at"),
                owner_id=int(v["owner_id"]) if v.get("owner_id") else None,
                reminder_at=c.instant(v, "reminder_at"),
                custom=c.custom(v),
                # Not a field: a follow-up made from a mail (``A``) watches it in the same save.
                follow_up_of=int(prefill["follow_up_of"]) if prefill.get("follow_up_of") else None,
            )
            return _persist(
                c, session, record_id, data, activities.create_activity, activities.update_activity
            )

        return _save(context, work)

    return FormSpec(
        "Edit activity" if record_id else "New activity",
        fields,
        values,
        save,
        side=side,
        suggest=_suggest(context),
    )


KINDS: dict[RecordType, RecordKind] = {
    RecordType.CONTACT: RecordKind(
        RecordType.CONTACT,
        "Contacts",
        [("Name", 24), ("E-mail", 36), ("Organization", 26), ("Phone", 18), ("City", 16)],
        _contact_rows,
        lambda s, q: contacts.count_contacts(s, q, cap=COUNT_CAP),
        _contact_form,
    ),
    RecordType.ORGANIZATION: RecordKind(
        RecordType.ORGANIZATION,
        "Organizations",
        [("Name", 30), ("Kind", 10), ("Place", 24), ("Region", 20), ("Phone", 18)],
        _organization_rows,
        _organization_count,
        _organization_form,
    ),
    RecordType.LEAD: RecordKind(
        RecordType.LEAD,
        "Leads",
        [("Title", 36), ("Person", 20), ("Company", 26), ("Status", 12), ("Source", 12)],
        _lead_rows,
        _lead_count,
        _lead_form,
    ),
    RecordType.TICKET: RecordKind(
        RecordType.TICKET,
        "Tickets",
        [("Subject", 40), ("Status", 10), ("Contact", 24), ("Updated", 12)],
        _ticket_rows,
        _ticket_count,
        _ticket_form,
    ),
    RecordType.QUOTE: RecordKind(
        RecordType.QUOTE,
        "Quotes",
        [("Number", 14), ("Opportunity", 34), ("Status", 10), ("Total", 18), ("Valid until", 12)],
        _quote_rows,
        _quote_count,
        _quote_form,
    ),
}
