"""What each main screen looks like on the demo data with a pinned date (SVG snapshots, pytest-textual-snapshot).

Update deliberately after a visual change: ./scripts/test tests/ui/test_snapshots.py --snapshot-update
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable, OptionList, Static

from crm_tui.ui.app import CrmApp
from crm_tui.ui.screens.calendar import CalendarScreen
from crm_tui.ui.widgets.paged_table import PagedTable
from crm_tui.ui.widgets.record_detail import RecordDetail
from tests.ui.helpers import make_context, wait_for

SIZE = (150, 44)


def _loaded(app: CrmApp) -> bool:
    if any(worker.is_running for worker in app.workers):
        return False
    screen = app.screen
    tables = list(screen.query(PagedTable))
    if tables and (tables[0].row_count == 0 or tables[0]._loading):
        return False
    previews = list(screen.query("#preview").results(Static))
    if previews and not str(previews[0].render()).strip():
        return False
    details = list(screen.query(RecordDetail))
    if details and "Timeline" not in str(details[0].render()):
        return False
    lists = list(screen.query(".column-list, .day-list").results(OptionList))
    if screen.query(".column-list, .day-list") and not any(lst.option_count for lst in lists):
        return False
    if isinstance(screen, CalendarScreen) and screen.view == "month":
        return bool(screen.query("#month")) and screen.query_one("#month", DataTable).row_count == 6
    if isinstance(screen, CalendarScreen) and not lists:
        return False
    return not (screen.query("#settings-table") and screen.query_one("#settings-table").row_count == 0)


def _snapshot(snap_compare: Any, demo_home: Path, mode: str, *keys: str) -> bool:
    # No mail sync: the demo account's "not connected" would reach the status bar at a moment of its own.
    app = CrmApp(make_context(demo_home, demo=True), start_mode=mode, run_automations=False, sync_mail=False)

    async def settle(pilot: Any) -> None:
        await wait_for(lambda: _loaded(app), pilot)
        if keys:
            await pilot.press(*keys)
            await pilot.pause(0.3)
            await wait_for(lambda: _loaded(app), pilot)
        await pilot.pause(0.3)

    return snap_compare(app, terminal_size=SIZE, run_before=settle)


@pytest.mark.parametrize(
    "mode, keys",
    [
        ("contacts", ()),
        ("contacts", ("right_square_bracket", "right_square_bracket")),
        ("opportunities", ()),
        ("opportunities", ("f",)),
        ("calendar", ()),
        ("calendar", ("m",)),
        ("inbox", ()),
        ("settings", ()),
    ],
    ids=["contacts", "leads", "board", "forecast", "calendar-week", "calendar-month", "inbox", "settings"],
)
def test_main_screens(snap_compare: Any, demo_home: Path, mode: str, keys: tuple[str, ...]) -> None:
    assert _snapshot(snap_compare, demo_home, mode, *keys)
