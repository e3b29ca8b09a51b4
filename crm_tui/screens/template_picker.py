"""Pick a mail template: those this mail (or these recipients) can fill first, the others greyed with what
they need ("needs a deal"); type a few letters to narrow the list, Up/Down, Enter."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from crm_tui.core.sanitize import terminal_safe
from crm_tui.screens.pickers import _Picker, fuzzy_score
from crm_tui.widgets.option_list import Options


class TemplatePicker(_Picker):
    BINDINGS = [Binding("enter", "take", "Take it", show=False, id="templates.take")]

    def __init__(self, title: str, fits: list[Any], *, notes: list[str] | None = None) -> None:
        super().__init__(title, "type a few letters of its name")
        self.fits = fits  # email_templates.TemplateFit, fitting ones first
        # Where the merge fields come from ("Deal: ... the only open deal of ...").
        self.notes = list(notes or [])
        self.shown: list[Any] = []  # the templates listed now, in their order

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog picker"):
            yield Label(Text(self._title, style="bold"), classes="dialog-title")
            for note in self.notes:
                yield Static(Text(terminal_safe(note, max_length=300), style="dim"), classes="picker-note")
            yield Input(placeholder=self._placeholder, id="picker-input")
            yield Options(id="picker-options")
            yield Static(id="picker-why", classes="picker-why")  # why the chosen template does not fit

    def refill(self, query: str) -> None:
        scored = []
        for order, fit in enumerate(self.fits):
            score = fuzzy_score(query, fit.name)
            if score is None and query.strip().lower() in (fit.description or "").lower():
                score = -100  # a part of what it is used for: after every name that matches
            if score is not None:
                scored.append((not fit.fits, -score if query.strip() else order, fit))
        scored.sort(key=lambda item: item[:2])
        self.shown = [fit for _, _, fit in scored]
        self.query_one("#picker-why", Static).update("")
        listing = self.query_one(OptionList)
        listing.clear_options()
        for _, _, fit in scored:
            label = Text(terminal_safe(fit.name), style="" if fit.fits else "dim")
            if fit.fits and fit.description:
                label.append(f" — {terminal_safe(fit.description)}", style="dim")
            if not fit.fits:
                label.append(f" — {terminal_safe(fit.reason, max_length=100)}", style="dim italic")
            listing.add_option(Option(label, id=str(fit.id), disabled=not fit.fits))
        first = next((i for i, (_, _, fit) in enumerate(scored) if fit.fits), None)
        listing.highlighted = first

    def action_move(self, step: int) -> None:
        """Up/Down over the templates that fit (the others cannot be taken)."""
        listing = self.query_one(OptionList)
        enabled = [i for i in range(listing.option_count) if not listing.get_option_at_index(i).disabled]
        if not enabled:
            return
        current = listing.highlighted if listing.highlighted in enabled else None
        if current is None:
            listing.highlighted = enabled[0] if step > 0 else enabled[-1]
            return
        position = max(0, min(len(enabled) - 1, enabled.index(current) + step))
        listing.highlighted = enabled[position]

    def action_take(self) -> None:
        """Enter: the highlighted template (the type-ahead field passes Enter on as this)."""
        self.take_highlighted()

    def take_highlighted(self) -> None:
        """Enter: the highlighted template; when no template that fits is listed (what is typed names only
        those that don't), say under the list why the first of them does not fit and what would make it."""
        listing = self.query_one(OptionList)
        highlighted = listing.highlighted
        if highlighted is not None and not listing.get_option_at_index(highlighted).disabled:
            self.dismiss(listing.get_option_at_index(highlighted).id)
            return
        unfit = next((fit for fit in self.shown if not fit.fits), None)
        if unfit is not None:
            self.query_one("#picker-why", Static).update(
                Text(terminal_safe(unfit.why, max_length=300), style="bold")
            )
