"""The key facts of a record as its detail pane lists them: a title and (label, text) pairs, plain data."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from crm_tui.core.errors import NotFound
from crm_tui.core.money import format_money
from crm_tui.core.services import contacts, leads, opportunities, organizations, sales_documents
from crm_tui.core.services.records import record_exists
from crm_tui.core.types import RecordRef, RecordType


@dataclass(frozen=True)
class RecordFacts:
    title: str
    facts: tuple[tuple[str, str], ...]


def _address(street: str | None, postcode: str | None, city: str | None, region: str | None) -> str:
    return ", ".join(p for p in (street, " ".join(x for x in (postcode, city) if x), region) if p)


def record_facts(session: Session, ref: RecordRef) -> RecordFacts:
    """The record's title and facts (empty ones included: the pane leaves them out). NotFound if it is gone."""
    if ref.type is RecordType.CONTACT:
        c = contacts.contact_record(session, ref.id)
        if c is not None:
            return RecordFacts(
                c.name,
                (
                    ("Job", c.job_title or ""),
                    ("Organization", c.organization_name or ""),
                    ("E-mail", ", ".join(c.emails)),
                    ("Phone", ", ".join(c.phones)),
                    ("Address", _address(c.street, c.postcode, c.city, c.region)),
                    ("Owner", c.owner_name or ""),
                ),
            )
    elif ref.type is RecordType.ORGANIZATION:
        o = organizations.organization_record(session, ref.id)
        if o is not None:
            return RecordFacts(
                o.name,
                (
                    ("Kind", o.kind),
                    ("Domains", ", ".join(o.domains)),
                    ("E-mail", ", ".join(o.emails)),
                    ("Phone", o.phone or ""),
                    ("Address", _address(o.street, o.postcode, o.city, o.region)),
                    ("Owner", o.owner_name or ""),
                ),
            )
    elif ref.type is RecordType.LEAD:
        lead = leads.lead_record(session, ref.id)
        if lead is not None:
            return RecordFacts(
                lead.title,
                (
                    ("Status", lead.status),
                    ("Person", lead.person_name or ""),
                    ("Company", lead.company_name or ""),
                    ("E-mail", ", ".join(lead.emails)),
                    ("Phone", lead.phone or ""),
                    ("Source", lead.source or ""),
                    ("Owner", lead.owner_name or ""),
                ),
            )
    elif ref.type is RecordType.OPPORTUNITY:
        d = opportunities.opportunity_record(session, ref.id)
        if d is not None:
            return RecordFacts(
                d.title,
                (
                    ("Stage", f"{d.pipeline_name} › {d.stage_name}"),
                    ("Amount", format_money(d.amount_cents, d.currency)),
                    ("Expected close", d.expected_close.isoformat() if d.expected_close else ""),
                    ("Customer", d.organization_name or ""),
                    ("Owner", d.owner_name or ""),
                    ("Lost reason", d.lost_reason or ""),
                ),
            )
    elif ref.type is RecordType.TICKET:
        t = sales_documents.ticket_record(session, ref.id)
        if t is not None:
            return RecordFacts(
                t.subject,
                (("Status", t.status), ("Owner", t.owner_name or ""), ("Description", t.description or "")),
            )
    elif ref.type is RecordType.QUOTE:
        q = sales_documents.quote_record(session, ref.id)
        if q is not None:
            return RecordFacts(
                q.number,
                (
                    ("Status", q.status),
                    ("Total", format_money(q.total_cents, q.currency)),
                    ("Valid until", q.valid_until.isoformat() if q.valid_until else ""),
                ),
            )
    elif record_exists(session, ref):
        return RecordFacts("", ())
    raise NotFound(f"{ref} does not exist")
