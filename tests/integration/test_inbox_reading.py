"""Reading in the inbox (Pilot, on the test Dovecot): only opening a mail (Enter) reads it, the server learns it
at the next sync; archiving inside a view takes the mail out of that view at once; a folder made on the server
shows in the folder list after the next sync, without a restart."""

from __future__ import annotations

from typing import Any

from textual.widgets import OptionList

from crm_tui.ui.app import CrmApp
from crm_tui.ui.screens.inbox import InboxScreen, MessageReader
from crm_tui.ui.screens.pickers import FolderPicker
from crm_tui.ui.widgets.paged_table import PagedTable
from tests.integration.conftest import Mailbox
from tests.integration.test_inbox_triage import customer_mailbox, run, status, subject_row
from tests.integration.test_sync import message
from tests.ui.helpers import make_context, wait_for


def unread(table: PagedTable) -> set[str]:
    """The subjects the list shows as unread (the ● mark)."""
    return {row.cells[3] for row in table.loaded_rows if "●" in row.cells[0]}


def seen_on_server(box: Mailbox) -> set[str]:
    client = box.imap()
    client.select_folder("INBOX", readonly=True)
    uids = client.search(["SEEN"])
    found = client.fetch(uids, ["BODY.PEEK[HEADER.FIELDS (SUBJECT)]"]) if uids else {}
    client.logout()
    return {
        data[b"BODY[HEADER.FIELDS (SUBJECT)]"].decode().strip().removeprefix("Subject: ")
        for data in found.values()
    }


async def test_opening_a_mail_reads_it_and_moving_the_highlight_does_not(mailbox: Mailbox) -> None:
    customer_mailbox(mailbox)
    everything = {"Angebot 1", "Angebot 2", "Angebot 3", "Anfrage 4"}

    async def scenario(app: CrmApp, pilot: Any, table: PagedTable) -> None:
        screen = app.screen
        preview = screen.query_one("#preview")
        assert unread(table) == everything
        # j/k over every mail: each is previewed, none is read.
        for key in ("j", "j", "j", "k", "k"):
            await pilot.press(key)
        await wait_for(lambda: table.loaded_rows[table.cursor_row].cells[3] in str(preview.render()), pilot)
        await app.workers.wait_for_complete()  # the previews' loads done: any read they wrote is written
        assert unread(table) == everything
        # Enter on "Angebot 2": the reader; back in the list it is read, the others are not.
        table.move_cursor(row=subject_row(table, "Angebot 2"))
        await pilot.press("enter")
        await wait_for(lambda: isinstance(app.screen, MessageReader), pilot)
        await wait_for(lambda: "Angebot 2" in str(app.screen.query_one("#reader-text").render()), pilot)
        await pilot.press("q")
        await wait_for(lambda: app.screen is screen, pilot)
        await wait_for(lambda: unread(table) == everything - {"Angebot 2"}, pilot)
        # Opening it again changes nothing; N still makes it unread (and read again).
        await pilot.press("enter", "q")
        await wait_for(lambda: app.screen is screen, pilot)
        await pilot.press("N")
        await wait_for(lambda: "1 message marked unread" in status(app), pilot)
        await wait_for(lambda: unread(table) == everything, pilot)
        await pilot.press("enter")
        await wait_for(lambda: isinstance(app.screen, MessageReader), pilot)
        await pilot.press("q")
        await wait_for(lambda: unread(table) == everything - {"Angebot 2"}, pilot)

    await run(mailbox, scenario)
    assert mailbox.cli("sync") == 0
    assert seen_on_server(mailbox) == {"Angebot 2"}, "only the opened mail is read on the server too"


