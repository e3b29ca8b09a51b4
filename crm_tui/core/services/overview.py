"""What a record's detail pane shows: its timeline (newest first) and its related records. Plain data only."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Select, or_, select
from sqlmodel import Session, col

from crm_tui.core import models as m
from crm_tui.core.money import format_money
from crm_tui.core.services import activities as activity_service
from crm_tui.core.services import mail_store
from crm_tui.core.services.attachments import attachment_mark, comments_on, document_counts, documents_on
from crm_tui.core.services.records import get_record
from crm_tui.core.services.rows import id_of
from crm_tui.core.types import RecordRef, RecordType

_UNDATED = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str  # activity, comment, stage, substate, mail, document
    text: str
    ref: RecordRef | None = None
    status: str | None = None


@dataclass(frozen=True)
class Related:
    ref: RecordRef
    label: str
    detail: str = ""


def timeline(session: Session, ref: RecordRef, *, limit: int = 200) -> list[TimelineEntry]:
    """Activities, comments, stage and sub-state changes, mail and documents of a record, newest first."""
    entries: list[TimelineEntry] = []
    if ref.type in (
        RecordType.CONTACT,
        RecordType.LEAD,
        RecordType.ORGANIZATION,
        RecordType.OPPORTUNITY,
        RecordType.TICKET,
        RecordType.QUOTE,
    ):
        listed = activity_service.list_activities(session, record=ref, limit=limit, newest_first=True)
        carried = document_counts(session, RecordType.ACTIVITY, (activity.id for activity in listed))
        for activity in listed:
            # The files an activity carries lead its line, where a long subject's cut cannot hide them.
            mark = attachment_mark(carried.get(activity.id, 0))
            label = f"{mark + ' ' if mark else ''}{activity.type}: {activity.subject}"
            if activity.status != m.ActivityStatus.PLANNED.value:
                label += f" ({activity.status})"
            entries.append(
                TimelineEntry(
                    activity.start_at,
                    "activity",
                    label,
                    RecordRef(RecordType.ACTIVITY, activity.id),
                    activity.status,
                )
            )
    for comment in comments_on(session, ref)[:limit]:
        entries.append(
            TimelineEntry(
                comment.created_at, "comment", comment.body, RecordRef(RecordType.COMMENT, id_of(comment))
            )
        )
    for document in documents_on(session, ref)[:limit]:
        entries.append(
            TimelineEntry(
                document.created_at,
                "document",
                document.filename,
                RecordRef(RecordType.DOCUMENT, id_of(document)),
            )
        )
    for message in mail_store.messages_on(session, ref)[:limit]:
        who = message.from_name or message.from_address
        entries.append(
            TimelineEntry(
                message.sent_at or _UNDATED,
                "mail",
                f"{who}: {message.subject or '(no subject)'}",
                RecordRef(RecordType.MESSAGE, message.id),
            )
        )
    if ref.type == RecordType.OPPORTUNITY:
        entries.extend(_deal_history(session, ref.id))
    entries.sort(key=lambda entry: entry.at, reverse=True)
    return entries[:limit]


def _deal_history(session: Session, deal_id: int) -> list[TimelineEntry]:
    stage_names = dict(session.execute(select(col(m.Stage.id), col(m.Stage.name))).all())
    substate_names = dict(
        session.execute(select(col(m.SubstateDefinition.id), col(m.SubstateDefinition.name))).all()
    )
    result = []
    for row in session.scalars(
        select(m.OpportunityHistory).where(col(m.OpportunityHistory.opportunity_id) == deal_id)
    ):
        if row.kind == m.HistoryKind.STAGE.value:
            if row.from_stage_id is None:
                text = f"created in {stage_names.get(row.to_stage_id, '?')}"
            else:
                text = f"stage {stage_names.get(row.from_stage_id, '?')} → {stage_names.get(row.to_stage_id, '?')}"
            if row.note and row.note != "created":
                text += f" ({row.note})"
            result.append(TimelineEntry(row.changed_at, "stage", text))
        else:
            state = "opened" if row.substate_open else "closed"
            result.append(
                TimelineEntry(
                    row.changed_at, "substate", f"{substate_names.get(row.substate_id, '?')} {state}"
                )
            )
    return result


def related(session: Session, ref: RecordRef, *, limit: int = 50) -> list[Related]:
    """The records directly connected to this one, each with a short label."""
    row = get_record(session, ref)
    out: list[Related] = []

    def org(org_id: int | None, role: str = "") -> None:
        if org_id:
            organization = session.get(m.Organization, org_id)
            if organization:
                out.append(
                    Related(
                        RecordRef(RecordType.ORGANIZATION, org_id),
                        organization.name,
                        role or organization.kind,
                    )
                )

    def deals(query: Select[m.Opportunity, m.Stage]) -> None:
        for deal, stage in session.execute(
            query.join(m.Stage, col(m.Stage.id) == col(m.Opportunity.stage_id)).limit(limit)
        ):
            out.append(
                Related(
                    RecordRef(RecordType.OPPORTUNITY, id_of(deal)),
                    deal.title,
                    f"{stage.name} · {format_money(deal.amount_cents, deal.currency)}",
                )
            )

    def people(contact_ids: Iterable[int | None], role: str = "contact") -> None:
        for contact in session.scalars(select(m.Contact).where(col(m.Contact.id).in_(contact_ids))):
            out.append(Related(RecordRef(RecordType.CONTACT, id_of(contact)), contact.name, role))

    if isinstance(row, m.Contact):
        org(row.organization_id)
        member_of = select(col(m.OpportunityContact.opportunity_id)).where(
            col(m.OpportunityContact.contact_id) == row.id
        )
        deals(select(m.Opportunity, m.Stage).where(col(m.Opportunity.id).in_(member_of)))
        for lead in session.scalars(
            select(m.Lead)
            .where(or_(col(m.Lead.contact_id) == row.id, col(m.Lead.converted_contact_id) == row.id))
            .limit(limit)
        ):
            out.append(Related(RecordRef(RecordType.LEAD, id_of(lead)), lead.title, lead.status))
        for ticket in session.scalars(
            select(m.Ticket).where(col(m.Ticket.contact_id) == row.id).limit(limit)
        ):
            out.append(Related(RecordRef(RecordType.TICKET, id_of(ticket)), ticket.subject, ticket.status))
    elif isinstance(row, m.Organization):
        ids = list(
            session.scalars(
                select(col(m.Contact.id)).where(col(m.Contact.organization_id) == row.id).limit(limit)
            )
        )
        people(ids)
        deals(
            select(m.Opportunity, m.Stage).where(
                or_(
                    col(m.Opportunity.organization_id) == row.id,
                    col(m.Opportunity.installer_id) == row.id,
                    col(m.Opportunity.reseller_id) == row.id,
                )
            )
        )
        for ticket in session.scalars(
            select(m.Ticket).where(col(m.Ticket.organization_id) == row.id).limit(limit)
        ):
            out.append(Related(RecordRef(RecordType.TICKET, id_of(ticket)), ticket.subject, ticket.status))
    elif isinstance(row, m.Lead):
        org(row.organization_id, "comes from")
        if row.contact_id:
            people([row.contact_id], "comes from")
        if row.converted_contact_id:
            people([row.converted_contact_id], "converted to")
        org(row.converted_organization_id, "converted to")
        if row.converted_opportunity_id:
            deals(select(m.Opportunity, m.Stage).where(col(m.Opportunity.id) == row.converted_opportunity_id))
    elif isinstance(row, m.Opportunity):
        org(row.organization_id, "customer")
        org(row.installer_id, "installer")
        org(row.reseller_id, "reseller")
        for contact_id, primary in session.execute(
            select(col(m.OpportunityContact.contact_id), col(m.OpportunityContact.is_primary)).where(
                col(m.OpportunityContact.opportunity_id) == row.id
            )
        ):
            people([contact_id], "primary contact" if primary else "contact")
        for quote in session.scalars(select(m.Quote).where(col(m.Quote.opportunity_id) == row.id)):
            out.append(
                Related(
                    RecordRef(RecordType.QUOTE, id_of(quote)),
                    quote.number,
                    f"{quote.status} · {format_money(quote.total_cents, quote.currency)}",
                )
            )
        if row.source_lead_id:
            source = session.get(m.Lead, row.source_lead_id)
            if source:
                out.append(Related(RecordRef(RecordType.LEAD, id_of(source)), source.title, "from lead"))
    elif isinstance(row, m.Ticket):
        if row.contact_id:
            people([row.contact_id])
        org(row.organization_id)
    elif isinstance(row, m.Quote):
        deals(select(m.Opportunity, m.Stage).where(col(m.Opportunity.id) == row.opportunity_id))
    return out[: limit * 3]
