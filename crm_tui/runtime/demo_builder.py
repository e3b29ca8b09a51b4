"""The builder of the demo data set (``runtime/demo.py`` says when it runs): every record made through the
services, so it obeys every rule real data does. Only reserved example domains appear; the demo never sends mail.
"""

from __future__ import annotations

import random
import tomllib
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from crm_tui.core import models as m
from crm_tui.core.assets import assets_dir
from crm_tui.core.automation import rules
from crm_tui.core.free_mail import is_free
from crm_tui.core.services import (
    activities,
    attachments,
    contacts,
    custom_fields,
    email_templates,
    leads,
    mail_store,
    organizations,
    pipelines,
    sales_documents,
    team,
    users,
)
from crm_tui.core.services import opportunities as deals
from crm_tui.core.services.mail_accounts import DEMO_HOST, DEMO_PRESET
from crm_tui.core.types import RecordRef, RecordType, stored_id
from crm_tui.mail.parse import parse_message

OUR_DOMAIN = "example.com"
SIZES = {
    "users": 5,
    "organizations": 40,
    "contacts": 160,
    "leads": 30,
    "opportunities": 60,
    "activities": 200,
    "messages": 36,
}


def load_words() -> dict[str, Any]:
    return tomllib.loads((assets_dir() / "demo" / "demo.toml").read_text("utf-8"))


