"""Activities carry attachments (issue 24, item 2) on the demo: A on an activity in the calendar attaches a
file by its path, the calendar and the contact's timeline mark it "📎 1", the activity's form lists it and
ctrl+o there opens it with the desktop opener and removes it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.widgets import Input, Label, OptionList, Static

from crm_tui.core.services import activities
from crm_tui.core.types import RecordType
from crm_tui.ui.screens.attachments import DocumentsScreen
from crm_tui.ui.screens.calendar import CalendarScreen
from crm_tui.ui.screens.contacts import ContactsScreen
from crm_tui.ui.screens.dialogs import ConfirmDialog, PromptDialog
from crm_tui.ui.screens.record_form import RecordForm
from crm_tui.ui.widgets.record_detail import RecordDetail
from tests.ui.helpers import wait_for
from tests.ui.keywalk import RecordingApp, settle, use_recording_programs


def entry_text(calendar: CalendarScreen, activity_id: int) -> str:
    """The calendar's line of the activity, as shown."""
    for option_list in calendar.query(".day-list").results(OptionList):
        for index in range(option_list.option_count):
            option = option_list.get_option_at_index(index)
            if option.id == str(activity_id):
                return str(option.prompt)
    return ""


def side_panel(app: Any) -> str:
    return str(app.screen.query_one("#form-side", Static).render())


async def test_A_on_a_calendar_activity_attaches_a_file_the_form_opens_and_removes_it(
    app: RecordingApp, pilot: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    started = use_recording_programs(monkeypatch, tmp_path / "programs")
    quote = tmp_path / "site-photo.jpg"
    quote.write_bytes(b"\xff\xd8\xff a photo of the roof")
    contacts = app.screen
    assert isinstance(contacts, ContactsScreen)
    await wait_for(lambda: contacts.selected_ref() is not None, pilot)
    contact = contacts.selected_ref()
    assert contact is not None and contact.type is RecordType.CONTACT
    context = app.context
    with context.database().write() as session:
        activity_id = activities.create_activity(
            session,
            activities.ActivityInput(
                subject="Roof inspection", start_at=context.clock.now(), type="meeting", contact_id=contact.id
            ),
            now=context.clock.now(),
        ).id
    assert activity_id is not None

    await pilot.press("4")
    await wait_for(lambda: isinstance(app.screen, CalendarScreen), pilot)
    calendar = app.screen
    assert isinstance(calendar, CalendarScreen)
    await settle(pilot)  # the start's automation run reloads the calendar once more
    calendar.reload(select=activity_id)
    await wait_for(lambda: calendar.selected_id() == activity_id, pilot)
    await settle(pilot)
    assert calendar.selected_id() == activity_id
    assert "📎" not in entry_text(calendar, activity_id)

    await pilot.press("A")
    await wait_for(lambda: isinstance(app.screen, PromptDialog), pilot)
    app.screen.query_one(Input).value = str(tmp_path / "missing.pdf")
    await pilot.press("enter")  # a path that does not exist keeps the dialog open with the reason
    await settle(pilot)
    assert isinstance(app.screen, PromptDialog)
    app.screen.query_one(Input).value = str(quote)
    await pilot.press("enter")
    await wait_for(lambda: any("Attached site-photo.jpg." in text for _, text in app.shown), pilot)
    await wait_for(lambda: "📎 1" in entry_text(calendar, activity_id), pilot)
    assert calendar.selected_id() == activity_id

    # The form lists it; ctrl+o opens it with the desktop opener.
    await pilot.press("e")
    await wait_for(lambda: isinstance(app.screen, RecordForm), pilot)
    await wait_for(lambda: "Attachments (1)" in side_panel(app), pilot)
    assert "site-photo.jpg" in side_panel(app)
    await pilot.press("ctrl+o")
    await wait_for(lambda: isinstance(app.screen, DocumentsScreen), pilot)
    documents = app.screen
    assert isinstance(documents, DocumentsScreen)
    assert [name for name, _, _ in documents.entries] == ["site-photo.jpg"]
    await pilot.press("o")
    await wait_for(lambda: started.exists() and "site-photo.jpg" in started.read_text(), pilot)
    await pilot.press("escape")
    await wait_for(lambda: isinstance(app.screen, RecordForm), pilot)
    await pilot.press("escape")
    await wait_for(lambda: app.screen is calendar, pilot)

    # The contact's timeline marks the activity.
    await pilot.press("2")
    await wait_for(lambda: app.screen is contacts, pilot)
    contacts.refresh_data()
    detail = contacts.query_one(RecordDetail)
    await wait_for(lambda: "📎 1 meeting: Roof inspection" in str(detail.render()), pilot)

    # Removed from the form: the panel and the calendar no longer show it.
    await pilot.press("4")
    await wait_for(lambda: app.screen is calendar and calendar.selected_id() == activity_id, pilot)
    await pilot.press("e")
    await wait_for(lambda: isinstance(app.screen, RecordForm) and "Attachments (1)" in side_panel(app), pilot)
    await pilot.press("ctrl+o")
    await wait_for(lambda: isinstance(app.screen, DocumentsScreen), pilot)
    await pilot.press("d")
    await wait_for(lambda: isinstance(app.screen, ConfirmDialog), pilot)
    await pilot.press("y")
    await wait_for(lambda: any("removed site-photo.jpg" in text for _, text in app.shown), pilot)
    await pilot.press("escape")
    await wait_for(lambda: isinstance(app.screen, RecordForm), pilot)
    await wait_for(lambda: "Attachments" not in side_panel(app), pilot)
    await pilot.press("ctrl+o")
    await wait_for(lambda: any("Nothing is attached" in text for _, text in app.shown), pilot)
    await pilot.press("escape")
    await wait_for(lambda: app.screen is calendar, pilot)
    calendar.reload(select=activity_id)
    await wait_for(
        lambda: entry_text(calendar, activity_id) and "📎" not in entry_text(calendar, activity_id), pilot
    )


async def test_a_new_activity_form_offers_no_attachments(app: RecordingApp, pilot: Any) -> None:
    await pilot.press("4")
    await wait_for(lambda: isinstance(app.screen, CalendarScreen), pilot)
    await pilot.press("a")
    await wait_for(lambda: isinstance(app.screen, RecordForm), pilot)
    form = app.screen
    assert isinstance(form, RecordForm)
    assert form.check_action("documents", ()) is False
    hints = [str(label.render()) for label in form.query(Label) if "ctrl+s save" in str(label.render())]
    assert hints and not any("ctrl+o" in hint for hint in hints)
