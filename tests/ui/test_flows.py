"""The day's CRM work, driven through the keyboard with Pilot on the demo database (pinned date)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlmodel import col, select
from textual.widgets import Input, OptionList, Select

from crm_tui.core import models as m
from crm_tui.ui.app import CrmApp
from crm_tui.ui.screens.calendar import CalendarScreen
from crm_tui.ui.screens.contacts import ContactsScreen
from crm_tui.ui.screens.dialogs import ChoiceDialog, ConfirmDialog, PromptDialog
from crm_tui.ui.screens.opportunities import OpportunitiesScreen
from crm_tui.ui.screens.record_form import RecordForm
from crm_tui.ui.widgets.paged_table import PagedTable
from crm_tui.ui.widgets.record_detail import RecordDetail
from tests.ui.helpers import make_context, wait_for
from tests.ui.keywalk import settle


async def fill(pilot: Any, app: CrmApp, field: str, text: str) -> None:
    widget = app.screen.query_one(f"#f-{field}", Input)
    widget.focus()
    widget.value = ""
    await pilot.press(*text) if text else None
    await wait_for(lambda: widget.value == text, pilot)


async def test_create_a_contact_in_the_form_and_find_it_by_search(demo_home: Path) -> None:
    context = make_context(demo_home, demo=True)
    app = CrmApp(context)
    async with app.run_test(size=(150, 44)) as pilot:
        table = app.screen.query_one(PagedTable)
        await wait_for(lambda: table.row_count > 0, pilot)
        await pilot.press("n")
        assert isinstance(app.screen, RecordForm)
        await fill(pilot, app, "first_name", "Quirin")
        await fill(pilot, app, "last_name", "Zettelmann")
        await fill(pilot, app, "emails", "quirin@zettel.example, q.z@example.net")
        await fill(pilot, app, "organization_id", "Nordwind")
        await pilot.press("right")  # accept the completion offered for the organization
        await pilot.press("ctrl+s")
        await wait_for(lambda: not isinstance(app.screen, RecordForm), pilot)
        records = app.screen
        assert isinstance(records, ContactsScreen)
        await pilot.press("slash", *"zettelmann")
        await wait_for(lambda: table.row_count == 1, pilot)
        assert table.loaded_rows[0].cells[:2] == ("Quirin Zettelmann", "quirin@zettel.example")
        assert table.loaded_rows[0].cells[2].startswith("Nordwind")
    with context.database().read() as session:
        saved = session.exec(select(m.Contact).where(m.Contact.last_name == "Zettelmann")).one()
        assert saved.owner_id == context.me_id(), "I own what I create"
    context.close()


async def test_a_bad_form_value_shows_its_message_and_saves_nothing(demo_home: Path) -> None:
    context = make_context(demo_home, demo=True)
    with context.database().read() as session:
        before = len(session.exec(select(m.Contact)).all())
    app = CrmApp(context)
    async with app.run_test(size=(150, 44)) as pilot:
        await wait_for(lambda: app.screen.query_one(PagedTable).row_count > 0, pilot)
        await pilot.press("n")
        await wait_for(lambda: isinstance(app.screen, RecordForm), pilot)
        form = app.screen
        await fill(pilot, app, "last_name", "Broken")
        await fill(pilot, app, "emails", "not-an-address")
        await fill(pilot, app, "phones", "call me maybe")
        await pilot.press("ctrl+s")
        await wait_for(lambda: "nothing was saved" in str(form.query_one("#form-error").render()), pilot)
        assert app.screen is form, "the form stays open"
        assert "is not a valid e-mail address" in str(form.query_one("#error-f-emails").render())
        assert "is not a phone number" in str(form.query_one("#error-f-phones").render())
        assert "nothing was saved" in str(form.query_one("#form-error").render())
        assert app.focused is form.query_one("#f-emails"), "the first bad field gets the focus"
        await pilot.press("escape")
    with context.database().read() as session:
        assert len(session.exec(select(m.Contact)).all()) == before
    context.close()


async def test_convert_a_lead_and_find_the_new_contact_organization_and_opportunity(demo_home: Path) -> None:
    context = make_context(demo_home, demo=True)
    with context.database().read() as session:
        lead = session.exec(
            select(m.Lead)
            .where(m.Lead.status == "qualified", col(m.Lead.organization_id).is_(None))
            .order_by(col(m.Lead.id))
        ).first()
        assert lead is not None
        lead_id, title, company = lead.id, lead.title, lead.company_name
    app = CrmApp(context)
    async with app.run_test(size=(150, 44)) as pilot:
        screen = app.screen
        assert isinstance(screen, ContactsScreen)
        await wait_for(lambda: screen.table.row_count > 0, pilot)
        await pilot.press("right_square_bracket", "right_square_bracket")
        assert screen.kind.title == "Leads"
        await wait_for(lambda: any(r.key == str(lead_id) for r in screen.table.loaded_rows), pilot)
        screen.table.select_key(str(lead_id))
        await pilot.press("C")
        await wait_for(lambda: isinstance(app.screen, ChoiceDialog), pilot)
        await pilot.press("enter")  # the first pipeline
        await wait_for(lambda: isinstance(app.screen, ConfirmDialog), pilot)
        plan = str(app.screen.query_one(".dialog-body").render())
        assert "Contact: create" in plan and "Opportunity: create" in plan
        await pilot.press("y")
        await wait_for(lambda: isinstance(app.screen, RecordForm), pilot)
        assert app.current_mode == "opportunities", "the new opportunity opens"
        assert app.screen.query_one("#f-title", Input).value == title
        await pilot.press("escape")
    with context.database().read() as session:
        converted = session.get_one(m.Lead, lead_id)
        assert converted.status == "converted"
        contact = session.get(m.Contact, converted.converted_contact_id)
        org = session.get(m.Organization, converted.converted_organization_id)
        deal = session.get(m.Opportunity, converted.converted_opportunity_id)
        assert contact is not None and deal is not None and deal.title == title
        assert org is not None and org.name == company
    context.close()


async def test_move_a_deal_and_see_it_in_the_next_column_and_its_timeline(demo_home: Path) -> None:
    context = make_context(demo_home, demo=True)
    app = CrmApp(context, start_mode="opportunities")
    async with app.run_test(size=(160, 48)) as pilot:
        board = app.screen
        assert isinstance(board, OpportunitiesScreen)
        await wait_for(lambda: board.columns and board.selected_deal() is not None, pilot)
        deal_id = board.selected_deal()
        first, second = board.columns[0], board.columns[1]
        await pilot.press("greater_than_sign")
        await wait_for(
            lambda: (
                any(card.id == deal_id for card in board.columns[1].cards)
                and (board.columns[0].count, board.columns[1].count) == (first.count - 1, second.count + 1)
            ),
            pilot,
        )
        assert board.selected_deal() == deal_id, "the deal stays selected in its new column"
        detail = board.query_one(RecordDetail)
        await wait_for(lambda: f"stage {first.name} → {second.name}" in str(detail.render()), pilot)
    with context.database().read() as session:
        assert session.get_one(m.Opportunity, deal_id).stage_id == second.stage_id
    context.close()


async def test_moving_to_a_lost_stage_asks_for_the_reason(demo_home: Path) -> None:
    context = make_context(demo_home, demo=True)
    app = CrmApp(context, start_mode="opportunities")
    async with app.run_test(size=(160, 48)) as pilot:
        board = app.screen
        assert isinstance(board, OpportunitiesScreen)
        await wait_for(lambda: board.columns and board.selected_deal() is not None, pilot)
        won = next(i for i, c in enumerate(board.columns) if c.kind == "won")
        for _ in range(10):  # as a user does: press until the Won column is the active one
            if board.selected_column() is board.columns[won]:
                break
            await pilot.press("l" if board._active_column < won else "h")
            await settle(pilot)
        await wait_for(
            lambda: board.selected_column() is board.columns[won] and board.selected_deal() is not None,
            pilot,
        )
        deal_id = board.selected_deal()
        await pilot.press("greater_than_sign")
        await wait_for(lambda: isinstance(app.screen, PromptDialog), pilot)
        await pilot.press(*"budget frozen", "enter")
        await wait_for(lambda: any(card.id == deal_id for card in board.columns[won + 1].cards), pilot)
    with context.database().read() as session:
        assert session.get_one(m.Opportunity, deal_id).lost_reason == "budget frozen"
    context.close()


async def test_create_an_activity_see_it_in_the_week_cancel_it_and_see_it_marked(demo_home: Path) -> None:
    context = make_context(demo_home, demo=True)
    app = CrmApp(context, start_mode="calendar")
    async with app.run_test(size=(170, 48)) as pilot:
        calendar = app.screen
        assert isinstance(calendar, CalendarScreen)
        await wait_for(lambda: calendar.query(".day-list"), pilot)
        await pilot.press("a")
        await wait_for(lambda: isinstance(app.screen, RecordForm), pilot)
        form = app.screen
        side = str(form.query_one("#form-side").render())
        assert "Sunday 22 November 2026" in side, (
            "the chosen day's other activities are shown beside the form"
        )
        await fill(pilot, app, "subject", "Site visit Kiesel")
        await fill(pilot, app, "start_at", "2026-11-24 10:30")
        # the panel follows the date
        await wait_for(
            lambda: "Tuesday 24 November 2026" in str(form.query_one("#form-side").render()), pilot
        )
        await fill(pilot, app, "end_at", "2026-11-24 11:30")
        await fill(pilot, app, "contact_id", "contact:1")
        form.query_one("#f-type", Select).value = "meeting"
        await pilot.press("ctrl+s")
        await wait_for(lambda: not isinstance(app.screen, RecordForm), pilot)

        def shown() -> str:
            return "\n".join(
                str(option_list.get_option_at_index(i).prompt)
                for option_list in calendar.query(".day-list").results(OptionList)
                for i in range(option_list.option_count)
            )

        await wait_for(lambda: "10:30 ◉ Site visit Kiesel" in shown(), pilot)
        await wait_for(lambda: calendar.selected_id() is not None, pilot)
        await pilot.press("X")
        await wait_for(lambda: "Site visit Kiesel (cancelled)" in shown(), pilot)
        await pilot.press("H")
        await wait_for(lambda: "Site visit Kiesel" not in shown(), pilot)
    with context.database().read() as session:
        activity = session.exec(select(m.Activity).where(m.Activity.subject == "Site visit Kiesel")).one()
        assert activity.status == "cancelled" and activity.type == "meeting"
    context.close()
