"""Writing mail as a salesperson does (issue 20, items 3 and 4), by keys on the demo: recipients completed from
any word of a name in To, a bare name named before sending, a template that fits a reply to a contact, a new
template form that starts empty, and a mass mail previewed before anything is queued."""

from __future__ import annotations

import email
import email.policy
from typing import Any

from sqlmodel import col, select
from textual.widgets import Input, OptionList, Static, TextArea

from crm_tui.core import models as m
from crm_tui.core.services import mail_accounts
from crm_tui.ui.app import CrmApp
from crm_tui.ui.screens.compose import ComposeScreen
from crm_tui.ui.screens.dialogs import ConfirmDialog
from crm_tui.ui.screens.mass_mail import MassMailScreen
from crm_tui.ui.screens.settings import SettingsScreen
from crm_tui.ui.screens.template_picker import TemplatePicker
from crm_tui.ui.widgets.paged_table import PagedTable
from tests.ui.helpers import new_template_form, wait_for
from tests.ui.keywalk import settle


def shown(widget: Any) -> str:
    return str(widget.render())


def errors(app: CrmApp) -> list[str]:
    return [n.message for n in app._notifications if n.severity == "error"]


def address_of(app: CrmApp, first: str, last: str) -> str:
    with app.context.database().read() as session:
        address = session.scalars(
            select(col(m.ContactEmail.address))
            .join(m.Contact, col(m.Contact.id) == m.ContactEmail.contact_id)
            .where(m.Contact.first_name == first, m.Contact.last_name == last)
        ).first()
        assert address is not None
        return address


def mass_mail_shown(app: CrmApp) -> bool:
    """The mass mail screen on top, composed (its text is there to read)."""
    return isinstance(app.screen, MassMailScreen) and bool(app.screen.query("#mass-skipped-text"))


def open_deals(session: Any, address: str) -> list[Any]:
    from crm_tui.core.free_mail import free_domains
    from crm_tui.core.services import mail_actions

    return mail_actions.open_deals_of(session, address, free_domains=set(free_domains()))


async def new_mail(app: CrmApp, pilot: Any) -> ComposeScreen:
    await pilot.press("1")
    await settle(pilot)
    await pilot.press("m")
    await wait_for(lambda: isinstance(app.screen, ComposeScreen), pilot)
    screen = app.screen
    assert isinstance(screen, ComposeScreen)
    return screen


async def test_to_completes_any_word_of_a_name_and_tab_takes_it(app: CrmApp, pilot: Any) -> None:
    compose = await new_mail(app, pilot)
    to, hint = compose.query_one("#c-to", Input), compose.query_one("#c-to-hint", Static)
    assert app.focused is to
    lea = f"Lea Scholz <{address_of(app, 'Lea', 'Scholz')}>"
    await pilot.press(*"Lea Sch")
    await wait_for(lambda: "Lea Scholz" in shown(hint), pilot)
    assert "Lea Werner" not in shown(hint) and "Lea Martin" not in shown(hint), "only people named Lea Sch…"
    await pilot.press("tab")
    assert to.value == lea and app.focused is to, "Tab took the suggestion and stayed in To"
    # After a comma: the last name alone, the one already in To not offered again; Down chooses the next.
    await pilot.press(*", scholz")
    await wait_for(lambda: "Ida Scholz" in shown(hint), pilot)
    assert "Lea Scholz" not in shown(hint)
    second = shown(hint).splitlines()[1].strip().split("  ")[0]
    await pilot.press("down", "tab")
    assert to.value == f"{lea}, {second}", "the recipient already in To is kept"
    # A colleague (a user) completes too.
    await pilot.press(*", jonas")
    await wait_for(lambda: "colleague" in shown(hint), pilot)
    await pilot.press("tab")
    assert to.value.endswith(", Jonas Weber <jonas.weber@example.com>")
    # A part of an address.
    await pilot.press(*", lindgruen")
    await wait_for(lambda: "info@lindgruen-metallbau.example" in shown(hint), pilot)
    await pilot.press(*["backspace"] * len("lindgruen"))
    await wait_for(lambda: "lindgruen" not in shown(hint), pilot)
    # A bare name is named under To when the mail is to be sent, and nothing goes.
    await pilot.press(*"Hans Wurst", "ctrl+s")
    await wait_for(lambda: "“Hans Wurst” is not an address" in shown(hint), pilot)
    assert app.screen is compose and not isinstance(app.screen, ConfirmDialog), "nothing is sent"
    assert app.focused is to
    assert compose.query_one("#c-cc-hint", Static).has_class("hidden"), "Cc is fine"
    assert not errors(app)


