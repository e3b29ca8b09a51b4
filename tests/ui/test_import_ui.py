"""Importing from the app: I on the contacts list asks for a file, shows every row's fate (and the bad ones by
line) before anything is written; Esc writes nothing, y imports."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from textual.widgets import DataTable, Input

from crm_tui.core import models as m
from crm_tui.runtime.context import AppContext
from crm_tui.ui.app import CrmApp
from crm_tui.ui.screens.contacts import ContactsScreen
from crm_tui.ui.screens.dialogs import PromptDialog
from crm_tui.ui.screens.import_preview import ImportPreview
from tests.ui.helpers import make_context, wait_for
from tests.ui.keywalk import settle

CARDS = """BEGIN:VCARD
VERSION:3.0
N:Neumann;Tilda;;;
EMAIL:tilda@neumann.example
END:VCARD
BEGIN:VCARD
VERSION:4.0
FN:Oskar Weiß
EMAIL:oskar@weiss.example
TEL:+49 30 1234
END:VCARD
BEGIN:VCARD
VERSION:3.0
FN:Broken
"""


def contact_counter(context: AppContext) -> Callable[[], int]:
    """A function that counts the contacts in the context's database."""

    def count() -> int:
        with context.database().read() as session:
            return int(session.scalar(select(func.count()).select_from(m.Contact)) or 0)

    return count


async def ask_to_import(app: CrmApp, pilot: Any, path: Path) -> None:
    """I on the contacts, the file's path, Enter."""
    await pilot.press("I")
    await wait_for(lambda: isinstance(app.screen, PromptDialog), pilot)
    app.screen.query_one(Input).value = str(path)
    await pilot.press("enter")


async def test_import_contacts_from_the_app_with_a_preview(demo_home: Path, tmp_path: Path) -> None:
    path = tmp_path / "neu.vcf"
    path.write_text(CARDS, encoding="utf-8")
    context = make_context(demo_home, demo=True)

    count = contact_counter(context)

    app = CrmApp(context, start_mode="contacts", run_automations=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(lambda: isinstance(app.screen, ContactsScreen), pilot)
        before = count()
        for attempt in ("escape", "y"):
            await ask_to_import(app, pilot, path)
            await wait_for(lambda: isinstance(app.screen, ImportPreview), pilot, timeout=20)
            preview = app.screen
            table = preview.query_one(DataTable)
            rows = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
            assert [r[:3] for r in rows] == [
                ["1", "created", "Tilda Neumann"],
                ["6", "created", "Oskar Weiß"],
                ["12", "not imported", "(cannot be read)"],
            ]
            summary = str(preview.query_one("#import-summary").render())
            assert "2 to be created" in summary and "line 12: the card has no END:VCARD" in summary
            assert count() == before  # the preview wrote nothing
            await pilot.press(attempt)
            await wait_for(lambda: isinstance(app.screen, ContactsScreen), pilot)
            if attempt == "escape":
                assert await settle(pilot), "whatever Esc started is over"
                assert count() == before
        await wait_for(lambda: count() == before + 2, pilot, timeout=20)
    context.close()


async def test_the_preview_shows_every_row_of_a_csv_with_an_unclosed_quote(
    demo_home: Path, tmp_path: Path
) -> None:
    """A quote left open swallowed the rows after it: the preview showed one row and no problem. Now each line
    is a row in the preview, the broken one "not imported" with why, and the import keeps the others. A .vcf
    that is no vCard was "0 created"; now it is refused with why."""
    path = tmp_path / "neu.csv"
    path.write_bytes(
        (
            'first_name;last_name;emails\r\nTilda;Neumann;tilda@neumann.example\r\nAnna;"Alt;anna@alt.example\r\n'
            "Oskar;Weiß;oskar@weiss.example\r\nIna;Sommer;ina@sommer.example\r\n"
        ).encode("utf-16")
    )
    context = make_context(demo_home, demo=True)

    count = contact_counter(context)

    app = CrmApp(context, start_mode="contacts", run_automations=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(lambda: isinstance(app.screen, ContactsScreen), pilot)
        before = count()
        await ask_to_import(app, pilot, path)
        await wait_for(lambda: isinstance(app.screen, ImportPreview), pilot, timeout=20)
        table = app.screen.query_one(DataTable)
        rows = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
        assert [r[:3] for r in rows] == [
            ["2", "created", "Tilda Neumann"],
            ["3", "not imported", "(cannot be read)"],
            ["4", "created", "Oskar Weiß"],
            ["5", "created", "Ina Sommer"],
        ]
        assert rows[1][3].startswith('a quote (") opened in this row is never closed')
        summary = str(app.screen.query_one("#import-summary").render())
        assert "3 to be created" in summary and "1 row with problems" in summary
        await pilot.press("y")
        await wait_for(lambda: count() == before + 3, pilot, timeout=20)
        # A .vcf that holds no vCard: said so, no preview of nothing.
        wrong = tmp_path / "wrong.vcf"
        wrong.write_text("first_name,last_name\r\nOlaf,Brand\r\n", encoding="utf-8")
        await wait_for(lambda: isinstance(app.screen, ContactsScreen), pilot)
        await ask_to_import(app, pilot, wrong)
        said = f"{wrong} is not a vCard file: no BEGIN:VCARD in it (a CSV file? name it .csv)"
        await wait_for(lambda: any(n.message == said for n in app._notifications), pilot, timeout=20)
        assert isinstance(app.screen, ContactsScreen) and count() == before + 3
    context.close()
