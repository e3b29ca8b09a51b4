"""Imported records have an owner (issue 21 follow-up): a row that names none is owned by the current user
("me": settings' me, else the first user), as a record made in the app is; a row naming one keeps it; a merged
record keeps its own. The command line and the app's import (I on a list) alike."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import select
from textual.widgets import Input

from crm_tui.cli.main import main
from crm_tui.core import models as m
from crm_tui.core.db import open_database, sqlite_url
from crm_tui.core.services import users
from crm_tui.ui.app import CrmApp
from crm_tui.ui.screens.contacts import ContactsScreen
from crm_tui.ui.screens.dialogs import PromptDialog
from crm_tui.ui.screens.import_preview import ImportPreview
from tests.conftest import NOW
from tests.ui.helpers import make_context, wait_for


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


_Owned = TypeVar("_Owned", m.Contact, m.Organization)


def _owners(home: Path, model: type[_Owned]) -> dict[str, str | None]:
    """Each record's name (a contact's last name, else its name) with its owner's email."""
    db = open_database(sqlite_url(home / "data" / "crm.sqlite3"))
    with db.read() as s:
        found: dict[str, str | None] = {}
        for record in s.scalars(select(model)):
            owner = s.get(m.User, record.owner_id) if record.owner_id else None
            found[getattr(record, "last_name", None) or record.name] = owner.email if owner else None
    db.dispose()
    return found


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A home with two users: Anna (the first: me) and Ben."""
    home = tmp_path / "home"
    db = open_database(sqlite_url(home / "data" / "crm.sqlite3"))
    with db.write() as s:
        users.create_user(s, users.UserInput(name="Anna Berg", email="anna@crm.example"), now=NOW)
        users.create_user(s, users.UserInput(name="Ben Kurz", email="ben@crm.example"), now=NOW)
    db.dispose()
    return home


def test_imported_rows_that_name_no_owner_are_mine(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = tmp_path / "first.csv"
    first.write_text("first_name,last_name,emails,owner\nOlga,Alt,olga@alt.example,ben@crm.example\n")
    assert cli(capsys, "--home", str(home), "import", "contacts", str(first))[0] == 0
    people = tmp_path / "people.csv"
    people.write_text(
        "first_name,last_name,emails,owner\n"
        "Tilda,Neumann,tilda@neumann.example,\n"
        "Ina,Sommer,ina@sommer.example,ben@crm.example\n"
        "Olga,Alt,olga@alt.example,\n"
    )
    code, out, err = cli(capsys, "--home", str(home), "import", "contacts", str(people))
    assert code == 0, err
    assert "1 merged" in out
    assert _owners(home, m.Contact) == {
        "Neumann": "anna@crm.example",  # no owner named: me
        "Sommer": "ben@crm.example",  # the row's own
        "Alt": "ben@crm.example",  # merged: keeps its owner
    }
    cards = tmp_path / "cards.vcf"
    cards.write_text(
        "BEGIN:VCARD\r\nVERSION:3.0\r\nN:Weiß;Oskar;;;\r\nEMAIL:oskar@weiss.example\r\nEND:VCARD\r\n"
    )
    code, out, err = cli(capsys, "--home", str(home), "import", "contacts", str(cards))
    assert code == 0, err
    assert _owners(home, m.Contact)["Weiß"] == "anna@crm.example"
    orgs = tmp_path / "orgs.csv"
    orgs.write_text("name\nNeu Solar GmbH\n")
    code, out, err = cli(capsys, "--home", str(home), "import", "organizations", str(orgs))
    assert code == 0, err
    assert _owners(home, m.Organization) == {"Neu Solar GmbH": "anna@crm.example"}


def test_me_from_the_settings_owns_what_is_imported(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (home / "config").mkdir(parents=True, exist_ok=True)
    (home / "config" / "config.toml").write_text('me = "ben@crm.example"\n')
    people = tmp_path / "people.csv"
    people.write_text("first_name,last_name\nTilda,Neumann\n")
    code, out, err = cli(capsys, "--home", str(home), "import", "contacts", str(people))
    assert code == 0, err
    assert _owners(home, m.Contact)["Neumann"] == "ben@crm.example"


async def test_the_apps_import_makes_me_the_owner(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "neu.csv"
    path.write_text("first_name,last_name,emails\nTilda,Neumann,tilda@neumann.example\n")
    context = make_context(home, demo=False)
    app = CrmApp(context, start_mode="contacts", run_automations=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(lambda: isinstance(app.screen, ContactsScreen), pilot)
        await pilot.press("I")
        await wait_for(lambda: isinstance(app.screen, PromptDialog), pilot)
        app.screen.query_one(Input).value = str(path)
        await pilot.press("enter")
        await wait_for(lambda: isinstance(app.screen, ImportPreview), pilot, timeout=20)
        await pilot.press("y")
        await wait_for(lambda: "Neumann" in _owners(home, m.Contact), pilot, timeout=20)
    context.close()
    assert _owners(home, m.Contact)["Neumann"] == "anna@crm.example"
