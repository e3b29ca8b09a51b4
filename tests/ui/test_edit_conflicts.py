"""Two crm-tui instances on one database: an edit of a record that the other instance changed meanwhile is
refused with both versions of each field that differs, nothing is saved, and a second save writes it over
knowingly; an edit nobody else touched saves as always."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlmodel import Session, select
from textual.widgets import Input, Label

from crm_tui.core import models as m
from crm_tui.core.clock import FixedClock
from crm_tui.core.services import contacts
from crm_tui.ui.app import CrmApp
from crm_tui.ui.screens.contacts import ContactsScreen
from crm_tui.ui.screens.record_form import RecordForm
from crm_tui.ui.widgets.paged_table import PagedTable
from tests.ui.helpers import NOW, make_context, wait_for


async def test_an_edit_of_a_record_changed_meanwhile_is_refused_showing_both_versions(
    demo_home: Path,
) -> None:
    mine = make_context(demo_home, demo=True)
    theirs = make_context(demo_home, demo=True)  # the other instance, on the same database file

    app = CrmApp(mine, run_automations=False)
    async with app.run_test(size=(160, 48)) as pilot:
        table = app.screen.query_one(PagedTable)
        await wait_for(lambda: table.row_count > 0, pilot)
        contact_id = int(table.loaded_rows[0].key)
        await pilot.press("e")
        await wait_for(lambda: isinstance(app.screen, RecordForm), pilot)
        form = app.screen
        original_last = form.query_one("#f-last_name", Input).value
        # Meanwhile the other instance renames the contact and changes the job title.
        theirs.clock = FixedClock(NOW + timedelta(minutes=5))
        with theirs.database().write() as session:
            data = contacts.ContactInput(**{
                **vars(_current(session, contact_id)), "last_name": "Anders", "job_title": "Leitung Einkauf"})  # fmt: skip
            contacts.update_contact(session, contact_id, data, now=theirs.clock.now())
        form.query_one("#f-last_name", Input).value = "Meins"
        await pilot.press("ctrl+s")
        await wait_for(
            lambda: "Someone else changed" in str(form.query_one("#form-error", Label).render()), pilot
        )
        message = str(form.query_one("#form-error", Label).render())
        assert "Last name: now 'Anders', yours 'Meins'" in message
        assert "Job title: now 'Leitung Einkauf'" in message
        assert isinstance(app.screen, RecordForm)
        with mine.database().read() as session:
            assert session.get_one(m.Contact, contact_id).last_name == "Anders"  # nothing of mine was saved
        # Saving again writes mine over theirs, knowingly.
        await pilot.press("ctrl+s")
        await wait_for(lambda: isinstance(app.screen, ContactsScreen), pilot)
        with mine.database().read() as session:
            assert session.get_one(m.Contact, contact_id).last_name == "Meins"
        assert original_last not in ("Anders", "Meins")
    mine.close()
    theirs.close()


def _current(session: Session, contact_id: int) -> contacts.ContactInput:
    c = session.get_one(m.Contact, contact_id)
    return contacts.ContactInput(
        first_name=c.first_name, last_name=c.last_name, emails=contacts.contact_emails(session, contact_id),
        phones=contacts.contact_phones(session, contact_id), job_title=c.job_title, organization_id=c.organization_id,
        owner_id=c.owner_id, street=c.street, postcode=c.postcode, city=c.city, region=c.region, country=c.country,
    )  # fmt: skip


async def test_an_edit_nobody_else_touched_saves(demo_home: Path) -> None:
    context = make_context(demo_home, demo=True)

    app = CrmApp(context, run_automations=False)
    async with app.run_test(size=(160, 48)) as pilot:
        table = app.screen.query_one(PagedTable)
        await wait_for(lambda: table.row_count > 0, pilot)
        contact_id = int(table.loaded_rows[0].key)
        for name in (
            "Erster",
            "Zweiter",
        ):  # twice in a row: my own first save is no conflict for the second
            await pilot.press("e")
            await wait_for(lambda: isinstance(app.screen, RecordForm), pilot)
            context.clock = FixedClock(context.clock.now() + timedelta(minutes=1))
            app.screen.query_one("#f-last_name", Input).value = name
            await pilot.press("ctrl+s")
            await wait_for(lambda: isinstance(app.screen, ContactsScreen), pilot)
            with context.database().read() as session:
                assert (
                    session.scalars(select(m.Contact.last_name).where(m.Contact.id == contact_id)).one()
                    == name
                )
    context.close()


async def test_a_record_added_by_another_instance_appears_without_a_restart(demo_home: Path) -> None:
    mine = make_context(demo_home, demo=True)
    theirs = make_context(demo_home, demo=True)

    app = CrmApp(mine, run_automations=False)
    app.change_check_seconds = 0.1
    async with app.run_test(size=(160, 48)) as pilot:
        table = app.screen.query_one(PagedTable)
        await wait_for(lambda: table.row_count > 0, pilot)
        await pilot.press("slash", *"zuckerberg")
        await wait_for(lambda: table.row_count == 0, pilot)
        await wait_for(lambda: app._change_watch is not None, pilot)  # the app has looked at least once
        with theirs.database().write() as session:
            contacts.create_contact(
                session, contacts.ContactInput(first_name="Zora", last_name="Zuckerberg"), now=NOW
            )
        await wait_for(lambda: table.row_count == 1, pilot, timeout=8)
        assert table.loaded_rows[0].cells[0] == "Zora Zuckerberg"
    mine.close()
    theirs.close()
