"""Importing from the app (I on a list or the board): the file's path, then a preview of every row (created,
merged into an existing record, skipped, or the reason it cannot be imported, by line) before anything is
written; y imports merging duplicates, s imports skipping them, Esc leaves everything as it was."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label, Static

from crm_tui.core.errors import CrmError
from crm_tui.core.interchange import importer
from crm_tui.core.sanitize import terminal_safe
from crm_tui.ui.app_access import app_context
from crm_tui.ui.messages import ImportDone, ImportPreviewed
from crm_tui.ui.screens.dialogs import PromptDialog
from crm_tui.ui.widgets.guard import ReportsErrors

ACTION_STYLE = {"created": "green", "merged": "cyan", "skipped": "dim", "failed": "bold red"}
WILL_BE = {"created": "created", "merged": "merged", "skipped": "skipped", "failed": "not imported"}
ROWS_SHOWN = 2000

if TYPE_CHECKING:
    from textual.screen import Screen

    # The type checker sees the mixin as the screen it always sits on.
    _ImportingScreen = Screen[Any]
else:
    _ImportingScreen = object


class ImportPreview(ReportsErrors, ModalScreen[str | None]):
    """Shows a preview report; dismisses with "merge", "skip" or None."""

    BINDINGS = [
        Binding("y", "choose('merge')", "Import (merge duplicates)", id="import.merge"),
        Binding("s", "choose('skip')", "Import (skip duplicates)", id="import.skip"),
        Binding("escape", "choose(None)", "Cancel", id="import.cancel"),
    ]

    def __init__(self, path: Path, report: Any) -> None:
        super().__init__()
        self.path, self.report = path, report

    def compose(self) -> ComposeResult:
        report = self.report
        with Vertical(classes="dialog import-preview"):
            yield Label(
                Text(
                    terminal_safe(f"Import {report.type} from {self.path.name}: preview", max_length=100),
                    style="bold",
                ),
                classes="dialog-title",
            )
            summary = Text(report.summary().replace("would be ", "to be ") + "\n")
            if report.unknown_columns:
                summary.append(
                    "Ignored columns: "
                    + ", ".join(terminal_safe(c, max_length=30) for c in report.unknown_columns)
                    + "\n",
                    style="yellow",
                )
            for line, reason in report.problems()[:8]:
                summary.append(terminal_safe(f"line {line}: {reason}", max_length=150) + "\n", style="red")
            if len(report.problems()) > 8:
                summary.append(f"... and {len(report.problems()) - 8} more problems\n", style="red")
            yield Static(summary, id="import-summary")
            yield DataTable(id="import-rows", cursor_type="row", zebra_stripes=True)
            yield Label(
                Text(
                    "y import (duplicates merged) · s import (duplicates skipped) · esc cancel: nothing written",
                    style="dim",
                )
            )

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("Line", "Will be", "Record", "Why")
        # Every row of the file by its line: the ones read (and what becomes of them), the ones that could not be.
        lines = sorted(
            [(r.line, r.action, r.label, r.message) for r in self.report.results]
            + [(line, "failed", "(cannot be read)", reason) for line, reason in self.report.unreadable]
        )
        for line, action, label, message in lines[:ROWS_SHOWN]:
            table.add_row(
                str(line), Text(WILL_BE[action], style=ACTION_STYLE.get(action, "")),
                terminal_safe(label, max_length=50), terminal_safe(message, max_length=80),
            )  # fmt: skip
        if len(lines) > ROWS_SHOWN:
            table.add_row("", Text(f"... {len(lines) - ROWS_SHOWN} more rows", style="dim"), "", "")
        table.focus()

    def action_choose(self, choice: str | None) -> None:
        self.dismiss(choice)


class ImportsFromFiles(_ImportingScreen):
    """Screen mixin: ``start_import(type)`` asks for the file, previews in a worker, imports on confirmation.
    The screen's ``after_import()`` runs when records were written."""

    def start_import(self, type_name: str) -> None:
        what = {"contacts": "contacts (CSV or vCard)", "organizations": "organizations (CSV)",
                "leads": "leads (CSV)", "opportunities": "opportunities (CSV)"}[type_name]  # fmt: skip

        def entered(path: str | None) -> None:
            if path:
                self._preview_import(type_name, Path(path).expanduser())

        self.app.push_screen(
            PromptDialog(f"Import {what} from the file", placeholder="~/contacts.vcf"), entered
        )

    @work(thread=True, exclusive=True, group="import", exit_on_error=False)
    def _preview_import(self, type_name: str, path: Path) -> None:
        context = app_context(self)
        try:
            rows, unreadable, fmt = importer.read_file(path)
            if fmt == "vcard" and type_name != "contacts":
                raise CrmError("a vCard file holds contacts: import it from the contacts list")
            report = importer.run(
                context.database(),
                type_name,
                rows,
                now=context.clock.now(),
                preview=True,
                unreadable=unreadable,
                owner_id=context.me_id(),
            )
        except CrmError as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="warning", timeout=10)
            return
        self.post_message(ImportPreviewed(path, type_name, report))

    # Named handlers (not @on): Textual collects @on handlers only from its own classes, not from a mixin.
    def on_import_previewed(self, message: ImportPreviewed) -> None:
        def chosen(choice: str | None) -> None:
            if choice:
                self._run_import(message.type_name, message.path, choice)

        self.app.push_screen(ImportPreview(message.path, message.report), chosen)

    @work(thread=True, exclusive=True, group="import", exit_on_error=False)
    def _run_import(self, type_name: str, path: Path, on_duplicate: str) -> None:
        context = app_context(self)
        try:
            rows, unreadable, _ = importer.read_file(path)
            report = importer.run(
                context.database(), type_name, rows, on_duplicate=on_duplicate, now=context.clock.now(),
                unreadable=unreadable, owner_id=context.me_id(),
            )  # fmt: skip
        except CrmError as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="warning", timeout=10)
            return
        self.post_message(ImportDone(report.summary(), len(report.problems())))

    def on_import_done(self, message: ImportDone) -> None:
        self.notify(
            f"Imported: {message.summary}"
            + (" (the rows with problems were left out)" if message.problems else ""),
            severity="warning" if message.problems else "information",
            timeout=10,
        )
        self.after_import()

    def after_import(self) -> None:
        pass
