"""Loading a record's detail pane data (plain, for a worker to post back)."""

from __future__ import annotations

from sqlmodel import Session

from crm_tui.core import models as m
from crm_tui.core.money import format_money
from crm_tui.core.services import contacts, leads, organizations
from crm_tui.core.services.overview import related, timeline
from crm_tui.core.services.records import get_record
from crm_tui.core.types import RecordRef
from crm_tui.runtime.context import AppContext
from crm_tui.ui.widgets.record_detail import DetailData


def _name(session: Session, model: type, record_id: int | None, attr: str = "name") -> str:
    row = session.get(model, record_id) if record_id else None
    return str(getattr(row, attr, "")) if row else ""


def load_detail(context: AppContext, ref: RecordRef) -> DetailData:
    with context.database().read() as session:
        row = get_record(session, ref)
        facts: list[tuple[str, str]] = []
        title = ""
        if isinstance(row, m.Contact):
            title = row.name
            facts = [
                ("Job", row.job_title or ""),
                ("Organization", _name(session, m.Organization, row.organization_id)),
                ("E-mail", ", ".join(contacts.contact_emails(session, ref.id))),
                ("Phone", ", ".join(contacts.contact_phones(session, ref.id))),
                (
                    "Address",
                    ", ".join(
                        p
                        for p in (row.street, " ".join(x for x in (row.postcode, row.city) if x), row.region)
                        if p
                    ),
                ),
                ("Owner", _name(session, m.User, row.owner_id)),
            ]
        elif isinstance(row, m.Organization):
            title = row.name
            facts = [
                ("Kind", row.kind),
                ("Domains", ", ".join(organizations.organization_domains(session, ref.id))),
                ("E-mail", ", ".join(organizations.organization_emails(session, ref.id))),
                ("Phone", row.phone or ""),
                (
                    "Address",
                    ", ".join(
                        p
                        for p in (row.street, " ".join(x for x in (row.postcode, row.city) if x), row.region)
                        if p
                    ),
                ),
                ("Owner", _name(session, m.User, row.owner_id)),
            ]
        elif isinstance(row, m.Lead):
            title = row.title
            facts = [
                ("Status", row.status),
                ("Person", row.person_name or ""),
                ("Company", row.company_name or ""),
                ("E-mail", ", ".join(leads.lead_emails(session, ref.id))),
                ("Phone", row.phone or ""),
                ("Source", row.source or ""),
                ("Owner", _name(session, m.User, row.owner_id)),
            ]
        elif isinstance(row, m.Opportunity):
            stage = session.get(m.Stage, row.stage_id)
            title = row.title
            facts = [
                ("Stage", f"{_name(session, m.Pipeline, row.pipeline_id)} › {stage.name if stage else ''}"),
                ("Amount", format_money(row.amount_cents, row.currency)),
                ("Expected close", row.expected_close.isoformat() if row.expected_close else ""),
                ("Customer", _name(session, m.Organization, row.organization_id)),
                ("Owner", _name(session, m.User, row.owner_id)),
                ("Lost reason", row.lost_reason or ""),
            ]
        elif isinstance(row, m.Ticket):
            title = row.subject
            facts = [
                ("Status", row.status),
                ("Owner", _name(session, m.User, row.owner_id)),
                ("Description", row.description or ""),
            ]
        elif isinstance(row, m.Quote):
            title = row.number
            facts = [
                ("Status", row.status),
                ("Total", format_money(row.total_cents, row.currency)),
                ("Valid until", row.valid_until.isoformat() if row.valid_until else ""),
            ]
        return DetailData(str(ref), title, facts, related(session, ref), timeline(session, ref))
