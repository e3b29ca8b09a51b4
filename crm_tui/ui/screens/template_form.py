"""The mail template editor (Settings > Mail templates): a record form whose save first checks the template in
a thread, filling it once with sample records under the sandbox's limits (up to 2 s a text), and says
"checking…" meanwhile; a template that breaks a limit, uses something not allowed or names a field no record
has is refused with the reason under its field, the form keeping what was typed."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on
from textual.widgets import Input, Label
from textual.worker import Worker, WorkerState

from crm_tui.core.errors import ValidationError
from crm_tui.core.services import email_templates
from crm_tui.ui.screens.record_form import RecordForm

CHECKING = "checking…"


class TemplateForm(RecordForm):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.checking: dict[str, str] | None = None  # the values being checked, while the check runs

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        # Enter in a field saves as ctrl+s does: through the check (not the form's own save at once).
        event.prevent_default()
        event.stop()
        self.action_save()

    def action_save(self) -> None:
        if self.checking is not None:
            return  # the check under way saves when it is done
        self.checking = self.values()
        # Every save says "checking…" at once: the last refusal (under its field and above the form) goes now,
        # not when this check is over (a second ctrl+s showed the old one for the check's 2 s).
        for said in self.query(".field-error").results(Label):
            said.update("")
        self.query_one("#form-error", Label).update(Text(CHECKING, style="dim"))
        self.run_worker(
            lambda values=self.checking: _problems(values),
            name="template-check",
            group="template-check",
            thread=True,
            exit_on_error=False,
        )

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.name != "template-check" or event.state not in (
            WorkerState.SUCCESS,
            WorkerState.ERROR,
        ):
            return
        checked, self.checking = self.checking, None
        self.query_one("#form-error", Label).update("")
        if event.state is WorkerState.ERROR:  # the save says what is wrong (it checks again)
            super().action_save()
            return
        if checked != self.values():  # typed on while it was checked: check what is there now
            self.action_save()
            return
        problems: dict[str, str] = event.worker.result or {}
        if problems:
            self.show_errors(problems)
            return
        super().action_save()  # checked: the save's own check finds the trial remembered


def _problems(values: dict[str, str]) -> dict[str, str]:
    """The check's messages by field ({} when the template may be saved); runs in a thread, without the
    database (the name is checked by the save)."""

    try:
        email_templates.check_template(values.get("subject", ""), values.get("body", ""))
    except ValidationError as exc:
        return dict(exc.errors)
    return {}