class DemoBuilder:
    """Makes the demo data set through the services (``run``: the counts of what it made)."""

    def __init__(
        self,
        session: Session,
        rng: random.Random,
        words: dict[str, Any],
        *,
        today: date,
        now: datetime,
        zone: tzinfo,
    ):
        self.s = session
        self.rng = rng
        self.w = words
        self.today = today
        self.now = now
        self.zone = zone
        self.user_ids: list[int] = []
        self.internal_user_ids: list[int] = []
        self.customers: list[m.Organization] = []
        self.installers: list[m.Organization] = []
        self.resellers: list[m.Organization] = []
        self.domain_of: dict[int, str] = {}
        self.contacts_by_org: dict[int, list[int]] = {}
        self.contact_emails: dict[int, list[str]] = {}
        self.contact_ids: list[int] = []
        self.deal_ids: list[int] = []
        self.lead_ids: list[int] = []

    def at(self, day_offset: int, hour: int, minute: int = 0) -> datetime:
        local = datetime.combine(
            self.today + timedelta(days=day_offset), time(hour, minute), tzinfo=self.zone
        )
        return local.astimezone(UTC)

    def run(self) -> dict[str, int]:
        self.make_users_and_organizations()
        self.make_custom_fields()
        self.make_contacts()
        self.make_pipelines()
        self.make_opportunities()
        self.make_leads()
        self.make_activities()
        self.make_quotes_tickets_comments()
        self.make_mail()
        self.make_enquiries()
        self.make_mail_account()
        self.make_automation()
        return {
            "users": len(self.user_ids),
            "organizations": len(self.customers) + len(self.installers) + len(self.resellers),
            "contacts": len(self.contact_ids),
            "leads": len(self.lead_ids),
            "opportunities": len(self.deal_ids),
            "activities": len(self.s.scalars(select(col(m.Activity.id))).all()),
            "messages": mail_store.count_messages(self.s),
        }

    # --- people and companies ---
    def make_users_and_organizations(self) -> None:
        staff = [("Anna", "Berg"), ("Jonas", "Weber"), ("Mia", "Schulz"), ("Lukas", "Brandt")]
        for first, last in staff:
            user = users.create_user(
                self.s,
                users.UserInput(name=f"{first} {last}", email=f"{first}.{last}@{OUR_DOMAIN}".lower()),
                now=self.now,
            )
            self.user_ids.append(stored_id(user.id))
        self.internal_user_ids = list(self.user_ids)
        # A group automation mail can go to (Settings > Users: groups): Jonas and Lukas do the service.
        service = team.create_group(self.s, "Service", now=self.now)
        for member in (self.user_ids[1], self.user_ids[3]):
            team.add_member(self.s, service, member)
        prefixes = list(self.w["company_prefixes"])
        self.rng.shuffle(prefixes)
        plan = (
            [("customer", s) for s in self.rng.choices(self.w["customer_suffixes"], k=28)]
            + [("installer", s) for s in self.rng.choices(self.w["installer_suffixes"], k=7)]
            + [("reseller", s) for s in self.rng.choices(self.w["reseller_suffixes"], k=5)]
        )
        for index, (kind, suffix) in enumerate(plan):
            prefix = prefixes[index % len(prefixes)]
            name = f"{prefix} {suffix}" + ("" if index < len(prefixes) else f" {index}")
            domain = f"{_slug(prefix)}-{_slug(suffix)}.example"
            city, postcode, region = self.rng.choice(self.w["places"])
            data = organizations.OrganizationInput(
                name=name,
                kind=kind,
                domains=[domain],
                emails=[f"info@{domain}"],
                phone=f"+49 {self.rng.randint(30, 999)} {self.rng.randint(100000, 9999999)}",
                website=f"https://www.{domain}",
                street=f"{self.rng.choice(self.w['streets'])} {self.rng.randint(1, 120)}",
                postcode=postcode,
                city=city,
                region=region,
                country="DE",
                owner_id=self.rng.choice(self.internal_user_ids),
                coverage_regions=sorted({region, self.rng.choice(self.w["places"])[2]})
                if kind != "customer"
                else [],
                coverage_postcodes=[postcode[:2]] if kind == "installer" else [],
            )
            org = organizations.create_organization(self.s, data, now=self.now)
            self.domain_of[stored_id(org.id)] = domain
            {"customer": self.customers, "installer": self.installers, "reseller": self.resellers}[
                kind
            ].append(org)
        partner = self.installers[0]
        user = users.create_user(
            self.s,
            users.UserInput(
                name="Sven Holm",
                email=f"sven.holm@{self.domain_of[stored_id(partner.id)]}",
                organization_id=partner.id,
            ),
            now=self.now,
        )
        self.user_ids.append(stored_id(user.id))

    def make_custom_fields(self) -> None:
        custom_fields.define_field(
            self.s,
            custom_fields.FieldDefinitionInput(
                entity_type="contact",
                key="language",
                label="Preferred language",
                field_type="choice",
                choices=["German", "English", "Turkish"],
            ),
        )
        custom_fields.define_field(
            self.s,
            custom_fields.FieldDefinitionInput(
                entity_type="opportunity", key="roof_area_m2", label="Roof area (m²)", field_type="number"
            ),
        )
        custom_fields.define_field(
            self.s,
            custom_fields.FieldDefinitionInput(
                entity_type="organization", key="newsletter", label="Newsletter", field_type="boolean"
            ),
        )

    def make_contacts(self) -> None:
        organizations_all = self.customers + self.installers + self.resellers
        used_addresses: set[str] = set()
        for index in range(SIZES["contacts"]):
            org = (
                organizations_all[index % len(organizations_all)]
                if index < 120
                else self.rng.choice(self.customers)
            )
            first = self.rng.choice(self.w["first_names"])
            last = self.rng.choice(self.w["last_names"])
            domain = self.domain_of[stored_id(org.id)]
            address = f"{_slug(first)}.{_slug(last)}@{domain}"
            if address in used_addresses:
                address = f"{_slug(first)}.{_slug(last)}{index}@{domain}"
            used_addresses.add(address)
            emails = [address]
            if self.rng.random() < 0.3:
                emails.append(
                    f"{_slug(first)}{self.rng.randint(1, 99)}@{self.rng.choice(['example.net', 'example.org'])}"
                )
            if self.rng.random() < 0.08:
                emails.append(f"{_slug(last)}.privat@example.net")
            phones = [f"+49 {self.rng.randint(150, 179)} {self.rng.randint(1000000, 9999999)}"]
            if self.rng.random() < 0.4:
                phones.append(f"0{self.rng.randint(30, 999)} {self.rng.randint(10000, 999999)}")
            contact = contacts.create_contact(
                self.s,
                contacts.ContactInput(
                    first_name=first,
                    last_name=last,
                    emails=emails,
                    phones=phones,
                    job_title=self.rng.choice(self.w["job_titles"]),
                    organization_id=org.id,
                    owner_id=self.rng.choice(self.internal_user_ids),
                    street=org.street,
                    postcode=org.postcode,
                    city=org.city,
                    region=org.region,
                    country="DE",
                    custom={"language": self.rng.choice(["German", "German", "English", "Turkish"])},
                ),
                now=self.now,
            )
            self.contact_ids.append(stored_id(contact.id))
            self.contacts_by_org.setdefault(stored_id(org.id), []).append(stored_id(contact.id))
            self.contact_emails[stored_id(contact.id)] = emails

    # --- pipelines and deals ---
    def make_pipelines(self) -> None:
        S = pipelines.StageInput
        self.sales = pipelines.create_pipeline(
            self.s,
            "Sales",
            [
                S("Qualification", "open", 10),
                S("Needs analysis", "open", 25, ["Site visit scheduled", "Roof photos received"]),
                S("Proposal", "open", 50, ["Technical check done", "Financing requested"]),
                S("Negotiation", "open", 75, ["Contract sent", "Financing approved"]),
                S("Won", "won", 100, ["Installation planned", "Grid registration done"]),
                S("Lost", "lost", 0),
            ],
        )
        self.service = pipelines.create_pipeline(
            self.s,
            "Service contracts",
            [
                S("Inquiry", "open", 20),
                S("Offer", "open", 50, ["Offer sent"]),
                S("Closing", "open", 80),
                S("Signed", "won", 100),
                S("Declined", "lost", 0),
            ],
        )

    def make_opportunities(self) -> None:
        me = self.internal_user_ids[0]
        for index in range(SIZES["opportunities"]):
            pipeline = self.sales if index < 42 else self.service
            stages = pipelines.stages_of(self.s, stored_id(pipeline.id))
            weights = [5, 4, 4, 3, 3, 2] if len(stages) == 6 else [4, 4, 3, 3, 2]
            target_index = self.rng.choices(range(len(stages)), weights=weights)[0]
            org = self.rng.choice(self.customers)
            people = self.contacts_by_org.get(stored_id(org.id)) or [self.rng.choice(self.contact_ids)]
            currency = self.rng.choices(["EUR", "CHF", "USD"], weights=[16, 2, 1])[0]
            amount = self.rng.randrange(2_000, 180_000, 50) * 100
            created_days_ago = self.rng.randint(10, 120)
            created = self.at(-created_days_ago, 9 + index % 8)
            data = deals.OpportunityInput(
                title=f"{self.rng.choice(self.w['deal_topics'])} {org.name.split()[0]}",
                pipeline_id=stored_id(pipeline.id),
                stage_id=stages[0].id,
                amount_cents=amount,
                currency=currency,
                expected_close=self.today + timedelta(days=self.rng.randint(-45, 180)),
                owner_id=me if index % 3 == 0 else self.rng.choice(self.internal_user_ids),
                organization_id=org.id,
                installer_id=self.rng.choice(self.installers).id
                if pipeline is self.sales and self.rng.random() < 0.6
                else None,
                reseller_id=self.rng.choice(self.resellers).id if self.rng.random() < 0.25 else None,
                contact_ids=people[:2],
                primary_contact_id=people[0],
                custom={"roof_area_m2": self.rng.randint(40, 900)} if pipeline is self.sales else None,
            )
            deal = deals.create_opportunity(self.s, data, now=created, user_id=data.owner_id)
            moment = created
            target = stages[target_index]
            path = [stage for stage in stages[1:target_index] if stage.kind == "open"] + (
                [target] if target_index > 0 else []
            )
            for stage in path:
                moment = moment + timedelta(
                    days=self.rng.randint(1, max(1, created_days_ago // (target_index + 1)))
                )
                moment = min(moment, self.now)
                reason = self.rng.choice(self.w["lost_reasons"]) if stage.kind == "lost" else None
                deals.move_to_stage(
                    self.s,
                    stored_id(deal.id),
                    stored_id(stage.id),
                    now=moment,
                    user_id=data.owner_id,
                    lost_reason=reason,
                )
            current = stages[target_index]
            for substate in pipelines.substates_of(self.s, stored_id(current.id)):
                if self.rng.random() < 0.5:
                    deals.set_substate(
                        self.s,
                        stored_id(deal.id),
                        stored_id(substate.id),
                        True,
                        now=moment,
                        user_id=data.owner_id,
                    )
            self.deal_ids.append(stored_id(deal.id))

    def make_leads(self) -> None:
        for index in range(SIZES["leads"]):
            first = self.rng.choice(self.w["first_names"])
            last = self.rng.choice(self.w["last_names"])
            repeat = index < 4
            org = self.customers[index] if repeat else None
            company = (
                org.name
                if org
                else f"{self.rng.choice(self.w['company_prefixes'])} {self.rng.choice(self.w['customer_suffixes'])} GmbH"
            )
            domain = (
                self.domain_of[stored_id(org.id)]
                if org
                else f"{_slug(company.split()[0])}-lead{index}.example"
            )
            email_domain = domain if self.rng.random() < 0.7 else "example.net"
            status = self.rng.choices(
                ["new", "contacted", "qualified", "disqualified"], weights=[4, 3, 2, 1]
            )[0]
            lead = leads.create_lead(
                self.s,
                leads.LeadInput(
                    title=f"{self.rng.choice(self.w['lead_topics'])} ({company.split()[0]})",
                    person_name=f"{first} {last}",
                    emails=[f"{_slug(first)}.{_slug(last)}@{email_domain}"],
                    phone=f"+49 {self.rng.randint(150, 179)} {self.rng.randint(1000000, 9999999)}",
                    company_name=company,
                    source=self.rng.choice(self.w["lead_sources"]),
                    status=status,
                    owner_id=self.rng.choice(self.internal_user_ids),
                    organization_id=org.id if org else None,
                ),
                now=self.at(-self.rng.randint(0, 60), 10),
            )
            self.lead_ids.append(stored_id(lead.id))
        for lead_id in self.lead_ids[-3:]:
            stored = self.s.get(m.Lead, lead_id)
            if stored is not None and stored.status != "disqualified":
                leads.convert_lead(
                    self.s,
                    lead_id,
                    now=self.at(-2, 11),
                    user_id=self.internal_user_ids[0],
                    pipeline_id=self.sales.id,
                    amount_cents=self.rng.randrange(5_000, 40_000, 50) * 100,
                )

    # --- activities and the rest ---
    def make_activities(self) -> None:
        deals_rows = self.s.scalars(select(m.Opportunity)).all()
        open_leads = [
            i
            for i in self.lead_ids
            if (lead := self.s.get(m.Lead, i)) and lead.status in ("new", "contacted", "qualified")
        ]
        for index in range(SIZES["activities"]):
            kind = self.rng.choices(["call", "meeting", "task", "email"], weights=[5, 3, 4, 1])[0]
            day = self.rng.randint(-21, 21)
            hour = self.rng.randint(8, 17)
            start = self.at(day, hour, self.rng.choice([0, 15, 30, 45]))
            duration = {"call": 15, "meeting": 60, "task": 30, "email": 5}[kind]
            subject = self.rng.choice(
                self.w[{"call": "call_subjects", "meeting": "meeting_subjects"}.get(kind, "task_subjects")]
            )
            contact_id = lead_id = opportunity_id = organization_id = None
            if open_leads and index % 10 == 0:
                lead_id = self.rng.choice(open_leads)
            else:
                deal = self.rng.choice(deals_rows)
                opportunity_id, organization_id = deal.id, deal.organization_id
                people = deals.contacts_of(self.s, stored_id(deal.id))
                contact_id = people[0][0] if people else self.rng.choice(self.contact_ids)
            owner = self.internal_user_ids[0] if index % 2 == 0 else self.rng.choice(self.internal_user_ids)
            activity = activities.create_activity(
                self.s,
                activities.ActivityInput(
                    subject=subject,
                    type=kind,
                    task_type=self.rng.choice(self.w["task_types"]) if kind in ("task", "call") else None,
                    start_at=start,
                    end_at=start + timedelta(minutes=duration),
                    contact_id=contact_id,
                    lead_id=lead_id,
                    opportunity_id=opportunity_id,
                    organization_id=organization_id,
                    owner_id=owner,
                    reminder_at=start - timedelta(minutes=15)
                    if day >= 0 and self.rng.random() < 0.4
                    else None,
                    description="Notizen folgen." if self.rng.random() < 0.3 else None,
                ),
                now=min(self.now, start - timedelta(days=1)),
            )
            if day < 0:
                if self.rng.random() < 0.85:
                    activities.complete_activity(
                        self.s, stored_id(activity.id), now=start + timedelta(minutes=duration)
                    )
                else:
                    activities.cancel_activity(self.s, stored_id(activity.id), now=start - timedelta(hours=2))
            elif day == 0 and hour < 10 and self.rng.random() < 0.5:
                activities.complete_activity(
                    self.s, stored_id(activity.id), now=start + timedelta(minutes=duration)
                )

    def make_quotes_tickets_comments(self) -> None:
        proposal_deals = [
            d
            for d in deals.list_opportunities(self.s, limit=None)
            if d.stage_name in ("Proposal", "Negotiation", "Offer")
        ]
        for deal in proposal_deals[:10]:
            sales_documents.create_quote(
                self.s,
                sales_documents.QuoteInput(
                    opportunity_id=deal.id,
                    status=self.rng.choice(["draft", "sent"]),
                    valid_until=self.today + timedelta(days=30),
                    items=[
                        sales_documents.QuoteItemInput(
                            "Solarmodule 430 Wp", self.rng.randint(10, 80), 18_900
                        ),
                        sales_documents.QuoteItemInput(
                            "Wechselrichter", 1, self.rng.randrange(150_000, 400_000, 100)
                        ),
                        sales_documents.QuoteItemInput("Montage (Stunden)", "12.5", 7_500),
                    ],
                ),
                now=self.at(-self.rng.randint(1, 20), 14),
            )
        for index in range(8):
            org = self.rng.choice(self.customers)
            people: list[int | None] = [*self.contacts_by_org.get(stored_id(org.id), [])] or [None]
            sales_documents.create_ticket(
                self.s,
                sales_documents.TicketInput(
                    subject=self.rng.choice(
                        ["Wechselrichter meldet Fehler", "Ertrag zu niedrig", "Rechnung unklar", "App-Zugang"]
                    ),
                    status=["open", "open", "pending", "closed"][index % 4],
                    contact_id=people[0],
                    organization_id=org.id,
                    owner_id=self.rng.choice(self.internal_user_ids),
                ),
                now=self.at(-self.rng.randint(0, 30), 9),
            )
        notes = [
            "Kunde wünscht Rückruf nach 16 Uhr.",
            "Budget für Q2 freigegeben.",
            "Dach wurde 2019 saniert.",
            "Ansprechpartner wechselt im Sommer.",
            "Interesse an Speicher-Erweiterung.",
        ]
        for index in range(40):
            if index % 2:
                ref = RecordRef(RecordType.OPPORTUNITY, self.rng.choice(self.deal_ids))
            else:
                ref = RecordRef(RecordType.CONTACT, self.rng.choice(self.contact_ids))
            attachments.add_comment(
                self.s,
                ref,
                self.rng.choice(notes),
                author_id=self.rng.choice(self.internal_user_ids),
                now=self.at(-self.rng.randint(0, 40), 12),
            )

    # --- automation (made last, without the random generator: the data above stays as it was) ---
    def make_automation(self) -> None:
        S = pipelines.StageInput
        stages = {s.name: s for s in pipelines.stages_of(self.s, stored_id(self.sales.id))}
        approval = pipelines.add_stage(
            self.s,
            stored_id(self.sales.id),
            S("Contract approval", "open", 90),
            position=stages["Won"].position,
        )
        pending_docs = pipelines.add_substate(
            self.s, stored_id(stages["Negotiation"].id), "Documents pending"
        )
        installation = pipelines.create_pipeline(
            self.s,
            "Installation",
            [S("To schedule", "open", 20), S("Scheduled", "open", 60), S("Installed", "won", 100),
             S("Cancelled", "lost", 0)],
        )  # fmt: skip
        first_install = pipelines.stages_of(self.s, stored_id(installation.id))[0]
        email_templates.create_template(
            self.s,
            email_templates.TemplateInput(
                name="Unterlagen erinnern",
                subject="Ihre Unterlagen für {{ opportunity.title }}",
                body="Hallo {{ contact.first_name }},\n\nfür {{ opportunity.title }} fehlen uns noch Unterlagen. "
                "Könnten Sie sie uns diese Woche schicken?\n\nViele Grüße\n{{ me.name }}\n",
                description="reminder: documents still missing",
            ),
            now=self.now,
        )
        zone = getattr(self.zone, "key", "UTC")
        R = rules.RuleInput
        for data in (
            R("Repeat business after 6 months", "repeat_lead", stage_id=stages["Won"].id, trigger="enter",
              delay_value=6, delay_unit="months", at_time="09:00", survives_exit=True,
              params={"title": "Repeat business: {{ deal.title }}"}),
            R("Won equipment deal to installation", "copy_deal", stage_id=stages["Won"].id, trigger="enter",
              params={"stage_id": first_install.id, "title": "Installation: {{ deal.title }}"}),
            R("Installer by region", "assign", stage_id=stages["Won"].id, trigger="enter",
              params={"field": "installer", "method": "region"}),
            R("Call at contract approval", "plan_activity", stage_id=approval.id, trigger="enter",
              params={"type": "call", "task_type": "Outbound call", "subject": "Contract approval: call {{ contact.name }}",
                      "due_value": 1, "due_unit": "days", "at_time": "10:00", "complete_on_exit": True}),
            R("Documents reminder after 4 days", "send_email", scope="substate", substate_id=pending_docs.id,
              trigger="enter", delay_value=4, delay_unit="days", at_time="09:00",
              params={"template": "Unterlagen erinnern", "to": "primary_contact", "account": "demo"}),
            R("Deal summary when won", "report", stage_id=stages["Won"].id, trigger="enter",
              params={"template": "deal-summary"}),
            R("Check the close date", "plan_activity", stage_id=stages["Proposal"].id, trigger="date",
              date_field="expected_close", delay_value=-3, delay_unit="days", at_time="09:00",
              params={"subject": "Close date in 3 days: {{ deal.title }}"}, late_policy="skip", late_limit_hours=48),
        ):  # fmt: skip
            data.zone = zone
            rules.create_rule(self.s, data, now=self.now)
        # A few things waiting: one deal with documents pending for a day, one just moved to contract approval.
        negotiating = self.s.scalars(
            select(m.Opportunity)
            .where(col(m.Opportunity.stage_id) == stages["Negotiation"].id)
            .order_by(col(m.Opportunity.id))
        ).all()
        if negotiating:
            deals.set_substate(self.s, stored_id(negotiating[0].id), stored_id(pending_docs.id), True, now=self.now - timedelta(days=1),
                               user_id=negotiating[0].owner_id)  # fmt: skip
        if len(negotiating) > 1:
            deals.move_to_stage(self.s, stored_id(negotiating[1].id), stored_id(approval.id), now=self.now,
                                user_id=negotiating[1].owner_id)  # fmt: skip

    def make_mail_account(self) -> None:
        """My mail account in the demo: it never connects (sync, test and sending say "demo: not connected"),
        so mail written in the demo, by hand or by a rule, waits in the outbox and is never delivered."""
        me = self.s.get(m.User, self.internal_user_ids[0])
        assert me is not None
        self.s.add(
            m.MailAccount(
                name="demo",
                user_id=stored_id(me.id),
                preset=DEMO_PRESET,
                imap_host=DEMO_HOST,
                imap_port=993,
                username=me.email,
                password_source="env",
                password_ref="CRM_TUI_DEMO_PASSWORD",
                smtp_host=DEMO_HOST,
                smtp_port=465,
                smtp_security="ssl",
                addresses=me.email,
                signature=f"{me.name}\nVertrieb · Tel. +49 30 555 0100",  # the closing is the text's (templates have it)
                created_at=self.now,
            )
        )
        self.s.flush()

    def make_mail(self) -> None:
        me = self.s.get(m.User, self.internal_user_ids[0])
        assert me is not None
        threads = SIZES["messages"] // 2
        made = 0
        for thread in range(threads):
            contact_id = self.rng.choice(self.contact_ids)
            contact = self.s.get(m.Contact, contact_id)
            assert contact is not None
            address = self.contact_emails[contact_id][0]
            subject = self.rng.choice(self.w["mail_subjects"]).format(
                n=f"Q-{self.today.year}-{thread + 1:04d}"
            )
            previous: list[str] = []
            sent = self.at(-self.rng.randint(0, 20), self.rng.randint(8, 16), self.rng.randint(0, 59))
            for turn in range(3):
                if made >= SIZES["messages"]:
                    return
                incoming = turn % 2 == 0
                message = EmailMessage()
                sender = (contact.name, address) if incoming else (me.name, me.email)
                recipient = (me.name, me.email) if incoming else (contact.name, address)
                message["From"] = f"{sender[0]} <{sender[1]}>"
                message["To"] = f"{recipient[0]} <{recipient[1]}>"
                message["Subject"] = subject if turn == 0 else f"Re: {subject}"
                message["Date"] = format_datetime(sent.astimezone(self.zone))
                message_id = (
                    f"<demo.{thread}.{turn}.{self.rng.getrandbits(48):012x}@{sender[1].rsplit('@', 1)[1]}>"
                )
                message["Message-ID"] = message_id
                if previous:
                    message["In-Reply-To"] = previous[-1]
                    message["References"] = " ".join(previous)
                greeting = f"Hallo {recipient[0].split()[0]}," if recipient[0] else "Hallo,"
                message.set_content(
                    f"{greeting}\n\n{self.rng.choice(self.w['mail_openers'])}\n\nViele Grüße\n{sender[0]}\n"
                )
                raw = message.as_bytes()
                data = parse_message(raw)
                stored = mail_store.store_message(self.s, data, now=sent, outgoing=not incoming)
                stored.is_read = not incoming or sent < self.at(-1, 0)
                self.s.add(stored)
                mail_store.link_message(
                    self.s,
                    stored_id(stored.id),
                    RecordRef(RecordType.CONTACT, contact_id),
                    reason=f"address {address}",
                    now=sent,
                )
                if contact.organization_id and not is_free(address.rsplit("@", 1)[1]):
                    mail_store.link_message(
                        self.s,
                        stored_id(stored.id),
                        RecordRef(RecordType.ORGANIZATION, contact.organization_id),
                        reason=f"domain {address.rsplit('@', 1)[1]}",
                        now=sent,
                    )
                previous.append(message_id)
                made += 1
                if not incoming and thread % 7 == 3 and made < SIZES["messages"]:
                    # An out-of-office reply to my mail: automatic, it answers nothing (the thread still
                    # waits for the customer in "No reply to me").
                    self._automatic_reply(
                        contact_id, contact.name, address, me, subject, message_id, previous, sent
                    )
                    made += 1
                sent = sent + timedelta(hours=self.rng.randint(2, 30))
                if sent > self.now or self.rng.random() < 0.2:
                    break

    def make_enquiries(self) -> None:
        """New enquiries from people the CRM does not know yet (private addresses): the "Unlinked" view's mail,
        to turn into a lead (``L``) in the inbox."""
        me = self.s.get(m.User, self.internal_user_ids[0])
        assert me is not None
        enquiries = [
            ("Jonas Richter", "jonas.richter@example.org", "Anfrage PV-Anlage für unser Einfamilienhaus",
             "wir interessieren uns für eine PV-Anlage mit Speicher für unser Einfamilienhaus (Baujahr 1998, "
             "Süddach, etwa 45 m²). Könnten Sie uns ein Angebot machen?"),
            ("Sabine Kaiser", "s.kaiser@example.net", "Wallbox und Photovoltaik",
             "wir planen eine Wallbox für unser neues E-Auto und würden gern gleich eine PV-Anlage dazu "
             "nehmen. Haben Sie nächste Woche Zeit für einen Termin vor Ort?"),
        ]  # fmt: skip
        for number, (name, address, subject, text) in enumerate(enquiries):
            sent = self.at(-number, 7, 45)
            message = EmailMessage()
            message["From"] = f"{name} <{address}>"
            message["To"] = f"{me.name} <{me.email}>"
            message["Subject"] = subject
            message["Date"] = format_datetime(sent.astimezone(self.zone))
            message["Message-ID"] = (
                f"<enquiry.{number}.{address.replace('@', '.')}@{address.rsplit('@', 1)[1]}>"
            )
            message.set_content(f"Guten Tag,\n\n{text}\n\nMit freundlichen Grüßen\n{name}\n")
            stored = mail_store.store_message(self.s, parse_message(message.as_bytes()), now=sent)
            stored.is_read = True  # the demo's mail is read: N marks some unread to try it
            self.s.add(stored)

    def _automatic_reply(
        self,
        contact_id: int,
        name: str,
        address: str,
        me: m.User,
        subject: str,
        replied: str,
        previous: list[str],
        sent: datetime,
    ) -> None:
        message = EmailMessage()
        message["From"] = f"{name} <{address}>"
        message["To"] = f"{me.name} <{me.email}>"
        message["Subject"] = f"Abwesenheitsnotiz: {subject}"
        when = sent + timedelta(minutes=1)
        message["Date"] = format_datetime(when.astimezone(self.zone))
        message["Message-ID"] = f"<demo.auto.{len(previous)}.{replied.strip('<>')}>"
        message["In-Reply-To"] = replied
        message["References"] = " ".join(previous)
        message["Auto-Submitted"] = "auto-replied"
        message.set_content(
            "Vielen Dank für Ihre Nachricht. Ich bin bis auf Weiteres nicht im Büro und lese meine Mail "
            "nach meiner Rückkehr.\n"
        )
        stored = mail_store.store_message(self.s, parse_message(message.as_bytes()), now=when)
        stored.is_read = True
        self.s.add(stored)
        mail_store.link_message(
            self.s,
            stored_id(stored.id),
            RecordRef(RecordType.CONTACT, contact_id),
            reason=f"address {address}",
            now=when,
        )


def _slug(text: str) -> str:
    table = str.maketrans(
        {"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "Ä": "ae", "Ö": "oe", "Ü": "ue", " ": "-"}
    )
    return "".join(ch for ch in text.translate(table).lower() if ch.isalnum() or ch == "-")
