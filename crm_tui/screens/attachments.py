"""The attachments of a mail (v in the inbox): save one to a folder, open it with the system's opener (only
when asked), or keep it in a record's documents."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
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
from crm_tui.screens.base import FollowsTypeahead


def opener_command() -> list[str] | None:
    """The command that opens a file the way the desktop does: $CRM_TUI_OPENER, else xdg-open / open."""
    configured = os.environ.get("CRM_TUI_OPENER", "").strip()
    if configured:
        import shlex

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
    from crm_tui.core.services.attachments import safe_filename

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

    def __init__(self, message_id: int, files: list[tuple[str, str, bytes]], context: Any) -> None:
        super().__init__()
        self.message_id, self.files, self.crm = message_id, files, context
        self.saved_to: list[Path] = []

    def compose(self) -> ComposeResult:
        from crm_tui.screens.inbox import _size

        with Vertical(classes="dialog"):
            yield Label(Text(f"Attachments ({len(self.files)})", style="bold"), classes="dialog-title")
            yield OptionList(
                *(
                    Option(
                        Text(f"{terminal_safe(name, max_length=60) or '(unnamed)'}  ")
                        + Text(f"{terminal_safe(kind)} · {_size(str(len(payload)))}", style="dim"),
                        id=str(index),
                    )
                    for index, (name, kind, payload) in enumerate(self.files)
                ),
                id="attachment-list",
            )
            yield Label(Text("s save · o open · r to the record's documents · esc close", style="dim"))
        yield Footer()

    def on_mount(self) -> None:
        listing = self.query_one(OptionList)
        listing.focus()
        listing.highlighted = 0 if self.files else None

    def chosen(self) -> tuple[str, str, bytes] | None:
        index = self.query_one(OptionList).highlighted
        return self.files[index] if index is not None and index < len(self.files) else None

    def action_move(self, step: int) -> None:
        self.query_one(OptionList).action_cursor_down() if step > 0 else self.query_one(
            OptionList
        ).action_cursor_up()

    @on(OptionList.OptionSelected)
    def _selected(self) -> None:
        self.action_save()

    def action_save(self) -> None:
        from crm_tui.screens.dialogs import PromptDialog

        item = self.chosen()
        if item is None:
            return
        downloads = Path.home() / "Downloads"
        default = str(downloads if downloads.is_dir() else Path.home())

        def where(folder: str | None) -> None:
            if not folder:
                return
            try:
                target = save_attachment(Path(folder).expanduser(), item[0], item[2])
            except CrmError as exc:
                self.notify(str(exc), severity="error")
                return
            self.saved_to.append(target)
            self.notify(f"saved: {terminal_safe(str(target))}")

        self.app.push_screen(PromptDialog("Save to folder", value=default), where)

    def action_open(self) -> None:
        item = self.chosen()
        if item is None:
            return
        command = opener_command()
        if command is None:
            self.notify("no program to open files here (set CRM_TUI_OPENER); s saves it", severity="warning")
            return
        folder = Path(tempfile.mkdtemp(prefix="crm-tui-open-"))
        try:
            target = save_attachment(folder, item[0], item[2])
            subprocess.Popen(  # noqa: S603 - the user's opener with one file path, no shell
                [*command, str(target)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        except (CrmError, OSError) as exc:
            self.notify(f"cannot open it: {exc}", severity="error")
            return
        self.notify(f"opened {terminal_safe(target.name)}")

    def action_to_record(self) -> None:
        from crm_tui.core.services import mail_actions
        from crm_tui.core.types import RecordRef
        from crm_tui.screens.dialogs import ChoiceDialog

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
        from crm_tui.core.services import attachments

        folder = Path(tempfile.mkdtemp(prefix="crm-tui-keep-"))
        try:
            source = save_attachment(folder, item[0], item[2])
            with self.crm.database().write() as session:
                attachments.add_document(
                    session,
                    ref,
                    source,
                    documents_dir=self.crm.paths.documents_dir(demo=self.crm.demo),
                    added_by_id=self.crm.me_id(),
                    now=self.crm.clock.now(),
                    filename=source.name,
                )
        except CrmError as exc:
            self.notify(str(exc), severity="error")
            return
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        self.notify(f"kept in the documents of {ref}")

    def action_close(self) -> None:
        self.dismiss(None)
