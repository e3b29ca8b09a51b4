"""The optimistic edit check lives in the update services: an update given the record as its form showed it
(``expected``) is refused inside the same write when the record changed or went meanwhile, and saves when
nobody touched it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from crm_tui.core import models as m
from crm_tui.core.db import Database
from crm_tui.core.errors import RecordChanged
from crm_tui.core.services import activities, contacts, leads, opportunities, organizations, sales_documents
from crm_tui.core.services.rows import get_or_404
from tests.utils import factories
from tests.utils.ids import id_of


def _contact_input(record: contacts.ContactRecord, **changes: Any) -> contacts.ContactInput:
    fields = {
        "first_name": record.first_name,
        "last_name": record.last_name,
        "emails": list(record.emails),
        "phones": list(record.phones),
        "job_title": record.job_title,
        "organization_id": record.organization_id,
        "owner_id": record.owner_id,
        "city": record.city,
    }
    return contacts.ContactInput(**(fields | changes))


def test_an_update_expecting_the_contact_as_it_is_saves(db: Database, now: datetime) -> None:
    with db.write() as session:
        contact_id = id_of(factories.contact(session, now, "Berg"))
    with db.read() as session:
        opened = contacts.contact_record(session, contact_id)
    assert opened is not None and opened.last_name == "Berg"
    with db.write() as session:
        contacts.update_contact(
            session, contact_id, _contact_input(opened, last_name="Mine"), now=now + timedelta(minutes=1),
            expected=opened,
        )  # fmt: skip
    with db.read() as session:
        assert get_or_404(session, m.Contact, contact_id).last_name == "Mine"


@pytest.mark.parametrize("their_time", [timedelta(minutes=5), timedelta(0)], ids=["later", "same instant"])
def test_an_update_of_a_contact_changed_meanwhile_is_refused_in_the_write(
    db: Database, now: datetime, their_time: timedelta
) -> None:
    """Also when the other edit carries the same time (two clocks, or a pinned one): the fields differ."""
    with db.write() as session:
        contact_id = id_of(factories.contact(session, now, "Berg"))
    with db.read() as session:
        opened = contacts.contact_record(session, contact_id)
    assert opened is not None
    with db.write() as session:  # another instance renames the contact meanwhile
        contacts.update_contact(
            session, contact_id, _contact_input(opened, last_name="Theirs"), now=now + their_time
        )
    with pytest.raises(RecordChanged) as refused, db.write() as session:
        contacts.update_contact(
            session, contact_id, _contact_input(opened, last_name="Mine"), now=now + timedelta(minutes=9),
            expected=opened,
        )  # fmt: skip
    current = refused.value.current
    assert isinstance(current, contacts.ContactRecord) and current.last_name == "Theirs"
    with db.read() as session:
        assert get_or_404(session, m.Contact, contact_id).last_name == "Theirs"
    # Expecting the record as it is now (what the form shows after the refusal) writes over theirs.
    with db.write() as session:
        contacts.update_contact(
            session, contact_id, _contact_input(opened, last_name="Mine"), now=now + timedelta(minutes=9),
            expected=current,
        )  # fmt: skip
    with db.read() as session:
        assert get_or_404(session, m.Contact, contact_id).last_name == "Mine"


def test_an_update_of_a_contact_deleted_meanwhile_is_refused(db: Database, now: datetime) -> None:
    with db.write() as session:
        contact_id = id_of(factories.contact(session, now, "Berg"))
    with db.read() as session:
        opened = contacts.contact_record(session, contact_id)
    assert opened is not None
    with db.write() as session:
        contacts.delete_contact(session, contact_id)
    with pytest.raises(RecordChanged, match="deleted by someone else") as refused, db.write() as session:
        contacts.update_contact(session, contact_id, _contact_input(opened), now=now, expected=opened)
    assert refused.value.current is None


def test_every_update_service_checks_what_its_form_expects(db: Database, now: datetime) -> None:
    """Each kind's record, read as its form reads it, is what the update finds when nobody touched it; a
    change by another writer (a touched ``updated_at``) makes the same update refuse."""
    later = now + timedelta(hours=1)
    with db.write() as session:
        pipe = factories.pipeline(session)
        org = factories.organization(session, now)
        deal = factories.deal(session, now, pipe, organization_id=org.id)
        lead = factories.lead(session, now)
        person = factories.contact(session, now, "Berg")
        act = factories.activity(session, now, contact_id=person.id)
        quote = sales_documents.create_quote(
            session, sales_documents.QuoteInput(opportunity_id=id_of(deal)), now=now
        )
        ticket = sales_documents.create_ticket(
            session, sales_documents.TicketInput(subject="Kaputt"), now=now
        )
        kinds: list[tuple[Any, int, Callable[..., Any], Callable[..., Any], Any]] = [
            (m.Organization, id_of(org), organizations.organization_record, organizations.update_organization,
             organizations.OrganizationInput(name=org.name)),
            (m.Lead, id_of(lead), leads.lead_record, leads.update_lead, leads.LeadInput(title=lead.title)),
            (m.Activity, id_of(act), activities.activity_record, activities.update_activity,
             activities.ActivityInput(subject=act.subject, start_at=act.start_at, contact_id=person.id)),
            (m.Quote, id_of(quote), sales_documents.quote_record, sales_documents.update_quote,
             sales_documents.QuoteInput(opportunity_id=id_of(deal))),
            (m.Ticket, id_of(ticket), sales_documents.ticket_record, sales_documents.update_ticket,
             sales_documents.TicketInput(subject="Kaputt")),
        ]  # fmt: skip
        deal_id, pipeline_id, stage_id, title = id_of(deal), deal.pipeline_id, deal.stage_id, deal.title
    for model, record_id, read, update, data in kinds:
        with db.read() as session:
            opened = read(session, record_id)
        with db.write() as session:  # someone else touches it
            row = get_or_404(session, model, record_id)
            row.updated_at = later
            session.add(row)
        with pytest.raises(RecordChanged), db.write() as session:
            update(session, record_id, data, now=later, expected=opened)
        with db.read() as session:
            again = read(session, record_id)
        with db.write() as session:
            update(session, record_id, data, now=later, expected=again)
    deal_data = opportunities.OpportunityInput(title=title, pipeline_id=pipeline_id, stage_id=stage_id)
    with db.read() as session:
        opened = opportunities.opportunity_record(session, deal_id)
    with db.write() as session:
        opportunities.update_opportunity(
            session, deal_id, deal_data, now=later, user_id=None, expected=opened
        )
    with pytest.raises(RecordChanged), db.write() as session:
        opportunities.update_opportunity(
            session, deal_id, deal_data, now=later, user_id=None, expected=opened
        )
