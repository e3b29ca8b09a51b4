"""One line at the bottom: the modes, who I am, which database, what the screen last said, and what runs in the
background.

What the screen said (``activity``: "taken back: the mail to Lea Werner <…> is a draft again") is the part the
user reads: when the line is too narrow, the other parts give way first (the modes keep only their keys, then
the database, the user and the mail status go); only a message wider than the whole bar is cut, and then it is
also shown whole as a notification."""

from __future__ import annotations

from typing import Any

from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual.widgets import Static

from crm_tui.ui.widgets.guard import ReportsErrors

MODES = (
    ("1", "Inbox", "inbox"),
    ("2", "Contacts", "contacts"),
    ("3", "Deals", "opportunities"),
    ("4", "Calendar", "calendar"),
    ("5", "Settings", "settings"),
)

# From the fullest line to the barest: (modes, user, database, mail).
# modes: "titles" every mode named; "keys" only the current one named; "current" only the current one.
# mail: "full", "short" (cut to MAIL_SHORT cells) or "" (left out).
LAYOUTS = (
    ("titles", True, True, "full"),
    ("keys", True, True, "full"),
    ("keys", True, False, "full"),
    ("keys", False, False, "full"),
    ("current", False, False, "full"),
    ("current", False, False, "short"),
    ("current", False, False, ""),
)
MAIL_SHORT = 14


class StatusBar(ReportsErrors, Static):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._parts: dict[str, Any] | None = None
        self._told = ""  # the last message shown whole as a notification (once, not at every redraw)

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
        self._parts = {
            "user": user,
            "database": database,
            "activity": activity,
            "mode": mode,
            "busy": busy,
            "mail": mail,
        }
        self._lay_out()

    def on_resize(self, event: events.Resize) -> None:
        if self._parts is not None:
            self._lay_out()

    def _width(self) -> int:
        width = self.content_size.width
        if width <= 0:  # not laid out yet: the bar spans the screen, less its padding
            width = self.app.size.width - 2
        return max(1, width)

    def _lay_out(self) -> None:
        assert self._parts is not None
        width = self._width()
        for layout in LAYOUTS:
            line = self._line(layout, **self._parts)
            if cell_len(line.plain) <= width:
                self.update(line)
                return
        # Even the barest line is too narrow for the message: cut it, and show it whole once.
        line.truncate(width, overflow="ellipsis")
        self.update(line)
        activity = self._parts["activity"]
        if activity and activity != self._told:
            self._told = activity
            self.notify(activity, timeout=8)

    @staticmethod
    def _line(
        layout: tuple[str, bool, bool, str],
        *,
        user: str | None,
        database: str,
        activity: str,
        mode: str,
        busy: bool,
        mail: str,
    ) -> Text:
        # Plain Text, never markup: names can come from mail.
        modes, with_user, with_database, mail_shown = layout
        line = Text()
        for key, title, name in MODES:
            current = name == mode
            if modes == "titles" or current:
                line.append(f" {key} {title} ", style="reverse bold" if current else "dim")
            elif modes == "keys":
                line.append(f" {key}", style="dim")
        if modes == "keys":
            line.append(" ")
        if with_user:
            line.append("  ")
            line.append(f" {user or 'no user'} ", style="bold")
        if with_database:
            line.append(f" {database} ")
        if activity:
            line.append(f" {activity}")
        if mail and mail_shown:
            shown = mail if mail_shown == "full" or len(mail) <= MAIL_SHORT else mail[: MAIL_SHORT - 1] + "…"
            line.append(f"  ✉ {shown}", style="cyan")
        if busy:
            line.append("  ⟳ working…" if with_user else "  ⟳", style="yellow")
        return line
