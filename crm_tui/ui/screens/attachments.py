"""The attachments of a mail (v in the inbox): save one to a folder, open it with the system's opener (only
when asked), or keep it in a record's documents. The documents of a record (o in the lists) the same way."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Label, OptionList
from textual.widgets.option_list import Option

from crm_tui.core.errors import CrmError
from crm_tui.core.sanitize import terminal_safe
from crm_tui.core.services import attachments, mail_actions, records
from crm_tui.core.services.attachments import safe_filename
from crm_tui.core.types import RecordRef
from crm_tui.core.wording import size_text
from crm_tui.runtime.context import AppContext
from crm_tui.ui.screens.base import CrmScreen, record_name, write_in_worker
from crm_tui.ui.screens.dialogs import ChoiceDialog, ConfirmDialog, PromptDialog
from crm_tui.ui.screens.typeahead import FollowsTypeahead
from crm_tui.ui.widgets.option_list import Options


def opener_command() -> list[str] | None:
    """The command that opens a file the way the desktop does: $CRM_TUI_OPENER, else xdg-open / open."""
    configured = os.environ.get("CRM_TUI_OPENER", "").strip()
    if configured:
        return shlex.split(configured)
    for candidate in ("xdg-open", "open") if sys.platform != "darwin" else ("open",):
        if shutil.which(candidate):
            return [candidate]
    return None


def free_path(folder: Path, name: str) -> Path:
    """``folder/name``, or ``name (1)``, ``name (2)``... where that exists: saving never overwrites."""
    target = folder / name
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    counter = 1
    while target.exists():
        target = folder / (f"{stem} ({counter}).{ext}" if ext else f"{stem} ({counter})")
        counter += 1
    return target


def save_attachment(folder: Path, name: str, payload: bytes) -> Path:

    try:
        folder.mkdir(parents=True, exist_ok=True)
        target = free_path(folder, safe_filename(name or "attachment"))
        with open(target, "xb") as out:
            out.write(payload)
    except OSError as exc:
        if exc.errno == 28:
            raise CrmError("the disk is full: the attachment was not saved") from exc
        raise CrmError(f"cannot save to {folder}: {exc.strerror or exc}") from exc
    return target


def attach_file(screen: CrmScreen, ref: RecordRef, attached: Callable[[str], None]) -> None:
    """Ask for the path of a file and keep a copy in the record's documents (``A``); ``attached(name)`` after.
    The copy is made in the dialog's worker; a path that does not exist keeps the dialog open with the reason,
    so it can be corrected."""
    context = screen.context
    names: list[str] = []

    def save(path: str) -> str | None:
        failed, name = screen.attempt(
            lambda session: (
                attachments.add_document(
                    session,
                    ref,
                    Path(path).expanduser(),
                    store=context.document_store(),
                    added_by_id=context.me_id(),
                    now=context.clock.now(),
                ).filename
            )
        )
        if failed is None:
            names.append(name)
        return failed

    def entered(path: str | None) -> None:
        if path and names:
            screen.notify(f"Attached {terminal_safe(names[-1])}.")
            attached(names[-1])

    screen.app.push_screen(
        PromptDialog(
            f"Attach a file to {screen.record_name(ref)}", placeholder="path of the file", save=save
        ),
        entered,
    )


class AttachmentsScreen(FollowsTypeahead, ModalScreen[None]):
    BINDINGS = [
        Binding("escape", "close", "Close", id="attachments.close"),
        Binding("q", "close", "Close", show=False, id="attachments.quit"),
        Binding("s", "save", "Save to folder", id="attachments.save"),
        Binding("o", "open", "Open", id="attachments.open"),
        Binding("r", "to_record", "To record's documents", id="attachments.to_record"),
        Binding("j", "move(1)", "Down", show=False, id="attachments.down"),
        Binding("k", "move(-1)", "Up", show=False, id="attachments.up"),
    ]

    heading = "Attachments"  # (not "title": a Screen's title is Textual's own reactive, None here)
    hint = "s save · o open · r to the record's documents · esc close"

    def __init__(self, message_id: int, files: list[tuple[str, str, bytes]], context: AppContext) -> None:
        super().__init__()
        self.message_id, self.crm = message_id, context
        self.entries = [(name, kind, len(payload)) for name, kind, payload in files]
        self._payloads = [payload for _, _, payload in files]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Text(f"{self.heading} ({len(self.entries)})", style="bold"), classes="dialog-title")
            yield Options(*self._options(), id="attachment-list")
            yield Label(Text(self.hint, style="dim"))
        yield Footer()

    def _options(self) -> list[Option]:
        return [
            Option(
                Text(f"{terminal_safe(name, max_length=60) or '(unnamed)'}  ")
                + Text(f"{terminal_safe(kind)} · {size_text(str(size))}", style="dim"),
                id=str(index),
            )
            for index, (name, kind, size) in enumerate(self.entries)
        ]

    def on_mount(self) -> None:
        listing = self.query_one(OptionList)
        listing.focus()
        listing.highlighted = 0 if self.entries else None

    def highlighted(self) -> int | None:
        index = self.query_one(OptionList).highlighted
        return index if index is not None and index < len(self.entries) else None

    def chosen(self) -> tuple[str, str, bytes] | None:
        index = self.highlighted()
        if index is None:
            return None
        name, kind, _ = self.entries[index]
        return name, kind, self._payloads[index]

    def deliver(self, index: int, work: Callable[[str, bytes], str]) -> None:
        """``work(name, bytes)`` for entry ``index`` (writes a file, starts the opener) and say its message,
        or the error. The mail's attachments are in memory: here, at once."""
        name, _, _ = self.entries[index]
        try:
            message = work(name, self._payloads[index])
        except (CrmError, OSError) as exc:
            self.notify(str(exc), severity="warning")
            return
        self.notify(message)

    def action_move(self, step: int) -> None:
        self.query_one(OptionList).action_cursor_down() if step > 0 else self.query_one(
            OptionList
        ).action_cursor_up()

    @on(OptionList.OptionSelected)
    def _selected(self) -> None:
        self.action_save()

    def action_save(self) -> None:

        index = self.highlighted()
        if index is None:
            return
        downloads = Path.home() / "Downloads"
        default = str(downloads if downloads.is_dir() else Path.home())

        def where(folder: str | None) -> None:
            if folder:
                self.deliver(
                    index,
                    lambda name, payload: (
                        "saved: "
                        + terminal_safe(str(save_attachment(Path(folder).expanduser(), name, payload)))
                    ),
                )

        self.app.push_screen(PromptDialog("Save to folder", value=default), where)

    def action_open(self) -> None:
        index = self.highlighted()
        if index is None:
            return
        command = opener_command()
        if command is None:
            self.notify("no program to open files here (set CRM_TUI_OPENER); s saves it", severity="warning")
            return

        def open_copy(name: str, payload: bytes) -> str:
            target = save_attachment(Path(tempfile.mkdtemp(prefix="crm-tui-open-")), name, payload)
            try:
                subprocess.Popen(  # noqa: S603 - the user's opener with one file path, no shell
                    [*command, str(target)],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            except OSError as exc:
                raise CrmError(f"cannot open it: {exc}") from exc
            return f"opened {terminal_safe(target.name)}"

        self.deliver(index, open_copy)

    def action_to_record(self) -> None:

        item = self.chosen()
        if item is None:
            return
        with self.crm.database().read() as session:
            links = mail_actions.filed_on(session, self.message_id)
        if not links:
            self.notify("file the mail on a record first (e)", severity="warning")
            return

        def into(ref_text: str | None) -> None:
            if ref_text:
                self._keep(item, RecordRef.parse(ref_text))

        if len(links) == 1:
            into(links[0][0])
        else:
            self.app.push_screen(
                ChoiceDialog(
                    "Keep it in the documents of", [(v, terminal_safe(label)) for v, label in links]
                ),
                into,
            )

    def _keep(self, item: tuple[str, str, bytes], ref: Any) -> None:

        crm = self.crm
        folder = Path(tempfile.mkdtemp(prefix="crm-tui-keep-"))

        def keep(session: Any) -> None:
            # In the worker: the file is written out, stored (up to 512 MiB) and its temporary copy removed.
            try:
                source = save_attachment(folder, item[0], item[2])
                attachments.add_document(
                    session,
                    ref,
                    source,
                    store=crm.document_store(),
                    added_by_id=crm.me_id(),
                    now=crm.clock.now(),
                    filename=source.name,
                )
            finally:
                shutil.rmtree(folder, ignore_errors=True)

        write_in_worker(
            self, keep, lambda _: self.notify(f"kept in the documents of {record_name(crm, ref)}")
        )

    def action_close(self) -> None:
        self.dismiss(None)


class DocumentsScreen(AttachmentsScreen):
    """The documents of a record: save, open, or remove one from the record. The bytes are read from the
    document store (files beside SQLite, the shared database in team mode) only when one is saved or opened."""

    BINDINGS = [
        Binding("d", "remove", "Remove from the record", id="documents.remove"),
    ]
    heading = "Documents"
    hint = "s save · o open · d remove from the record · esc close"

    def __init__(self, ref: RecordRef, context: AppContext) -> None:
        super().__init__(0, [], context)
        self.ref = ref
        self.document_ids: list[int] = []
        self._load()

    def _load(self) -> None:

        with self.crm.database().read() as session:
            documents = attachments.document_infos(session, self.ref)
            try:
                self.heading = f"Documents of {records.record_label(session, self.ref)}"
            except CrmError:  # the record was removed meanwhile
                self.heading = f"Documents of {self.ref}"
        self.document_ids = [document.id for document in documents]
        self.entries = [(document.filename, document.content_type, document.size) for document in documents]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return action != "to_record"

    def deliver(self, index: int, work: Callable[[str, bytes], str]) -> None:
        """As for a mail's attachments, but in a worker thread: a document is read from the store (the shared
        database, in team mode) and written out, up to 512 MiB, without freezing the screen."""
        document_id, name = self.document_ids[index], self.entries[index][0]
        self.notify(f"reading {terminal_safe(name)}...", timeout=2)

        def run() -> None:

            try:
                with self.crm.database().read() as session:
                    _, payload = attachments.read_document(session, self.crm.document_store(), document_id)
                message = work(name, payload)
            except (CrmError, OSError) as exc:
                self.app.call_from_thread(self.notify, str(exc), severity="warning")
                return
            self.app.call_from_thread(self.notify, message)

        self.run_worker(run, thread=True, group="documents", exit_on_error=False)

    def action_remove(self) -> None:

        index = self.highlighted()
        if index is None:
            return
        name = terminal_safe(self.entries[index][0])

        def confirmed(yes: bool | None) -> None:
            if not yes:
                return

            write_in_worker(
                self,
                lambda session: attachments.delete_document(session, self.document_ids[index]),
                lambda orphans: self._removed(index, name, orphans),
            )

        self.app.push_screen(
            ConfirmDialog(
                f"Remove {name}?", f"It is no longer a document of {record_name(self.crm, self.ref)}."
            ),
            confirmed,
        )

    def _removed(self, index: int, name: str, orphans: list[str]) -> None:
        """A document is off the record: its file goes when no other record has it, and the list shows it."""
        self.crm.document_store().discard(orphans)
        self.notify(f"removed {name} from {record_name(self.crm, self.ref)}")
        self._load()
        listing = self.query_one(OptionList)
        listing.clear_options()
        listing.add_options(self._options())
        listing.highlighted = min(index, len(self.entries) - 1) if self.entries else None
        self.query_one(".dialog-title", Label).update(
            Text(f"{self.heading} ({len(self.entries)})", style="bold")
        )
