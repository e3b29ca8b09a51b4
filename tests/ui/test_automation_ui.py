"""Automation in the app, through the keyboard: a stage move shows what will fire (one key confirms) and fires
it; the rules screen creates (with validation), disables and deletes rules, saying how many pending actions
each change touches; after a week off the app catches up at start and says so."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlmodel import col, select
from textual.widgets import DataTable, Input, Select

from crm_tui.core import models as m
from crm_tui.core.clock import FixedClock
from crm_tui.ui.app import CrmApp
from crm_tui.ui.screens.automation import AutomationScreen, RuleForm
from crm_tui.ui.screens.dialogs import ConfirmDialog
from crm_tui.ui.screens.opportunities import OpportunitiesScreen
from tests.ui.helpers import NOW, make_context, wait_for
from tests.ui.keywalk import settle


async def run(demo_home: Path, mode: str, scenario: Any, *, days_later: int = 0) -> list[str]:
    context = make_context(demo_home, demo=True)
    context.clock = FixedClock(NOW + timedelta(days=days_later))
    notes: list[str] = []
    app = CrmApp(context, start_mode=mode)
    original = app.notify

    def notify(message: str, *args: Any, **kwargs: Any) -> None:
        notes.append(f"{kwargs.get('title') or ''}|{message}")
        original(message, *args, **kwargs)

    app.notify = notify  # type: ignore[method-assign]  # the test records what the app says, then says it
    async with app.run_test(size=(160, 48)) as pilot:
        await scenario(app, pilot, context)
    context.close()
    return notes


async def _to_column(board: OpportunitiesScreen, pilot: Any, name: str) -> None:
    await wait_for(lambda: board.columns and board.selected_deal() is not None, pilot)
    column = next(i for i, c in enumerate(board.columns) if c.name == name)
    for _ in range(12):
        if board.selected_column() is board.columns[column]:
            break
        await pilot.press("l" if board._active_column < column else "h")
        await settle(pilot)
    await wait_for(lambda: board.selected_column() is board.columns[column] and board.selected_deal(), pilot)


async def test_moving_a_deal_to_won_previews_then_fires_its_rules(demo_home: Path) -> None:
    async def scenario(app: CrmApp, pilot: Any, context: Any) -> None:
        board = app.screen
        assert isinstance(board, OpportunitiesScreen)
        await _to_column(board, pilot, "Contract approval")
        deal_id = board.selected_deal()
        await pilot.press("greater_than_sign")
        await wait_for(lambda: isinstance(app.screen, ConfirmDialog), pilot)
        dialog = app.screen
        assert isinstance(dialog, ConfirmDialog)
        lines = [" ".join(line.split()) for line in str(dialog._body).splitlines()]
        assert (
            "at once Won equipment deal to installation: copy to Installation / To schedule (on entering the stage)"
            in lines
        )
        assert any(line.startswith("2027-05-22 09:00 Repeat business after 6 months") for line in lines)
        # The call planned at contract approval is completed by the move.
        assert any(line.startswith("completed call: Contract approval: call") for line in lines)
        await pilot.press("escape")  # nothing moves
        await wait_for(lambda: isinstance(app.screen, OpportunitiesScreen), pilot)
        with context.database().read() as session:
            column = board.selected_column()
            assert column is not None
            assert session.get_one(m.Opportunity, deal_id).stage_id == column.stage_id
        await pilot.press("greater_than_sign")
        await wait_for(lambda: isinstance(app.screen, ConfirmDialog), pilot)
        await pilot.press("y")

        def copied() -> bool:
            with context.database().read() as session:
                return (
                    session.scalars(
                        select(m.Opportunity).where(m.Opportunity.copied_from_id == deal_id)
                    ).first()
                    is not None
                )

        await wait_for(copied, pilot)
        with context.database().read() as session:
            stage = session.get_one(m.Stage, session.get_one(m.Opportunity, deal_id).stage_id)
            assert stage.name == "Won"
            call = session.scalars(
                select(m.Activity).where(
                    m.Activity.opportunity_id == deal_id,
                    col(m.Activity.subject).startswith("Contract approval"),
                )
            ).one()
            assert call.status == "done"  # completed when the deal left contract approval
            assert session.scalars(
                select(m.Document).where(
                    m.Document.record_id == deal_id, m.Document.record_type == "opportunity"
                )
            ).first()

    await run(demo_home, "opportunities", scenario)


async def test_rules_are_created_validated_disabled_and_deleted(demo_home: Path) -> None:
    async def scenario(app: CrmApp, pilot: Any, context: Any) -> None:
        await wait_for(lambda: isinstance(app.screen, OpportunitiesScreen), pilot)
        await pilot.press("R")
        await wait_for(lambda: isinstance(app.screen, AutomationScreen), pilot)
        screen = app.screen
        assert isinstance(screen, AutomationScreen)
        table = screen.query_one(DataTable)
        await wait_for(lambda: table.row_count == 7, pilot)
        await pilot.press("n")
        await wait_for(lambda: isinstance(app.screen, RuleForm), pilot)
        form = app.screen
        # Only the fields of the chosen action show.
        await wait_for(lambda: not form.query_one("#f-template", Select).display, pilot)
        assert form.query_one("#f-subject", Input).display
        form.query_one("#f-name", Input).value = "Welcome call"
        form.query_one("#f-place", Select).value = "status:lead:new"
        form.query_one("#f-delay", Input).value = "2 weeks"
        form.query_one("#f-action", Select).value = "plan_activity"
        form.query_one("#f-subject", Input).value = "Call {{ lead.title"
        await pilot.press("ctrl+s")
        await wait_for(lambda: "unknown unit" in str(form.query_one("#error-f-delay").render()), pilot)
        form.query_one("#f-delay", Input).value = "2 days"
        await pilot.press("ctrl+s")
        await wait_for(lambda: "line 1" in str(form.query_one("#error-f-subject").render()), pilot)
        form.query_one("#f-subject", Input).value = "Call {{ lead.title }}"
        form.query_one("#f-action", Select).value = "send_email"
        await wait_for(lambda: form.query_one("#f-template", Select).display, pilot)
        assert not form.query_one("#f-subject", Input).display
        form.query_one("#f-action", Select).value = "plan_activity"
        await wait_for(lambda: form.query_one("#f-subject", Input).display, pilot)
        await pilot.press("ctrl+s")
        await wait_for(lambda: isinstance(app.screen, AutomationScreen), pilot)
        await wait_for(lambda: table.row_count == 8, pilot)
        with context.database().read() as session:
            rule = session.scalars(
                select(m.AutomationRule).where(m.AutomationRule.name == "Welcome call")
            ).one()
            assert (rule.entity, rule.scope, rule.status, rule.delay_value, rule.delay_unit) == (
                "lead",
                "status",
                "new",
                2,
                "days",
            )
        # Disable the documents reminder: its one pending action is cancelled, and the app says so.
        row = next(i for i, r in enumerate(screen.rows) if r.name == "Documents reminder after 4 days")
        table.move_cursor(row=row)
        await pilot.press("space")
        await wait_for(lambda: any(not r.enabled for r in screen.rows), pilot)
        row = next(i for i, r in enumerate(screen.rows) if r.name == "Welcome call")
        table.move_cursor(row=row)
        await pilot.press("D")
        await wait_for(lambda: isinstance(app.screen, ConfirmDialog), pilot)
        await pilot.press("y")
        await wait_for(lambda: table.row_count == 7, pilot)
        await pilot.press("tab")
        await wait_for(lambda: screen.view == "pending" and table.row_count == 0, pilot)
        await pilot.press("tab")
        await wait_for(lambda: screen.view == "log" and table.row_count >= 1, pilot)

    notes = await run(demo_home, "opportunities", scenario)
    assert any("Documents reminder after 4 days' disabled: 1 pending action cancelled" in n for n in notes)
    assert any("Rule deleted; 0 pending actions dropped." in n for n in notes)


async def test_after_a_week_off_the_app_catches_up_and_says_so(demo_home: Path) -> None:
    async def scenario(app: CrmApp, pilot: Any, context: Any) -> None:
        def fired() -> bool:
            with context.database().read() as session:
                return not session.scalars(
                    select(m.AutomationJob).where(m.AutomationJob.state == "pending")
                ).first()

        await wait_for(fired, pilot)
        await wait_for(lambda: any(n.title == "Caught up after a break" for n in app._notifications), pilot)

    notes = await run(demo_home, "contacts", scenario, days_later=7)
    assert any(n.startswith("Caught up after a break|") and "fired late" in n for n in notes), notes
