"""What every screen and dialog of the app looks like on the demo data with a pinned date (SVG snapshots,
pytest-textual-snapshot, taken with the Textual version pyproject.toml pins): each mode and each of its views,
the form of every record kind, every dialog, picker and mail screen, each reached by the keys a user types.

Each snapshot names the screen class it shows (and checks that it is the one in front); a Screen class of
crm_tui/ui that no snapshot shows fails ``test_every_screen_class_has_a_snapshot``, so a new dialog is seen.

Update deliberately after a visual change: ./scripts/test tests/ui/test_snapshots.py --snapshot-update
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from textual.command import CommandPalette
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import DataTable, Input, OptionList, Static, TextArea

import crm_tui.ui
from crm_tui.core.services import mail_store
from crm_tui.mail.parse import parse_message
from crm_tui.runtime.context import AppContext
from crm_tui.ui.screens.attachments import AttachmentsScreen, DocumentsScreen
from crm_tui.ui.screens.automation import AutomationScreen, RuleForm
from crm_tui.ui.screens.base import CrmScreen
from crm_tui.ui.screens.calendar import CalendarScreen
from crm_tui.ui.screens.compose import ComposeScreen
from crm_tui.ui.screens.contacts import ContactsScreen
from crm_tui.ui.screens.deal import DealPicker, DealScreen
from crm_tui.ui.screens.deal_moves import StagePicker
from crm_tui.ui.screens.dialogs import ChoiceDialog, ConfirmDialog, PromptDialog
from crm_tui.ui.screens.funnel import FunnelScreen
from crm_tui.ui.screens.import_preview import ImportPreview
from crm_tui.ui.screens.inbox import InboxScreen, MessageReader
from crm_tui.ui.screens.mail_report import SentReportScreen
from crm_tui.ui.screens.mass_mail import MassMailScreen
from crm_tui.ui.screens.opportunities import OpportunitiesScreen, SubstatesDialog
from crm_tui.ui.screens.outbox import OutboxMailScreen, OutboxScreen
from crm_tui.ui.screens.pickers import FolderPicker, Picker, RecordPicker
from crm_tui.ui.screens.record_form import RecordForm
from crm_tui.ui.screens.settings import SettingsScreen
from crm_tui.ui.screens.template_form import TemplateForm
from crm_tui.ui.screens.template_picker import TemplatePicker
from crm_tui.ui.widgets.paged_table import PagedTable
from crm_tui.ui.widgets.record_detail import RecordDetail
from tests.ui.helpers import NOW, wait_for
from tests.ui.keywalk import RecordingApp, settle

SIZE = (150, 44)
ScreenClass = type[Screen[Any]]
Prepare = Callable[[AppContext, Path], None]


def typed(text: str) -> tuple[str, ...]:
    """The keys of ``text`` typed one by one."""
    return tuple(text)


@dataclass(frozen=True)
class Shot:
    """One snapshot: the mode the app opens in, the keys then typed (each waited on until the app is idle),
    and the screen class in front afterwards. ``prepare`` puts what the demo lacks (a file to attach or to
    import, a mail with an attachment) in place before the app starts; typed paths are relative to the
    demo's folder, the current directory of the test."""

    name: str
    mode: str
    keys: tuple[str, ...]
    shows: ScreenClass
    prepare: Prepare | None = None


def _vcard(context: AppContext, folder: Path) -> None:
    (folder / "neu.vcf").write_text(
        "BEGIN:VCARD\r\nVERSION:3.0\r\nN:Neumann;Ida;;;\r\nFN:Ida Neumann\r\nEMAIL:ida.neumann@example.org\r\n"
        "ORG:Neumann Dach GmbH\r\nEND:VCARD\r\n"
        "BEGIN:VCARD\r\nVERSION:3.0\r\nN:Brandt;Ole;;;\r\nFN:Ole Brandt\r\nEMAIL:ole@brandt.example\r\nEND:VCARD\r\n",
        encoding="utf-8",
    )


def _offer(context: AppContext, folder: Path) -> None:
    (folder / "offer.pdf").write_bytes(b"%PDF-1.4\n% an offer\n")


