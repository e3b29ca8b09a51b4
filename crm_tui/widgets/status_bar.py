"""One line at the bottom: who I am, which database, and what runs in the background."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from crm_tui.widgets.guard import ReportsErrors

MODES = (
    ("1", "Inbox", "inbox"),
    ("2", "Contacts", "contacts"),
    ("3", "Deals", "opportunities"),
    ("4", "Calendar", "calendar"),
    ("5", "Settings", "settings"),
)


class StatusBar(ReportsErrors, Static):
    def show(
        self,
        *,
        user: str | None,
        database: str,
        activity: str = "",
        mode: str = "",
        busy: bool = False,
        mail: str = "",
    ) -> None:
        # Plain Text, never markup: names can come from mail.
        line = Text()
        for key, title, name in MODES:
            line.append(f" {key} {title} ", style="reverse bold" if name == mode else "dim")
        line.append("  ")
        line.append(f" {user or 'no user'} ", style="bold")
        line.append(f" {database} ")
        if activity:
            line.append(f" {activity}")
        if mail:
            line.append(f"  ✉ {mail}", style="cyan")
        if busy:
            line.append("  ⟳ working…", style="yellow")
        self.update(line)
