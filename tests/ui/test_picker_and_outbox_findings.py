"""What a tester found in the template picker, the outbox view and the template editor (issue 21, helpers'
findings): Up/Down (ctrl+n/ctrl+p, j/k in the list) move over every template listed and Enter takes the
highlighted one, or says why it does not fit; ..."""

from __future__ import annotations

from typing import Any

from textual.command import CommandPalette
from textual.widgets import Input, OptionList, Static

from crm_tui.app import CrmApp
from crm_tui.screens.compose import ComposeScreen
from crm_tui.screens.template_picker import TemplatePicker
from tests.ui.helpers import wait_for
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
    return app.screen  # type: ignore[return-value]


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
    picker = app.screen
    await pilot.press("down", "down", "down")
    assert picker.query_one(OptionList).highlighted == 3
    name = picker.shown[3].name
    assert name in SUBJECTS, name
    await pilot.press("enter")
    await wait_for(lambda: app.screen is compose and subject.value == SUBJECTS[name], pilot)
    assert not errors(app)
