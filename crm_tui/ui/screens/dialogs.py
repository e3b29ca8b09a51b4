"""Small modal dialogs: confirm, ask for a line or a text, pick one of a few choices."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Static, TextArea
from textual.widgets.option_list import Option

from crm_tui.ui.screens.typeahead import FollowsTypeahead
from crm_tui.ui.widgets.option_list import Options


class ConfirmDialog(FollowsTypeahead, ModalScreen[bool]):
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="dialog.cancel"),
        Binding("y", "confirm", "Yes", id="dialog.yes"),
        Binding("n", "cancel", "No", show=False, id="dialog.no"),
    ]

    def __init__(self, title: str, body: Text | str, confirm_label: str = "Yes"):
        super().__init__()
        self._title, self._body, self._confirm = title, body, confirm_label

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Text(self._title, style="bold"), classes="dialog-title")
            yield Static(
                self._body if isinstance(self._body, Text) else Text(self._body), classes="dialog-body"
            )
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self._confirm} (y)", variant="primary", id="confirm")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#confirm", Button).focus()

    @on(Button.Pressed, "#confirm")
    def action_confirm(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(False)


class PromptDialog(FollowsTypeahead, ModalScreen[str | None]):
    """Ask for one line (a lost reason, a file path) or, with ``multiline``, a text (a comment)."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="dialog.cancel"),
        Binding("ctrl+s", "submit", "Save", id="dialog.save"),
    ]

    def __init__(
        self,
        title: str,
        *,
        placeholder: str = "",
        value: str = "",
        multiline: bool = False,
        required: bool = True,
        save: Callable[[str], str | None] | None = None,
    ):
        """``save``: stores the text and returns None, or why it could not (the dialog then stays open with
        the text and the reason: a full disk never costs a written comment). It runs in a thread worker (a
        database write never runs on the UI thread); the dialog closes when it has saved."""
        super().__init__()
        self._title, self._placeholder, self._value = title, placeholder, value
        self._multiline, self._required, self._save = multiline, required, save
        self._saving = False

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Text(self._title, style="bold"), classes="dialog-title")
            if self._multiline:
                yield TextArea(self._value, id="value", classes="dialog-text")
            else:
                yield Input(value=self._value, placeholder=self._placeholder, id="value")
            yield Label("", id="error", classes="field-error")
            yield Label(
                Text(
                    "ctrl+s save · esc cancel" if self._multiline else "enter save · esc cancel", style="dim"
                )
            )

    def on_mount(self) -> None:
        self.query_one("#value").focus()

    def _text(self) -> str:
        widget = self.query_one("#value")
        return (
            widget.text if isinstance(widget, TextArea) else cast(Input, widget).value
        )  # else an Input (compose)

    @on(Input.Submitted)
    def action_submit(self) -> None:
        value = self._text().strip()
        if self._required and not value:
            self.query_one("#error", Label).update("This cannot be empty.")
            return
        if self._save is not None and value:
            if self._saving:
                return  # saved once: the save under way closes the dialog
            self._saving = True
            save, app = self._save, self.app

            def run() -> None:
                try:
                    failed = save(value)
                except BaseException:
                    app.call_from_thread(
                        setattr, self, "_saving", False
                    )  # the app reports it; one can try again
                    raise
                app.call_from_thread(self._saved, value, failed)

            # The app's worker: a failure is reported by the app (a dialog does not hand its workers' on).
            app.run_worker(run, thread=True, group="dialog-save", exit_on_error=False)
            return
        self.dismiss(value)

    def _saved(self, value: str, failed: str | None) -> None:
        if failed:
            self._saving = False  # one can try again
            self.query_one("#error", Label).update(Text(f"Not saved: {failed}"))
            return
        # Saved: _saving stays set, so an enter or esc already queued behind this does not save or close twice.
        self.dismiss(value)

    def action_cancel(self) -> None:
        if self._saving:
            return  # the save under way closes the dialog (or shows why it could not save)
        self.dismiss(None)


class ChoiceDialog(FollowsTypeahead, ModalScreen[str | None]):
    """Pick one of a few choices (a pipeline, a stage to move deals to, an owner)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="dialog.cancel")]

    def __init__(self, title: str, choices: list[tuple[str, str]], *, selected: str | None = None):
        super().__init__()
        self._title, self._choices, self._selected = title, choices, selected

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Text(self._title, style="bold"), classes="dialog-title")
            yield Options(*(Option(Text(label), id=value) for value, label in self._choices), id="choices")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        options.focus()
        for index, (value, _) in enumerate(self._choices):
            if value == self._selected:
                options.highlighted = index

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
