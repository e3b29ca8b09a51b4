"""The funnel (F on the board) and the forecast's overdue months, on the demo at its pinned date (2026-11-22)."""

from __future__ import annotations

import re
from typing import Any

from textual.command import CommandPalette
from textual.widgets import OptionList, Static

from crm_tui.core.money import format_money
from crm_tui.core.services.funnel import funnel
from crm_tui.ui.screens.funnel import FunnelScreen
from crm_tui.ui.screens.opportunities import OpportunitiesScreen
from tests.ui.helpers import wait_for

MONTH_LINE = re.compile(r"^\s+(\d{4}-\d{2})\s")


def _seen(screen: Any, selector: str) -> str:
    """What a Static on the screen shows, as plain text."""
    return str(screen.query_one(selector, Static).content)


def _rows(text: str) -> list[list[str]]:
    """The funnel's table: one list of cells per stage (the cells stand two or more spaces apart)."""
    lines = text.splitlines()
    headings = ["Stage", "Deals now", "Amount now", "Entered", "To a later stage", "Avg days in stage"]
    assert re.split(r"\s{2,}", lines[0].strip()) == headings
    rows = []
    for line in lines[1:]:
        if not line.strip():
            break
        rows.append(re.split(r"\s{2,}", line.strip()))
    return rows


def _overdue_marks(text: str) -> dict[str, bool]:
    """For each month line of a forecast chart: whether it says overdue (one currency's lines are enough)."""
    marks: dict[str, bool] = {}
    for line in text.splitlines():
        found = MONTH_LINE.match(line)
        if found:
            marks.setdefault(found.group(1), False)
            marks[found.group(1)] |= " overdue " in line
    return marks


async def test_the_funnel_from_the_board_shows_what_each_stage_holds_and_how_deals_go_on(
    app: Any, pilot: Any
) -> None:
    await pilot.press("3")
    await wait_for(lambda: isinstance(app.screen, OpportunitiesScreen) and app.screen.columns, pilot)
    board = app.screen
    assert "F funnel" in str(board.query_one("#board-title", Static).content)
    columns = list(board.columns)
    await pilot.press("F")
    await wait_for(
        lambda: isinstance(app.screen, FunnelScreen) and "Entered" in _seen(app.screen, "#funnel"), pilot
    )
    screen = app.screen
    assert "Funnel: Sales" in _seen(screen, "#funnel-title")
    rows = _rows(_seen(screen, "#funnel"))

    # The same stages as the board's columns (open ones first, Won and Lost at the end), each with the deals
    # and amount its column counts.
    assert len(rows) == len(columns)
    for row, column in zip(rows, columns, strict=True):
        label, deals_now, amount, entered, onward, days = row
        assert label.startswith(column.name), (label, column.name)
        assert int(deals_now) == column.count
        expected = " · ".join(format_money(cents, cur) for cur, cents in column.amounts.items()) or "—"
        assert amount == expected
        assert int(entered) >= column.count, "a deal in a stage entered it"
        if column.kind == "open":
            found = re.fullmatch(r"(\d+)% \((\d+) of (\d+)\)", onward)
            assert found is not None, onward
            share, converted, of = found.groups()
            assert int(of) == int(entered)
            assert int(share) == round(100 * int(converted) / int(of))
            assert float(days) >= 0
        else:
            assert (onward, days) == ("—", "—"), "won and lost are ends: no conversion, no days"
    assert [c.kind for c in columns][-2:] == ["won", "lost"]

    # The numbers are the funnel's of the demo at the app's clock (tests/core/test_funnel.py checks those
    # against a pipeline computed by hand).
    with app.context.database().read() as session:
        computed = funnel(session, board.pipeline_id, now=app.context.clock.now())
    assert [(int(r[3]), r[4].split("%")[0], r[5]) for r in rows] == [
        (
            stage.entered,
            "—" if stage.conversion is None else str(round(stage.conversion * 100)),
            "—" if stage.average_days is None else f"{stage.average_days:.1f}",
        )
        for stage in computed.stages
    ]
    assert any(stage.converted for stage in computed.stages), "the demo's deals went on from stage to stage"

    # Beside it, the pipeline's forecast: October is past (overdue), November and later are not.
    marks = _overdue_marks(_seen(screen, "#funnel-forecast"))
    assert marks.get("2026-10") is True, marks
    assert not any(marked for month, marked in marks.items() if month >= "2026-11"), marks

    # p: the next pipeline's funnel; q: back to the board.
    await pilot.press("p")
    await wait_for(lambda: "Funnel: Service contracts" in _seen(screen, "#funnel-title"), pilot)
    await wait_for(lambda: _rows(_seen(screen, "#funnel"))[0][0].startswith("Inquiry"), pilot)
    await pilot.press("q")
    await wait_for(lambda: app.screen is board, pilot)


async def test_the_forecast_marks_the_months_already_past_overdue(app: Any, pilot: Any) -> None:
    await pilot.press("3")
    await wait_for(lambda: isinstance(app.screen, OpportunitiesScreen) and app.screen.columns, pilot)
    board = app.screen
    await pilot.press("f")
    await wait_for(lambda: "Forecast" in _seen(board, "#forecast"), pilot)
    text = _seen(board, "#forecast")
    marks = _overdue_marks(text)
    assert marks.get("2026-10") is True, text
    assert marks.get("2026-11") is False, "the current month is not overdue yet"
    assert not any(marked for month, marked in marks.items() if month > "2026-11"), marks
    assert "overdue: the month is past and its deals are still open" in text


async def test_the_palette_offers_the_funnel_on_the_board(app: Any, pilot: Any) -> None:
    await pilot.press("3")
    await wait_for(lambda: isinstance(app.screen, OpportunitiesScreen) and app.screen.columns, pilot)
    await pilot.press("ctrl+p")
    await wait_for(lambda: isinstance(app.screen, CommandPalette), pilot)
    await pilot.press(*"funnel")

    def offered() -> list[str]:
        if not isinstance(app.screen, CommandPalette):
            return []
        options = app.screen.query_one(OptionList)
        return [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]

    await wait_for(lambda: any("id: board.funnel" in line for line in offered()), pilot)
    [line] = [line for line in offered() if "id: board.funnel" in line]
    assert line.startswith("Funnel\n") and "key: F" in line
    await pilot.press("enter")
    await wait_for(
        lambda: isinstance(app.screen, FunnelScreen) and "Entered" in _seen(app.screen, "#funnel"), pilot
    )
