"""A modal form for any record: fields from a spec, per-field validation messages, nothing saved on error.

The spec's ``save`` runs the service inside one write transaction (in a thread worker: never on the UI thread)
and raises ``ValidationError`` naming the bad fields; the form shows each message under its field. Record references are typed by name, with completion from
the database, and kept as ``Name [type:id]``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.suggester import Suggester
from textual.widgets import Input, Label, Select, Static, TextArea
from textual.worker import Worker, WorkerState

from crm_tui.core.errors import CrmError, ValidationError
from crm_tui.ui.app_access import crm_app
from crm_tui.ui.messages import FormRefused, FormSaved
from crm_tui.ui.screens.dialogs import ConfirmDialog
from crm_tui.ui.screens.typeahead import FollowsTypeahead


@dataclass
class FieldSpec:
    name: str  # the service's field name, so its validation messages land here
    label: str
    kind: str = "text"  # text, textarea, choice, list, ref, date, datetime, money, number, password
    choices: list[tuple[str, str]] = field(default_factory=list)  # (value, label) for choice
    required: bool = False
    placeholder: str = ""
    ref_type: str | None = None  # for ref: contact, organization, user, lead, opportunity
    disabled: bool = False


@dataclass
class FormSpec:
    title: str
    fields: list[FieldSpec]
    values: dict[str, str]
    save: Callable[[dict[str, str]], int]
    side: Callable[[dict[str, str]], Text] | None = (
        None  # a live panel beside the form (the day's activities)
    )
    suggest: Callable[[str, str], str | None] | None = None  # (ref type, typed text) -> completion
    # The record's attachments (ctrl+o: open, save, remove): their screen, None when it carries none.
    documents: Callable[[], ModalScreen[None] | None] | None = None


class _RefSuggester(Suggester):
    def __init__(self, ref_type: str, lookup: Callable[[str, str], str | None]):
        super().__init__(use_cache=False, case_sensitive=True)
        self._type, self._lookup = ref_type, lookup

    async def get_suggestion(self, value: str) -> str | None:
        if len(value.strip()) < 2 or "[" in value:
            return None
        return self._lookup(self._type, value)


def saved_id(record_id: int | None) -> int:
    """The id of a record a service has just saved: it is flushed, so the database has given it one."""
    assert record_id is not None, "a saved record is flushed and has its id"
    return record_id


def field_id(name: str) -> str:
    """The id of a field's widget in a record form (``#`` + it finds the widget)."""
    return "f-" + name.replace(".", "--").replace("[", "_").replace("]", "_")


