"""Users, organizations and contacts: the rules the services enforce, and search that pages in SQL."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlmodel import select

from crm_tui.core import models as m
from crm_tui.core.db import Database
from crm_tui.core.errors import ConfigError, NotFound, ValidationError
from crm_tui.core.services import contacts, organizations, users
from crm_tui.core.services.contacts import ContactInput
from crm_tui.core.services.organizations import OrganizationInput
from tests.utils import factories
from tests.utils.ids import id_of


def errors_of(excinfo: pytest.ExceptionInfo[ValidationError]) -> dict[str, str]:
    return excinfo.value.errors


# --- users ---------------------------------------------------------------------------------------


def test_user_needs_a_name_and_a_valid_unique_email(db: Database, now: datetime) -> None:
    with db.write() as session:
        users.create_user(session, users.UserInput(name="Anna", email="Anna@Example.com"), now=now)
    with pytest.raises(ValidationError) as excinfo, db.write() as session:
        users.create_user(session, users.UserInput(name=" ", email="anna@example.com"), now=now)
    assert set(errors_of(excinfo)) == {"name", "email"}
    assert "another user" in errors_of(excinfo)["email"]
    with (
        pytest.raises(ValidationError, match="email: 'not-an-address' is not a valid"),
        db.write() as session,
    ):
        users.create_user(session, users.UserInput(name="X", email="not-an-address"), now=now)


def test_users_belong_to_us_or_to_a_partner_not_a_customer(db: Database, now: datetime) -> None:
    with db.write() as session:
        customer = factories.organization(session, now, kind="customer")
        installer = factories.organization(session, now, kind="installer")
        partner_user = factories.user(session, now, organization_id=installer.id)
        assert partner_user.organization_id == installer.id
        with pytest.raises(ValidationError, match="partner organization"):
            factories.user(session, now, organization_id=customer.id)


def test_me_is_the_configured_user_else_the_first(db: Database, now: datetime) -> None:
    with db.write() as session:
        first = factories.user(session, now, name="First")
        second = factories.user(session, now, name="Second")
    with db.read() as session:
        me, also_me = users.current_user(session, None), users.current_user(session, second.email.upper())
        assert me is not None and me.id == first.id
        assert also_me is not None and also_me.id == second.id
        with pytest.raises(ConfigError, match="is not a user"):
            users.current_user(session, "nobody@example.com")


# --- organizations ---------------------------------------------------------------------------------


def test_organization_rules(db: Database, now: datetime) -> None:
    with pytest.raises(ValidationError) as excinfo, db.write() as session:
        organizations.create_organization(
            session,
            OrganizationInput(
                name="",
                kind="supplier",
                domains=["not a domain"],
                emails=["bad"],
                phone="call me",
                coverage_regions=["Bayern"],
            ),
            now=now,
        )
    assert set(errors_of(excinfo)) == {"name", "kind", "domains", "emails", "phone"}
    with (
        pytest.raises(ValidationError, match="only installer and reseller partners cover"),
        db.write() as session,
    ):
        organizations.create_organization(
            session, OrganizationInput(name="Bakery", kind="customer", coverage_regions=["Bayern"]), now=now
        )


def test_partner_with_domains_emails_and_coverage(db: Database, now: datetime) -> None:
    with db.write() as session:
        org = organizations.create_organization(
            session,
            OrganizationInput(
                name="Sun Install",
                kind="installer",
                domains=["@Sun-Install.example", "sun-install.example"],
                emails=["Info@sun-install.example"],
                postcode="80331",
                region="Bayern",
                coverage_regions=["Bayern"],
                coverage_postcodes=["80", "81"],
            ),
            now=now,
        )
        assert organizations.organization_domains(session, id_of(org)) == ["sun-install.example"]
        assert organizations.organization_emails(session, id_of(org)) == ["info@sun-install.example"]
        found = organizations.find_by_domain(session, "SUN-INSTALL.example")
        assert found is not None and found.id == org.id
        coverage = session.exec(select(m.PartnerCoverage)).all()
        assert sorted((row.region or "", row.postcode_prefix or "") for row in coverage) == [
            ("", "80"),
            ("", "81"),
            ("Bayern", ""),
        ]


def test_renaming_an_organization_makes_its_contacts_findable_by_the_new_name(
    db: Database, now: datetime
) -> None:
    with db.write() as session:
        org = factories.organization(session, now, name="Old Name")
        factories.contact(session, now, last_name="Member", organization_id=org.id)
        organizations.update_organization(
            session, id_of(org), OrganizationInput(name="Brandnew Corp"), now=now
        )
    with db.read() as session:
        assert [c.last_name for c in contacts.search_contacts(session, "brandnew")] == ["Member"]
        assert contacts.search_contacts(session, "old name") == []


def test_deleting_an_organization_keeps_its_contacts(db: Database, now: datetime) -> None:
    with db.write() as session:
        org = factories.organization(session, now, name="Gone GmbH")
        person = factories.contact(session, now, last_name="Stays", organization_id=org.id)
        organizations.delete_organization(session, id_of(org))
    with db.read() as session:
        kept = session.get(m.Contact, person.id)
        assert kept is not None and kept.organization_id is None
        assert contacts.search_contacts(session, "gone") == []


def test_a_partner_with_users_can_neither_be_deleted_nor_become_a_customer(
    db: Database, now: datetime
) -> None:
    with db.write() as session:
        partner = factories.organization(session, now, kind="reseller")
        factories.user(session, now, organization_id=partner.id)
        with pytest.raises(ValidationError, match="users belong"):
            organizations.delete_organization(session, id_of(partner))
        with pytest.raises(ValidationError, match="cannot become a customer"):
            organizations.update_organization(
                session, id_of(partner), OrganizationInput(name=partner.name), now=now
            )


# --- contacts --------------------------------------------------------------------------------------


def test_contact_rules_name_each_bad_field(db: Database, now: datetime) -> None:
    with pytest.raises(ValidationError) as excinfo, db.write() as session:
        contacts.create_contact(
            session,
            ContactInput(
                emails=["ok@example.com", "OK@example.com", "broken@"],
                phones=["12"],
                organization_id=99,
                owner_id=98,
            ),
            now=now,
        )
    assert set(errors_of(excinfo)) == {"last_name", "emails", "phones", "organization_id", "owner_id"}
    assert "listed twice" in errors_of(excinfo)["emails"] or "not a valid" in errors_of(excinfo)["emails"]


def test_contact_with_several_addresses_and_phones(db: Database, now: datetime) -> None:
    with db.write() as session:
        person = contacts.create_contact(
            session,
            ContactInput(
                first_name="Jürgen",
                last_name="Öztürk",
                emails=["J.Oz@Example.com", "jo@example.net"],
                phones=["+49 30 1234567", "0171 555 66"],
            ),
            now=now,
        )
        assert contacts.contact_emails(session, id_of(person)) == ["j.oz@example.com", "jo@example.net"]
        contacts.update_contact(
            session,
            id_of(person),
            ContactInput(first_name="Jürgen", last_name="Öztürk", emails=["jo@example.net"]),
            now=now,
        )
        assert contacts.contact_emails(session, id_of(person)) == ["jo@example.net"]
        assert contacts.contact_phones(session, id_of(person)) == []


def test_search_matches_name_any_email_organization_and_phone(db: Database, now: datetime) -> None:
    with db.write() as session:
        org = factories.organization(session, now, name="Nordwind Solar")
        factories.contact(
            session,
            now,
            first_name="Lea",
            last_name="Fischer",
            emails=["lea@nordwind.example", "lea.private@example.net"],
            phones=["+49 (30) 123-4567"],
            organization_id=org.id,
        )
        factories.contact(session, now, first_name="Paul", last_name="Wagner", emails=["paul@example.org"])
    with db.read() as session:

        def names(query: str) -> list[str]:
            return [c.last_name for c in contacts.search_contacts(session, query)]

        assert names("fisch") == ["Fischer"]
        assert names("lea.private") == ["Fischer"], "any address, not only the first"
        assert names("nordwind") == ["Fischer"], "the organization's name"
        assert names("301234567") == ["Fischer"], "the phone's digits"
        assert names("lea wind") == ["Fischer"], "every word must match"
        assert names("lea wagner") == []
        assert names("100%") == [] and names("_") == [], "LIKE wildcards are taken literally"
        assert names("") == ["Fischer", "Wagner"]


def test_search_pages_in_the_database(db: Database, now: datetime) -> None:
    with db.write() as session:
        for index in range(25):
            factories.contact(session, now, last_name=f"Page{index:02d}")
    with db.read() as session:
        first = contacts.search_contacts(session, "page", limit=10)
        third = contacts.search_contacts(session, "page", limit=10, offset=20)
        assert [c.last_name for c in first] == [f"Page{i:02d}" for i in range(10)]
        assert [c.last_name for c in third] == [f"Page{i:02d}" for i in range(20, 25)]
        assert contacts.count_contacts(session, "page") == 25
        assert contacts.count_contacts(session, "page", cap=10) == 11, "a capped count stops after cap + 1"
        assert contacts.count_contacts(session, "pa", cap=100) == 25


def test_deleting_a_contact_removes_what_hangs_on_it(db: Database, now: datetime) -> None:
    from crm_tui.core.services.attachments import add_comment, comments_on
    from crm_tui.core.types import RecordRef, RecordType

    with db.write() as session:
        person = factories.contact(session, now)
        ref = RecordRef(RecordType.CONTACT, id_of(person))
        add_comment(session, ref, "note", author_id=None, now=now)
        contacts.delete_contact(session, id_of(person))
        assert comments_on(session, ref) == []
        with pytest.raises(NotFound, match="contact:.* does not exist"):
            contacts.delete_contact(session, id_of(person))


def test_the_search_index_follows_updates_and_deletes(db: Database, now: datetime) -> None:
    with db.write() as session:
        person = factories.contact(
            session, now, first_name="Karl", last_name="Lindqvist", emails=["kl@example.com"]
        )
        contacts.update_contact(
            session,
            id_of(person),
            ContactInput(first_name="Karl", last_name="Lundgren", emails=["kl@example.com"]),
            now=now,
        )
    with db.read() as session:
        assert contacts.search_contacts(session, "lindqvist") == []
        assert [c.last_name for c in contacts.search_contacts(session, "lundgren")] == ["Lundgren"]
        assert [c.last_name for c in contacts.search_contacts(session, "lundgren ka")] == ["Lundgren"], (
            "short term"
        )
    with db.write() as session:
        contacts.delete_contact(session, id_of(person))
    with db.read() as session:
        assert contacts.search_contacts(session, "lundgren") == []
        assert contacts.count_contacts(session, "lundgren") == 0


def test_i_own_what_i_create_unless_an_owner_is_named(db: Database, now: datetime) -> None:
    from crm_tui.core.services import activities, leads, opportunities

    with db.write() as session:
        me, colleague = factories.user(session, now), factories.user(session, now)
        mine = contacts.create_contact(session, ContactInput(last_name="Mine"), now=now, me_id=me.id)
        theirs = contacts.create_contact(
            session, ContactInput(last_name="Theirs", owner_id=colleague.id), now=now, me_id=me.id
        )
        assert (mine.owner_id, theirs.owner_id) == (me.id, colleague.id)
        org = organizations.create_organization(
            session, OrganizationInput(name="Mine GmbH"), now=now, me_id=me.id
        )
        lead = leads.create_lead(session, leads.LeadInput(title="Mine"), now=now, me_id=me.id)
        act = activities.create_activity(
            session,
            activities.ActivityInput(subject="Call", contact_id=mine.id, start_at=now),
            now=now,
            me_id=me.id,
        )
        deal = opportunities.create_opportunity(
            session,
            opportunities.OpportunityInput(title="Mine", pipeline_id=id_of(factories.pipeline(session))),
            now=now,
            user_id=me.id,
        )
        assert {org.owner_id, lead.owner_id, act.owner_id, deal.owner_id} == {me.id}
