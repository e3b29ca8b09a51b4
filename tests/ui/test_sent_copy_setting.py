"""Settings > Mail accounts (issue 24, item 2): an account's form says where its sent copies go: the server's
Sent folder (the default), one of its synced folders, or no copy; the choice is saved and the list shows it."""

from __future__ import annotations

from typing import Any

from textual.widgets import DataTable, Select

from crm_tui.core.services import mail_accounts, mailbox
from crm_tui.ui.screens.record_form import RecordForm
from crm_tui.ui.screens.settings import SettingsScreen
from tests.ui.helpers import wait_for
from tests.ui.keywalk import RecordingApp
from tests.utils.ids import id_of


def sent_copies_column(screen: SettingsScreen) -> list[str]:
    table = screen.query_one("#settings-table", DataTable)
    return [str(table.get_row_at(index)[-1]) for index in range(table.row_count)]


async def open_account_form(app: RecordingApp, pilot: Any) -> tuple[SettingsScreen, RecordForm]:
    await pilot.press("5")
    await wait_for(lambda: isinstance(app.screen, SettingsScreen), pilot)
    screen = app.screen
    assert isinstance(screen, SettingsScreen)
    screen.show_section("accounts")
    await wait_for(lambda: screen.section == "accounts" and screen.selected_id() is not None, pilot)
    screen.query_one("#settings-table", DataTable).focus()
    await pilot.press("e")
    await wait_for(lambda: isinstance(app.screen, RecordForm), pilot)
    form = app.screen
    assert isinstance(form, RecordForm)
    return screen, form


async def test_the_account_form_chooses_where_sent_copies_go(app: RecordingApp, pilot: Any) -> None:
    with app.context.database().write() as session:  # folders a sync found on the server
        [account] = mail_accounts.list_accounts(session)
        for name in ("INBOX", "Gesendet/Angebote"):
            mailbox.ensure_folder(session, id_of(account), name, None)
    screen, form = await open_account_form(app, pilot)
    await wait_for(lambda: sent_copies_column(screen) == ["the server's Sent folder"], pilot)
    choice = form.query_one("#f-sent_copy", Select)
    assert choice.value == "server", "the \\Sent folder by default"
    offered = {value for _, value in choice._options}
    assert offered >= {"server", "none", "folder:INBOX", "folder:Gesendet/Angebote"}
    folder = "Gesendet/Angebote"

    choice.value = f"folder:{folder}"
    await pilot.press("ctrl+s")
    await wait_for(lambda: app.screen is screen, pilot)
    await wait_for(lambda: sent_copies_column(screen) == [folder], pilot)
    with app.context.database().read() as session:
        [account] = mail_accounts.list_accounts(session)
        assert (account.sent_copy, account.sent_copy_folder) == ("folder", folder)

    _, form = await open_account_form(app, pilot)
    choice = form.query_one("#f-sent_copy", Select)
    assert choice.value == f"folder:{folder}", "the form opens with the folder chosen"
    choice.value = "none"
    await pilot.press("ctrl+s")
    await wait_for(lambda: app.screen is screen, pilot)
    await wait_for(lambda: sent_copies_column(screen) == ["no copy saved"], pilot)
    with app.context.database().read() as session:
        [account] = mail_accounts.list_accounts(session)
        assert (account.sent_copy, account.sent_copy_folder) == ("none", None)
