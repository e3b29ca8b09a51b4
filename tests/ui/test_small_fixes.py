"""The smaller defects found while using the app for issue 20 (its item 7), each as a user met it on the demo."""

from __future__ import annotations

from typing import Any

from textual.widgets import OptionList

from crm_tui.app import CrmApp
from crm_tui.screens.settings import SettingsScreen
from tests.ui.helpers import wait_for
from tests.ui.keywalk import settle


def notes(app: CrmApp) -> list[tuple[str, str]]:
    return [(str(n.severity), n.message) for n in app._notifications]


async def test_j_and_k_move_in_the_settings_section_list_like_the_arrows(app: CrmApp, pilot: Any) -> None:
    await pilot.press("5")
    screen = app.screen
    assert isinstance(screen, SettingsScreen)
    sections = screen.query_one("#sections", OptionList)
    sections.focus()
    await settle(pilot)
    await pilot.press("j")
    await wait_for(lambda: screen.section == "pipelines", pilot)
    assert sections.highlighted == 1
    await pilot.press("j", "j")
    await wait_for(lambda: screen.section == "accounts", pilot)
    await pilot.press("k")
    await wait_for(lambda: screen.section == "fields", pilot)
    assert app.focused is sections
