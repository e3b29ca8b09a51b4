"""Reading on the demo (its mail has no copy on a server: it never syncs): only Enter reads a mail, and a mail
archived inside a view leaves that view at once; the same on the test Dovecot: tests/integration/test_inbox_reading.py."""

from __future__ import annotations

from typing import Any

from crm_tui.ui.app import CrmApp
from crm_tui.ui.screens.inbox import InboxScreen, MessageReader
from crm_tui.ui.screens.pickers import FolderPicker
from crm_tui.ui.widgets.paged_table import PAGE_SIZE, PagedTable
from crm_tui.ui.widgets.status_bar import StatusBar
from tests.ui.helpers import wait_for
from tests.ui.keywalk import settle
from tests.ui.test_real_use import burst


def unread(table: PagedTable) -> set[str]:
    return {row.key for row in table.loaded_rows if "●" in row.cells[0]}


def keys(table: PagedTable) -> set[str]:
    return {row.key for row in table.loaded_rows}


async def test_on_the_demo_enter_reads_a_mail_and_archiving_in_a_view_takes_it_out(
    app: CrmApp, pilot: Any
) -> None:
    await pilot.press("1")
    await wait_for(lambda: isinstance(app.screen, InboxScreen), pilot)
    screen = app.screen
    table = screen.query_one(PagedTable)
    await wait_for(lambda: table.row_count > 0, pilot)
    all_mail = keys(table)
    assert len(all_mail) < PAGE_SIZE, "the demo's mail fits one page: the list holds all of it"

    # The demo's mail is all read: N makes two unread (the first and the third row).
    first, third = table.loaded_rows[0].key, table.loaded_rows[2].key
    await pilot.press("N", "j", "j", "N")
    await wait_for(lambda: unread(table) == {first, third}, pilot)
    before = unread(table)
    # The highlight over the rows: each previewed, none read.
    for key in ["k"] * 2 + ["j"] * 6 + ["k"] * 6:
        await pilot.press(key)
    assert await settle(pilot), "the previews are loaded"
    assert unread(table) == before
    # Enter on an unread mail reads it.
    chosen = sorted(before)[0]
    table.select_key(chosen)
    await pilot.press("enter")
    await wait_for(lambda: isinstance(app.screen, MessageReader), pilot)
    await pilot.press("q")
    await wait_for(lambda: app.screen is screen, pilot)
    await wait_for(lambda: unread(table) == before - {chosen}, pilot)

    async def view(typed: str) -> None:
        await pilot.press("c")
        await wait_for(lambda: isinstance(app.screen, FolderPicker), pilot)
        await pilot.press(*typed, "enter")
        await wait_for(lambda: app.screen is screen and keys(table) != all_mail, pilot)

    await view("awaiting")
    awaiting = keys(table)
    assert len(awaiting) > 2
    # a: archived, out of "Awaiting my reply" at once; u: back in it.
    chosen = sorted(awaiting)[0]
    table.select_key(chosen)
    await pilot.press("a")
    await wait_for(lambda: keys(table) == awaiting - {chosen}, pilot)
    assert "1 message archived" in str(screen.query_one(StatusBar).render())
    # The app's change watch sees its own write as a change and reloads the list: the line stays.
    app.check_for_changes()
    await wait_for(lambda: not table._loading, pilot)  # the list read again
    await settle(pilot)  # and its count handled
    assert "1 message archived" in str(screen.query_one(StatusBar).render())
    await pilot.press("u")
    await wait_for(lambda: keys(table) == awaiting, pilot)
    # Deleted: no longer awaiting a reply, still in All mail.
    table.select_key(chosen)
    await pilot.press("d")
    await wait_for(lambda: keys(table) == awaiting - {chosen}, pilot)
    await pilot.press("c")
    await wait_for(lambda: isinstance(app.screen, FolderPicker), pilot)
    await pilot.press(*"all mail", "enter")
    await wait_for(lambda: keys(table) == all_mail, pilot)


async def test_u_typed_while_a_step_is_still_being_written_undoes_that_step(app: CrmApp, pilot: Any) -> None:
    """a, then d u typed at once (the walk): the u waited for nothing and undid the archive, or was lost; it
    undoes the delete, and a second u then the archive."""
    await pilot.press("1")
    await wait_for(lambda: isinstance(app.screen, InboxScreen), pilot)
    screen = app.screen
    table = screen.query_one(PagedTable)
    await wait_for(lambda: table.row_count > 0, pilot)
    all_mail = keys(table)
    await pilot.press("c")
    await wait_for(lambda: isinstance(app.screen, FolderPicker), pilot)
    await pilot.press(*"awaiting", "enter")
    await wait_for(lambda: app.screen is screen and keys(table) != all_mail, pilot)
    awaiting = keys(table)
    archived, deleted = sorted(awaiting)[:2]
    table.select_key(archived)
    await pilot.press("a")
    await wait_for(lambda: keys(table) == awaiting - {archived}, pilot)
    table.select_key(deleted)
    await burst(app, ["d", "u"])  # as a terminal delivers them: u queued before d is written
    await wait_for(
        lambda: "undone: 1 message moved to the trash" in str(screen.query_one(StatusBar).render()), pilot
    )
    await wait_for(lambda: keys(table) == awaiting - {archived}, pilot)
    await pilot.press("u")
    await wait_for(lambda: keys(table) == awaiting, pilot)
