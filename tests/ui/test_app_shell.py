"""The app shell, driven with Textual's Pilot on a real SQLite file."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from textual.widgets import DataTable, Input, Static

from crm_tui.app import CrmApp
from crm_tui.context import AppContext
from crm_tui.core.clock import FixedClock
from crm_tui.core.models import Contact
from crm_tui.paths import resolve_paths
from crm_tui.settings import Settings
from crm_tui.widgets.status_bar import StatusBar

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def make_context(home: Path, *, demo: bool) -> AppContext:
    return AppContext(
        paths=resolve_paths(home),
        settings=Settings(),
        clock=FixedClock(NOW),
        zone=ZoneInfo("Europe/Berlin"),
        demo=demo,
    )


async def wait_for(condition, pilot, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.05)


def status_text(app: CrmApp) -> str:
    return str(app.screen.query_one(StatusBar).render())


def test_contacts_search_paging_and_keys(tmp_path: Path) -> None:
    async def scenario() -> None:
        context = make_context(tmp_path, demo=True)
        app = CrmApp(context)
        async with app.run_test(size=(140, 40)) as pilot:
            table = app.screen.query_one(DataTable)
            await wait_for(lambda: table.row_count > 0, pilot)
            assert table.row_count >= 150, "the whole demo list is reachable (first page 200)"
            assert "contacts" in status_text(app) and "Anna Berg" in status_text(app)
            await pilot.press("j", "j")
            assert table.cursor_row == 2
            await pilot.press("k")
            assert table.cursor_row == 1
            detail = str(app.screen.query_one("#contact-detail", Static).render())
            assert "@" in detail, "the detail pane shows the highlighted contact"
            await pilot.press("slash")
            assert isinstance(app.focused, Input)
            first_email = detail.split("✉ ", 1)[1].split()[0]
            await pilot.press(*first_email)
            await wait_for(lambda: table.row_count == 1, pilot)
            assert "1 contacts matching" in status_text(app)
            await pilot.press("escape")
            await wait_for(lambda: table.row_count >= 150, pilot)
        context.close()

    asyncio.run(scenario())


def test_hostile_names_are_shown_as_placeholders(tmp_path: Path) -> None:
    async def scenario() -> None:
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
        async with app.run_test(size=(140, 40)) as pilot:
            table = app.screen.query_one(DataTable)
            await wait_for(lambda: table.row_count == 1, pilot)
            cell = str(table.get_row_at(0)[0])
            assert "\x1b" not in cell and "\u202e" not in cell and "␛" in cell
            detail = str(app.screen.query_one("#contact-detail", Static).render())
            assert "[bold]X[/bold]" in detail, "brackets from data are text, not markup"
        context.close()

    asyncio.run(scenario())


def test_a_failing_worker_becomes_a_notification(tmp_path: Path) -> None:
    async def scenario() -> None:
        context = make_context(tmp_path, demo=False)
        context.database()
        app = CrmApp(context)
        async with app.run_test(size=(140, 40)) as pilot:
            table = app.screen.query_one(DataTable)
            await pilot.pause(0.2)
            context.database().dispose()
            (tmp_path / "data" / "crm.sqlite3").write_bytes(b"not a database any more" * 500)
            for suffix in ("-wal", "-shm"):
                (tmp_path / "data" / f"crm.sqlite3{suffix}").unlink(missing_ok=True)
            await pilot.press("slash", "x")
            await wait_for(lambda: bool(app._notifications), pilot)
            notes = [n.message for n in app._notifications]
            assert any("damaged or not a crm-tui database" in note for note in notes), notes
            assert table.row_count == 0
        context.close()

    asyncio.run(scenario())


def test_every_screen_action_is_in_the_command_palette_and_keys_can_be_remapped(tmp_path: Path) -> None:
    async def scenario() -> None:
        context = make_context(tmp_path, demo=False)
        context.settings = Settings(keymap={"contacts.search": "s"})
        app = CrmApp(context)
        async with app.run_test(size=(140, 40)) as pilot:
            await pilot.pause(0.2)
            titles = [command.title for command in app.get_system_commands(app.screen)]
            for action in ("Search", "Clear", "Cursor down", "Cursor up", "Keys", "Quit"):
                assert action in titles, titles
            assert len(titles) == len(set(titles)), "each command once"
            await pilot.press("s")
            assert isinstance(app.focused, Input), "the remapped key runs the action"
            await pilot.press("escape")
            assert not isinstance(app.focused, Input)
            search = next(c for c in app.get_system_commands(app.screen) if c.title == "Search")
            assert "key: s" in search.help
            await search.callback()  # type: ignore[misc]
            await pilot.pause()
            assert isinstance(app.focused, Input), "running the palette entry runs the action"
        context.close()

    asyncio.run(scenario())