async def test_a_reply_to_a_contact_without_a_deal_takes_a_fitting_template(app: CrmApp, pilot: Any) -> None:
    with app.context.database().read() as session:
        on_deals = select(col(m.MailLink.message_id)).where(m.MailLink.record_type == "opportunity")
        message = next(
            message
            for message in session.scalars(
                select(m.MailMessage)
                .join(m.ContactEmail, col(m.ContactEmail.address) == m.MailMessage.from_address)
                .where(col(m.MailMessage.is_outgoing).is_(False), col(m.MailMessage.id).not_in(on_deals))
                .order_by(col(m.MailMessage.sent_at).desc())
            )
            if not open_deals(session, message.from_address)  # a contact without a deal
        )
        sender = session.scalars(
            select(m.Contact)
            .join(m.ContactEmail, col(m.ContactEmail.contact_id) == m.Contact.id)
            .where(m.ContactEmail.address == message.from_address)
        ).first()
        assert sender is not None
    await pilot.press("1")
    table = app.screen.query_one(PagedTable)
    await wait_for(lambda: table.row_count > 0, pilot)
    table.focus()
    await wait_for(lambda: table.select_key(str(message.id)), pilot)
    await pilot.press("r")
    await wait_for(lambda: isinstance(app.screen, ComposeScreen), pilot)
    compose = app.screen
    subject = compose.query_one("#c-subject", Input).value
    assert subject.startswith("Re: ")
    await pilot.press("ctrl+t")
    await wait_for(lambda: isinstance(app.screen, TemplatePicker), pilot)
    picker = app.screen
    assert isinstance(picker, TemplatePicker)
    options = picker.query_one(OptionList)
    listed = [options.get_option_at_index(i) for i in range(options.option_count)]
    fits = [fit.fits for fit in picker.shown]  # as listed
    fitting = [str(o.prompt).split(" — ")[0] for o, fit in zip(listed, fits, strict=True) if fit]
    assert fitting[:3] == ["Danke für Ihre Nachricht", "Nachfassen", "Terminvorschlag"]
    assert all(fits[: len(fitting)]), "the templates that fit come first"
    assert any(str(o.prompt) == "Termin bestätigen — needs a deal" for o in listed)
    await pilot.press(*"nachf")  # type-ahead
    await wait_for(lambda: options.option_count == 2, pilot)  # Nachfassen, Angebot nachfassen (needs a quote)
    assert options.highlighted is not None
    assert str(options.get_option_at_index(options.highlighted).prompt).startswith("Nachfassen")
    await pilot.press("enter")
    await wait_for(lambda: app.screen is compose, pilot)
    body = compose.query_one("#c-body", TextArea).text
    assert body.startswith(f"Guten Tag {sender.name},\n")
    assert "> " in body, "the quote stays under the text"
    assert compose.query_one("#c-subject", Input).value == subject, "a reply keeps Re: <subject>"
    await pilot.press("ctrl+s")
    await wait_for(lambda: isinstance(app.screen, ConfirmDialog) or app.screen is not compose, pilot)
    if isinstance(app.screen, ConfirmDialog):
        await pilot.press("y")
    await wait_for(lambda: not isinstance(app.screen, ComposeScreen), pilot)
    with app.context.database().read() as session:
        item = session.scalars(select(m.OutboxItem).order_by(col(m.OutboxItem.id).desc())).first()
    assert item is not None
    sent = email.message_from_bytes(item.raw, policy=email.policy.default)
    assert sent["Subject"] == subject
    assert sent["In-Reply-To"] == message.message_id_header
    assert message.message_id_header in sent["References"]
    assert not errors(app)


async def test_a_template_on_a_new_mail_sets_the_subject_and_keeps_the_signature(
    app: CrmApp, pilot: Any
) -> None:
    with app.context.database().read() as session:
        signature = mail_accounts.identities(session)[0].signature
    compose = await new_mail(app, pilot)
    await pilot.press(*"Lea Scho", "tab")
    await pilot.press("ctrl+t")
    await wait_for(lambda: isinstance(app.screen, TemplatePicker), pilot)
    await pilot.press(*"terminv", "enter")
    await wait_for(lambda: app.screen is compose, pilot)
    assert compose.query_one("#c-subject", Input).value == "Terminvorschlag"
    body = compose.query_one("#c-body", TextArea).text
    assert body.startswith("Guten Tag Lea Scholz,")
    assert signature and body.rstrip().endswith(signature.strip()), "the signature under the template's text"
    assert body.count("-- \n") == 1
    assert not errors(app)


