"""An address field (To, Cc, Bcc) that completes the recipient being typed: the part after the last comma.

What is typed is looked up off the event loop (``find``, given by the screen, runs in a thread; a newer key
cancels an older lookup); the matches are offered below the field (``Suggested``, which the screen shows), the
best one also as grey text after the cursor when it starts with what is typed. Tab (or Right at the end) takes
the highlighted match, Up/Down choose another, Esc closes the matches; the recipients already in the field
stay as they are.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

from textual.actions import SkipAction
from textual.binding import Binding
from textual.widgets import Input

from crm_tui.runtime.logs import log_error
from crm_tui.ui import messages


@dataclass(frozen=True)
class Choice:
    """A match: ``text`` goes into the field ("Lea Scholz <lea@x.example>"), ``note`` says who it is."""

    text: str
    note: str = ""


# (what is typed after the last comma, the recipients before it) -> the matches, best first
Finder = Callable[[str, str], list[Choice]]


def split_typed(value: str) -> tuple[str, str]:
    """(the recipients before the one being typed, with their comma and space; the one being typed)."""
    head, comma, typed = value.rpartition(",")
    stripped = typed.lstrip()
    return value[: len(value) - len(stripped)], stripped


def recipient_items(text: str) -> list[str]:
    """The recipients of a field as typed, split at commas outside quotes and <...> ("Scholz, Lea" <l@x>)."""
    items: list[str] = []
    current: list[str] = []
    quoted, bracket = False, False
    for char in text:
        if char == '"' and not bracket:
            quoted = not quoted
        elif char == "<" and not quoted:
            bracket = True
        elif char == ">" and not quoted:
            bracket = False
        if char == "," and not quoted and not bracket:
            items.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    items.append("".join(current).strip())
    return [item for item in items if item]


class RecipientInput(Input):
    BINDINGS = [
        Binding("tab", "accept", "Take the suggestion", show=False, id="recipient.accept"),
        Binding("down", "choose(1)", "Next suggestion", show=False, id="recipient.next"),
        Binding("up", "choose(-1)", "Previous suggestion", show=False, id="recipient.previous"),
        Binding("escape", "close_choices", "Close the suggestions", show=False, id="recipient.close"),
    ]

    Suggested: TypeAlias = messages.Suggested

    def __init__(self, value: str = "", *, find: Finder, **options: Any) -> None:
        self.find = find
        self.choices: list[Choice] = []
        self.chosen = 0
        self._asked = 0  # the newest lookup: an older answer arriving late is dropped
        # No Textual suggester: the grey text is set here from the chosen match.
        super().__init__(value, **options)

    # --- looking up ---

    def _watch_value(self, value: str) -> None:
        super()._watch_value(value)
        self._asked += 1
        _head, typed = split_typed(value)
        if not typed or not self.is_mounted or not self.has_focus:
            self._offer([])
            return
        self.run_worker(self._lookup(value, self._asked), group="recipient-lookup", exclusive=True)

    async def _lookup(self, value: str, asked: int) -> None:
        head, typed = split_typed(value)
        try:
            found = await asyncio.to_thread(self.find, typed, head)
        except Exception as error:  # noqa: BLE001 - a failed lookup offers nothing; typing goes on
            log_error(error, "recipient completion")
            found = []
        if asked == self._asked and self.value == value:
            self._offer(found)

    def _offer(self, choices: list[Choice]) -> None:
        self.choices, self.chosen = choices, 0
        self._show()

    def _show(self) -> None:
        head, typed = split_typed(self.value)
        self._suggestion = ""
        if self.choices:
            best = self.choices[self.chosen].text
            if typed and best.casefold().startswith(typed.casefold()):
                self._suggestion = head + best  # grey after the cursor; Right takes it as Tab does
        self.post_message(self.Suggested(self, list(self.choices), self.chosen))

    def _on_blur(self, event: Any) -> None:
        self._asked += 1
        if self.choices:
            self._offer([])

    # --- keys ---

    def action_accept(self) -> None:
        """Tab: the highlighted match replaces what is typed; without one, Tab moves on as usual."""
        if not self.choices or not split_typed(self.value)[1]:
            raise SkipAction()
        head, _typed = split_typed(self.value)
        taken = self.choices[self.chosen].text
        self._asked += 1
        self.choices = []
        self.value = head + taken
        self.cursor_position = len(self.value)
        self._offer([])

    def action_close_choices(self) -> None:
        """Esc: the matches close, what is typed stays; without matches Esc does what it does on the screen
        (compose asks whether to leave the mail)."""
        if not self.choices:
            raise SkipAction()
        self._asked += 1  # a lookup still running offers nothing
        self._offer([])

    def action_choose(self, step: int) -> None:
        if len(self.choices) < 2:
            raise SkipAction()
        self.chosen = (self.chosen + step) % len(self.choices)
        self._show()
