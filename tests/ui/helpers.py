"""Building the app the way the CLI does, on a pinned clock, and waiting for workers in Pilot tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from crm_tui.core.clock import FixedClock
from crm_tui.runtime.context import AppContext
from crm_tui.runtime.paths import resolve_paths
from crm_tui.runtime.settings import Settings, load_settings
from crm_tui.ui.widgets.status_bar import StatusBar

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
ZONE = ZoneInfo("Europe/Berlin")


def make_context(
    home: Path, *, demo: bool, settings: Settings | None = None, db_url: str | None = None
) -> AppContext:
    """The app's context on the pinned clock. Mail written in the app goes out at once here (no
    ``send_delay_seconds``: a pinned clock would hold it for good) unless ``settings`` say otherwise."""
    paths = resolve_paths(home)
    return AppContext(
        paths=paths,
        settings=settings or replace(load_settings(paths.config_file), send_delay_seconds=0),
        clock=FixedClock(NOW),
        zone=ZONE,
        demo=demo,
        db_url=db_url,
    )


async def wait_for(condition: Callable[[], Any], pilot: Any, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time; " + _what_the_user_sees(pilot.app))
        await pilot.pause(0.05)  # the poll's step: the condition decides how long this waits


def _what_the_user_sees(app: Any) -> str:
    """For a failed wait: the screen in front, its status line and the last notifications, so a flake in CI
    says what happened instead."""
    seen = [f"screen: {type(app.screen).__name__}"]
    with contextlib.suppress(Exception):  # not every screen has a status bar
        seen.append(f"status: {app.screen.query_one(StatusBar).render()}")
    shown = getattr(app, "shown", None)
    if shown:
        seen.append(f"last notifications: {shown[-3:]}")
    return "; ".join(seen)


async def open_inbox(app: Any, pilot: Any) -> tuple[Any, Any]:
    """1: the inbox, once its list has rows. Returns (the inbox screen, its list)."""
    from crm_tui.ui.screens.inbox import InboxScreen
    from crm_tui.ui.widgets.paged_table import PagedTable

    await pilot.press("1")
    await wait_for(lambda: isinstance(app.screen, InboxScreen), pilot)
    screen = app.screen
    table = screen.query_one(PagedTable)
    await wait_for(lambda: table.row_count > 0, pilot)
    return screen, table


async def outbox_from_inbox(app: Any, pilot: Any, rows: int) -> tuple[Any, Any]:
    """Once the inbox shows, o: the outbox view once its list has ``rows`` rows. Returns (the view, its list)."""
    from textual.widgets import DataTable

    from crm_tui.ui.screens.inbox import InboxScreen
    from crm_tui.ui.screens.outbox import OutboxScreen

    await wait_for(lambda: isinstance(app.screen, InboxScreen), pilot)
    await pilot.press("o")
    await wait_for(lambda: isinstance(app.screen, OutboxScreen), pilot)
    view = app.screen
    grid = view.query_one(DataTable)
    await wait_for(lambda: grid.row_count == rows, pilot)
    return view, grid


async def new_template_form(app: Any, pilot: Any) -> Any:
    """5 (settings), its templates, n: the new template's form."""
    from crm_tui.ui.screens.settings import SettingsScreen
    from crm_tui.ui.screens.template_form import TemplateForm
    from tests.ui.keywalk import settle

    await pilot.press("5")
    await wait_for(lambda: isinstance(app.screen, SettingsScreen), pilot)
    app.screen.show_section("templates")
    await settle(pilot)
    await pilot.press("n")
    await wait_for(lambda: isinstance(app.screen, TemplateForm), pilot)
    return app.screen


async def pick_view(app: Any, pilot: Any, screen: Any, typed: str) -> None:
    """c, a few letters of a view or folder, Enter: back in the inbox once its list changed."""
    from crm_tui.ui.screens.pickers import FolderPicker
    from crm_tui.ui.widgets.paged_table import PagedTable

    table = screen.query_one(PagedTable)
    before = [row.key for row in table.loaded_rows]
    await pilot.press("c")
    await wait_for(lambda: isinstance(app.screen, FolderPicker), pilot)
    await pilot.press(*typed, "enter")
    await wait_for(lambda: app.screen is screen and [row.key for row in table.loaded_rows] != before, pilot)