async def test_the_new_template_form_starts_empty_and_keeps_what_is_typed(app: CrmApp, pilot: Any) -> None:
    form = await new_template_form(app, pilot)
    body = form.query_one(TextArea)
    assert body.text == "", "the example is a placeholder, not text"
    assert "{{ contact.name }}" in str(body.placeholder)
    body.focus()
    await pilot.press(*"Guten Tag {{ contact.first_name }},")
    assert body.text == "Guten Tag {{ contact.first_name }},"
    assert not errors(app)


async def test_a_mass_mail_to_the_team_shows_recipients_and_the_first_mails_first(
    app: CrmApp, pilot: Any
) -> None:
    await pilot.press("5")
    await wait_for(lambda: isinstance(app.screen, SettingsScreen), pilot)
    settings = app.screen
    await settle(pilot)
    await pilot.press("m")  # Users: a mass mail to the team
    await wait_for(lambda: isinstance(app.screen, TemplatePicker), pilot)
    options = app.screen.query_one(OptionList)
    assert str(options.get_option_at_index(0).prompt).startswith("Vertriebsrunde"), "fits a colleague"
    await pilot.press(*"vertr", "enter")
    await wait_for(lambda: mass_mail_shown(app), pilot)
    mass = app.screen
    text = mass.query_one("#mass-skipped-text", Static)
    await wait_for(lambda: "The first 3 mails" in shown(text), pilot)
    assert "Recipients (3)" in shown(text), "every active colleague but me"
    assert "Sven Holm" not in shown(text), "a partner's user (an installer's) is not the team"
    assert "Hallo Jonas," in shown(text) and "Subject: Vertriebsrunde am Montag" in shown(text)
    assert "ready: nothing is queued yet" in shown(mass.query_one("#mass-counts", Static))
    with app.context.database().read() as session:
        assert not session.scalars(select(m.OutboxItem)).all(), "nothing is queued before g"
    await pilot.press("q")
    await wait_for(lambda: app.screen is settings, pilot)
    assert not errors(app)


async def test_a_mass_mail_to_a_contact_list_offers_the_templates_a_contact_can_fill(
    app: CrmApp, pilot: Any
) -> None:
    records = app.screen
    table = records.query_one(PagedTable)
    await wait_for(lambda: table.row_count > 0, pilot)
    await pilot.press("slash", *"scholz", "enter")
    await wait_for(lambda: all("Scholz" in row.cells[0] for row in table.loaded_rows), pilot)
    await pilot.press("M")
    await wait_for(lambda: isinstance(app.screen, TemplatePicker), pilot)
    options = app.screen.query_one(OptionList)
    listed = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
    assert [label.split(" — ")[0] for label in listed[:3]] == [
        "Danke für Ihre Nachricht",
        "Nachfassen",
        "Terminvorschlag",
    ]
    assert "Vertriebsrunde — needs a colleague as recipient" in listed
    await pilot.press("enter")
    await wait_for(lambda: mass_mail_shown(app), pilot)
    text = app.screen.query_one("#mass-skipped-text", Static)
    await wait_for(lambda: "The first 3 mails" in shown(text), pilot)
    assert f"Recipients ({table.row_count})" in shown(text) and "Guten Tag Ida Scholz," in shown(text)
    assert not errors(app)


def status(app: CrmApp) -> str:
    from crm_tui.ui.widgets.status_bar import StatusBar

    return str(app.screen.query_one(StatusBar).render())


