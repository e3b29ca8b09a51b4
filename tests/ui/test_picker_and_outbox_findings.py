"""What a tester found in the template picker, the outbox view and the template editor (issue 21, helpers'
findings): Up/Down (ctrl+n/ctrl+p, j/k in the list) move over every template listed and Enter takes the
highlighted one, or says why it does not fit; the outbox view asks before D drops, names a mail by subject and
recipient ("(no subject)"), says what is known of a mail counted as sent, and counts the demo's mail; a second
save in the template editor says "checking…" at once, the last refusal gone."""

from __future__ import annotations

from typing import Any

from textual.command import CommandPalette
from textual.widgets import Input, OptionList, Static

from crm_tui.ui.app import CrmApp
from crm_tui.ui.screens.compose import ComposeScreen
from crm_tui.ui.screens.outbox import OutboxScreen
from crm_tui.ui.screens.template_picker import TemplatePicker
from tests.ui.helpers import new_template_form, wait_for
from tests.ui.keywalk import settle

# The subjects of the demo's templates that have no merge field in theirs.
SUBJECTS = {
    "Danke für Ihre Nachricht": "Ihre Nachricht",
    "Nachfassen": "Kurze Nachfrage",
    "Terminvorschlag": "Terminvorschlag",
}


def shown(widget: Any) -> str:
    return str(widget.render())


def errors(app: CrmApp) -> list[str]:
    return [n.message for n in app._notifications if n.severity == "error"]


async def new_mail(app: CrmApp, pilot: Any) -> ComposeScreen:
    await pilot.press("1")
    await settle(pilot)
    await pilot.press("m")
    await wait_for(lambda: isinstance(app.screen, ComposeScreen), pilot)
    screen = app.screen
    assert isinstance(screen, ComposeScreen)
    return screen


async def open_picker(app: CrmApp, pilot: Any) -> tuple[TemplatePicker, OptionList]:
    await pilot.press("ctrl+t")
    await wait_for(lambda: isinstance(app.screen, TemplatePicker), pilot)
    picker = app.screen
    assert isinstance(picker, TemplatePicker)
    return picker, picker.query_one(OptionList)


async def test_arrows_move_over_templates_that_do_not_fit_and_enter_says_why_for_that_one(
    app: CrmApp, pilot: Any
) -> None:
    """A new mail to nobody yet: no template fits. Down x3 then Enter named the first template's reason (the
    highlight could not move); now it is the fourth's, and the highlight shows where it is."""
    compose = await new_mail(app, pilot)
    picker, options = await open_picker(app, pilot)
    assert options.option_count == 8 and not any(fit.fits for fit in picker.shown)
    why = picker.query_one("#picker-why", Static)
    assert options.highlighted == 0
    await pilot.press("down", "down", "down")
    assert options.highlighted == 3
    await pilot.press("enter")
    fourth = picker.shown[3]
    await wait_for(lambda: shown(why) == fourth.why, pilot)
    assert fourth.name in shown(why) and picker.shown[0].name not in shown(why)
    assert app.screen is picker, "a template that does not fit is not taken"
    await pilot.press("up")  # another template: the reason said was the fourth's
    assert options.highlighted == 2
    await wait_for(lambda: shown(why) == "", pilot)
    await pilot.press("ctrl+n", "ctrl+n")
    assert options.highlighted == 4
    await pilot.press("ctrl+p")
    assert options.highlighted == 3 and app.screen is picker, "ctrl+p moves up, the palette stays shut"
    await pilot.press("tab")  # into the list: j/k move there
    assert app.focused is options
    await pilot.press("j", "j", "k")
    assert options.highlighted == 4
    await pilot.press("enter")
    await wait_for(lambda: shown(why) == picker.shown[4].why, pilot)
    assert picker.query_one("#picker-input", Input).value == "", "j and k were not typed"
    await pilot.press("escape")
    await wait_for(lambda: app.screen is compose, pilot)
    assert not isinstance(app.screen, CommandPalette)
    assert not errors(app)


async def test_tab_and_arrows_take_the_highlighted_template(app: CrmApp, pilot: Any) -> None:
    compose = await new_mail(app, pilot)
    await pilot.press(*"Lea Scho", "tab")
    picker, options = await open_picker(app, pilot)
    await pilot.press("tab", "down", "down", "up")  # the second template
    assert options.highlighted == 1 and picker.shown[1].fits
    name = picker.shown[1].name
    assert name in SUBJECTS, name
    await pilot.press("enter")
    await wait_for(lambda: app.screen is compose, pilot)
    subject = compose.query_one("#c-subject", Input)
    await wait_for(lambda: subject.value == SUBJECTS[name], pilot)
    # In the field too: Down twice, Enter takes the third that fits (not the first).
    subject.value = ""
    await pilot.press("ctrl+t")
    await wait_for(lambda: isinstance(app.screen, TemplatePicker), pilot)
    assert isinstance(app.screen, TemplatePicker)
    picker = app.screen
    await pilot.press("down", "down", "down")
    assert picker.query_one(OptionList).highlighted == 3
    name = picker.shown[3].name
    assert name in SUBJECTS, name
    await pilot.press("enter")
    await wait_for(lambda: app.screen is compose and subject.value == SUBJECTS[name], pilot)
    assert not errors(app)


