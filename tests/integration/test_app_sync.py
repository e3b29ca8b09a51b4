"""The app's background sync against Dovecot: mail arrives in the inbox, the status bar tells the state. The sync
runs in the app's background process (ui/supervisor.py): restarted when killed, gone when the app ends; the app's
own process holds no IDLE connection, no helper process and no process-wide setting of the sync."""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from crm_tui.cli.main import main
from crm_tui.ui.app import CrmApp
from crm_tui.ui.widgets.paged_table import PagedTable
from crm_tui.ui.widgets.status_bar import StatusBar
from tests.integration.conftest import Mailbox, eventually
from tests.integration.test_sync import message
from tests.ui.helpers import make_context, wait_for


def _status(app: CrmApp) -> str:
    return str(app.screen.query_one(StatusBar).render())


async def test_the_background_process_syncs_and_the_inbox_shows_new_mail(mailbox: Mailbox) -> None:
    for n in (1, 2):
        mailbox.append("INBOX", message(n, mid=f"<w{n}@firma.example>"))

    app = CrmApp(make_context(mailbox.home, demo=False), start_mode="inbox")
    async with app.run_test(size=(150, 44)) as pilot:
        await wait_for(lambda: "work: 2 new" in _status(app), pilot, timeout=20)
        table = app.screen.query_one(PagedTable)
        await wait_for(lambda: table.row_count == 2, pilot)
        assert {row.cells[3] for row in table.loaded_rows} == {"Angebot 1", "Angebot 2"}
        # More mail; ctrl+r syncs now (also in the palette as "Sync mail now").
        mailbox.append("INBOX", message(3, mid="<w3@firma.example>"))
        await pilot.press("ctrl+r")
        await wait_for(lambda: table.row_count == 3, pilot, timeout=20)
        # IDLE may have started a pass of its own: one of the two says "1 new", the other "up to date".
        await wait_for(lambda: "work: 1 new" in _status(app) or "work: up to date" in _status(app), pilot)


@pytest.mark.parametrize(
    "problem, shown",
    [("port", "work: offline, retrying in 1 min"), ("password", "work: wrong password")],
)
async def test_the_status_bar_says_what_is_wrong(
    mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch, problem: str, shown: str
) -> None:
    from tests.integration.dovecot import free_port

    if problem == "port":
        assert mailbox.cli("account", "edit", "work", "--imap-port", str(free_port())) == 0
    else:
        monkeypatch.setenv(mailbox.env_var, "not-the-password")

    app = CrmApp(make_context(mailbox.home, demo=False), start_mode="inbox")
    async with app.run_test(size=(150, 44)) as pilot:
        await wait_for(lambda: shown in _status(app), pilot, timeout=20)
        assert "Traceback" not in _status(app)


def fill_account_form(form: Any, mailbox: Mailbox, name: str, *, password_variable: str) -> None:
    """Settings > Mail accounts > n: the form filled for the fixture's Dovecot, its password in a variable."""
    from textual.widgets import Input, Select

    form.query_one("#f-name", Input).value = name
    form.query_one("#f-imap_host", Input).value = "127.0.0.1"
    form.query_one("#f-imap_port", Input).value = str(mailbox.server.port)
    form.query_one("#f-imap_security", Select).value = "none"
    form.query_one("#f-username", Input).value = mailbox.user
    form.query_one("#f-password_source", Select).value = "env"
    form.query_one("#f-password_ref", Input).value = password_variable
    form.query_one("#f-addresses", Input).value = "anna@crm.example"


