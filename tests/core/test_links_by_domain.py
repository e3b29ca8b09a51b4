"""Right links by domain: a free-mail or ISP domain (one shipped list) never names a company, and the "Linked
to open deals" view holds the mail of people and organizations with an open deal."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import select
from sqlmodel import Session, col

from crm_tui.core import models as m
from crm_tui.core.db import Database
from crm_tui.core.errors import ValidationError
from crm_tui.core.free_mail import free_domains, is_free
from crm_tui.core.services import leads, mail_linking, mail_store, organizations, triage
from crm_tui.core.types import RecordRef, RecordType
from crm_tui.mail.parse import parse_message
from tests.utils import factories
from tests.utils.ids import column_ids, id_of


def test_one_list_of_free_mail_domains_with_the_demos_private_domains() -> None:
    listed = free_domains()
    assert {"gmail.com", "t-online.de", "mail.com", "yandex.ru", "example.net", "example.org"} <= listed
    assert is_free("GMail.com ") and not is_free("nordwind.example")


@pytest.mark.parametrize("address", ["greta.vogel@gmail.com", "gv@example.net", "vogel@T-Online.de"])
def test_a_lead_at_a_free_mail_domain_converts_to_an_organization_without_a_domain(
    db: Database, now: datetime, address: str
) -> None:
    with db.write() as session:
        pipe = factories.pipeline(session)
        lead = factories.lead(session, now, title="PV Vogel", person_name="Greta Vogel", company_name="Vogel GbR",
                              emails=[address])  # fmt: skip
        result = leads.convert_lead(session, id_of(lead), now=now, user_id=None, pipeline_id=pipe.id)
        assert result.organization_id is not None
        assert organizations.organization_domains(session, result.organization_id) == []


def test_an_organization_cannot_be_given_a_free_mail_domain(db: Database, now: datetime) -> None:
    with pytest.raises(ValidationError) as caught, db.write() as session:
        factories.organization(
            session, now, name="Seeblick Autohaus", domains=["seeblick.example", "example.net"]
        )
    assert "example.net is a free-mail or ISP domain" in caught.value.errors["domains"]


def test_mail_from_a_free_mail_domain_is_never_linked_to_an_organization_by_it(
    db: Database, now: datetime
) -> None:
    raw = b"From: Fremder <someone@example.net>\r\nTo: anna@crm.example\r\nSubject: Frage\r\n\r\nHallo\r\n"
    with db.write() as session:
        factories.organization(session, now, name="Nordwind GmbH", domains=["nordwind.example"])
        message = mail_store.store_message(session, parse_message(raw), now=now)
        found = mail_linking.candidates(
            session, message, mine={"anna@crm.example"}, free_domains=set(free_domains())
        )
        assert [ref for ref, _ in found if ref.type == RecordType.ORGANIZATION] == []


def test_the_open_deals_view_holds_mail_of_contacts_and_organizations_with_an_open_deal(
    db: Database, now: datetime
) -> None:
    def mail(sender: str) -> m.MailMessage:
        raw = f"From: {sender}\r\nTo: anna@crm.example\r\nSubject: Hallo\r\n\r\nText\r\n".encode()
        return mail_store.store_message(session, parse_message(raw), now=now)

    with db.write() as session:
        pipe = factories.pipeline(session)
        won = next(s for s in pipe_stages(session, pipe) if s.kind == "won")
        org = factories.organization(session, now, name="Nordwind GmbH", domains=["nordwind.example"])
        lea = factories.contact(session, now, last_name="Schulz", emails=["lea@nordwind.example"])
        paul = factories.contact(session, now, last_name="Wagner", emails=["paul@sued.example"])
        done = factories.contact(session, now, last_name="Fertig", emails=["f@fertig.example"])
        factories.deal(session, now, pipe, contact_ids=[lea.id])
        factories.deal(session, now, pipe, organization_id=org.id)
        closed = factories.deal(session, now, pipe, contact_ids=[done.id])
        closed.stage_id = id_of(won)
        session.flush()
        by_contact, by_org, other, by_closed = (
            mail("lea@nordwind.example"), mail("info@nordwind.example"), mail("paul@sued.example"),
            mail("f@fertig.example"),
        )  # fmt: skip
        mail_store.link_message(
            session, id_of(by_contact), RecordRef(RecordType.CONTACT, id_of(lea)), reason="address", now=now
        )
        mail_store.link_message(
            session, id_of(by_org), RecordRef(RecordType.ORGANIZATION, id_of(org)), reason="domain", now=now
        )
        mail_store.link_message(
            session, id_of(other), RecordRef(RecordType.CONTACT, id_of(paul)), reason="address", now=now
        )
        mail_store.link_message(
            session, id_of(by_closed), RecordRef(RecordType.CONTACT, id_of(done)), reason="address", now=now
        )
        shown = sorted(
            column_ids(
                session.scalars(select(col(m.MailMessage.id)).where(triage.view_condition("deals", now=now)))
            )
        )
        assert shown == sorted([id_of(by_contact), id_of(by_org)])


def pipe_stages(session: Session, pipe: m.Pipeline) -> list[m.Stage]:
    return list(session.scalars(select(m.Stage).where(col(m.Stage.pipeline_id) == pipe.id)))
