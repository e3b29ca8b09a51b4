"""The README says where a key binding's id (what `[keymap]` in config.toml remaps) is shown: the command
palette names each action's key and id. Before, neither `?` nor the palette showed any id."""

from __future__ import annotations

from typing import Any

from textual.command import CommandPalette
from textual.widgets import OptionList

from tests.ui.helpers import wait_for


def _palette_lines(app: Any) -> list[str]:
    if not isinstance(app.screen, CommandPalette):
        return []
    options = app.screen.query_one(OptionList)
    return [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]


async def test_the_palette_shows_each_actions_key_and_binding_id(app: Any, pilot: Any) -> None:
    await pilot.press("2")
    await pilot.press("ctrl+p")
    await wait_for(lambda: isinstance(app.screen, CommandPalette), pilot)
    await pilot.press(*"search")
    await wait_for(
        lambda: any("id: records.search" in line for line in _palette_lines(app)), pilot, timeout=10
    )
    [line] = [line for line in _palette_lines(app) if "id: records.search" in line]
    assert "key: /" in line
    await pilot.press("escape")
    await wait_for(lambda: not isinstance(app.screen, CommandPalette), pilot)
    await pilot.press("ctrl+p")
    await wait_for(lambda: isinstance(app.screen, CommandPalette), pilot)
    await pilot.press(*"calendar")
    await wait_for(lambda: any("id: app.calendar" in line for line in _palette_lines(app)), pilot, timeout=10)
    [line] = [line for line in _palette_lines(app) if "id: app.calendar" in line]
    assert line == "Go to Calendar\nswitch to the Calendar mode (key: 4, id: app.calendar)"