async def test_accounts_are_editable_in_settings(mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings > Mail accounts: a bad field is named, a new account saves, t tests its login on Dovecot."""
    from textual.widgets import DataTable, Input, OptionList

    from crm_tui.ui.screens.record_form import RecordForm
    from crm_tui.ui.screens.settings import SettingsScreen

    monkeypatch.setenv("SECOND_PW", mailbox.password)

    app = CrmApp(make_context(mailbox.home, demo=False), start_mode="settings", sync_mail=False)
    async with app.run_test(size=(150, 44)) as pilot:
        screen = app.screen
        assert isinstance(screen, SettingsScreen)
        screen.query_one("#sections", OptionList).highlighted = 3
        await wait_for(lambda: screen.section == "accounts", pilot)
        table = screen.query_one("#settings-table", DataTable)
        await wait_for(lambda: table.row_count == 1, pilot)  # "work" from the fixture
        table.focus()
        await pilot.press("n")
        await wait_for(lambda: isinstance(app.screen, RecordForm), pilot)
        form = app.screen
        fill_account_form(form, mailbox, "second", password_variable="not a variable name")
        await pilot.press("ctrl+s")
        await wait_for(
            lambda: "environment variable" in str(form.query_one("#error-f-password").render()), pilot
        )
        assert isinstance(app.screen, RecordForm), "nothing saved while a field is wrong"
        form.query_one("#f-password_ref", Input).value = "SECOND_PW"
        await pilot.press("ctrl+s")
        await wait_for(lambda: not isinstance(app.screen, RecordForm), pilot)
        await wait_for(lambda: table.row_count == 2, pilot)
        table.move_cursor(row=[str(table.get_row_at(i)[0]) for i in range(2)].index("second"))
        await pilot.press("t")
        await wait_for(
            lambda: any("second: logged in" in str(n.message) for n in app._notifications),
            pilot,
            timeout=15,
        )


async def test_the_first_account_saved_in_settings_starts_the_background_sync_at_once(
    mailbox: Mailbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh home: the account saved in Settings starts the sync now (its mail comes in), not at the app's
    next look for accounts 15 s later (the walk waited 4-14 s with nothing said)."""
    from textual.widgets import DataTable, OptionList

    from crm_tui.ui.screens.record_form import RecordForm
    from crm_tui.ui.screens.settings import SettingsScreen

    monkeypatch.setenv("FIRST_PW", mailbox.password)
    mailbox.append("INBOX", message(1, mid="<first@firma.example>"))
    home = tmp_path / "fresh"
    assert main(["--home", str(home), "users", "add", "Anna Berg", "anna@crm.example"]) == 0

    app = CrmApp(make_context(home, demo=False), start_mode="settings")
    async with app.run_test(size=(150, 44)) as pilot:
        screen = app.screen
        assert isinstance(screen, SettingsScreen)
        screen.query_one("#sections", OptionList).highlighted = 3
        await wait_for(lambda: screen.section == "accounts", pilot)
        table = screen.query_one("#settings-table", DataTable)
        table.focus()
        await pilot.press("n")
        await wait_for(lambda: isinstance(app.screen, RecordForm), pilot)
        form = app.screen
        fill_account_form(form, mailbox, "first", password_variable="FIRST_PW")
        await pilot.press("ctrl+s")
        await wait_for(lambda: not isinstance(app.screen, RecordForm), pilot)
        # Well before the app's next look (15 s): the background process runs and says what it did.
        await wait_for(lambda: app.background.running, pilot, timeout=5)
        await wait_for(lambda: "first: 1 new" in _status(app), pilot, timeout=10)


async def test_the_inbox_searches_with_the_query_language(mailbox: Mailbox) -> None:
    mailbox.append("INBOX", message(1, mid="<q1@firma.example>", body="Solaranlage"))
    mailbox.append("INBOX", message(2, mid="<q2@gmail.com>", sender="privat@gmail.com", body="Wärmepumpe"))
    assert mailbox.cli("sync") == 0

    app = CrmApp(make_context(mailbox.home, demo=False), start_mode="inbox", sync_mail=False)
    async with app.run_test(size=(150, 44)) as pilot:
        table = app.screen.query_one(PagedTable)
        await wait_for(lambda: table.row_count == 2, pilot)
        await pilot.press("slash", *"from:privat")
        await wait_for(lambda: table.row_count == 1, pilot)
        assert table.loaded_rows[0].cells[3] == "Angebot 2"
        await wait_for(lambda: "1 message matching 'from:privat'" in _status(app), pilot)
        await pilot.press("escape")
        await wait_for(lambda: table.row_count == 2, pilot)
        await pilot.press("slash", *"is:x")
        await wait_for(lambda: "search: is:x: use is:unread" in _status(app), pilot)
        assert table.row_count == 0
        await pilot.press("escape")
        await pilot.press("slash", *"-warmepumpe")
        await wait_for(lambda: table.row_count == 1 and table.loaded_rows[0].cells[3] == "Angebot 1", pilot)


async def test_the_list_is_usable_on_headers_and_the_preview_says_the_body_is_coming(
    mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    from textual.widgets import Static

    from crm_tui.mail import sync as sync_module

    attachment = (
        b"From: kunde@firma.example\r\nTo: anna@crm.example\r\nSubject: Plan\r\nMessage-ID: <pv1@firma.example>\r\n"
        b"Date: Sat, 21 Nov 2026 10:00:00 +0100\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n"
        b"--XX\r\nContent-Type: text/plain\r\n\r\nsee plan\r\n--XX\r\nContent-Type: application/pdf\r\n"
        b'Content-Disposition: attachment; filename="evil\x1b]0;pwned\x07.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        b"JVBERi0xLjQK\r\n--XX--\r\n"
    )
    mailbox.append("INBOX", attachment)
    monkeypatch.setattr(sync_module.AccountSync, "_fetch_bodies", lambda self: None)
    assert mailbox.cli("sync") == 0
    monkeypatch.undo()
    monkeypatch.setenv(mailbox.env_var, mailbox.password)

    app = CrmApp(make_context(mailbox.home, demo=False), start_mode="inbox", sync_mail=False)
    async with app.run_test(size=(150, 44)) as pilot:
        table = app.screen.query_one(PagedTable)
        await wait_for(lambda: table.row_count == 1, pilot)
        preview = app.screen.query_one("#preview", Static)
        await wait_for(lambda: "still being downloaded" in str(preview.render()), pilot)
        await pilot.press("ctrl+r")
        await wait_for(lambda: "Attachments: evil" in str(preview.render()), pilot, timeout=20)
        shown = str(preview.render())
        assert "see plan" in shown and "\x1b" not in shown and "\x07" not in shown
        assert "(9 B)" in shown


async def test_new_mail_arrives_at_once_through_imap_idle(mailbox: Mailbox) -> None:
    """The refresh interval is 5 minutes; IDLE brings a new message within seconds."""
    mailbox.append("INBOX", message(1, mid="<i1@firma.example>"))

    app = CrmApp(make_context(mailbox.home, demo=False), start_mode="inbox")
    async with app.run_test(size=(150, 44)) as pilot:
        table = app.screen.query_one(PagedTable)
        await wait_for(lambda: table.row_count == 1, pilot, timeout=20)
        await wait_for(lambda: "work" in app.mail_sync.idle_ready, pilot)
        mailbox.append("INBOX", message(2, mid="<i2@firma.example>"))
        await wait_for(lambda: table.row_count == 2, pilot, timeout=15)
        # The IDLE watch goes on in the background process, nothing the user waits for: no "working" mark.
        await wait_for(lambda: "working" not in _status(app), pilot)
        assert "work" in app.mail_sync.idle_ready


def _children(parent: int) -> list[int]:
    """The crm-tui processes (the background process, the sync's helpers) whose parent is ``parent``, running
    now (zombies not counted; the test's Dovecot is no crm-tui process)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            command = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if (
            fields[0] != "Z"
            and int(fields[1]) == parent
            and (b"crm_tui" in command or b"spawn_main" in command)
        ):
            found.append(int(proc.name))
    return found


def _new_children(before: list[int]) -> list[int]:
    """This process's crm-tui children that were not there ``before`` (a one-pass sync run in this process by
    an earlier test keeps its helper process for the life of the process)."""
    return [pid for pid in _children(os.getpid()) if pid not in before]


def _alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _fill(box: Mailbox, count: int) -> None:
    client = box.imap()
    for n in range(count):
        client.append(
            "INBOX", message(n, mid=f"<b{n}@firma.example>", body=f"Nachricht {n}\r\n" + "Text. " * 80)
        )
    client.logout()


async def test_a_first_sync_shows_in_the_inbox_as_it_is_stored_and_runs_outside_the_app_process(
    mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first sync of 1,000 messages: the open inbox lists mail while the background process is still at it
    (held there: stopped with SIGSTOP once the first headers are stored). Meanwhile the app's own process has
    no IDLE connection, no helper process and the collector's and interpreter's settings as they were."""
    import gc

    monkeypatch.setattr("crm_tui.ui.app.CrmApp.change_check_seconds", 0.2)
    _fill(mailbox, 1000)
    threshold, interval = gc.get_threshold(), sys.getswitchinterval()

    before = _children(os.getpid())

    app = CrmApp(make_context(mailbox.home, demo=False), start_mode="inbox")
    async with app.run_test(size=(150, 44)) as pilot:
        table = app.screen.query_one(PagedTable)
        await wait_for(lambda: mailbox.count("SELECT count(*) FROM mail_location") > 0, pilot, timeout=30)
        child = app.background.process
        assert child is not None
        os.kill(child.pid, signal.SIGSTOP)  # the sync holds still, mid-pass
        try:
            await wait_for(lambda: table.row_count > 0, pilot, timeout=10)
            assert "work: syncing" in _status(app), "the rows came before the end of the pass"
            helpers = [pid for pid in _children(child.pid)]
            assert helpers, "the background process runs the sync's helper processes (1,000 messages)"
            assert _new_children(before) == [child.pid], "the app's only child is the background process"
            threads = [t.name.lower() for t in threading.enumerate()]
            assert not [t for t in threads if "idle" in t or "helper" in t or t.startswith("crm-tui sync")]
            assert not [
                w for w in app.workers if w.is_running and w.group.startswith(("mail-sync", "mail-idle"))
            ]
            assert gc.get_threshold() == threshold and sys.getswitchinterval() == interval
            assert gc.isenabled() and gc.get_freeze_count() == 0
        finally:
            os.kill(child.pid, signal.SIGCONT)
        await wait_for(lambda: "work: 1000 new" in _status(app), pilot, timeout=60)


async def test_the_background_process_killed_is_started_again_and_ends_with_the_app(mailbox: Mailbox) -> None:
    mailbox.append("INBOX", message(1, mid="<r1@firma.example>"))

    before = _children(os.getpid())

    app = CrmApp(make_context(mailbox.home, demo=False), start_mode="inbox")
    async with app.run_test(size=(150, 44)) as pilot:
        table = app.screen.query_one(PagedTable)
        await wait_for(lambda: "work: 1 new" in _status(app), pilot, timeout=20)
        first = app.background.process
        assert first is not None
        os.kill(first.pid, signal.SIGKILL)
        await wait_for(
            lambda: app.background.process is not None and app.background.process.pid != first.pid,
            pilot,
            timeout=15,
        )
        # The new one works: ctrl+r brings the mail that came meanwhile.
        mailbox.append("INBOX", message(2, mid="<r2@firma.example>"))
        await wait_for(lambda: "work" in app.mail_sync.idle_ready or table.row_count == 2, pilot, timeout=20)
        await pilot.press("ctrl+r")
        await wait_for(lambda: table.row_count == 2, pilot, timeout=20)
        second = app.background.process
        assert second is not None
        pid, its_children = second.pid, _children(second.pid)
    assert not _alive(pid), "the app's exit ends its background process"
    assert not [child for child in its_children if _alive(child)]
    assert not _new_children(before), "the app leaves no child behind"


async def _kill_the_background_process(app: CrmApp, pilot: Pilot[None]) -> None:
    """Once it runs, SIGKILL the app's background process; back when the app no longer holds it."""
    await wait_for(lambda: app.background.running, pilot, timeout=15)
    process = app.background.process
    assert process is not None
    os.kill(process.pid, signal.SIGKILL)
    await wait_for(lambda: app.background.process is not process, pilot, timeout=15)


async def test_the_app_says_so_when_its_background_process_keeps_dying(
    mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("crm_tui.ui.supervisor.RESTART_SECONDS", (0.1,))

    before = _children(os.getpid())

    app = CrmApp(make_context(mailbox.home, demo=False), start_mode="inbox")
    async with app.run_test(size=(150, 44)) as pilot:
        for _ in range(3):
            await _kill_the_background_process(app, pilot)
        await wait_for(
            lambda: any("background mail sync stopped 3 times" in str(n.message) for n in app._notifications),
            pilot,
        )
        await wait_for(lambda: app.background.running, pilot, timeout=15)
    assert not _new_children(before)


def test_the_background_process_ends_when_the_app_is_killed(mailbox: Mailbox) -> None:
    """The app killed with SIGKILL cannot stop its child: the child sees its parent gone and ends."""
    import subprocess

    app_process = subprocess.Popen(
        [sys.executable, "-c", KILLED_APP, str(mailbox.home)],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert app_process.stdout is not None
        child = int(app_process.stdout.readline())
        assert _alive(child)
    finally:
        app_process.kill()
        app_process.wait()
    assert eventually(lambda: not _alive(child), timeout=10), "the background process outlived the app"


KILLED_APP = """
import asyncio, sys
from pathlib import Path
from crm_tui.ui.app import CrmApp
from tests.ui.helpers import make_context, wait_for

async def main():
    app = CrmApp(make_context(Path(sys.argv[1]), demo=False), start_mode="inbox")
    async with app.run_test(size=(150, 44)) as pilot:
        await wait_for(lambda: app.background.running, pilot, timeout=30)
        print(app.background.process.pid, flush=True)
        await asyncio.sleep(3600)  # held open until the test SIGKILLs this process

asyncio.run(main())
"""