async def test_a_mass_mail_to_leads_greets_the_person_and_leaves_out_converted_and_disqualified(
    app: CrmApp, pilot: Any
) -> None:
    with app.context.database().read() as session:
        statuses = [lead.status for lead in session.scalars(select(m.Lead))]
    closed = {status: statuses.count(status) for status in ("converted", "disqualified")}
    assert all(closed.values()), "the demo has converted and disqualified leads"
    records = app.screen
    table = records.query_one(PagedTable)
    await wait_for(lambda: table.row_count > 0, pilot)
    await pilot.press("right_square_bracket", "right_square_bracket")  # Contacts > Organizations > Leads
    await wait_for(
        lambda: "Wärmepumpe für den Neubau (Seeblick)" in str(table.loaded_rows[0].cells[0]), pilot
    )
    await pilot.press("M")
    await wait_for(lambda: isinstance(app.screen, TemplatePicker), pilot)
    await pilot.press(*"anfrage", "enter")
    await wait_for(lambda: mass_mail_shown(app), pilot)
    mass = app.screen
    text = mass.query_one("#mass-skipped-text", Static)
    await wait_for(lambda: "The first 3 mails" in shown(text), pilot)
    assert "To: Ines Kraus <ines.kraus@example.net>" in shown(text), "the person, not the lead's title"
    assert "To: Wärmepumpe" not in shown(text)
    left = sum(closed.values())
    assert (
        f"Left out: {left} leads ({closed['converted']} converted and {closed['disqualified']} disqualified)"
        in shown(text)
    )
    assert f"Recipients ({len(statuses) - left})" in shown(text)
    assert not errors(app)


async def test_the_status_bar_stops_saying_the_recipients_are_checked_once_they_are(
    app: CrmApp, pilot: Any
) -> None:
    records = app.screen
    table = records.query_one(PagedTable)
    await wait_for(lambda: table.row_count > 0, pilot)
    await pilot.press("M")
    await wait_for(lambda: isinstance(app.screen, TemplatePicker), pilot)
    await pilot.press(*"nachf", "enter")
    await wait_for(lambda: mass_mail_shown(app), pilot)
    text = app.screen.query_one("#mass-skipped-text", Static)
    await wait_for(lambda: "The first 3 mails" in shown(text), pilot)
    await wait_for(lambda: "checking every recipient" not in status(app), pilot)
    await pilot.press("q")
    await wait_for(lambda: app.screen is records, pilot)
    await settle(pilot)
    assert "checking every recipient" not in status(app), "nor after q"
    assert not errors(app)


async def test_a_reply_to_a_customer_with_one_open_deal_fills_deal_templates_from_it(
    app: CrmApp, pilot: Any
) -> None:
    """T on a mail from a customer whose related panel shows one open deal (the mail not filed on a deal):
    the deal's templates fit, and the picker says which deal it uses."""
    with app.context.database().read() as session:
        on_deals = select(col(m.MailLink.message_id)).where(m.MailLink.record_type == "opportunity")
        message, deal = next(
            (message, deals[0])
            for message in session.scalars(
                select(m.MailMessage)
                .join(m.ContactEmail, col(m.ContactEmail.address) == m.MailMessage.from_address)
                .where(col(m.MailMessage.is_outgoing).is_(False), col(m.MailMessage.id).not_in(on_deals))
                .order_by(col(m.MailMessage.sent_at).desc())
            )
            if len(deals := open_deals(session, message.from_address)) == 1
        )
    await pilot.press("1")
    table = app.screen.query_one(PagedTable)
    await wait_for(lambda: table.row_count > 0, pilot)
    table.focus()
    await wait_for(lambda: table.select_key(str(message.id)), pilot)
    await wait_for(lambda: f"open deal    {deal.title}" in shown(app.screen.query_one("#related")), pilot)
    await pilot.press("T")
    await wait_for(lambda: isinstance(app.screen, TemplatePicker), pilot)
    picker = app.screen
    assert isinstance(picker, TemplatePicker)
    notes = [shown(note) for note in picker.query(".picker-note")]
    assert any(note.startswith(f"Deal: {deal.title} — the only open deal of ") for note in notes), notes
    listed = {fit.name: fit for fit in picker.shown}
    assert listed["Termin bestätigen"].fits, "no longer 'needs a deal'"
    await pilot.press(*"termin b", "enter")
    await wait_for(lambda: isinstance(app.screen, ComposeScreen), pilot)
    body = app.screen.query_one("#c-body", TextArea).text
    assert f"„{deal.title}“" in body.split("> ")[0], "the deal's title above the quote"
    assert not errors(app)