def queue_mail(app: CrmApp, subject: str, to: str) -> None:
    """A mail in the demo's outbox, as ctrl+s queues it (it is never delivered: the demo never connects)."""
    from sqlalchemy import select

    from crm_tui.core import models as m
    from crm_tui.core.services import outbox

    with app.context.database().write() as session:
        account = session.scalars(select(m.MailAccount)).first()
        assert account is not None and account.id is not None
        outbox.queue(
            session,
            account_id=account.id,
            message_id=f"<{len(subject)}.{to}@crm.example>",
            from_address="anna.berg@example.com",
            recipients=[to],
            subject=subject,
            raw=f"From: anna.berg@example.com\r\nTo: {to}\r\nSubject: {subject}\r\n\r\nHallo\r\n".encode(),
            now=app.context.clock.now(),
        )


async def open_outbox(app: CrmApp, pilot: Any, rows: int) -> OutboxScreen:
    await pilot.press("1")
    await settle(pilot)
    await pilot.press("o")
    await wait_for(
        lambda: isinstance(app.screen, OutboxScreen) and len(getattr(app.screen, "rows", [])) == rows, pilot
    )
    screen = app.screen
    assert isinstance(screen, OutboxScreen)
    return screen


def status(app: CrmApp) -> str:
    return str(app.screen.query_one("StatusBar").render())


def notes(app: CrmApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def test_the_outbox_asks_before_dropping_and_names_a_mail_without_a_subject(
    app: CrmApp, pilot: Any
) -> None:
    from crm_tui.ui.screens.dialogs import ConfirmDialog

    queue_mail(app, "", "kunde@example.com")
    outbox = await open_outbox(app, pilot, 1)
    # The demo's mail never goes: the status line counts it (it said "0 waiting" and nothing more).
    await wait_for(
        lambda: "outbox: 0 waiting, 1 never delivered (demo), 0 need a decision" in status(app), pilot
    )
    await pilot.press("D")
    await wait_for(lambda: isinstance(app.screen, ConfirmDialog), pilot)
    assert "Drop (no subject) to kunde@example.com?" in str(app.screen.query_one(".dialog-title").render())
    await pilot.press("n")
    await wait_for(lambda: app.screen is outbox, pilot)
    await settle(pilot)
    assert len(outbox.rows) == 1, "n keeps it"
    await pilot.press("D")
    await wait_for(lambda: isinstance(app.screen, ConfirmDialog), pilot)
    await pilot.press("escape")
    await wait_for(lambda: app.screen is outbox, pilot)
    await settle(pilot)
    assert len(outbox.rows) == 1, "Esc keeps it"
    await pilot.press("D")
    await wait_for(lambda: isinstance(app.screen, ConfirmDialog), pilot)
    await pilot.press("y")
    await wait_for(lambda: app.screen is outbox and not outbox.rows, pilot)
    assert "(no subject) to kunde@example.com: dropped" in notes(app)
    assert not any(note.startswith(":") for note in notes(app))
    assert not errors(app)


async def test_a_mail_counted_as_sent_is_named_by_what_is_known(app: CrmApp, pilot: Any) -> None:
    queue_mail(app, "Angebot Dach", "kunde@example.com")
    outbox = await open_outbox(app, pilot, 1)
    await pilot.press("S")
    await wait_for(lambda: "“Angebot Dach” to kunde@example.com: counted as sent" in notes(app), pilot)
    await wait_for(lambda: outbox.rows and outbox.rows[0].state == "sent", pilot)
    await pilot.press("u")  # the demo never delivered it: the user counted it as sent
    await wait_for(lambda: any("too late to take it back" in note for note in notes(app)), pilot)
    [said] = [note for note in notes(app) if "too late" in note]
    assert said == "the mail was counted as sent: too late to take it back"
    await pilot.press("R")  # the list shows no ids: the mail is named by its subject and recipient
    await wait_for(lambda: any("only a queued" in note for note in notes(app)), pilot)
    [said] = [note for note in notes(app) if "only a queued" in note]
    assert said.startswith("the mail “Angebot Dach” to kunde@example.com was counted as sent: "), said
    assert "outbox item" not in said
    await pilot.press("D")  # nothing to ask: a sent mail cannot be dropped, and it says why
    await wait_for(lambda: len([note for note in notes(app) if "only a queued" in note]) == 2, pilot)
    assert app.screen is outbox


async def test_a_second_save_of_a_template_says_checking_at_once_not_the_old_refusal(
    app: CrmApp, pilot: Any, monkeypatch: Any
) -> None:
    """The old refusal stayed under the field for the 2 s of the next check, then was replaced."""
    import threading

    from textual.widgets import Label, TextArea

    from crm_tui.ui.screens import template_form
    from crm_tui.ui.screens.template_form import CHECKING

    checks: list[str] = []
    release = threading.Event()

    def problems(values: dict[str, str]) -> dict[str, str]:  # the check, its second run slow
        checks.append(values["body"])
        if len(checks) > 1:
            release.wait(10)
        return {"body": f"refusal {len(checks)}"}

    monkeypatch.setattr(template_form, "_problems", problems)
    form = await new_template_form(app, pilot)
    form.query_one("#f-name", Input).value = "Zweimal"
    form.query_one("#f-subject", Input).value = "Hallo"
    form.query_one("#f-body", TextArea).text = "Guten Tag"

    def said(where: str) -> str:
        return str(form.query_one(where, Label).render())

    await pilot.press("ctrl+s")
    await wait_for(lambda: said("#error-f-body") == "refusal 1", pilot)
    assert "nothing was saved" in said("#form-error")
    assert app.focused is form.query_one("#f-body", TextArea)
    try:
        await pilot.press("ctrl+s")  # from the text, where the refusal put the cursor
        await wait_for(lambda: said("#form-error") == CHECKING and said("#error-f-body") == "", pilot)
        assert len(checks) == 2
    finally:
        release.set()
    await wait_for(lambda: said("#error-f-body") == "refusal 2", pilot)
    assert app.screen is form and not errors(app)
