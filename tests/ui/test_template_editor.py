"""The mail template editor (Settings > Mail templates) refuses a template no mail could ever be filled with,
saying why under the field, after a check that runs beside the app ("checking…"), the form keeping what was
typed (issue 21, item 5)."""

from __future__ import annotations

import asyncio
from typing import Any

from textual.widgets import DataTable, Input, Label, TextArea

from crm_tui.core.services import email_templates
from crm_tui.ui.app import CrmApp
from crm_tui.ui.screens.settings import SettingsScreen
from crm_tui.ui.screens.template_form import CHECKING, TemplateForm
from tests.ui.helpers import wait_for
from tests.ui.keywalk import settle

_SPINS = "{% set n=9000 %}{% for i in range(n) %}{% for j in range(n) %}{% endfor %}{% endfor %}"


def _stored(app: CrmApp) -> list[str]:
    with app.context.database().read() as session:
        return [template.name for template in email_templates.list_templates(session)]


async def test_the_editor_refuses_a_template_that_can_never_fill_saying_why(app: CrmApp, pilot: Any) -> None:
    email_templates.trial_problems.cache_clear()
    await pilot.press("5")
    settings = app.screen
    assert isinstance(settings, SettingsScreen)
    settings.show_section("templates")
    await settle(pilot)
    table = settings.query_one("#settings-table", DataTable)
    rows = table.row_count
    await pilot.press("n")
    await wait_for(lambda: isinstance(app.screen, TemplateForm), pilot)
    form = app.screen
    assert isinstance(form, TemplateForm)
    form.query_one("#f-name", Input).value = "Endlos"
    form.query_one("#f-subject", Input).value = "Hallo {{ contact.first_name }}"
    form.query_one("#f-body", TextArea).text = "Guten Tag,\n" + _SPINS

    def said(field: str) -> str:
        return str(form.query_one(f"#error-f-{field}", Label).render())

    # The check fills it once (2 s before its limit stops it) in a thread: the app goes on meanwhile (the
    # pilot's press would wait for the CPU to idle, so the save is started as ctrl+s starts it).
    form.action_save()
    assert CHECKING in str(form.query_one("#form-error", Label).render())
    steps = 0
    deadline = asyncio.get_running_loop().time() + 10
    while form.checking is not None and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)  # the behaviour under test: the app's loop runs while the check does
        steps += 1
        if steps == 2:
            form.query_one("#f-description", Input).value = "Test"  # typed while it is checked
    assert steps >= 10, f"the app went on only {steps} times while the template was checked"
    await wait_for(lambda: "takes more than 2 seconds to fill" in said("body"), pilot)
    assert app.screen is form, "the form stays open"
    assert "nothing was saved" in str(form.query_one("#form-error", Label).render())
    assert form.query_one("#f-body", TextArea).text == "Guten Tag,\n" + _SPINS, "what was typed is kept"
    assert form.query_one("#f-description", Input).value == "Test", "typed while it was checked"
    assert "Endlos" not in _stored(app)

    # Enter in a field goes through the same check: a field no record has is named under the subject.
    form.query_one("#f-body", TextArea).text = "Guten Tag {{ contact.first_name }}, zu {{ deal.title }}"
    form.query_one("#f-subject", Input).value = "Hallo {{ contact.nonsense }}"
    form.query_one("#f-subject", Input).focus()
    await pilot.press("enter")
    await wait_for(lambda: "contact.nonsense, which is not a field" in said("subject"), pilot)
    assert said("body") == ""
    assert "Endlos" not in _stored(app)

    # A template that needs a deal saves (the picker says so where a mail has none).
    form.query_one("#f-subject", Input).value = "Hallo {{ contact.first_name }}"
    await pilot.press("ctrl+s")
    await wait_for(lambda: app.screen is settings and table.row_count == rows + 1, pilot)
    assert "Endlos" in _stored(app)