async def test_a_template_for_two_people_in_to_says_the_fields_greet_the_first(
    app: CrmApp, pilot: Any
) -> None:
    compose = await new_mail(app, pilot)
    to = compose.query_one("#c-to", Input)
    to.value = f"{address_of(app, 'Lea', 'Scholz')}, {address_of(app, 'Ida', 'Scholz')}"
    await pilot.press("ctrl+t")
    await wait_for(lambda: isinstance(app.screen, TemplatePicker), pilot)
    notes = [shown(note) for note in app.screen.query(".picker-note")]
    assert any(
        note.startswith(
            "2 people in To: the merge fields use the first, Lea Scholz; for a personal mail to each"
        )
        for note in notes
    ), notes
    assert "mass mail" in " ".join(notes)
    await pilot.press("escape")
    await wait_for(lambda: app.screen is compose, pilot)
    assert not errors(app)


async def test_enter_on_a_template_that_does_not_fit_says_why_under_the_list(app: CrmApp, pilot: Any) -> None:
    with app.context.database().read() as session:
        address = next(
            address
            for address in session.scalars(select(m.ContactEmail.address).order_by(col(m.ContactEmail.id)))
            if not open_deals(session, address)
        )
    compose = await new_mail(app, pilot)
    compose.query_one("#c-to", Input).value = address
    await pilot.press("ctrl+t")
    await wait_for(lambda: isinstance(app.screen, TemplatePicker), pilot)
    picker = app.screen
    why = picker.query_one("#picker-why", Static)
    await pilot.press(*"angebot")  # only "Angebot nachfassen", which needs a quote
    options = picker.query_one(OptionList)
    await wait_for(lambda: options.option_count == 1, pilot)
    await pilot.press("enter")
    await wait_for(
        lambda: shown(why) == "Angebot nachfassen needs a quote: file the mail on a deal with a quote first",
        pilot,
    )
    await pilot.press("down", "enter")
    assert app.screen is picker, "the picker stays, saying why"
    assert "needs a quote" in shown(why)
    await pilot.press("backspace")  # typing again: the list changes, the line goes
    await wait_for(lambda: shown(why) == "", pilot)
    await pilot.press("escape")
    await wait_for(lambda: app.screen is compose, pilot)
    assert not errors(app)


async def test_the_new_template_forms_placeholders_look_like_examples_when_saved_empty(
    app: CrmApp, pilot: Any
) -> None:
    form = await new_template_form(app, pilot)
    await pilot.press("ctrl+s")  # saved empty: every required field says so
    await wait_for(lambda: "is required" in shown(form.query_one("#error-f-subject")), pilot)
    subject, body = form.query_one("#f-subject", Input), form.query_one("#f-body", TextArea)
    subject.focus()
    await settle(pilot)
    assert subject.value == "" and str(subject.placeholder) == "e.g. Ihr Angebot {{ quote.number }}"
    assert str(body.placeholder).startswith("e.g. Guten Tag {{ contact.name }}")
    for widget in (subject, body):  # dim and italic, as an example looks (not as a value typed in)
        line = [segment for segment in widget.render_line(0) if segment.text.strip()]
        assert "".join(segment.text for segment in line).startswith("e.g. ")
        assert all(segment.style.dim and segment.style.italic for segment in line), line
    assert not errors(app)


async def test_tab_from_the_text_goes_round_to_to_and_a_subject_tabbed_into_is_not_replaced(
    app: CrmApp, pilot: Any
) -> None:
    """With one identity there is no From to choose: Tab from the text went to it, and what was typed next
    went nowhere. Tabbing into a filled subject selected it, so the first key replaced "Re: ..."."""
    table = app.screen.query_one(PagedTable)
    await wait_for(lambda: table.row_count > 0, pilot)
    await pilot.press("m")
    await wait_for(lambda: isinstance(app.screen, ComposeScreen), pilot)
    compose = app.screen
    subject = compose.query_one("#c-subject", Input)
    subject.value = "Angebot Dach"
    body = compose.query_one("#c-body", TextArea)
    body.focus()
    await pilot.press("B", "1", "tab")
    await wait_for(lambda: app.focused is compose.query_one("#c-to"), pilot)
    to_before = compose.query_one("#c-to", Input).value
    await pilot.press("x")
    # what is typed after Tab lands in To
    await wait_for(lambda: compose.query_one("#c-to", Input).value != to_before, pilot)
    subject.focus()
    await wait_for(lambda: app.focused is subject, pilot)
    await pilot.press("!", "T")
    await wait_for(lambda: subject.value == "Angebot Dach!T", pilot)
    assert body.text.startswith("B1")