def _mail_with_attachment(context: AppContext, folder: Path) -> None:
    """The newest mail in the inbox: a customer's, with a PDF attached (as a sync stores it)."""
    message = EmailMessage()
    message["From"] = "Jonas Richter <jonas.richter@example.org>"
    message["To"] = "Demo <demo@example.com>"
    message["Subject"] = "Unterlagen zum Dach"
    message["Date"] = format_datetime(NOW - timedelta(hours=1))
    message["Message-ID"] = "<snapshot.attachment@example.org>"
    message.set_content("Guten Tag,\n\nanbei die Pläne unseres Dachs.\n\nJonas Richter\n")
    message.add_attachment(b"%PDF-1.4\n% plans\n", maintype="application", subtype="pdf", filename="dach.pdf")
    with context.database().write() as session:
        stored = mail_store.store_message(
            session, parse_message(message.as_bytes()), now=NOW - timedelta(hours=1)
        )
        session.add(stored)


# Each mode and each of its views: the record lists, the board and forecast, the calendar's views, the inbox's
# views and reader, each settings section.
MODES = [
    Shot("contacts", "contacts", (), ContactsScreen),
    Shot("organizations", "contacts", ("]",), ContactsScreen),
    Shot("leads", "contacts", ("]", "]"), ContactsScreen),
    Shot("tickets", "contacts", ("]", "]", "]"), ContactsScreen),
    Shot("quotes", "contacts", ("]", "]", "]", "]"), ContactsScreen),
    Shot("contacts-search", "contacts", ("/", *typed("baumann")), ContactsScreen),
    Shot("board", "opportunities", (), OpportunitiesScreen),
    Shot("board-next-pipeline", "opportunities", ("p",), OpportunitiesScreen),
    Shot("forecast", "opportunities", ("f",), OpportunitiesScreen),
    Shot("funnel", "opportunities", ("F",), FunnelScreen),
    Shot("deal-screen", "opportunities", ("enter",), DealScreen),
    Shot("calendar-week", "calendar", (), CalendarScreen),
    Shot("calendar-day", "calendar", ("d",), CalendarScreen),
    Shot("calendar-month", "calendar", ("m",), CalendarScreen),
    Shot("inbox", "inbox", (), InboxScreen),
    Shot("inbox-unlinked", "inbox", ("c", *typed("unlinked"), "enter"), InboxScreen),
    Shot("inbox-deals", "inbox", ("c", *typed("open deals"), "enter"), InboxScreen),
    Shot("inbox-awaiting", "inbox", ("c", *typed("awaiting"), "enter"), InboxScreen),
    Shot("inbox-no-reply", "inbox", ("c", *typed("no reply"), "enter"), InboxScreen),
    Shot("inbox-threads", "inbox", ("V",), InboxScreen),
    Shot("reader", "inbox", ("enter",), MessageReader),
    Shot("settings", "settings", (), SettingsScreen),
    Shot("settings-pipelines", "settings", ("shift+tab", "j"), SettingsScreen),
    Shot("settings-fields", "settings", ("shift+tab", "j", "j"), SettingsScreen),
    Shot("settings-accounts", "settings", ("shift+tab", "j", "j", "j"), SettingsScreen),
    Shot("settings-templates", "settings", ("shift+tab", "j", "j", "j", "j"), SettingsScreen),
    Shot("automation-rules", "opportunities", ("R",), AutomationScreen),
    Shot("automation-pending", "opportunities", ("R", "p"), AutomationScreen),
    Shot("automation-log", "opportunities", ("R", "l"), AutomationScreen),
]

# The form of each record kind, opened on a record of the demo (e), and a new contact's (n).
FORMS = [
    Shot("contact", "contacts", ("e",), RecordForm),
    Shot("contact-new", "contacts", ("n",), RecordForm),
    Shot("organization", "contacts", ("]", "e"), RecordForm),
    Shot("lead", "contacts", ("]", "]", "e"), RecordForm),
    Shot("ticket", "contacts", ("]", "]", "]", "e"), RecordForm),
    Shot("quote", "contacts", ("]", "]", "]", "]", "e"), RecordForm),
    Shot("activity-of-record", "contacts", ("a",), RecordForm),
    Shot("deal", "opportunities", ("e",), RecordForm),
    Shot("deal-new", "opportunities", ("n",), RecordForm),
    Shot("activity", "calendar", ("a",), RecordForm),
    Shot("lead-from-mail", "inbox", ("L",), RecordForm),
    Shot("user", "settings", ("e",), RecordForm),
    Shot("stage", "settings", ("shift+tab", "j", "e"), RecordForm),
    Shot("custom-field", "settings", ("shift+tab", "j", "j", "e"), RecordForm),
    Shot("mail-account", "settings", ("shift+tab", "j", "j", "j", "e"), RecordForm),
    Shot("template", "settings", ("shift+tab", "j", "j", "j", "j", "e"), TemplateForm),
    Shot("rule", "opportunities", ("R", "e"), RuleForm),
]

