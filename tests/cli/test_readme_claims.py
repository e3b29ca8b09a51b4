"""What the README (the user's guide) says about the app holds: the number of mail templates that ship and the
demo's own, where a key binding's id is shown (tests/ui/test_palette_binding_ids.py shows it there), that
export is the command line's only. The commands it shows are checked by test_readme_commands.py."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import sqlite3
from pathlib import Path

from textual.binding import Binding

import crm_tui.ui.screens
from crm_tui.ui.app import CrmApp

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
NUMBERS = {"five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10}


def _flat(text: str) -> str:
    return " ".join(text.split())


def _template_name(path: Path) -> str:
    found = re.search(r"^Name: (.+)$", path.read_text(encoding="utf-8"), re.M)
    assert found is not None, f"{path.name} has no Name: line"
    return found[1]


def test_the_number_of_shipped_templates_and_the_demos_own_are_as_the_readme_says(demo_home: Path) -> None:
    shipped = sorted((ROOT / "assets" / "templates" / "email").glob("*.txt"))
    said = re.search(r"(\w+) ship in `assets/templates/email`", _flat(README))
    assert said is not None
    assert NUMBERS[said[1]] == len(shipped)
    names = {_template_name(p) for p in shipped}
    connection = sqlite3.connect(demo_home / "data" / "demo.sqlite3")
    demo = {row[0] for row in connection.execute("SELECT name FROM email_template")}
    connection.close()
    assert names <= demo
    for extra in sorted(demo - names):  # the demo's own: named where the README counts them
        assert f'the demo has an {"eighth" if len(demo) == 8 else "extra"}, "{extra}"' in _flat(README)


def test_the_readme_says_where_binding_ids_are_shown() -> None:
    flat = _flat(README)
    assert "(`?` and the palette show them in use)" not in flat  # `?` never showed an id
    assert "the command palette (`ctrl+p`) shows beside each action's key" in flat
    assert "id: records.search" in flat


def _bindings() -> list[Binding]:
    found = [b for b in CrmApp.BINDINGS if isinstance(b, Binding)]
    for info in pkgutil.iter_modules(crm_tui.ui.screens.__path__):
        module = importlib.import_module(f"crm_tui.ui.screens.{info.name}")
        for _name, cls in inspect.getmembers(module, inspect.isclass):
            found += [b for b in cls.__dict__.get("BINDINGS", ()) if isinstance(b, Binding)]
    return found


def test_export_is_the_command_lines_only_as_the_readme_says() -> None:
    assert (
        "**Export** of records, from the command line only (the app's one export key is the sent-mail report's `x`"
        in _flat(README)
    )
    assert {(b.key, b.id) for b in _bindings() if "export" in b.action.lower()} == {
        ("x", "mail_report.export")
    }
