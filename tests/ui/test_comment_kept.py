"""A comment written when it cannot be saved (the disk is full) is not lost: the dialog stays open with the
text and the reason, and saves it once there is room. A real full disk: the home on a small tmpfs."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from sqlmodel import select
from textual.widgets import TextArea

from crm_tui.core import models as m
from crm_tui.ui.screens.dialogs import PromptDialog
from crm_tui.ui.widgets.paged_table import PagedTable
from tests.conftest import fill_disk
from tests.ui.helpers import wait_for
from tests.ui.keywalk import SIZE


async def test_a_comment_the_full_disk_refused_stays_in_its_dialog_and_saves_once_there_is_room(
    demo_home: Path, small_disk: Any, make_app: Any
) -> None:
    disk = small_disk(64 * 1024)
    home = disk / "home"
    shutil.copytree(demo_home, home)
    app = make_app(home)
    text = "Rückruf vereinbart: Angebot bis Freitag, Dach Süd zuerst."

    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one(PagedTable)
        await wait_for(lambda: table.row_count > 0, pilot)
        await pilot.press("c")
        await wait_for(lambda: isinstance(app.screen, PromptDialog), pilot)
        dialog = app.screen
        dialog.query_one(TextArea).text = text
        fill_disk(disk)
        await pilot.press("ctrl+s")
        await wait_for(lambda: "Not saved" in str(dialog.query_one("#error").render()), pilot)
        assert app.screen is dialog and dialog.query_one(TextArea).text == text, "the text is kept"
        assert "full" in str(dialog.query_one("#error").render())
        (disk / "filler").unlink()
        await pilot.press("ctrl+s")
        await wait_for(lambda: not isinstance(app.screen, PromptDialog), pilot)
    with app.context.database().read() as session:
        assert session.scalars(select(m.Comment).where(m.Comment.body == text)).first() is not None
