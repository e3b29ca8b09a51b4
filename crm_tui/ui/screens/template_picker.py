"""Pick a mail template: those this mail (or these recipients) can fill first, the others greyed with what
they need ("needs a deal"); type a few letters to narrow the list, Up/Down (ctrl+n/ctrl+p; j/k in the list) over
every template listed, Enter takes the highlighted one or, for one that does not fit, says under the list why."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from crm_tui.core.sanitize import terminal_safe
from crm_tui.ui.screens.pickers import Picker, PickerOptions, fuzzy_score


class TemplatePicker(Picker):
    """The templates that do not fit are listed (greyed, with what they need) and can be highlighted like the
    others: Enter on one says why it does not fit instead of taking it."""

    BINDINGS = [Binding("enter", "take", "Take it", show=False, id="templates.take")]

    def __init__(self, title: str, fits: list[Any], *, notes: list[str] | None = None) -> None:
        super().__init__(title, "type a few letters of its name")
        self.fits = fits  # email_templates.TemplateFit, fitting ones first
        # Where the merge fields come from ("Deal: ... the only open deal of ...").
        self.notes = list(notes or [])
        self.shown: list[Any] = []  # the templates listed now, in their order
        self._explained: int | None = None  # the entry whose reason is said under the list

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog picker"):
            yield Label(Text(self._title, style="bold"), classes="dialog-title")
            for note in self.notes:
                yield Static(Text(terminal_safe(note, max_length=300), style="dim"), classes="picker-note")
            yield Input(placeholder=self._placeholder, id="picker-input")
            yield PickerOptions(id="picker-options")
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
        self._say_why(None)
        listing = self.query_one(OptionList)
        listing.clear_options()
        for _, _, fit in scored:
            label = Text(terminal_safe(fit.name), style="" if fit.fits else "dim")
            if fit.fits and fit.description:
                label.append(f" — {terminal_safe(fit.description)}", style="dim")
            if not fit.fits:
                label.append(f" — {terminal_safe(fit.reason, max_length=100)}", style="dim italic")
            # Not a disabled option: one that does not fit is highlighted as any other (a disabled one showed no
            # highlight and was skipped, so with none fitting Up/Down moved nothing and Enter named the first).
            listing.add_option(Option(label, id=str(fit.id)))
        first = next((i for i, (_, _, fit) in enumerate(scored) if fit.fits), 0 if scored else None)
        listing.highlighted = first

    def fits_at(self, index: int) -> bool:
        """Whether the template listed at ``index`` fits this mail (can be taken)."""
        return 0 <= index < len(self.shown) and bool(self.shown[index].fits)

    def _say_why(self, index: int | None) -> None:
        """Under the list: why the template at ``index`` does not fit (None: nothing)."""
        self._explained = index
        why = self.shown[index].why if index is not None and 0 <= index < len(self.shown) else ""
        self.query_one("#picker-why", Static).update(Text(terminal_safe(why, max_length=300), style="bold"))

    @on(OptionList.OptionHighlighted)
    def _moved(self, event: OptionList.OptionHighlighted) -> None:
        if event.option_index != self._explained:
            self._say_why(None)  # the reason said was another template's

    def action_take(self) -> None:
        """Enter: the highlighted template (the type-ahead field passes Enter on as this)."""
        self.take_highlighted()

    def take_highlighted(self) -> None:
        """Enter (or a click): the highlighted template; one that does not fit stays listed, and under the list
        it says why and what would make it fit."""
        highlighted = self.query_one(OptionList).highlighted
        if highlighted is None or not 0 <= highlighted < len(self.shown):
            return
        if self.fits_at(highlighted):
            self.dismiss(str(self.shown[highlighted].id))
        else:
            self._say_why(highlighted)
