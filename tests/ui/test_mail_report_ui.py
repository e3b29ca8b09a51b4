"""The sent-mail report by keys, on the demo (pinned at 2026-11-22) with a sent history added: r in the
outbox and the palette's "Sent-mail report" open it; the numbers; Enter on one lists the recipients behind it
(Esc back to the numbers); [ and ] step a month, p types a period, u picks the user; x writes the rows as CSV
to the path typed (0600), and an existing file is refused with the dialog kept open."""

from __future__ import annotations

import csv
import io
import stat
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from textual.command import CommandPalette
from textual.widgets import DataTable, Input, Label, OptionList

from crm_tui.core.db import open_database, sqlite_url
from crm_tui.ui.screens.dialogs import ChoiceDialog, PromptDialog
from crm_tui.ui.screens.mail_report import SentReportScreen
from crm_tui.ui.screens.outbox import OutboxScreen
from tests.conftest import DEMO_NOW
from tests.ui.helpers import wait_for
from tests.ui.keywalk import SIZE, RecordingApp
from tests.utils.sent_history import add_sent_history


@pytest.fixture
def app(make_app: Callable[..., RecordingApp], demo_home: Path) -> RecordingApp:
    db = open_database(sqlite_url(demo_home / "data" / "demo.sqlite3"))
    add_sent_history(db, datetime.fromisoformat(DEMO_NOW))
    db.dispose()
    return make_app(demo_home)


@pytest.fixture
async def pilot(app: RecordingApp) -> AsyncIterator[Any]:
    async with app.run_test(size=SIZE) as driver:
        yield driver


def _counts(screen: SentReportScreen) -> dict[str, str]:
    table = screen.query_one("#mail-report-counts", DataTable)
    return {str(table.get_row_at(i)[0]): str(table.get_row_at(i)[1]) for i in range(table.row_count)}


def _listed(screen: SentReportScreen) -> list[tuple[str, ...]]:
    table = screen.query_one("#mail-report-rows", DataTable)
    return [tuple(str(cell) for cell in table.get_row_at(i))[1:] for i in range(table.row_count)]


def _title(screen: SentReportScreen) -> str:
    return str(screen.query_one("#mail-report-title", Label).content)


NOVEMBER = {"sent": "3", "failed": "1", "refused": "1", "bounced": "1", "replied": "1"}


async def test_the_report_by_keys(app: RecordingApp, pilot: Any, tmp_path: Path) -> None:
    await pilot.press("1", "o")
    await wait_for(lambda: isinstance(app.screen, OutboxScreen), pilot)
    await pilot.press("r")
    await wait_for(
        lambda: isinstance(app.screen, SentReportScreen) and _counts(app.screen) == NOVEMBER, pilot
    )
    report = app.screen
    assert isinstance(report, SentReportScreen)
    assert "2026-11-01 to 2026-11-22" in _title(report)
    assert [row[0] for row in _listed(report)] == [
        "lea@kunde.example",
        "max@kunde.example",
        "ok@kunde.example",
    ]

    await pilot.press("j", "j", "j", "enter")  # bounced
    await wait_for(
        lambda: _listed(report) == [("max@kunde.example", "Angebot Dach", "550 No such user here")], pilot
    )
    assert report.query_one("#mail-report-rows", DataTable).has_focus
    await pilot.press("escape", "k", "enter")  # back to the numbers, then refused
    await wait_for(
        lambda: _listed(report) == [("gone@kunde.example", "Termin", "550 5.1.1 no such user")], pilot
    )
    await pilot.press("escape", "j", "j", "enter")  # replied
    await wait_for(lambda: [r[0] for r in _listed(report)] == ["lea@kunde.example"], pilot)
    await pilot.press("escape")

    await pilot.press("left_square_bracket")  # October: nothing
    await wait_for(
        lambda: "2026-10-01 to 2026-10-31" in _title(report) and _counts(report)["sent"] == "0", pilot
    )
    await pilot.press("right_square_bracket")  # the whole of November
    await wait_for(
        lambda: "2026-11-01 to 2026-11-30" in _title(report) and _counts(report) == NOVEMBER, pilot
    )

    await pilot.press("p")
    await wait_for(lambda: isinstance(app.screen, PromptDialog), pilot)
    app.screen.query_one(Input).value = "2026-11-22 2026-11-22"
    await pilot.press("enter")
    await wait_for(
        lambda: "2026-11-22 to 2026-11-22" in _title(report) and _counts(report)["sent"] == "0", pilot
    )
    await pilot.press("p")
    await wait_for(lambda: isinstance(app.screen, PromptDialog), pilot)
    app.screen.query_one(Input).value = "2026-11-01 2026-11-30"
    await pilot.press("enter")
    await wait_for(lambda: _counts(report) == NOVEMBER, pilot)

    await pilot.press("u")  # the users with a mail account: the demo's one, Anna
    await wait_for(lambda: isinstance(app.screen, ChoiceDialog), pilot)
    await pilot.press("enter")
    await wait_for(lambda: app.screen is report and _counts(report) == NOVEMBER, pilot)

    # x: the rows as CSV, to the path typed
    target = tmp_path / "report.csv"
    await pilot.press("x")
    await wait_for(lambda: isinstance(app.screen, PromptDialog), pilot)
    app.screen.query_one(Input).value = str(target)
    await pilot.press("enter")
    await wait_for(lambda: app.screen is report and target.exists(), pilot)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    rows = list(csv.reader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert rows[0] == ["outcome", "at", "recipient", "subject", "detail", "outbox_item", "message_id"]
    assert [row[0] for row in rows[1:]] == ["sent", "sent", "sent", "failed", "refused", "bounced", "replied"]
    assert rows[6][2:5] == ["max@kunde.example", "Angebot Dach", "550 No such user here"]
    await wait_for(lambda: any(f"Wrote 7 rows to {target}" in said for _, said in app.shown), pilot)
    # the same path again: refused, the dialog stays with the reason
    await pilot.press("x")
    await wait_for(lambda: isinstance(app.screen, PromptDialog), pilot)
    dialog = app.screen
    dialog.query_one(Input).value = str(target)
    await pilot.press("enter")
    await wait_for(lambda: "already exists" in str(dialog.query_one("#error", Label).content), pilot)
    await pilot.press("escape")
    await wait_for(lambda: app.screen is report, pilot)

    await pilot.press("q")
    await wait_for(lambda: isinstance(app.screen, OutboxScreen), pilot)
    assert not [said for severity, said in app.shown if severity == "error"]


async def test_the_palette_opens_it_anywhere(app: RecordingApp, pilot: Any) -> None:
    await pilot.press("2")
    await pilot.press("ctrl+p")
    await wait_for(lambda: isinstance(app.screen, CommandPalette), pilot)
    await pilot.press(*"sent-mail report")

    def offered() -> list[str]:
        if not isinstance(app.screen, CommandPalette):
            return []
        options = app.screen.query_one(OptionList)
        return [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]

    await wait_for(lambda: offered() and "Sent-mail report" in offered()[0], pilot)
    await pilot.press("enter")
    await wait_for(
        lambda: isinstance(app.screen, SentReportScreen) and _counts(app.screen) == NOVEMBER, pilot
    )
