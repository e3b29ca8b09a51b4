"""Fuzzy pickers: type a few letters, Up/Down, Enter. A record picker (best suggestions first, then any
contact, organization, lead or deal by name) and a folder picker."""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from crm_tui.core.sanitize import terminal_safe
from crm_tui.core.services.references import matching_names
from crm_tui.runtime.context import AppContext
from crm_tui.ui.messages import RecordsFound
from crm_tui.ui.screens.typeahead import FollowsTypeahead
from crm_tui.ui.widgets.option_list import Options

SEARCHED_TYPES = ("opportunity", "contact", "organization", "lead")
NOUNS = {
    "opportunity": "Deal",
    "contact": "Contact",
    "organization": "Organization",
    "lead": "Lead",
    "ticket": "Ticket",
}


def fuzzy_score(query: str, text: str) -> int | None:
    """A score for ``text`` matching ``query`` as a subsequence (higher is better), or None: no match.
    Letters in a row and at word starts count more, as in the fuzzy finders people know."""
    query, text = query.lower().strip(), text.lower()
    if not query:
        return 0
    score, position, streak = 0, 0, 0
    for char in query:
        found = text.find(char, position)
        if found < 0:
            return None
        streak = streak + 1 if found == position else 0
        score += 1 + 2 * streak + (3 if found == 0 or not text[found - 1].isalnum() else 0)
        position = found + 1
    return score - len(text) // 20


class PickerOptions(Options):
    """A picker's list: j/k move in it too (Tab from the field; in the field they are letters to type)."""

    BINDINGS = [
        Binding("j", "cursor_down", "Next", show=False, id="picker.down_j"),
        Binding("k", "cursor_up", "Previous", show=False, id="picker.up_k"),
    ]


class Picker(FollowsTypeahead, ModalScreen[str | None]):
    """An input over a list; the list follows what is typed, Enter takes the highlighted entry."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="picker.cancel"),
        Binding("down", "move(1)", "Next", show=False, priority=True, id="picker.down"),
        Binding("up", "move(-1)", "Previous", show=False, priority=True, id="picker.up"),
        # As in the fuzzy finders people know; ctrl+p here is not the palette (CrmApp.check_action).
        Binding("ctrl+n", "move(1)", "Next", show=False, priority=True, id="picker.next"),
        Binding("ctrl+p", "move(-1)", "Previous", show=False, priority=True, id="picker.previous"),
    ]
    MOVES_ON_CTRL_P = True  # ctrl+p moves up the list instead of opening the palette

    def __init__(self, title: str, placeholder: str) -> None:
        super().__init__()
        self._title, self._placeholder = title, placeholder

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog picker"):
            yield Label(Text(self._title, style="bold"), classes="dialog-title")
            yield Input(placeholder=self._placeholder, id="picker-input")
            yield PickerOptions(id="picker-options")

    def on_mount(self) -> None:
        self.set_focus(self.query_one("#picker-input", Input))
        self.refill("")

    def refill(self, query: str) -> None:
        raise NotImplementedError

    def show(self, options: list[tuple[str, Text]]) -> None:
        listing = self.query_one(OptionList)
        listing.clear_options()
        listing.add_options([Option(label, id=value) for value, label in options])
        listing.highlighted = 0 if options else None

    @on(Input.Changed, "#picker-input")
    def _typed(self, event: Input.Changed) -> None:
        self.refill(event.value)

    @on(Input.Submitted, "#picker-input")
    def _submitted(self) -> None:
        self.take_highlighted()

    def take_highlighted(self) -> None:
        """Enter: the highlighted entry."""
        listing = self.query_one(OptionList)
        if listing.highlighted is not None and listing.option_count:
            self.dismiss(listing.get_option_at_index(listing.highlighted).id)

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        # Enter in the list, or a click: as Enter in the field (a picker may refuse some entries).
        self.query_one(OptionList).highlighted = event.option_index
        self.take_highlighted()

    def action_move(self, step: int) -> None:
        listing = self.query_one(OptionList)
        if listing.option_count:
            current = listing.highlighted if listing.highlighted is not None else -1
            listing.highlighted = max(0, min(listing.option_count - 1, current + step))

    def action_cancel(self) -> None:
        self.dismiss(None)


class FolderPicker(Picker):
    """Pick a folder (of the message's account) by a few of its letters."""

    def __init__(self, title: str, folders: list[str]) -> None:
        super().__init__(title, "type part of a folder name")
        self._folders = folders

    def refill(self, query: str) -> None:
        scored = [(fuzzy_score(query, name), name) for name in self._folders]
        ranked = sorted(
            ((score, name) for score, name in scored if score is not None), key=lambda item: -item[0]
        )
        self.show([(name, Text(terminal_safe(name))) for _, name in ranked])


class RecordPicker(Picker):
    """Pick a record to file mail on: the suggestions (best first, with why) until something is typed, then
    records of every kind whose name matches, suggestions first among them. Returns "type:id"."""

    def __init__(self, title: str, suggestions: list[tuple[str, str, str]], context: AppContext) -> None:
        # suggestions: (type:id, label, why)
        super().__init__(title, "type a name: deal, contact, organization, lead")
        self._suggestions, self._crm = suggestions, context

    @staticmethod
    def _label(ref: str, label: str, why: str) -> Text:
        kind = NOUNS.get(ref.split(":")[0], ref.split(":")[0])
        text = Text(f"{kind:<13}", style="dim")
        text.append(terminal_safe(label, max_length=70))
        if why:
            text.append(f"  ({why})", style="dim italic")
        return text

    def refill(self, query: str) -> None:
        if not query.strip():
            self.show([(ref, self._label(ref, label, why)) for ref, label, why in self._suggestions])
            return
        self._search(query)

    @work(thread=True, exclusive=True, group="picker", exit_on_error=False)
    def _search(self, query: str) -> None:

        found: list[tuple[str, str, str]] = []
        with self._crm.database().read() as session:
            for ref_type in SEARCHED_TYPES:
                for record_id, label in matching_names(session, ref_type, query.strip(), 8):
                    found.append((f"{ref_type}:{record_id}", label, ""))
        self.post_message(RecordsFound(query, found))

    @on(RecordsFound)
    def _found(self, message: RecordsFound) -> None:
        if message.query != self.query_one("#picker-input", Input).value:
            return  # typed on meanwhile
        suggested = {ref: why for ref, _, why in self._suggestions}
        matching = [
            (ref, label, why)
            for ref, label, why in self._suggestions
            if fuzzy_score(message.query, label) is not None
        ]
        rest = [
            (ref, label, suggested.get(ref, "")) for ref, label, _ in message.found if ref not in suggested
        ]
        self.show([(ref, self._label(ref, label, why)) for ref, label, why in matching + rest])
