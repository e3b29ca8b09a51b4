"""The detail pane of a record: its name and key facts, its related records and its timeline (newest first)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo

from rich.text import Text
from textual.widgets import Static

from crm_tui.core.sanitize import terminal_safe
from crm_tui.core.services.overview import Related, TimelineEntry
from crm_tui.ui.widgets.guard import ReportsErrors

ICONS = {"activity": "◆", "comment": "✎", "stage": "➜", "substate": "◇", "mail": "✉", "document": "📎"}


@dataclass(frozen=True)
class DetailData:
    """Everything the pane shows, loaded in a worker as plain data."""

    ref: str
    title: str
    facts: list[tuple[str, str]]
    related: list[Related]
    timeline: list[TimelineEntry]


class RecordDetail(ReportsErrors, Static):
    def show(self, data: DetailData | None, zone: tzinfo, *, empty: str = "Nothing selected.") -> None:
        if data is None:
            self.update(Text(empty, style="italic dim"))
            return
        text = Text()
        text.append(terminal_safe(data.title) + "\n", style="bold")
        text.append(data.ref + "\n", style="dim")
        for label, value in data.facts:
            if value:
                text.append(f"{label}: ", style="dim")
                text.append(terminal_safe(value) + "\n")
        if data.related:
            text.append("\nRelated\n", style="bold underline")
            for item in data.related:
                text.append(f"  {item.ref.type.value}: ", style="dim")
                text.append(terminal_safe(item.label, max_length=50))
                if item.detail:
                    text.append(f"  {terminal_safe(item.detail, max_length=40)}", style="dim")
                text.append("\n")
        text.append("\nTimeline\n", style="bold underline")
        if not data.timeline:
            text.append("  nothing yet\n", style="dim")
        for entry in data.timeline:
            style = "dim strike" if entry.status == "cancelled" else ("dim" if entry.status == "done" else "")
            text.append(f"  {entry.at.astimezone(zone):%Y-%m-%d %H:%M} ", style="cyan")
            text.append(f"{ICONS.get(entry.kind, '·')} ")
            text.append(terminal_safe(entry.text, max_length=70) + "\n", style=style)
        self.update(text)
