"""The app shell: modes, status bar, search, the palette, key remapping, errors as notifications."""

from __future__ import annotations

import gc
import time
from pathlib import Path
from typing import Any

from textual.widgets import Input

from crm_tui.core.models import Contact
from crm_tui.ui.app import CrmApp
from crm_tui.ui.widgets.paged_table import PagedTable
from crm_tui.ui.widgets.record_detail import RecordDetail
from crm_tui.ui.widgets.status_bar import StatusBar
from tests.ui.helpers import NOW, make_context, wait_for
from tests.ui.keywalk import settle


def status_text(app: CrmApp) -> str:
    return str(app.screen.query_one(StatusBar).render())


async def test_modes_have_one_key_each_and_the_contacts_list_pages_and_searches(demo_home: Path) -> None:
    context = make_context(demo_home, demo=True)
    app = CrmApp(context)
    async with app.run_test(size=(150, 44)) as pilot:
        table = app.screen.query_one(PagedTable)
        await wait_for(lambda: table.row_count > 0, pilot)
        assert table.row_count == 100, "one page, not the whole table"
        await wait_for(lambda: "162 contacts" in status_text(app), pilot)  # the count follows the page
        assert "Anna Berg" in status_text(app)
        assert "{" not in status_text(app)
        table.move_cursor(row=95)
        await wait_for(lambda: table.row_count == 162, pilot)
        table.move_cursor(row=0)
        await pilot.press("j", "j")
        assert table.cursor_row == 2
        await pilot.press("k")
        assert table.cursor_row == 1
        detail = app.screen.query_one(RecordDetail)
        await wait_for(lambda: "Timeline" in str(detail.render()), pilot)
        assert "Related" in str(detail.render())
        email = table.loaded_rows[1].cells[1]
        await pilot.press("slash", *email)
        await wait_for(lambda: table.row_count == 1, pilot)
        await wait_for(lambda: "1 contact matching" in status_text(app), pilot)
        await pilot.press("escape")
        await wait_for(lambda: table.row_count == 100, pilot)
        for key, mode in (
            ("1", "inbox"),
            ("3", "opportunities"),
            ("4", "calendar"),
            ("5", "settings"),
            ("2", "contacts"),
        ):
            await pilot.press(key)
            assert app.current_mode == mode
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for title in (
            "Go to Inbox",
            "Go to Calendar",
            "Search",
            "New",
            "Edit",
            "Convert lead",
            "Comment",
            "Attach file",
        ):
            assert title in titles, title
        assert len(titles) == len(set(titles)), "each command once"
        await wait_for(lambda: not any(w.is_running for w in app.workers), pilot)
        app.update_status()
        assert "working" not in status_text(app), "no background work is shown when none runs"
        bar = app.screen.query_one(StatusBar)
        bar.show(user="Anna Berg", database="demo database", mode="contacts", busy=True)
        assert "working" in str(bar.render()), "background work shows in the status bar"
    context.close()


async def test_hostile_names_are_shown_as_placeholders(tmp_path: Path) -> None:
    context = make_context(tmp_path, demo=False)
    with context.database().write() as session:
        # Straight into the table, as data from mail or an import could arrive: the display must still guard.
        session.add(
            Contact(
                first_name="Mallory",
                last_name="\x1b]0;owned\x07[bold]X[/bold]\u202e",
                created_at=NOW,
                updated_at=NOW,
            )
        )
    app = CrmApp(context)
    async with app.run_test(size=(150, 44)) as pilot:
        table = app.screen.query_one(PagedTable)
        await wait_for(lambda: table.row_count == 1, pilot)
        cell = str(table.get_row_at(0)[0])
        assert "\x1b" not in cell and "\u202e" not in cell and "␛" in cell
        detail = app.screen.query_one(RecordDetail)
        await wait_for(lambda: "Mallory" in str(detail.render()), pilot)
        assert "[bold]X[/bold]" in str(detail.render()), "brackets from data are text, not markup"
    context.close()


async def test_a_failing_worker_becomes_a_notification(tmp_path: Path) -> None:
    context = make_context(tmp_path, demo=False)
    context.database()
    app = CrmApp(context)
    async with app.run_test(size=(150, 44)) as pilot:
        assert await settle(pilot), "the app has started: nothing loads any more"
        context.database().dispose()
        (tmp_path / "data" / "crm.sqlite3").write_bytes(b"not a database any more" * 500)
        for suffix in ("-wal", "-shm"):
            (tmp_path / "data" / f"crm.sqlite3{suffix}").unlink(missing_ok=True)
        await pilot.press("slash", "x")
        await wait_for(lambda: bool(app._notifications), pilot)
        notes = [n.message for n in app._notifications]
        assert any("damaged or not a crm-tui database" in note for note in notes), notes
    context.close()


async def test_a_key_remapped_in_the_config_file_works(tmp_path: Path) -> None:
    config = tmp_path / "config" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('[keymap]\n"records.search" = "s"\n"app.calendar" = "f4"\n')

    context = make_context(tmp_path, demo=False)
    assert context.settings.keymap == {"records.search": "s", "app.calendar": "f4"}
    app = CrmApp(context)
    async with app.run_test(size=(150, 44)) as pilot:
        assert await settle(pilot), "the app has started: nothing loads any more"
        await pilot.press("s")
        assert isinstance(app.focused, Input), "the remapped key runs the action"
        await pilot.press("escape")
        await pilot.press("f4")
        assert app.current_mode == "calendar"
        search = next(c for c in app.get_system_commands(app.screen) if c.title == "Today")
        assert "key: t" in search.help
    context.close()


async def test_the_app_collects_garbage_only_between_keystrokes_and_gives_the_collector_back(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """The UI process's collector policy (ui/collector.py): no full collection while the user types, one once
    the user pauses, at most one per FULL_EVERY, and the collector handed back when the app exits."""
    collected: list[int] = []
    real_collect = gc.collect

    def recording_collect(generation: int = 2) -> int:
        collected.append(generation)
        return real_collect(generation)

    context = make_context(tmp_path, demo=False)
    app = CrmApp(context, manage_gc=True, sync_mail=False)
    try:
        async with app.run_test(size=(150, 44)) as pilot:
            await wait_for(lambda: not gc.isenabled(), pilot, timeout=5)
            monkeypatch.setattr(gc, "collect", recording_collect)
            collector = app.collector
            collector.key_pressed()  # typing right now
            [object() for _ in range(10)]  # something to collect
            collector.collect()
            assert 2 not in collected, "no full collection while the user types"
            collector._last_key_at = time.monotonic() - 5  # idle
            for _ in range(6):  # the older generation has grown
                real_collect(1)
            collector.collect()
            assert collected[-1] == 2, "a full collection once the user pauses"
            collector.collect()
            assert collected.count(2) == 1, "at most one full collection per FULL_EVERY"
            monkeypatch.setattr(gc, "collect", real_collect)
        assert gc.isenabled(), "the collector is handed back when the app exits"
    finally:
        if not gc.isenabled():
            gc.unfreeze()
            gc.enable()
        context.close()