# Dialogs and pickers, each where a user meets it.
DIALOGS = [
    Shot("confirm-delete", "contacts", ("D",), ConfirmDialog),
    Shot("confirm-stage-move", "opportunities", ("l", "l", "l", ">"), ConfirmDialog),
    Shot("prompt-comment", "contacts", ("c",), PromptDialog),
    Shot("prompt-new-pipeline", "settings", ("shift+tab", "j", "N"), PromptDialog),
    Shot("choice-convert-lead", "contacts", ("]", "]", "C"), ChoiceDialog),
    Shot("substates", "opportunities", ("l", "l", "l", "s"), SubstatesDialog),
    Shot("stage-picker", "opportunities", ("G",), StagePicker),
    Shot("deal-picker", "contacts", ("ctrl+p", *typed("open deal"), "enter"), DealPicker),
    Shot("import-preview", "contacts", ("I", *typed("neu.vcf"), "enter"), ImportPreview, _vcard),
    Shot("documents", "contacts", ("A", *typed("offer.pdf"), "enter", "o"), DocumentsScreen, _offer),
    Shot("attachments", "inbox", ("v",), AttachmentsScreen, _mail_with_attachment),
    Shot("folder-picker", "inbox", ("c",), FolderPicker),
    Shot("record-picker", "inbox", ("e", *typed("wiesen")), RecordPicker),
    Shot("template-picker", "inbox", ("T",), TemplatePicker),
    Shot("help", "contacts", ("?",), ContactsScreen),
    Shot("command-palette", "contacts", ("ctrl+p",), CommandPalette),
]

# Writing mail: compose (new, reply, forward, to a record), leaving it, the outbox, a mass mailing.
MAIL = [
    Shot("compose-new", "inbox", ("m",), ComposeScreen),
    Shot("compose-reply", "inbox", ("r",), ComposeScreen),
    Shot("compose-forward", "inbox", ("f",), ComposeScreen),
    Shot("compose-to-record", "contacts", ("m",), ComposeScreen),
    Shot("compose-leave", "inbox", ("m", *typed("a"), "escape"), ChoiceDialog),
    Shot("outbox", "inbox", ("r", "ctrl+s", "o"), OutboxScreen),
    Shot("outbox-mail", "inbox", ("r", "ctrl+s", "o", "enter"), OutboxMailScreen),
    Shot("sent-report", "inbox", ("o", "r"), SentReportScreen),
    Shot("mass-mail", "contacts", ("M", "enter"), MassMailScreen),
]

SHOTS = MODES + FORMS + DIALOGS + MAIL

# Screen classes never shown by themselves: the bases of the others.
BASES: dict[ScreenClass, str] = {
    CrmScreen: "the base of every full screen",
    Picker: "the base of the pickers (its refill is theirs)",
}


def _loaded(app: RecordingApp) -> bool:
    """What the screen in front shows has been loaded: its list's rows, the preview, the detail's timeline,
    the board's columns, the calendar's days."""
    if any(worker.is_running for worker in app.workers):
        return False
    screen = app.screen
    tables = list(screen.query(PagedTable))
    if tables and (tables[0].row_count == 0 or tables[0]._loading):
        return False
    previews = list(screen.query("#preview").results(Static))
    if previews and not str(previews[0].render()).strip():
        return False
    details = list(screen.query(RecordDetail))
    if details and "Timeline" not in str(details[0].render()):
        return False
    lists = list(screen.query(".column-list, .day-list").results(OptionList))
    if lists and not any(lst.option_count for lst in lists):
        return False
    if isinstance(screen, CalendarScreen) and screen.view == "month":
        return bool(screen.query("#month")) and screen.query_one("#month", DataTable).row_count == 6
    if isinstance(screen, CalendarScreen) and not lists:
        return False
    return not (
        screen.query("#settings-table") and screen.query_one("#settings-table", DataTable).row_count == 0
    )


def _fields(screen: Screen[Any]) -> list[Input | TextArea]:
    return [*screen.query(Input), *screen.query(TextArea)]


def _focus_known(app: RecordingApp) -> bool:
    """Every field has handled its focus or blur, the ones of a screen under a dialog too (whether a field's
    cursor shows hangs on it; a screen keeps its focused field while a dialog is over it)."""
    return all(
        field.has_focus == (field is screen.focused)
        for screen in app.screen_stack
        for field in _fields(screen)
    )


