"""Followers and groups by keys on the demo (issue 24, item 2): w on a board card and on the deal screen adds a
user to the deal's followers and takes them off; g in Settings > Users shows the groups, where n creates one,
a adds a user, e renames it and D deletes it; the rule editor offers 'the team' and 'group: Service', and a
rule mailing the team is saved so."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlmodel import col, select
from textual.widgets import DataTable, OptionList, Select, Static

from crm_tui.core import models as m
from crm_tui.core.services import team
from crm_tui.ui.app import CrmApp
from crm_tui.ui.screens.automation import AutomationScreen, RuleForm
from crm_tui.ui.screens.deal import DealScreen
from crm_tui.ui.screens.dialogs import ChoiceDialog, ConfirmDialog, PromptDialog
from crm_tui.ui.screens.opportunities import OpportunitiesScreen
from crm_tui.ui.screens.settings import SettingsScreen
from tests.ui.helpers import wait_for
from tests.ui.keywalk import settle
from tests.ui.test_automation_events_ui import _choose, _tab_to
from tests.ui.test_automation_ui import run


def _notes(app: CrmApp) -> list[str]:
    return [n.message for n in app._notifications]


async def _pick(app: CrmApp, pilot: Any, label_part: str) -> None:
    """In the open choice dialog, the option whose label holds ``label_part``, taken with Enter."""
    await wait_for(lambda: isinstance(app.screen, ChoiceDialog), pilot)
    options = app.screen.query_one(OptionList)
    labels = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
    target = next(i for i, label in enumerate(labels) if label_part in label)
    if options.highlighted is None:
        await pilot.press("down")
    while options.highlighted is not None and options.highlighted < target:
        await pilot.press("down")
    await pilot.press("enter")
    await settle(pilot)


def _followers(app: CrmApp, deal_id: int) -> list[str]:
    with app.context.database().read() as session:
        return [f.name for f in team.followers(session, deal_id)]


async def test_w_follows_a_deal_on_its_card_and_on_its_screen(app: CrmApp, pilot: Any) -> None:
    await pilot.press("3")
    await wait_for(lambda: isinstance(app.screen, OpportunitiesScreen), pilot)
    board = app.screen
    assert isinstance(board, OpportunitiesScreen)
    await wait_for(lambda: board.selected_deal() is not None, pilot)
    deal_id = board.selected_deal()
    assert deal_id is not None and _followers(app, deal_id) == []
    await pilot.press("w")
    await _pick(app, pilot, "Jonas Weber")
    await wait_for(lambda: _followers(app, deal_id) == ["Jonas Weber"], pilot)
    await wait_for(lambda: any("Jonas Weber follows the deal" in n for n in _notes(app)), pilot)
    # On the deal's screen the picker marks him; Enter on him takes him off, Lukas on.
    await pilot.press("enter")
    await wait_for(lambda: isinstance(app.screen, DealScreen), pilot)
    facts = app.screen.query_one("#deal-facts-text", Static)
    await wait_for(lambda: "Followers: Jonas Weber" in str(facts.render()), pilot)
    await pilot.press("w")
    await wait_for(lambda: isinstance(app.screen, ChoiceDialog), pilot)
    options = app.screen.query_one(OptionList)
    labels = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
    assert "✓ Jonas Weber" in labels and "  Lukas Brandt" in labels
    await _pick(app, pilot, "Jonas Weber")
    await wait_for(lambda: _followers(app, deal_id) == [], pilot)
    await wait_for(lambda: any("Jonas Weber no longer follows the deal" in n for n in _notes(app)), pilot)
    await wait_for(lambda: isinstance(app.screen, DealScreen), pilot)
    await pilot.press("w")
    await _pick(app, pilot, "Lukas Brandt")
    await wait_for(lambda: _followers(app, deal_id) == ["Lukas Brandt"], pilot)
    await wait_for(lambda: "Followers: Lukas Brandt" in str(facts.render()), pilot)


async def test_a_group_is_created_filled_renamed_and_deleted_in_settings_users(
    app: CrmApp, pilot: Any
) -> None:
    await pilot.press("5")
    await wait_for(lambda: isinstance(app.screen, SettingsScreen), pilot)
    settings = app.screen
    assert isinstance(settings, SettingsScreen)
    table = settings.query_one("#settings-table", DataTable)
    await pilot.press("g")
    await wait_for(lambda: settings.section == "groups" and table.row_count == 1, pilot)
    assert [str(c) for c in table.get_row_at(0)] == ["Service", "Jonas Weber, Lukas Brandt"]
    await pilot.press("n")
    await wait_for(lambda: isinstance(app.screen, PromptDialog), pilot)
    await pilot.press(*"Install team", "enter")
    await wait_for(lambda: isinstance(app.screen, SettingsScreen) and table.row_count == 2, pilot)
    assert str(table.get_row_at(0)[0]) == "Install team"
    assert "no members yet" in str(table.get_row_at(0)[1])
    table.move_cursor(row=0)
    await pilot.press("a")
    await _pick(app, pilot, "Mia Schulz")
    await wait_for(lambda: str(table.get_row_at(0)[1]) == "Mia Schulz", pilot)
    await pilot.press("a")
    await _pick(app, pilot, "Anna Berg")
    await wait_for(lambda: str(table.get_row_at(0)[1]) == "Anna Berg, Mia Schulz", pilot)
    await pilot.press("x")
    await _pick(app, pilot, "Mia Schulz")
    await wait_for(lambda: str(table.get_row_at(0)[1]) == "Anna Berg", pilot)
    await pilot.press("e")
    await wait_for(lambda: isinstance(app.screen, PromptDialog), pilot)
    await pilot.press("ctrl+u", *"Installers", "enter")
    await wait_for(
        lambda: isinstance(app.screen, SettingsScreen) and str(table.get_row_at(0)[0]) == "Installers", pilot
    )
    await pilot.press("D")
    await wait_for(lambda: isinstance(app.screen, ConfirmDialog), pilot)
    await pilot.press("y")
    await wait_for(lambda: isinstance(app.screen, SettingsScreen) and table.row_count == 1, pilot)
    assert str(table.get_row_at(0)[0]) == "Service"
    await pilot.press("g")  # back to the users
    await wait_for(lambda: settings.section == "users" and table.row_count == 5, pilot)


async def test_the_rule_editor_offers_the_team_and_the_groups(demo_home: Path) -> None:
    async def scenario(app: CrmApp, pilot: Any, context: Any) -> None:
        await wait_for(lambda: isinstance(app.screen, OpportunitiesScreen), pilot)
        await pilot.press("R")
        await wait_for(lambda: isinstance(app.screen, AutomationScreen), pilot)
        await wait_for(lambda: app.screen.query_one(DataTable).row_count == 7, pilot)
        await pilot.press("n")
        await wait_for(lambda: isinstance(app.screen, RuleForm), pilot)
        form = app.screen
        assert isinstance(form, RuleForm)
        to = form.query_one("#f-to", Select)
        offered = [str(label) for label, _ in to._options]
        assert "the team (owner and followers)" in offered and "group: Service" in offered
        await _tab_to(app, pilot, "name")
        await pilot.press(*"Won: tell the team")
        await _choose(app, pilot, "place", "won")
        await _choose(app, pilot, "action", "send an email")
        await wait_for(lambda: to.display, pilot)
        await _choose(app, pilot, "template", "a")
        await _choose(app, pilot, "to", "the team")
        assert to.value == "team"
        await wait_for(
            lambda: "to the team (owner and followers)" in str(form.query_one("#form-side").render()), pilot
        )
        await pilot.press("ctrl+s")
        await wait_for(lambda: isinstance(app.screen, AutomationScreen), pilot)
        with context.database().read() as session:
            rule = session.scalars(
                select(m.AutomationRule).where(col(m.AutomationRule.name) == "Won: tell the team")
            ).one()
            assert rule.action == "send_email" and '"to": "team"' in rule.params

    await run(demo_home, "opportunities", scenario)