async def test_archiving_inside_a_view_takes_the_mail_out_of_that_view_at_once(mailbox: Mailbox) -> None:
    customer_mailbox(mailbox)

    async def choose(app: CrmApp, pilot: Any, typed: str) -> None:
        await pilot.press("c")
        await wait_for(lambda: isinstance(app.screen, FolderPicker), pilot)
        await pilot.press(*typed, "enter")
        await wait_for(lambda: isinstance(app.screen, InboxScreen), pilot)

    async def scenario(app: CrmApp, pilot: Any, table: PagedTable) -> None:
        await choose(app, pilot, "unlinked")
        await wait_for(lambda: [r.cells[3] for r in table.loaded_rows] == ["Anfrage 4"], pilot)
        await pilot.press("a")
        await wait_for(lambda: "1 message archived" in status(app), pilot)
        await wait_for(lambda: table.row_count == 0, pilot)
        await choose(app, pilot, "awaiting")
        await wait_for(lambda: table.row_count == 3, pilot)
        assert "Anfrage 4" not in {row.cells[3] for row in table.loaded_rows}, "archived: no reply awaited"
        table.move_cursor(row=subject_row(table, "Angebot 2"))
        await pilot.press("d")
        await wait_for(lambda: "moved to the trash" in status(app), pilot)
        await wait_for(lambda: {r.cells[3] for r in table.loaded_rows} == {"Angebot 1", "Angebot 3"}, pilot)
        # u brings it back into the view; archived again, it stays out after the server has moved it.
        await pilot.press("u")
        await wait_for(lambda: table.row_count == 3, pilot)
        table.move_cursor(row=subject_row(table, "Angebot 2"))
        await pilot.press("a")
        await wait_for(lambda: table.row_count == 2, pilot)
        assert mailbox.cli("sync") == 0
        inbox = app.screen
        assert isinstance(inbox, InboxScreen)
        inbox.reload()
        await wait_for(lambda: "Awaiting my reply: 2 messages" in status(app), pilot)
        assert {row.cells[3] for row in table.loaded_rows} == {"Angebot 1", "Angebot 3"}
        # All mail still holds every mail, archived or not.
        await choose(app, pilot, "all mail")
        await wait_for(lambda: table.row_count == 4, pilot)

    await run(mailbox, scenario)


async def test_a_folder_made_on_the_server_shows_after_the_next_sync(mailbox: Mailbox) -> None:
    mailbox.append("INBOX", message(1, mid="<f1@firma.example>"))

    def folder_names(inbox: Any) -> list[str]:
        listing = inbox.query_one("#folders", OptionList)
        return [str(listing.get_option_at_index(i).prompt).strip() for i in range(listing.option_count)]

    app = CrmApp(make_context(mailbox.home, demo=False), start_mode="inbox")
    async with app.run_test(size=(150, 44)) as pilot:
        inbox = app.screen
        table = inbox.query_one(PagedTable)
        await wait_for(lambda: table.row_count == 1, pilot, timeout=20)
        await wait_for(lambda: "work: 1 new" in str(app.screen.query_one("StatusBar").render()), pilot)
        assert "Projekte" not in folder_names(inbox)
        # An empty folder made in another mail program: no new mail, yet the next sync shows it.
        client = mailbox.imap()
        client.create_folder("Projekte")
        client.logout()
        await pilot.press("ctrl+r")
        await wait_for(lambda: "Projekte" in folder_names(inbox), pilot, timeout=20)
        # Made while another section is in front: there on the way back.
        await pilot.press("2")
        await wait_for(lambda: not isinstance(app.screen, InboxScreen), pilot)
        client = mailbox.imap()
        client.create_folder("Projekte/Dach Nord")
        client.logout()
        state = app.mail_sync.states["work"]
        await pilot.press("ctrl+r")  # (a pass on one message may be over when the key is)
        await wait_for(lambda: not state.running and not state.again, pilot, timeout=20)
        await pilot.press("1")
        await wait_for(lambda: app.screen is inbox, pilot)
        await wait_for(lambda: "Projekte/Dach Nord" in folder_names(inbox), pilot, timeout=10)
        # c offers it too, and it lists its (no) mail.
        await pilot.press("c")
        await wait_for(lambda: isinstance(app.screen, FolderPicker), pilot)
        await pilot.press(*"work/Projekte/Dach", "enter")
        await wait_for(lambda: isinstance(app.screen, InboxScreen), pilot)
        await wait_for(lambda: table.row_count == 0, pilot)
        assert "work/Projekte/Dach Nord" in str(app.screen.query_one("StatusBar").render())