def _hold_still(app: RecordingApp) -> None:
    """What moves with the clock and not with the keys, held still for the picture: a field's cursor blinks on
    a timer (held: shown where the focus is), and notifications go after their timeout (cleared, on every
    screen of the stack since a dialog shows the screen under it; the test reads them from ``app.shown``)."""
    for screen in app.screen_stack:
        for field in screen.query(Input):
            field.cursor_blink = False
        for area in screen.query(TextArea):
            # Not cursor_blink = False: Textual's TextArea caches a line with the cursor only while it blinks,
            # so with the blink off the cursor shows or not by what was cached last.
            area._pause_blink(visible=area.has_focus)
    app.clear_notifications()
    for screen in app.screen_stack:
        for rack in screen.query("#textual-toastrack"):
            rack.remove_children()


def _take(
    snap_compare: Any,
    make_app: Callable[..., RecordingApp],
    demo_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    shot: Shot,
) -> None:
    # No mail sync: the demo account's "not connected" would reach the status bar at a moment of its own.
    app = make_app(demo_home, start_mode=shot.mode, run_automations=False, sync_mail=False)
    # The status bar's "working" mark shows once a worker has run 0.3 s: whether a load took that long is the
    # machine's, not the screen's.
    monkeypatch.setattr("crm_tui.ui.app.BUSY_MARK_DELAY", 3600.0)
    if shot.prepare is not None:
        shot.prepare(app.context, demo_home)
    monkeypatch.chdir(demo_home)
    shown: list[ScreenClass] = []

    async def type_keys(pilot: Pilot[None]) -> None:
        await wait_for(lambda: _loaded(app), pilot)
        for key in shot.keys:
            await pilot.press(key)
            await settle(pilot)
            await wait_for(lambda: _loaded(app), pilot)
        await wait_for(lambda: _focus_known(app), pilot)
        _hold_still(app)
        await settle(pilot)
        shown.append(type(app.screen))

    matches = snap_compare(app, terminal_size=SIZE, run_before=type_keys)
    assert shown == [shot.shows], f"{shot.name}: {shown} in front, not {shot.shows.__name__}"
    errors = [text for severity, text in app.shown if severity == "error"]
    assert not errors, f"{shot.name}: error notifications {errors}"
    assert matches


def _cases(shots: list[Shot]) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("shot", shots, ids=[shot.name for shot in shots])


@_cases(MODES)
def test_main_screens(
    snap_compare: Any,
    make_app: Callable[..., RecordingApp],
    demo_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    shot: Shot,
) -> None:
    _take(snap_compare, make_app, demo_home, monkeypatch, shot)


@_cases(FORMS)
def test_forms(
    snap_compare: Any,
    make_app: Callable[..., RecordingApp],
    demo_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    shot: Shot,
) -> None:
    _take(snap_compare, make_app, demo_home, monkeypatch, shot)


@_cases(DIALOGS)
def test_dialogs(
    snap_compare: Any,
    make_app: Callable[..., RecordingApp],
    demo_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    shot: Shot,
) -> None:
    _take(snap_compare, make_app, demo_home, monkeypatch, shot)


@_cases(MAIL)
def test_mail_screens(
    snap_compare: Any,
    make_app: Callable[..., RecordingApp],
    demo_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    shot: Shot,
) -> None:
    _take(snap_compare, make_app, demo_home, monkeypatch, shot)


def _screen_classes() -> set[ScreenClass]:
    """Every Screen (and ModalScreen) class defined in crm_tui/ui."""
    found: set[ScreenClass] = set()
    for module_info in pkgutil.walk_packages(crm_tui.ui.__path__, "crm_tui.ui."):
        module = importlib.import_module(module_info.name)
        for _name, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, Screen) and cls.__module__ == module.__name__:
                found.add(cls)
    return found


def test_every_screen_class_has_a_snapshot() -> None:
    """A new screen or dialog gets a Shot above (and so a snapshot), or it fails here."""
    shown = {shot.shows for shot in SHOTS}
    missing = _screen_classes() - shown - set(BASES)
    assert not missing, "no snapshot shows " + ", ".join(
        sorted(f"{c.__module__}.{c.__name__}" for c in missing)
    )
    assert len({shot.name for shot in SHOTS}) == len(SHOTS), "two snapshots of one name"
