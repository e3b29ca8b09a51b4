"""A record form saves in a worker, never on the UI thread: while the save runs the form stays open with what
was typed (Esc waits, a second ctrl+s starts no second save), and once it is done the form closes and says
what was saved, also when something was opened over the form meanwhile (then it closes when it is back in front)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from textual.widgets import Input

from crm_tui.ui.screens.contacts import ContactsScreen
from crm_tui.ui.screens.dialogs import ConfirmDialog
from crm_tui.ui.screens.record_form import RecordForm
from crm_tui.ui.widgets.paged_table import PagedTable
from tests.ui.helpers import wait_for


def _hold_saves(form: RecordForm) -> tuple[threading.Event, list[threading.Thread]]:
    """Make the form's save wait for the test (it records the thread each save runs on)."""
    release, threads = threading.Event(), []
    inner = form.spec.save

    def held(values: dict[str, str]) -> int:
        threads.append(threading.current_thread())
        assert release.wait(10), "the test releases the save"
        return inner(values)

    form.spec.save = held
    return release, threads


async def test_a_form_stays_open_while_its_save_runs_and_closes_once_saved(
    make_app: Any, demo_home: Path
) -> None:
    app = make_app(demo_home)
    async with app.run_test(size=(160, 48)) as pilot:
        table = app.screen.query_one(PagedTable)
        await wait_for(lambda: table.row_count > 0, pilot)
        await pilot.press("n")
        await wait_for(lambda: isinstance(app.screen, RecordForm), pilot)
        form = app.screen
        release, threads = _hold_saves(form)
        form.query_one("#f-first_name", Input).value = "Lena"
        form.query_one("#f-last_name", Input).value = "Vogel"
        await pilot.press("ctrl+s")
        await wait_for(lambda: len(threads) == 1, pilot)
        assert threads[0] is not threading.main_thread(), "the save runs in a worker"
        await pilot.press("ctrl+s", "escape")  # a second save and Esc wait for the one under way
        # No time: until the keys are handled (the save is held on purpose, so the app never settles).
        await pilot.pause()
        assert app.screen is form and form.query_one("#f-last_name", Input).value == "Vogel"
        over = ConfirmDialog("Something else", "opened over the form while it saves", "OK")
        app.push_screen(over)
        await wait_for(lambda: app.screen is over, pilot)
        release.set()
        await wait_for(lambda: form._saved_id is not None, pilot)
        assert app.screen is over and form in app.screen_stack, (
            "the save closes the form, not what is over it"
        )
        await pilot.press("escape")
        await wait_for(
            lambda: any("Saved contact “Lena Vogel”" in n.message for n in app._notifications), pilot
        )
        await wait_for(lambda: isinstance(app.screen, ContactsScreen), pilot)
        assert len(threads) == 1, "one save"
