"""One line at the bottom: who I am, which database, and what runs in the background."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


class StatusBar(Static):
    def show(self, *, user: str | None, database: str, activity: str = "") -> None:
        # Plain Text, never markup: names can come from mail.
        line = Text()
        line.append(f" {user or 'no user'} ", style="bold")
        line.append(f" {database} ")
        if activity:
            line.append(f" {activity}")
        self.update(line)
