"""`crm-tui TYPE show ID`: one record with all its facts, its custom fields and the records related to it.

``--json`` prints one JSON array holding the record's object (ids as ``TYPE:ID``); the text is the record's
fields one a line (a linked record as "name (TYPE:ID)"), its custom fields as ``custom.KEY``, then a table of
the related records. Each handler takes the AppContext and the parsed arguments and returns an exit code."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from crm_tui.cli.output import cell, print_fields, print_json, print_table
from crm_tui.core.errors import NotFound
from crm_tui.core.money import format_amount
from crm_tui.core.types import RecordRef, RecordType, ref_str

if TYPE_CHECKING:
    from sqlmodel import Session

    from crm_tui.runtime.context import AppContext

# The object's keys the text shows elsewhere: in the heading, in the custom lines, in the related table.
_APART = ("id", "custom", "related", "items")
_LARGEST_ID = 2**31 - 1
# The key whose value heads the text (after the record's TYPE:ID).
_HEADINGS = ("name", "title", "subject", "number")
# Amounts: shown with the currency beside them.
_AMOUNTS = ("amount", "total")
# A linked record's name beside its reference: "organization" and "organization_name" show as one line.
_NAME_SUFFIXES = ("_name", "_title")


def show_handler(record_type: RecordType) -> Callable[[AppContext, argparse.Namespace], int]:
    """The ``show`` handler of one record type."""

    def handler(context: AppContext, args: argparse.Namespace) -> int:
        return show(context, RecordRef(record_type, args.id), as_json=args.json)

    handler.__name__ = f"{record_type.value}_show"
    return handler


def show(context: AppContext, ref: RecordRef, *, as_json: bool) -> int:
    with context.database().read() as session:
        data = record_object(session, ref, partner_id=context.partner_id())
    if as_json:
        print_json([data], context.zone)
        return 0
    heading = next(key for key in _HEADINGS if key in data)
    print(f"{ref}  {cell(data[heading], context.zone, None)}".rstrip())
    print_fields(_text_fields(data, heading), context.zone)
    if data.get("items"):
        print()
        print_table(
            ["quantity", "description", "unit price", "total"],
            [(i["quantity"], i["description"], i["unit_price"], i["total"]) for i in data["items"]],
            context.zone,
        )
    if data["related"]:
        print()
        print_table(
            ["related", "name", "role"],
            [(r["id"], r["name"], r["role"]) for r in data["related"]],
            context.zone,
        )
    return 0


def _text_fields(data: dict[str, Any], heading: str) -> list[tuple[str, Any]]:
    """The record's fields for people: empty ones left out, a reference shown with its record's name, an
    amount with its currency."""
    fields: list[tuple[str, Any]] = []
    named = {f"{key}{suffix}" for key in data for suffix in _NAME_SUFFIXES if data.get(key)}
    apart = {*_APART, heading, *named, *(["currency"] if any(k in data for k in _AMOUNTS) else [])}
    for key, value in data.items():
        if key in apart or value is None or value == "" or value == [] or value == ():
            continue
        name = next((data[f"{key}{s}"] for s in _NAME_SUFFIXES if data.get(f"{key}{s}")), None)
        if name and isinstance(value, str):
            value = f"{name} ({value})"
        elif key in _AMOUNTS:
            value = f"{value} {data['currency']}"
        fields.append((key.replace("_", " "), value))
    fields += [(f"custom.{key}", value) for key, value in data["custom"].items()]
    return fields


def record_object(session: Session, ref: RecordRef, *, partner_id: int | None = None) -> dict[str, Any]:
    """The record as one JSON-ready object (dates stay dates: the printer writes them). NotFound when it is
    not there (a partner's user sees only the deals their organization installs or resells)."""
    # the services load the ORM: imported when the command runs, so that --help starts fast
    from crm_tui.core.services import custom_fields, overview

    # Ids are 32-bit integers in PostgreSQL (which refuses to compare with a larger number): none is larger.
    data = _BUILDERS[ref.type](session, ref.id, partner_id) if ref.id <= _LARGEST_ID else None
    if data is None:
        raise NotFound(f"{ref} does not exist")
    if "custom" not in data:
        data["custom"] = dict(custom_fields.values_of(session, ref))
    data["related"] = [
        {"id": str(r.ref), "name": r.label, "role": r.detail} for r in overview.related(session, ref)
    ]
    return data


def _contact(session: Session, record_id: int, partner_id: int | None) -> dict[str, Any] | None:
    # In the handler: --help loads no SQLAlchemy (tests/cli/test_startup.py).
    from crm_tui.core.services.contacts import contact_record

    c = contact_record(session, record_id)
    if c is None:
        return None
    return {
        "id": ref_str("contact", c.id),
        "name": c.name,
        "first_name": c.first_name,
        "last_name": c.last_name,
        "job_title": c.job_title,
        "emails": list(c.emails),
        "phones": list(c.phones),
        "organization": ref_str("organization", c.organization_id),
        "organization_name": c.organization_name,
        "owner": ref_str("user", c.owner_id),
        "owner_name": c.owner_name,
        "street": c.street,
        "postcode": c.postcode,
        "city": c.city,
        "region": c.region,
        "country": c.country,
        "mail_opt_out": c.mail_opt_out,
        "updated_at": c.updated_at,
        "custom": dict(c.custom),
    }


def _organization(session: Session, record_id: int, partner_id: int | None) -> dict[str, Any] | None:
    # In the handler: --help loads no SQLAlchemy (tests/cli/test_startup.py).
    from crm_tui.core.services.organizations import organization_record

    o = organization_record(session, record_id)
    if o is None:
        return None
    return {
        "id": ref_str("organization", o.id),
        "name": o.name,
        "kind": o.kind,
        "domains": list(o.domains),
        "emails": list(o.emails),
        "phone": o.phone,
        "website": o.website,
        "street": o.street,
        "postcode": o.postcode,
        "city": o.city,
        "region": o.region,
        "country": o.country,
        "owner": ref_str("user", o.owner_id),
        "owner_name": o.owner_name,
        "coverage_regions": list(o.coverage_regions),
        "coverage_postcodes": list(o.coverage_postcodes),
        "updated_at": o.updated_at,
        "custom": dict(o.custom),
    }


def _lead(session: Session, record_id: int, partner_id: int | None) -> dict[str, Any] | None:
    # In the handler: --help loads no SQLAlchemy (tests/cli/test_startup.py).
    from crm_tui.core.services.leads import lead_record

    lead = lead_record(session, record_id)
    if lead is None:
        return None
    return {
        "id": ref_str("lead", lead.id),
        "title": lead.title,
        "status": lead.status,
        "person_name": lead.person_name,
        "company_name": lead.company_name,
        "emails": list(lead.emails),
        "phone": lead.phone,
        "source": lead.source,
        "description": lead.description,
        "owner": ref_str("user", lead.owner_id),
        "owner_name": lead.owner_name,
        "organization": ref_str("organization", lead.organization_id),
        "organization_name": lead.organization_name,
        "contact": ref_str("contact", lead.contact_id),
        "contact_name": lead.contact_name,
        "mail_opt_out": lead.mail_opt_out,
        "updated_at": lead.updated_at,
        "custom": dict(lead.custom),
    }


def _opportunity(session: Session, record_id: int, partner_id: int | None) -> dict[str, Any] | None:
    # In the handler: --help loads no SQLAlchemy (tests/cli/test_startup.py).
    from crm_tui.core.services.configuration import deal_substates
    from crm_tui.core.services.opportunities import opportunity_record

    d = opportunity_record(session, record_id)
    if d is None or (partner_id is not None and partner_id not in (d.installer_id, d.reseller_id)):
        return None
    return {
        "id": ref_str("opportunity", d.id),
        "title": d.title,
        "amount": format_amount(d.amount_cents),
        "currency": d.currency,
        "pipeline": d.pipeline_name,
        "stage": d.stage_name,
        "open_substates": [name for _, name, is_open in deal_substates(session, d.id) if is_open],
        "expected_close": d.expected_close,
        "owner": ref_str("user", d.owner_id),
        "owner_name": d.owner_name,
        "organization": ref_str("organization", d.organization_id),
        "organization_name": d.organization_name,
        "installer": ref_str("organization", d.installer_id),
        "installer_name": d.installer_name,
        "reseller": ref_str("organization", d.reseller_id),
        "reseller_name": d.reseller_name,
        "primary_contact": ref_str("contact", d.primary_contact_id),
        "primary_contact_name": next((n for i, n in d.contacts if i == d.primary_contact_id), None),
        "contacts": [ref_str("contact", contact_id) for contact_id, _ in d.contacts],
        "lost_reason": d.lost_reason,
        "description": d.description,
        "updated_at": d.updated_at,
        "custom": dict(d.custom),
    }


def _activity(session: Session, record_id: int, partner_id: int | None) -> dict[str, Any] | None:
    # In the handler: --help loads no SQLAlchemy (tests/cli/test_startup.py).
    from crm_tui.core.services.activities import activity_record, activity_summary

    a = activity_record(session, record_id)
    listed = activity_summary(session, record_id)
    if a is None or listed is None:
        return None
    return {
        "id": ref_str("activity", a.id),
        "subject": a.subject,
        "type": a.type,
        "task_type": a.task_type,
        "status": listed.status,
        "start": a.start_at,
        "end": a.end_at,
        "reminder_at": a.reminder_at,
        "description": a.description,
        "owner": ref_str("user", a.owner_id),
        "owner_name": listed.owner_name,
        "contact": ref_str("contact", a.contact_id),
        "contact_name": a.contact_name,
        "lead": ref_str("lead", a.lead_id),
        "lead_title": a.lead_title,
        "organization": ref_str("organization", a.organization_id),
        "organization_name": a.organization_name,
        "opportunity": ref_str("opportunity", a.opportunity_id),
        "opportunity_title": a.opportunity_title,
        "updated_at": a.updated_at,
        "custom": dict(a.custom),
    }


def _ticket(session: Session, record_id: int, partner_id: int | None) -> dict[str, Any] | None:
    # In the handler: --help loads no SQLAlchemy (tests/cli/test_startup.py).
    from crm_tui.core.services.sales_documents import ticket_record

    t = ticket_record(session, record_id)
    if t is None:
        return None
    return {
        "id": ref_str("ticket", t.id),
        "subject": t.subject,
        "status": t.status,
        "description": t.description,
        "contact": ref_str("contact", t.contact_id),
        "contact_name": t.contact_name,
        "organization": ref_str("organization", t.organization_id),
        "organization_name": t.organization_name,
        "owner": ref_str("user", t.owner_id),
        "owner_name": t.owner_name,
        "updated_at": t.updated_at,
    }


def _quote(session: Session, record_id: int, partner_id: int | None) -> dict[str, Any] | None:
    # In the handler: --help loads no SQLAlchemy (tests/cli/test_startup.py).
    from crm_tui.core.services.sales_documents import line_total_cents, quote_record

    q = quote_record(session, record_id)
    if q is None:
        return None
    return {
        "id": ref_str("quote", q.id),
        "number": q.number,
        "status": q.status,
        "opportunity": ref_str("opportunity", q.opportunity_id),
        "opportunity_title": q.opportunity_title,
        "total": format_amount(q.total_cents),
        "currency": q.currency,
        "valid_until": q.valid_until,
        "updated_at": q.updated_at,
        "items": [
            {
                "quantity": quantity(line.quantity_milli),
                "description": line.description,
                "unit_price": format_amount(line.unit_price_cents),
                "total": format_amount(line_total_cents(line.quantity_milli, line.unit_price_cents)),
            }
            for line in q.items
        ],
    }


def quantity(milli: int) -> str:
    """A quantity kept in thousandths as a decimal string: 2500 is "2.5", 3000 is "3"."""
    return format((Decimal(milli) / 1000).normalize(), "f")


_BUILDERS: dict[RecordType, Callable[[Session, int, int | None], dict[str, Any] | None]] = {
    RecordType.CONTACT: _contact,
    RecordType.ORGANIZATION: _organization,
    RecordType.LEAD: _lead,
    RecordType.OPPORTUNITY: _opportunity,
    RecordType.ACTIVITY: _activity,
    RecordType.TICKET: _ticket,
    RecordType.QUOTE: _quote,
}
