"""Team mode end to end: two app instances, each with a home of its own (no shared folder), on one
PostgreSQL database. What one adds the other shows without a restart (PostgreSQL's notices), a document one
attaches the other opens (the bytes live in the database), and an edit of a record the other changed
meanwhile is refused showing both versions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.widgets import Input, Label

from crm_tui.ui.app import CrmApp
from crm_tui.ui.screens.attachments import DocumentsScreen
from crm_tui.ui.screens.contacts import ContactsScreen
from crm_tui.ui.screens.dialogs import PromptDialog
from crm_tui.ui.screens.record_form import RecordForm
from crm_tui.ui.widgets.paged_table import PagedTable
from tests.ui.helpers import make_context, wait_for


async def test_two_instances_on_one_postgresql_database(tmp_path: Path, postgres_urls: Any) -> None:
    url = postgres_urls()
    anna = make_context(tmp_path / "anna", demo=True, db_url=url)  # builds the demo in the shared database
    ben = make_context(tmp_path / "ben", demo=True, db_url=url)
    offer = tmp_path / "Angebot Zuckerberg.pdf"
    offer.write_bytes(b"%PDF-1.4 " + bytes(range(256)) * 8000)  # 2 MiB: three parts in the database

    app_a = CrmApp(anna, run_automations=False, sync_mail=False)
    app_b = CrmApp(ben, run_automations=False, sync_mail=False)
    async with app_a.run_test(size=(160, 48)) as a, app_b.run_test(size=(160, 48)) as b:
        table_a = app_a.screen.query_one(PagedTable)
        table_b = app_b.screen.query_one(PagedTable)
        await wait_for(lambda: table_a.row_count > 0 and table_b.row_count > 0, a)
        await b.press("slash", *"zuckerberg")
        await wait_for(lambda: table_b.row_count == 0, b)
        await b.press("enter")  # back to the list
        # B has started watching: its first look for changes (every 2 s) holds its LISTEN connection.
        await wait_for(
            lambda: app_b._change_watch is not None and app_b._change_watch._connection is not None, b
        )

        # Anna adds a contact; Ben's list shows it within the refresh interval.
        await a.press("n")
        await wait_for(lambda: isinstance(app_a.screen, RecordForm), a)
        app_a.screen.query_one("#f-first_name", Input).value = "Zora"
        app_a.screen.query_one("#f-last_name", Input).value = "Zuckerberg"
        await a.press("ctrl+s")
        await wait_for(lambda: isinstance(app_a.screen, ContactsScreen), a)
        await wait_for(lambda: table_b.row_count == 1, b, timeout=8)
        assert table_b.loaded_rows[0].cells[0] == "Zora Zuckerberg"

        # Anna attaches a file to it; Ben saves it from his instance, with nothing on a shared disk.
        await a.press("slash", *"zuckerberg")
        await wait_for(lambda: table_a.row_count == 1, a)
        await a.press("enter")
        await a.press("A")
        await wait_for(lambda: isinstance(app_a.screen, PromptDialog), a)
        app_a.screen.query_one(Input).value = str(offer)
        await a.press("enter")
        await wait_for(lambda: any("Attached" in n.message for n in app_a._notifications), a)
        await b.press("o")
        await wait_for(lambda: isinstance(app_b.screen, DocumentsScreen), b)
        await b.press("s")
        await wait_for(lambda: isinstance(app_b.screen, PromptDialog), b)
        app_b.screen.query_one(Input).value = str(tmp_path / "ben-downloads")
        await b.press("enter")
        saved = tmp_path / "ben-downloads" / offer.name
        await wait_for(lambda: saved.exists(), b)
        assert saved.read_bytes() == offer.read_bytes()
        assert not (tmp_path / "ben" / "data" / "documents").exists() or not any(
            (tmp_path / "ben" / "data" / "documents").rglob("*")
        ), "nothing went through a folder"
        await b.press("escape")
        await wait_for(lambda: isinstance(app_b.screen, ContactsScreen), b)

        # Both edit the contact; Ben saves first, Anna's save is refused with both versions.
        await a.press("e")
        await wait_for(lambda: isinstance(app_a.screen, RecordForm), a)
        await b.press("e")
        await wait_for(lambda: isinstance(app_b.screen, RecordForm), b)
        app_b.screen.query_one("#f-last_name", Input).value = "Zuckerberg-Lind"
        await b.press("ctrl+s")
        await wait_for(lambda: isinstance(app_b.screen, ContactsScreen), b)
        form = app_a.screen
        form.query_one("#f-last_name", Input).value = "Zucker"
        await a.press("ctrl+s")
        await wait_for(
            lambda: "Someone else changed" in str(form.query_one("#form-error", Label).render()), a
        )
        assert "Last name: now 'Zuckerberg-Lind', yours 'Zucker'" in str(
            form.query_one("#form-error", Label).render()
        )
        await a.press("escape")
    anna.close()
    ben.close()
