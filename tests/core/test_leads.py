"""Leads and their conversion into contact, organization and opportunity."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from crm_tui.core import models as m
from crm_tui.core.db import Database
from crm_tui.core.errors import ValidationError
from crm_tui.core.services import leads, mail_store
from crm_tui.core.services.attachments import add_comment, add_document, comments_on, documents_on, store_for
from crm_tui.core.services.leads import LeadInput
from crm_tui.core.services.rows import get_or_404
from crm_tui.core.types import RecordRef, RecordType
from tests.utils import factories
from tests.utils.ids import id_of


def test_lead_rules(db: Database, now: datetime) -> None:
    with pytest.raises(ValidationError) as excinfo, db.write() as session:
        leads.create_lead(
            session, LeadInput(title="", emails=["x@"], phone="abc", status="converted", owner_id=5), now=now
        )
    assert set(excinfo.value.errors) == {"title", "emails", "phone", "status", "owner_id"}


def test_conversion_creates_contact_organization_and_deal_and_carries_everything_over(
    db: Database, now: datetime, tmp_path: Path
) -> None:
    source = tmp_path / "offer.pdf"
    source.write_bytes(b"%PDF-1.4 offer")
    with db.write() as session:
        me = factories.user(session, now)
        pipe = factories.pipeline(session)
        lead = factories.lead(
            session,
            now,
            title="Roof PV for Sonnenhof",
            person_name="Greta Maria Vogel",
            emails=["greta@sonnenhof.example"],
            phone="+49 40 123456",
            company_name="Sonnenhof Hotel",
            owner_id=me.id,
        )
        lead_ref = RecordRef(RecordType.LEAD, id_of(lead))
        call = factories.activity(session, now, lead_id=lead.id, subject="First call")
        add_comment(session, lead_ref, "Wants a quote by Friday", author_id=me.id, now=now)
        add_document(
            session, lead_ref, source, store=store_for(db, tmp_path / "docs"), added_by_id=me.id, now=now
        )
        message = mail_store.store_message(
            session, mail_store.MessageData(raw=b"Subject: hi\r\n\r\nhello"), now=now
        )
        mail_store.link_message(session, id_of(message), lead_ref, reason="address", now=now)

        plan = leads.plan_conversion(session, id_of(lead))
        assert plan.creates_contact and plan.creates_organization
        assert plan.organization_name == "Sonnenhof Hotel"

        result = leads.convert_lead(
            session,
            id_of(lead),
            now=now + timedelta(hours=1),
            user_id=me.id,
            pipeline_id=pipe.id,
            amount_cents=12_000_00,
        )
    with db.read() as session:
        contact = get_or_404(session, m.Contact, result.contact_id)
        org = get_or_404(session, m.Organization, result.organization_id)
        deal = get_or_404(session, m.Opportunity, result.opportunity_id)
        converted = get_or_404(session, m.Lead, lead.id)
        assert (contact.first_name, contact.last_name) == ("Greta Maria", "Vogel")
        assert contact.organization_id == org.id
        assert org.name == "Sonnenhof Hotel"
        assert deal.title == "Roof PV for Sonnenhof" and deal.amount_cents == 12_000_00
        assert deal.source_lead_id == lead.id and deal.owner_id == me.id
        assert converted.status == "converted" and converted.converted_opportunity_id == deal.id
        moved = get_or_404(session, m.Activity, call.id)
        assert (moved.contact_id, moved.opportunity_id, moved.lead_id) == (contact.id, deal.id, lead.id)
        deal_ref = RecordRef(RecordType.OPPORTUNITY, id_of(deal))
        assert [c.body for c in comments_on(session, deal_ref)] == ["Wants a quote by Friday"]
        assert [d.filename for d in documents_on(session, deal_ref)] == ["offer.pdf"]
        linked = {(link.record_type, link.record_id) for link in mail_store.links_of(session, id_of(message))}
        assert linked == {("lead", lead.id), ("contact", contact.id), ("opportunity", deal.id)}
        assert [c.body for c in comments_on(session, lead_ref)] == ["Wants a quote by Friday"], (
            "the lead keeps its history"
        )
    with pytest.raises(ValidationError, match="converted already"), db.write() as session:
        leads.convert_lead(session, id_of(lead), now=now, user_id=None, pipeline_id=pipe.id)


def test_conversion_attaches_to_an_existing_contact_and_organization(db: Database, now: datetime) -> None:
    with db.write() as session:
        org = factories.organization(session, now, name="Kiesel Logistik", domains=["kiesel.example"])
        known = factories.contact(session, now, emails=["boss@kiesel.example"], organization_id=org.id)
        by_email = factories.lead(session, now, emails=["boss@kiesel.example"])
        by_domain = factories.lead(session, now, person_name="New Person", emails=["new@kiesel.example"])
        freemail = factories.lead(
            session, now, person_name="Solo", emails=["solo@gmail.com"], company_name=None
        )
        plan = leads.plan_conversion(session, id_of(by_email))
        assert (plan.contact_id, plan.organization_id) == (known.id, org.id)
        assert any("boss@kiesel.example belongs to contact" in r for r in plan.reasons)
        plan = leads.plan_conversion(session, id_of(by_domain))
        assert plan.contact_id is None and plan.organization_id == org.id
        plan = leads.plan_conversion(session, id_of(freemail))
        assert plan.organization_id is None and not plan.creates_organization, (
            "gmail.com says nothing about a company"
        )
        result = leads.convert_lead(session, id_of(by_domain), now=now, user_id=None, pipeline_id=None)
        assert result.opportunity_id is None and result.organization_id == org.id
        assert result.created == (f"contact:{result.contact_id}",)
        orgs = session.exec(select(m.Organization)).all()
        assert len(orgs) == 1, "no duplicate organization"


def test_a_disqualified_lead_must_be_requalified_first(db: Database, now: datetime) -> None:
    with db.write() as session:
        lead = factories.lead(session, now, status="disqualified")
        with pytest.raises(ValidationError, match="requalify"):
            leads.convert_lead(session, id_of(lead), now=now, user_id=None, pipeline_id=None)


def test_lead_search(db: Database, now: datetime) -> None:
    with db.write() as session:
        factories.lead(
            session, now, title="Wallbox fleet", company_name="Falken Autohaus", source="trade fair"
        )
        factories.lead(session, now, title="Heat pump", status="qualified")
        assert [x.title for x in leads.search_leads(session, "falken")] == ["Wallbox fleet"]
        assert [x.title for x in leads.search_leads(session, status="qualified")] == ["Heat pump"]
