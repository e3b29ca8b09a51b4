"""Record events as triggers in the rule editor (issue 24, item 3): a rule on "a quote is accepted" is written
by keys on the demo, listed with its trigger in words, and its one job comes when a quote of the deal is
accepted."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlmodel import col, select
from textual.widgets import DataTable, Select, Static

from crm_tui.core import models as m
from crm_tui.core.services import sales_documents
from crm_tui.ui.app import CrmApp
from crm_tui.ui.screens.automation import AutomationScreen, RuleForm
from crm_tui.ui.screens.opportunities import OpportunitiesScreen
from tests.ui.helpers import wait_for
from tests.ui.keywalk import settle
from tests.ui.test_automation_ui import run


async def _tab_to(app: CrmApp, pilot: Any, field: str) -> None:
    for _ in range(40):
        if app.focused is not None and app.focused.id == f"f-{field}":
            return
        await pilot.press("tab")
        await settle(pilot)
    raise AssertionError(f"tab never reached {field}")


async def _choose(app: CrmApp, pilot: Any, field: str, typed: str) -> None:
    """Open the field's menu with Enter, type part of the choice, take it with Enter."""
    await _tab_to(app, pilot, field)
    await pilot.press("enter")
    await settle(pilot)
    await pilot.press(*typed)
    await pilot.press("enter")
    await settle(pilot)


async def test_a_rule_on_a_quote_accepted_is_written_by_keys(demo_home: Path) -> None:
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
        assert isinstance(form, RuleForm)
        event_field = form.query_one("#f-record_event", Select)
        assert not event_field.display  # only the event trigger asks for an event
        await _tab_to(app, pilot, "name")
        await pilot.press(*"Order call")
        await _choose(app, pilot, "place", "every deal in sales")
        await _choose(app, pilot, "trigger", "record event")
        await wait_for(lambda: event_field.display, pilot)
        await _choose(app, pilot, "record_event", "quote is acc")
        await _tab_to(app, pilot, "delay")
        await pilot.press(*"1 day")
        await _tab_to(app, pilot, "subject")
        await pilot.press(*"Order the panels")
        assert form.query_one("#f-trigger", Select).value == "event"
        assert event_field.value == "quote_accepted"
        await wait_for(
            lambda: "1 day after a quote is accepted" in str(form.query_one("#form-side").render()), pilot
        )
        await pilot.press("ctrl+s")
        await wait_for(lambda: isinstance(app.screen, AutomationScreen), pilot)
        await wait_for(lambda: table.row_count == 8, pilot)
        [row] = [r for r in screen.rows if r.name == "Order call"]
        assert row.when == "1 day after a quote is accepted" and row.where == "every opportunity in Sales"
        with context.database().read() as session:
            rule = session.scalars(
                select(m.AutomationRule).where(col(m.AutomationRule.name) == "Order call")
            ).one()
            assert (rule.scope, rule.trigger, rule.record_event, rule.delay_value) == (
                "record", "event", "quote_accepted", 1,
            )  # fmt: skip
            deal = session.scalars(
                select(m.Opportunity).where(col(m.Opportunity.pipeline_id) == rule.pipeline_id)
            ).first()
            assert deal is not None and deal.id is not None
        # A quote of one of its deals accepted: one action waits, a day later; accepted again, still one.
        for _ in range(2):
            with context.database().write() as session:
                data = sales_documents.QuoteInput(deal.id, [sales_documents.QuoteItemInput("Panels", 1, 500_000)],
                                                  number="Q-EVENT-1", status="accepted")  # fmt: skip
                found = session.scalars(select(m.Quote).where(col(m.Quote.number) == "Q-EVENT-1")).first()
                if found is None or found.id is None:
                    sales_documents.create_quote(session, data, now=context.clock.now())
                else:
                    sales_documents.update_quote(session, found.id, data, now=context.clock.now())
        await pilot.press("p")
        await wait_for(lambda: screen.view == "pending" and table.row_count >= 1, pilot)
        with context.database().read() as session:
            jobs = session.scalars(
                select(m.AutomationJob).where(col(m.AutomationJob.rule_id) == rule.id)
            ).all()
            assert [(j.record_id, j.due_at - context.clock.now()) for j in jobs] == [
                (deal.id, timedelta(days=1))
            ]

    await run(demo_home, "opportunities", scenario)


async def test_the_deal_screen_shows_a_rule_waiting_for_a_quote_accepted(app: Any, pilot: Any) -> None:
    from crm_tui.core.automation import rules
    from crm_tui.ui.screens.deal import DealScreen

    context = app.context
    with context.database().write() as session:
        data = rules.RuleInput("Order call", "plan_activity", scope="record", trigger="event",
                               record_event="quote_accepted", delay_value=2, delay_unit="days",
                               params={"subject": "Order for {{ deal.title }}"})  # fmt: skip
        rules.create_rule(session, data, now=context.clock.now())
    await pilot.press("3")
    await wait_for(lambda: isinstance(app.screen, OpportunitiesScreen) and app.screen.selected_deal(), pilot)
    await pilot.press("enter")  # the deal screen of the card
    await wait_for(lambda: isinstance(app.screen, DealScreen) and app.screen.story is not None, pilot)
    story = app.screen.story
    seen = " ".join(str(app.screen.query_one("#deal-facts-text", Static).render()).split())
    assert (
        f"on an event Order call: 2 days after a quote is accepted: plan task 'Order for {story.title}'"
        in seen
    )