class RecordForm(FollowsTypeahead, ModalScreen[int | None]):
    # The first field takes the keys typed right after the key that opened the form (a fast typist's
    # "n Lena<Tab>Vogel" must not land in the scroll container that Textual would focus otherwise).
    AUTO_FOCUS = "Input, TextArea, Select"
    BINDINGS = [
        Binding("ctrl+s", "save", "Save", id="form.save"),
        Binding("ctrl+o", "documents", "Attachments (open, remove)", id="form.attachments"),
        Binding("escape", "cancel", "Cancel", id="form.cancel"),
        # Priority: handled as each key arrives, so "Lena<Tab>Vogel" typed in one burst fills two fields
        # (a plain binding runs only after the key has bubbled up, by when "Vogel" has gone to the first field).
        Binding("tab", "app.focus_next", "Next field", show=False, priority=True, id="form.next"),
        Binding(
            "shift+tab", "app.focus_previous", "Previous field", show=False, priority=True, id="form.previous"
        ),
    ]

    def __init__(self, spec: FormSpec):
        super().__init__()
        self.spec = spec
        self._opened_with: dict[str, str] | None = None  # the values the form showed when it opened
        self._saving = False  # a save is under way in its worker
        self._saved_id: int | None = None  # saved while another screen was over the form: closes when back

    def compose(self) -> ComposeResult:
        with Horizontal(classes="form-frame"):
            with Vertical(classes="form"):
                yield Label(Text(self.spec.title, style="bold"), classes="dialog-title")
                yield Label("", id="form-error", classes="field-error")
                with VerticalScroll(classes="form-fields", can_focus=False):
                    for spec in self.spec.fields:
                        yield from self._field(spec)
                hint = "ctrl+s save · esc cancel · tab next field"
                if self.spec.documents is not None:
                    hint += " · ctrl+o attachments"
                yield Label(Text(hint, style="dim"))
            if self.spec.side is not None:
                yield Static(id="form-side", classes="form-side")

    def _field(self, spec: FieldSpec) -> ComposeResult:
        value = self.spec.values.get(spec.name, "")
        label = spec.label + (" *" if spec.required else "")
        yield Label(label, classes="field-label")
        widget_id = field_id(spec.name)
        if spec.kind == "textarea":
            yield TextArea(
                value,
                id=widget_id,
                classes="field-textarea",
                disabled=spec.disabled,
                placeholder=spec.placeholder,  # an example shown while empty, never a value
            )
        elif spec.kind == "choice":
            yield Select(
                [(Text(text), key) for key, text in spec.choices],
                value=value if value in {k for k, _ in spec.choices} else Select.NULL,
                # A required choice with nothing to choose from yet (no pipeline, say) stays blank: the save says
                # the field is required (Textual refuses an empty Select that cannot be blank).
                allow_blank=not spec.required or not spec.choices,
                id=widget_id,
                disabled=spec.disabled,
            )
        else:
            suggester = None
            if spec.kind == "ref" and spec.ref_type and self.spec.suggest is not None:
                suggester = _RefSuggester(spec.ref_type, self.spec.suggest)
            placeholder = spec.placeholder or {
                "date": "YYYY-MM-DD",
                "datetime": "YYYY-MM-DD HH:MM",
                "money": "1234.50",
                "list": "comma separated",
                "ref": f"type a {spec.ref_type} name",
            }.get(spec.kind, "")
            yield Input(
                value=value,
                placeholder=placeholder,
                id=widget_id,
                suggester=suggester,
                disabled=spec.disabled,
                password=spec.kind == "password",
            )
        yield Label("", id="error-" + widget_id, classes="field-error")

    def on_mount(self) -> None:
        first = next((w for w in self.query("Input, TextArea, Select") if not w.disabled), None)
        if first is not None:
            first.focus()
        self._opened_with = self.values()
        self._refresh_side()

    def changed_fields(self) -> list[str]:
        """The labels of the fields that differ from how the form opened."""
        if self._opened_with is None:
            return []
        now = self.values()
        return [spec.label for spec in self.spec.fields if now[spec.name] != self._opened_with.get(spec.name)]

    def values(self) -> dict[str, str]:
        result: dict[str, str] = {}
        for spec in self.spec.fields:
            widget = self.query_one("#" + field_id(spec.name))
            if isinstance(widget, TextArea):
                result[spec.name] = widget.text
            elif isinstance(widget, Select):
                result[spec.name] = "" if widget.value is Select.NULL else str(widget.value)
            else:
                result[spec.name] = cast(Input, widget).value  # the third kind of field (_field)
        return result

    @on(Input.Changed)
    @on(Select.Changed)
    def _changed(self) -> None:
        self._refresh_side()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # ctrl+o only where the record can carry files and already exists (a saved activity).
        return self.spec.documents is not None if action == "documents" else True

    def action_documents(self) -> None:
        """The record's attachments, to open, save or remove; the side panel shows what is left after."""
        if self.spec.documents is None:
            return
        try:
            screen = self.spec.documents()
        except CrmError as exc:
            self.notify(str(exc), severity="warning")
            return
        if screen is None:
            self.notify("Nothing is attached to it (A on it in the calendar attaches a file).")
            return
        self.app.push_screen(screen, lambda _: self._refresh_side())

    def _refresh_side(self) -> None:
        if self.spec.side is None:
            return
        try:
            panel = self.spec.side(self.values())
        except CrmError as exc:
            panel = Text(str(exc), style="red")
        self.query_one("#form-side", Static).update(panel)

    def show_errors(self, errors: dict[str, str]) -> None:
        names = {spec.name for spec in self.spec.fields}
        for spec in self.spec.fields:
            # Text, not markup: a message may quote what was typed ("'[/x' is not a number").
            self.query_one("#error-" + field_id(spec.name), Label).update(Text(errors.get(spec.name, "")))
        general = [f"{name}: {message}" for name, message in errors.items() if name not in names]
        count = len(errors)
        summary = f"{count} field{'s' if count != 1 else ''} need{'s' if count == 1 else ''} attention; nothing was saved."
        self.query_one("#form-error", Label).update(Text("\n".join([summary, *general]), style="bold red"))
        first_bad = next((spec for spec in self.spec.fields if spec.name in errors), None)
        if first_bad is not None:
            self.query_one("#" + field_id(first_bad.name)).focus()

    @on(Input.Submitted)
    def action_save(self) -> None:
        """Save in a worker (a database write never runs on the UI thread); the form stays open, with what was
        typed, until the save is done; a refusal shows in the form, a failure as one notification."""
        if self._saving:
            return  # the save under way closes the form or says why not
        self._saving = True
        self._save_in_thread(self.values())

    @work(thread=True, group="form-save", exit_on_error=False)
    def _save_in_thread(self, values: dict[str, str]) -> None:
        try:
            record_id = self.spec.save(values)
        except ValidationError as exc:
            self.post_message(FormRefused(exc.errors))
            return
        except CrmError as exc:
            self.post_message(FormRefused({}, str(exc)))
            return
        self.post_message(FormSaved(record_id))

    @on(FormSaved)
    def _saved(self, message: FormSaved) -> None:
        if self.app.screen is self:
            self._saving = False
            self.dismiss(message.record_id)
        else:  # a screen opened over the form meanwhile (the command palette): it closes when back on top
            self._saved_id = message.record_id

    @on(events.ScreenResume)
    def _back_on_top(self) -> None:
        if self._saved_id is not None:
            self._saving = False
            self.dismiss(self._saved_id)

    @on(FormRefused)
    def _refused(self, message: FormRefused) -> None:
        self._saving = False
        if message.errors:
            self.show_errors(message.errors)
        else:
            self.query_one("#form-error", Label).update(Text(message.message, style="bold red"))

    @on(Worker.StateChanged)
    def _save_failed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "form-save":
            return
        if event.state is WorkerState.ERROR:
            self._saving = False  # the form stays, with what was typed; the app says what failed
        crm_app(self).report_worker_state(event)

    def action_cancel(self) -> None:
        """Esc: a form as it opened closes at once; one with changes asks first (y discards them, n or Esc
        goes back to the form). While a save is under way Esc waits: the save closes the form or says why not."""
        if self._saving:
            return
        changed = self.changed_fields()
        if not changed:
            self.dismiss(None)
            return

        def decided(discard: bool | None) -> None:
            if discard:
                self.dismiss(None)

        self.app.push_screen(
            ConfirmDialog(
                "Discard your changes?",
                Text(f"Changed: {', '.join(changed)}.\n\ny discards them · n or Esc goes back to the form"),
                "Discard",
            ),
            decided,
        )
