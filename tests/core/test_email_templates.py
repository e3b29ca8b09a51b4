"""Mail templates: merge fields from the records a mail is about, an error naming any field they cannot fill,
a sandbox, syntax checked on save, the shipped defaults."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy import select

from crm_tui.core import models as m
from crm_tui.core.db import Database
from crm_tui.core.errors import ValidationError
from crm_tui.core.services import email_templates
from crm_tui.core.services.email_templates import TemplateFieldError, TemplateInput
from crm_tui.core.types import RecordRef, RecordType
from tests.conftest import NOW
from tests.utils import factories
from tests.utils.ids import id_of


def test_fields_come_from_the_deal_its_contact_and_organization(db: Database) -> None:
    with db.write() as session:
        me = factories.user(session, NOW, "Anna Berg")
        org = factories.organization(session, NOW, "Nordwind GmbH")
        person = factories.contact(
            session, NOW, "Lang", first_name="Lisa", emails=["lisa@nordwind.example"], organization_id=org.id
        )
        pipe = factories.pipeline(session, "Sales")
        deal = factories.deal(
            session, NOW, pipe, title="Solardach", organization_id=org.id, contact_ids=[person.id],
            primary_contact_id=person.id, amount_cents=1_250_000,
        )  # fmt: skip
        context = email_templates.merge_context(
            session,
            [RecordRef(RecordType.OPPORTUNITY, id_of(deal))],
            me_id=me.id,
            today=date(2026, 11, 22),
        )
        subject, body = email_templates.render(
            (
                "Zu {{ deal.title }} ({{ opportunity.amount }})",
                "Hallo {{ contact.first_name }} von {{ organization.name }},\n{{ me.name }}, {{ today }}\n",
            ),
            context,
        )
    assert subject == "Zu Solardach (12,500.00 EUR)"
    assert body == "Hallo Lisa von Nordwind GmbH,\nAnna Berg, 22.11.2026\n"
    with pytest.raises(TemplateFieldError, match=r"contact\.phone, which is empty for Lisa Lang"):
        email_templates.render(("x", "{{ contact.phone }}"), context)
    with pytest.raises(TemplateFieldError, match=r"quote\.number, but this mail has no quote"):
        email_templates.render(("{{ quote.number }}", ""), context)
    with pytest.raises(TemplateFieldError, match=r"contact\.shoe_size, which is not a field"):
        email_templates.render(("x", "{{ contact.shoe_size }}"), context)
    with pytest.raises(TemplateFieldError):
        email_templates.render(("x", "{{ ''.__class__.__mro__ }}"), context)  # the sandbox
    with pytest.raises(TemplateFieldError, match="customer"):
        email_templates.render(("x", "{{ customer.name }}"), context)


def test_templates_are_checked_on_save_and_the_defaults_ship(db: Database) -> None:
    with db.write() as session:
        names = [t.name for t in email_templates.list_templates(session)]
        assert names == [
            "Angebot nachfassen", "Danke für Ihre Anfrage", "Danke für Ihre Nachricht", "Nachfassen",
            "Termin bestätigen", "Terminvorschlag", "Vertriebsrunde",
        ]  # fmt: skip
        with pytest.raises(ValidationError) as broken:
            email_templates.create_template(
                session, TemplateInput("Kaputt", "Hallo {{ contact.name", "x"), now=NOW
            )
        assert "subject" in broken.value.errors
        with pytest.raises(ValidationError) as clash:
            email_templates.create_template(session, TemplateInput("Angebot nachfassen", "s", "b"), now=NOW)
        assert "exists" in clash.value.errors["name"]
        made = email_templates.create_template(session, TemplateInput("Neu", "Betreff", "Text"), now=NOW)
        email_templates.delete_template(session, id_of(made))
        assert session.get(m.EmailTemplate, made.id) is None


def test_every_shipped_template_is_in_a_new_database(db: Database) -> None:
    from crm_tui.core.assets import assets_dir

    shipped = {
        email_templates.read_default(path).name
        for path in (assets_dir() / "templates" / "email").glob("*.txt")
    }
    with db.read() as session:
        assert {t.name for t in email_templates.list_templates(session)} == shipped


def _reply_to_a_contact(session: Any) -> tuple[Any, Any]:
    """A contact at an organization, with no deal, and the user writing (me)."""
    me = factories.user(session, NOW, "Anna Berg")
    org = factories.organization(session, NOW, "Lindgrün Metallbau")
    lea = factories.contact(
        session,
        NOW,
        "Scholz",
        first_name="Lea",
        emails=["lea.scholz@lindgruen.example"],
        organization_id=org.id,
    )
    return me, lea


def test_a_reply_to_a_known_contact_without_a_deal_has_templates_that_fit(db: Database) -> None:
    with db.write() as session:
        me, lea = _reply_to_a_contact(session)
        refs = email_templates.refs_of_mail(
            session, record=None, reply_to_id=None, addresses=["LEA.SCHOLZ@lindgruen.example"]
        )
        assert refs == [RecordRef(RecordType.CONTACT, lea.id)]
        context = email_templates.merge_context(session, refs, me_id=me.id, today=date(2026, 11, 22))
        fits = email_templates.fitting_for_mail(session, context)
    fitting = [fit.name for fit in fits if fit.fits]
    assert fitting == ["Danke für Ihre Nachricht", "Nachfassen", "Terminvorschlag"]
    assert [fit.fits for fit in fits] == sorted((fit.fits for fit in fits), reverse=True), (
        "fitting ones first"
    )
    why = {fit.name: fit.reason for fit in fits}
    assert why["Termin bestätigen"] == "needs a deal"
    assert why["Angebot nachfassen"] == "needs a quote"
    assert why["Danke für Ihre Anfrage"] == "needs a lead"
    assert why["Vertriebsrunde"] == "needs a colleague as recipient"
    said = {fit.name: fit.why for fit in fits}  # in the picker, on Enter
    assert said["Angebot nachfassen"] == (
        "Angebot nachfassen needs a quote: file the mail on a deal with a quote first"
    )
    assert said["Termin bestätigen"] == "Termin bestätigen needs a deal: file the mail on a deal first"
    assert said["Nachfassen"] == ""


def test_a_field_the_contact_lacks_is_named_in_the_picker(db: Database) -> None:
    with db.write() as session:
        me, lea = _reply_to_a_contact(session)
        email_templates.create_template(
            session,
            TemplateInput("Rückruf", "Rückruf", "Ich rufe Sie unter {{ contact.phone }} an."),
            now=NOW,
        )
        context = email_templates.merge_context(
            session, [RecordRef(RecordType.CONTACT, lea.id)], me_id=me.id, today=date(2026, 11, 22)
        )
        fits = {fit.name: fit for fit in email_templates.fitting_for_mail(session, context)}
    assert fits["Rückruf"].reason == "contact.phone, which is empty for Lea Scholz"
    assert fits["Rückruf"].why == (
        "Rückruf uses contact.phone, which is empty for Lea Scholz: fill it in on the record first"
    )


def test_a_colleague_in_to_fills_the_user_fields(db: Database) -> None:
    from crm_tui.core.services import users

    with db.write() as session:
        me = factories.user(session, NOW, "Anna Berg")
        sven = users.create_user(session, users.UserInput("Sven Holm", "sven.holm@example.com"), now=NOW)
        refs = email_templates.refs_of_mail(
            session, record=None, reply_to_id=None, addresses=["sven.holm@example.com"]
        )
        assert refs == [RecordRef(RecordType.USER, id_of(sven))]
        context = email_templates.merge_context(session, refs, me_id=me.id, today=date(2026, 11, 22))
        (template,) = [t for t in email_templates.list_templates(session) if t.name == "Vertriebsrunde"]
        subject, body = email_templates.render(template, context)
    assert body.startswith("Hallo Sven,") and body.rstrip().endswith("Anna Berg")


def test_which_templates_a_mass_mail_to_each_kind_of_recipient_can_fill(db: Database) -> None:
    with db.read() as session:
        to_contacts = email_templates.fitting_for_recipients(session, "contact")
        to_team = email_templates.fitting_for_recipients(session, "user")
        to_leads = email_templates.fitting_for_recipients(session, "lead")
    assert [f.name for f in to_contacts if f.fits] == [
        "Danke für Ihre Nachricht",
        "Nachfassen",
        "Terminvorschlag",
    ]
    assert {f.name: f.reason for f in to_contacts}["Termin bestätigen"] == "needs a deal"
    assert {f.name: f.why for f in to_leads}["Nachfassen"] == (
        "Nachfassen needs a contact: a mass mail to leads fills lead.*, me.* and today only"
    )
    assert [f.name for f in to_team if f.fits] == ["Vertriebsrunde"]
    assert [f.name for f in to_leads if f.fits] == ["Danke für Ihre Anfrage"]


def test_a_mass_mail_to_the_team_is_previewed_before_anything_is_queued(db: Database) -> None:
    from crm_tui.core.services import mass_mail, users

    with db.write() as session:
        me = factories.user(session, NOW, "Anna Berg")
        users.create_user(session, users.UserInput("Sven Holm", "sven.holm@example.com"), now=NOW)
        users.create_user(session, users.UserInput("Old Timer", "old@example.com", active=False), now=NOW)
        account = factories.mail_inbox(session, NOW).account_id
        (template,) = [t for t in email_templates.list_templates(session) if t.name == "Vertriebsrunde"]
        team = mass_mail.team(session, me_id=me.id)
        campaign = mass_mail.create_campaign(
            session, template_id=id_of(template), account_id=account, from_name="Anna Berg",
            from_address="anna@example.com", refs=team, per_minute=30, now=NOW, me_id=me.id,
            today=date(2026, 11, 22),
        )  # fmt: skip
        listed = mass_mail.recipients(session, id_of(campaign))
        shown = mass_mail.preview(session, id_of(campaign), me_id=me.id, today=date(2026, 11, 22))
        queued = session.scalars(select(m.OutboxItem)).all()
    labels = [r.label for r in listed]
    assert "Sven Holm" in labels
    assert "Anna Berg" not in labels and "Old Timer" not in labels, "not the one writing, nor who left"
    assert all(r.state == "pending" for r in listed)
    assert len(shown) == len(listed) <= 3
    sven = next(p for p in shown if p.label == "Sven Holm")
    assert sven.address == "sven.holm@example.com"
    assert sven.subject == "Vertriebsrunde am Montag"
    assert sven.body.startswith("Hallo Sven,")
    assert queued == [], "nothing is queued by looking"


def test_the_team_is_our_companys_users_not_a_partners(db: Database) -> None:
    """A partner organization's user (an installer's) works in the CRM but is not a colleague: not in a mass
    mail to the team, and no colleague for the user.* fields (Vertriebsrunde)."""
    from crm_tui.core.services import mass_mail, users

    with db.write() as session:
        me = factories.user(session, NOW, "Anna Berg")
        jonas = users.create_user(session, users.UserInput("Jonas Weber", "jonas@crm.example"), now=NOW)
        installer = factories.organization(session, NOW, "Heide Solartechnik", kind="installer")
        users.create_user(
            session,
            users.UserInput("Sven Holm", "sven.holm@heide.example", organization_id=installer.id),
            now=NOW,
        )
        team = mass_mail.team(session, me_id=me.id)
        to_partner = email_templates.refs_of_mail(
            session, record=None, reply_to_id=None, addresses=["sven.holm@heide.example"]
        )
        context = email_templates.merge_context(session, to_partner, me_id=me.id, today=date(2026, 11, 22))
        why = {fit.name: fit.reason for fit in email_templates.fitting_for_mail(session, context)}
        to_jonas = email_templates.refs_of_mail(
            session, record=None, reply_to_id=None, addresses=["jonas@crm.example"]
        )
    assert team == [RecordRef(RecordType.USER, id_of(jonas))]
    assert to_partner == []
    assert why["Vertriebsrunde"] == "needs a colleague as recipient"
    assert to_jonas == [RecordRef(RecordType.USER, id_of(jonas))]


def test_a_mass_mail_to_leads_greets_the_person_and_leaves_out_converted_and_disqualified(
    db: Database,
) -> None:
    """To is the lead's person ("Ines Kraus <ines.kraus@example.net>"), never its title, the address alone
    without a person; converted and disqualified leads are left out (saying so) unless asked for."""
    from crm_tui.core.services import mass_mail

    with db.write() as session:
        me = factories.user(session, NOW, "Anna Berg")
        account = factories.mail_inbox(session, NOW).account_id
        template = email_templates.create_template(
            session, TemplateInput("Messe", "Messe: {{ lead.title }}", "Guten Tag,\n{{ me.name }}\n"), now=NOW
        )
        ines = factories.lead(
            session, NOW, title="Wärmepumpe für den Neubau (Seeblick)", person_name="Ines Kraus",
            emails=["ines.kraus@example.net"],
        )  # fmt: skip
        nameless = factories.lead(session, NOW, title="Carport (Klee)", emails=["info@klee.example"])
        gone = factories.lead(
            session, NOW, title="Energieberatung (Rhein)", person_name="Elif Kraus", emails=["elif@rhein.example"],
            status="disqualified",
        )  # fmt: skip
        done = factories.lead(
            session, NOW, title="PV (Auen)", person_name="Nora Krüger", emails=["nora@x.example"]
        )
        done.status = m.LeadStatus.CONVERTED.value
        session.flush()
        leads = [RecordRef(RecordType.LEAD, id_of(lead)) for lead in (ines, nameless, gone, done)]

        def campaign(**kwargs: Any) -> int:
            return id_of(mass_mail.create_campaign(
                session, template_id=id_of(template), account_id=account, from_name="Anna Berg",
                from_address="anna@crm.example", refs=leads, per_minute=30, now=NOW, me_id=me.id,
                today=date(2026, 11, 22), **kwargs,
            ))  # fmt: skip

        default = campaign()
        shown = mass_mail.preview(session, default, me_id=me.id, today=date(2026, 11, 22))
        left_out = mass_mail.left_out(session, default)
        skipped = mass_mail.skipped(session, default)
        mass_mail.set_state(session, default, "running")
        built: list[str] = []

        def build(from_name: str, from_address: str, to: str, subject: str, body: str) -> Any:
            built.append(to)
            return b"raw", f"<{len(built)}@crm.example>", [to.rpartition("<")[2].rstrip(">")]

        while mass_mail.queue_next(
            session, default, build=build, now=NOW, me_id=me.id, today=date(2026, 11, 22)
        ):
            pass
        every = campaign(closed_leads=True)
        asked = mass_mail.progress(session, every)
    assert [p.to for p in shown] == ["Ines Kraus <ines.kraus@example.net>", "info@klee.example"]
    assert built == ["Ines Kraus <ines.kraus@example.net>", "info@klee.example"], "the mail as previewed"
    assert left_out == {"disqualified": 1, "converted": 1}
    assert [(label, reason) for label, _, reason in skipped] == [
        ("Energieberatung (Rhein)", "left out: a disqualified lead"),
        ("PV (Auen)", "left out: a converted lead (a contact now)"),
    ]
    assert (asked.pending, asked.skipped) == (4, 0), "left out by default only"


def test_a_mail_about_no_deal_takes_the_open_deal_of_whom_it_goes_to(db: Database) -> None:
    """A reply to Lea, not filed on a deal: her organization's one open deal fills deal.*, its one quote
    quote.*, and the greeting is still Lea's (not the deal's primary contact's); the notes say which deal and
    quote. Of several open deals the most recently updated; a deal the mail is filed on stays the deal."""
    from datetime import timedelta

    from crm_tui.core.services import sales_documents
    from crm_tui.core.services.sales_documents import QuoteInput

    with db.write() as session:
        me, lea = _reply_to_a_contact(session)
        max_ = factories.contact(
            session, NOW, "Brandt", first_name="Max", emails=["max@lindgruen.example"],
            organization_id=lea.organization_id,
        )  # fmt: skip
        pipe = factories.pipeline(session, "Sales")
        deal = factories.deal(
            session, NOW, pipe, title="Batteriespeicher Lindgrün", organization_id=lea.organization_id,
            contact_ids=[max_.id], primary_contact_id=max_.id,
        )  # fmt: skip
        quote = sales_documents.create_quote(session, QuoteInput(opportunity_id=id_of(deal)), now=NOW)

        def merge(*addresses: str) -> tuple[Any, dict[str, Any]]:
            found = email_templates.mail_merge(
                session, record=None, reply_to_id=None, addresses=list(addresses)
            )
            context = email_templates.merge_context(
                session, found.refs, me_id=me.id, today=date(2026, 11, 22)
            )
            fits = {fit.name: fit for fit in email_templates.fitting_for_mail(session, context)}
            return found, fits

        one, fits = merge("lea.scholz@lindgruen.example")
        body = email_templates.render(
            next(t for t in email_templates.list_templates(session) if t.name == "Angebot nachfassen"),
            email_templates.merge_context(session, one.refs, me_id=me.id, today=date(2026, 11, 22)),
        )[1]
        assert fits["Termin bestätigen"].fits and fits["Angebot nachfassen"].fits
        assert body.startswith("Guten Tag Lea Scholz,"), (
            "the person written to, not the deal's primary contact"
        )
        assert f"unser Angebot {quote.number}" in body
        assert one.notes == [
            "Deal: Batteriespeicher Lindgrün — the only open deal of Lea Scholz",
            f"Quote: {quote.number} — the only quote of Batteriespeicher Lindgrün",
        ]

        newer = factories.deal(
            session, NOW, pipe, title="Wallbox Lindgrün", organization_id=lea.organization_id
        )
        newer.updated_at = NOW + timedelta(hours=1)
        session.flush()
        several, fits = merge("lea.scholz@lindgruen.example")
        assert RecordRef(RecordType.OPPORTUNITY, id_of(newer)) in several.refs
        assert RecordRef(RecordType.OPPORTUNITY, id_of(deal)) not in several.refs
        assert several.notes == [
            "Deal: Wallbox Lindgrün — the most recently updated of 2 open deals of Lea Scholz "
            "(file the mail on another deal to use that one)"
        ]
        assert fits["Angebot nachfassen"].reason == "needs a quote", "the newer deal has no quote"

        filed = email_templates.mail_merge(
            session, record=RecordRef(RecordType.OPPORTUNITY, id_of(deal)), reply_to_id=None,
            addresses=["lea.scholz@lindgruen.example"],
        )  # fmt: skip
        assert RecordRef(RecordType.OPPORTUNITY, id_of(newer)) not in filed.refs, "the deal it is about stays"


def test_a_template_for_several_people_in_to_says_it_greets_the_first(db: Database) -> None:
    with db.write() as session:
        me, lea = _reply_to_a_contact(session)
        factories.contact(session, NOW, "Vogel", first_name="Ben", emails=["ben@vogel.example"])
        found = email_templates.mail_merge(
            session, record=None, reply_to_id=None,
            addresses=["Lea.Scholz@lindgruen.example", "ben@vogel.example", "someone@else.example"],
        )  # fmt: skip
        context = email_templates.merge_context(session, found.refs, me_id=me.id, today=date(2026, 11, 22))
        _, body = email_templates.render(("x", "Guten Tag {{ contact.name }},"), context)
        alone = email_templates.mail_merge(
            session, record=None, reply_to_id=None, addresses=["lea.scholz@lindgruen.example"]
        )
    assert body == "Guten Tag Lea Scholz,"
    assert found.notes == [
        "3 people in To: the merge fields use the first, Lea Scholz; for a "
        "personal mail to each, write a mass mail (M on the contacts or leads list)"
    ]
    assert alone.notes == []


# Hostile templates (issue 21): each ends within the sandbox's limits in a template error naming the template.
_LOOPS = "{% for i in range(10000) %}{% for j in range(10000) %}{% for k in range(10000) %}{{ '' }}{% endfor %}{% endfor %}{% endfor %}"  # fmt: skip


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (_LOOPS, "takes more than 2 seconds to fill"),
        ("{{ 'a' * 10**9 }}", "at most 1,048,576: 1 MiB"),
        (
            "{% set ns = namespace(s='ab') %}{% for i in range(28) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
            "1 MiB",
        ),
        (
            "{% set line = 'x' * 1000 %}{% for i in range(10000) %}{{ line }}{% endfor %}",
            "fills to more than",
        ),
        ("{{ 'a'|center(10**9) }}", "1 MiB"),
        ("{% include 'footer' %}", "uses {% include %} (line 1)"),
        ("{% import 'macros' as parts %}", "uses {% import %}"),
        ("{% extends 'base' %}", "uses {% extends %}"),
        ("{% for i in range(10**7) %}{% endfor %}", "a range of 10,000,000 numbers (at most 10,000)"),
        ("{% macro again(n) %}{{ again(n) }}{% endmacro %}{{ again(1) }}", "calls itself too deeply"),
        ("{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}", "is nested or calls itself too deeply"),
    ],
    ids=[
        "nested-loops",
        "a-times-1e9",
        "doubling",
        "output-10MB",
        "center",
        "include",
        "import",
        "extends",
        "range",
        "macro-recursion",
        "deep-nesting",
    ],
)
def test_a_hostile_template_ends_within_the_limits_in_an_error_naming_it(body: str, said: str) -> None:
    """What the trials found (a loop spinning for ever, a 1 GB string, TypeError/OverflowError as internal
    errors): each render ends within about 2 s, builds nothing near its size, and fails as a template error
    that names the template and says which limit, in words."""
    import threading
    import time
    import tracemalloc

    template = m.EmailTemplate(name="Feindlich", subject="Hallo", body=body)
    outcome: list[BaseException | tuple[str, str]] = []

    def fill() -> None:
        try:
            outcome.append(email_templates.render(template, {}))
        except BaseException as exc:  # noqa: BLE001 - the test says what it was
            outcome.append(exc)

    tracemalloc.start()
    try:
        started = time.monotonic()
        worker = threading.Thread(target=fill, daemon=True)  # (without limits it would never end)
        worker.start()
        worker.join(timeout=20)
        took = time.monotonic() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert not worker.is_alive(), "the render never ended"
    assert took < 10, f"the render took {took:.1f} s"
    assert peak < 40 * 2**20, f"the render built {peak / 2**20:.0f} MiB"
    [error] = outcome
    assert isinstance(error, TemplateFieldError), f"{type(error).__name__}: {str(error)[:200]}"
    assert str(error).startswith("the template 'Feindlich' ") and said in str(error), str(error)


def test_the_template_check_refuses_what_would_surely_break_the_limits(db: Database) -> None:
    """Saving a template says at once what the limits would refuse for every record (nested loops of 10**10
    steps, a range of a million numbers, 'a' * 10**9, {% include %}); what it cannot see (a loop bound from a
    variable) is left to the limits when it is filled."""
    loops = "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"
    with db.write() as session:
        for body, said in (
            (loops, "a range holds at most 10,000 numbers"),
            (loops.replace("100000", "10000"), "nested loops of 100,000,000 steps would not finish in time"),
            ("{{ 'a' * 10**9 }}", "would make a text of 1,000,000,000 characters"),
            ("Hallo {% include 'footer' %}", "uses {% include %}"),
            ("{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}", "nested too deeply"),
        ):
            with pytest.raises(ValidationError) as refused:
                email_templates.create_template(session, TemplateInput("Feindlich", "Hallo", body), now=NOW)
            assert said in refused.value.errors["body"], refused.value.errors
        fine = "{% set n = 3 %}{% for i in range(n) %}{{ i }}{% endfor %} {{ 'ab' * 2 }} {{ '%05d' % 42 }}"
        made = email_templates.create_template(session, TemplateInput("Harmlos", "Hallo", fine), now=NOW)
        assert email_templates.render(made, {}) == ("Hallo", "012 abab 00042")


def test_a_template_that_never_ends_says_so_in_the_picker_and_stops_a_mass_mail_at_once(db: Database) -> None:
    """A template whose loops never end passes the check on save (the bound is a variable); the template
    picker lists it as not fitting, saying why (and the next picker says so without waiting again), and a
    mass mail with it is refused after one render, not 2 s for each recipient."""
    import time

    from crm_tui.core.services import mass_mail

    spin = "{% set n = 10000 %}{% for i in range(n) %}{% for j in range(n) %}{% for k in range(n) %}{% endfor %}{% endfor %}{% endfor %}"  # fmt: skip
    with db.write() as session:
        me, lea = _reply_to_a_contact(session)
        others = [
            factories.contact(session, NOW, name, emails=[f"{name.lower()}@example.net"])
            for name in ("Ost", "West")
        ]
        account = factories.mail_inbox(session, NOW).account_id
        # Saved before the check on save filled templates (it refuses this one now): as an old database has it.
        template = m.EmailTemplate(
            name="Endlos", subject="Hallo", body="Guten Tag {{ contact.name }},\n" + spin, created_at=NOW,
            updated_at=NOW,
        )  # fmt: skip
        session.add(template)
        session.flush()
        refs = email_templates.refs_of_mail(
            session, record=None, reply_to_id=None, addresses=["lea.scholz@lindgruen.example"]
        )
        context = email_templates.merge_context(session, refs, me_id=me.id, today=date(2026, 11, 22))
        first = {fit.name: fit for fit in email_templates.fitting_for_mail(session, context)}
        started = time.monotonic()
        again = {fit.name: fit for fit in email_templates.fitting_for_mail(session, context)}
        second_took = time.monotonic() - started
    assert not first["Endlos"].fits
    assert first["Endlos"].reason == "takes more than 2 seconds to fill (a loop too long?)"
    assert first["Endlos"].why == "Endlos takes more than 2 seconds to fill (a loop too long?)"
    assert [name for name, fit in first.items() if fit.fits] == ["Danke für Ihre Nachricht", "Nachfassen", "Terminvorschlag"]  # fmt: skip
    assert again["Endlos"].why == first["Endlos"].why and second_took < 1.5, f"{second_took:.1f} s"

    started = time.monotonic()
    with pytest.raises(TemplateFieldError) as refused, db.write() as session:
        mass_mail.create_campaign(
            session, template_id=id_of(template), account_id=account, from_name="Anna Berg",
            from_address="anna@crm.example", per_minute=30, now=NOW, me_id=me.id, today=date(2026, 11, 22),
            refs=[RecordRef(RecordType.CONTACT, c.id) for c in (lea, *others)],
        )  # fmt: skip
    took = time.monotonic() - started
    assert str(refused.value).startswith("the template 'Endlos' takes more than 2 seconds to fill")
    assert took < 5, f"the refusal took {took:.1f} s (2 s a recipient?)"
    with db.read() as session:
        assert session.scalars(select(m.Campaign)).first() is None, "no campaign half made"


def test_within_the_limits_a_template_works_as_jinja_does() -> None:
    """The limits change nothing for a template that keeps them: loops (with loop.index and else), macros, a
    {% set %} block, filters with arguments, string methods, format, ~ and % all fill as Jinja fills them."""
    body = (
        "{% macro row(name, amount) %}{{ name|upper }}: {{ '%8.2f'|format(amount) }}{% endmacro %}"
        "{% for item in items %}{{ loop.index }}. {{ row(item.name, item.amount) }}\n{% else %}nothing\n{% endfor %}"
        "{% set footer %}{{ 'Gruß'.center(10, '*') }}{% endset %}{{ footer }}|{{ '{:>6}'.format('x') }}|"
        "{{ items|map(attribute='name')|join(', ') }}|{{ 'ab' * 3 ~ '!' }}|{{ '%03d' % 7 }}|{{ range(3)|sum }}|"
        "{{ 'a b c'|replace(' ', '-') }}|{{ 'text'|indent(2, first=True) }}|{{ ','.join(['x', 'y']) }}|{{ 2 ** 10 }}"
    )
    items = [{"name": "Dach", "amount": 12.5}, {"name": "Speicher", "amount": 3}]
    _, filled = email_templates.render(("s", body), {"items": items}, name="Normal")
    assert filled == (
        "1. DACH:    12.50\n2. SPEICHER:     3.00\n***Gruß***|     x|Dach, Speicher|ababab!|007|3|a-b-c|  text|x,y|1024"
    )


# What the editor saved without a word though no mail could ever be filled with it (issue 21, item 5): the
# check on save fills the template once with sample records under the limits and refuses it, saying why.
_NEVER_FILLS = {
    "nested-loops-variable-bound": (
        "{% set n=9000 %}{% for i in range(n) %}{% for j in range(n) %}x{% endfor %}{% endfor %}",
        "fills to more than 1,048,576 characters",
    ),
    "nested-loops-no-output": (
        "{% set n=9000 %}{% for i in range(n) %}{% for j in range(n) %}{% endfor %}{% endfor %}",
        "takes more than 2 seconds to fill",
    ),
    "string-times-1000": (
        "{% set s='a'*1000000 %}{{ s*1000 }}",
        "would make a text of 1,000,000,000 characters",
    ),
    "join-with-a-joined-range": (
        "{{ range(10000)|join(range(10000)|join(',')) }}",
        "would make a text of 489,041,111 characters",
    ),
    "format-width": ("{{ '{:>999999999}'.format(1) }}", "would make a text of 999,999,999 characters"),
    "center-filter": ("{{ 'x'|center(999999999) }}", "would make a text of 999,999,999 characters"),
    "recursive-macro": (
        "{% macro again(n) %}{{ again(n + 1) }}{% endmacro %}{{ again(1) }}",
        "calls itself too deeply",
    ),
    "dunder": ("{{ ''.__class__ }}", "uses something templates may not: __class__"),
    "dunder-in-format": ("{{ '{0.__class__}'.format(1) }}", "uses something templates may not: __class__"),
    "unknown-field": ("Guten Tag {{ contact.nonsense }}", "contact.nonsense, which is not a field"),
    "unknown-record": ("Guten Tag {{ customer.name }}", "customer, which is not a field"),
}


@pytest.mark.parametrize(("body", "said"), list(_NEVER_FILLS.values()), ids=list(_NEVER_FILLS))
def test_a_template_that_can_never_fill_is_refused_on_save(db: Database, body: str, said: str) -> None:
    """Each was saved without a word and refused by the picker at once: saving it (new or as an edit) is
    refused, the reason under the field it is in, within the 2 s limit; nothing is stored or changed."""
    import time

    with db.write() as session:
        kept = email_templates.create_template(session, TemplateInput("Alt", "Hallo", "Guten Tag"), now=NOW)
        kept_id = id_of(kept)
        before = [(t.name, t.subject, t.body) for t in email_templates.list_templates(session)]
    for field, data in (
        ("body", TemplateInput("Feindlich", "Hallo {{ contact.name }}", body)),
        ("subject", TemplateInput("Feindlich", body.replace("\n", " "), "Guten Tag")),
    ):
        email_templates.trial_problems.cache_clear()
        started = time.monotonic()
        with pytest.raises(ValidationError) as refused, db.write() as session:
            email_templates.create_template(session, data, now=NOW)
        took = time.monotonic() - started
        assert said in refused.value.errors[field], refused.value.errors
        assert list(refused.value.errors) == [field]
        assert took < 5, f"the check took {took:.1f} s"
        with pytest.raises(ValidationError) as refused, db.write() as session:
            email_templates.update_template(session, kept_id, data, now=NOW)
        assert said in refused.value.errors[field], refused.value.errors
    with db.read() as session:
        stored = [(t.name, t.subject, t.body) for t in email_templates.list_templates(session)]
    assert stored == before and ("Alt", "Hallo", "Guten Tag") in stored, "nothing stored, nothing changed"


def test_a_template_that_needs_a_record_kind_still_saves(db: Database) -> None:
    """The trial fill has a sample record of every kind: a template needing a deal, a quote or a colleague
    saves (the picker says "needs a deal" where the mail has none), and so does one whose loops keep the
    limits, or that may fail only on real records (an empty field, 1 / 0)."""
    bodies = [
        "Guten Tag {{ contact.first_name }}, zu {{ deal.title }} ({{ deal.amount }}, {{ quote.number }}) "
        "{{ organization.name }} {{ lead.title }} {{ user.first_name }} {{ ticket.subject }} {{ me.name }} {{ today }}",
        "{% set n = 100 %}{% for i in range(n) %}{% for j in range(n) %}.{% endfor %}{% endfor %}",
        "{% if contact.phone %}{{ contact.phone }}{% endif %} {{ 1 if deal.stage == 'x' else 0 }}",
    ]
    with db.write() as session:
        for number, body in enumerate(bodies):
            email_templates.create_template(
                session, TemplateInput(f"T{number}", "Zu {{ opportunity.title }}", body), now=NOW
            )
    with db.read() as session:
        names = [t.name for t in email_templates.list_templates(session)]
    assert {"T0", "T1", "T2"} <= set(names)


def test_the_sample_records_have_the_fields_real_records_have(db: Database) -> None:
    """The trial fill's records name the same fields as a real record of each kind (a field added to one is
    added to the sample, or the check on save would refuse a template using it)."""
    with db.write() as session:
        me = factories.user(session, NOW, "Anna Berg")
        org = factories.organization(session, NOW, "Nordwind GmbH")
        person = factories.contact(session, NOW, "Lang", first_name="Lisa", organization_id=org.id)
        deal = factories.deal(
            session, NOW, factories.pipeline(session, "Sales"), title="Solardach", organization_id=org.id,
            contact_ids=[person.id], primary_contact_id=person.id,
        )  # fmt: skip
        real = email_templates.merge_context(
            session, [RecordRef(RecordType.OPPORTUNITY, id_of(deal))], me_id=me.id, today=date(2026, 11, 22)
        )
        for kind in ("contact", "organization", "opportunity", "me"):
            target = real[kind]._get() if hasattr(real[kind], "_get") else real[kind]
            assert set(target._values) == set(email_templates.SAMPLE_FIELDS[kind][1]), kind
    assert set(email_templates.sample_context()) == set(real)


def test_the_picker_says_in_words_what_a_template_may_not_use(db: Database) -> None:
    """A template stored with ''.__class__ (before the check refused it) is named once in the picker, and
    what it may not use is said in words, not as Python's repr of the refusal."""
    with db.write() as session:
        me, _ = _reply_to_a_contact(session)
        session.add(m.EmailTemplate(name="Dunder", subject="Hallo", body="{{ ''.__class__ }}", created_at=NOW,
                                    updated_at=NOW))  # fmt: skip
        session.flush()
        refs = email_templates.refs_of_mail(
            session, record=None, reply_to_id=None, addresses=["lea.scholz@lindgruen.example"]
        )
        context = email_templates.merge_context(session, refs, me_id=me.id, today=date(2026, 11, 22))
        fit = next(f for f in email_templates.fitting_for_mail(session, context) if f.name == "Dunder")
    assert fit.reason == "uses something templates may not: __class__"
    assert fit.why == "Dunder uses something templates may not: __class__"


def test_a_rule_text_that_can_never_fill_is_refused_when_the_rule_is_saved(db: Database) -> None:
    """A rule's subject or title is a template too: the rule's check fills it with the sample records."""
    from crm_tui.core.automation import actions
    from crm_tui.core.errors import FieldErrors

    for subject, said in (
        ("Anruf {{ 'x'|center(999999999) }}", "would make a text of 999,999,999 characters"),
        ("Anruf {{ deal.nonsense }}", "opportunity.nonsense, which is not a field"),
        ("Anruf {{ deal.title }} bei {{ contact.name }}", None),
    ):
        errors = FieldErrors()
        with db.read() as session:
            actions.check_params(session, "opportunity", "plan_activity", {"subject": subject}, errors)
        if said is None:
            assert "params.subject" not in errors.errors, errors.errors
        else:
            assert said in errors.errors["params.subject"], errors.errors
