"""`account test` and the outbox in words (issue 21 follow-up): a command the server fails is the server's
error, said as the server said it ("the server said: ..."), not "internal error: abort: command: LIST => ..."
with a traceback in the log; a working account counts its folders in good English; a password that cannot be
had names its account once. A real Dovecot, behind a proxy that answers LIST as a failing Dovecot does."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.conftest import Mailbox
from tests.integration.proxy import Hangup, Link, Proxy
from tests.integration.test_outbox import flush_at, queue_mail

FAILED = b"Internal error occurred. Refer to server log for more information. [2026-12-07 09:00:00]"


class ListFails(Proxy):
    """A TCP proxy in front of the test Dovecot that passes everything through but answers the LIST command
    itself, as a Dovecot whose mail storage fails: ``NO [SERVERBUG] ...`` or ``* BYE ...`` (then hangs up);
    or ("inbox only") passes LIST on but shows only the INBOX of its answer."""

    def __init__(self, upstream_port: int, answer: str) -> None:
        self.answer = answer
        self.lists = 0
        super().__init__(upstream_port, up=self._from_client, down=self._from_server, lines=True)

    def _from_server(self, line: bytes, link: Link) -> bytes:
        if self.answer == "inbox only" and line.startswith(b"* LIST ") and b"INBOX" not in line:
            return b""
        return line

    def _from_client(self, line: bytes, link: Link) -> bytes:
        tag, _, rest = line.partition(b" ")
        if rest.upper().startswith(b"LIST ") and self.answer != "inbox only":
            self.lists += 1
            if self.answer == "bye":
                link.client.sendall(b"* BYE " + FAILED + b"\r\n")
                raise Hangup
            link.client.sendall(tag + b" NO [SERVERBUG] " + FAILED + b"\r\n")
            return b""
        return line


@pytest.fixture(params=["no", "bye"])
def list_fails(mailbox: Mailbox, request: pytest.FixtureRequest) -> Iterator[ListFails]:
    proxy = ListFails(mailbox.server.port, request.param)
    assert mailbox.cli("account", "edit", "work", "--imap-port", str(proxy.port)) == 0
    yield proxy
    proxy.close()


def test_a_list_the_server_fails_is_the_servers_error_in_its_words(
    mailbox: Mailbox, list_fails: ListFails, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert mailbox.cli("account", "test", "work") == 1
    out, err = capsys.readouterr()
    assert list_fails.lists == 1
    assert err.strip() == (
        f"crm-tui: work: logged in to 127.0.0.1:{list_fails.port}, but listing the folders failed: the server "
        f"said: {'[SERVERBUG] ' if list_fails.answer == 'no' else ''}{FAILED.decode()}"
    )
    assert "internal error" not in err and "abort" not in err and "=>" not in err
    log = mailbox.home / "state" / "crm-tui.log"
    assert not log.exists() or "Traceback" not in log.read_text()


def test_a_working_account_counts_its_folders_in_good_english(
    mailbox: Mailbox, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert mailbox.cli("account", "test", "work") == 0
    out = capsys.readouterr().out
    assert (
        f"work: logged in to 127.0.0.1:{mailbox.server.port}; 4 folders: Archive, INBOX, Sent, Trash" in out
    )
    proxy = ListFails(mailbox.server.port, "inbox only")
    try:
        assert mailbox.cli("account", "edit", "work", "--imap-port", str(proxy.port)) == 0
        capsys.readouterr()
        assert mailbox.cli("account", "test", "work") == 0
        out = capsys.readouterr().out
    finally:
        proxy.close()
    assert f"work: logged in to 127.0.0.1:{proxy.port}; 1 folder: INBOX" in out


def test_a_flush_without_the_password_names_the_account_once(
    mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    queue_mail(mailbox)
    monkeypatch.delenv(mailbox.env_var)
    capsys.readouterr()
    assert flush_at(mailbox) == 1
    out, err = capsys.readouterr()
    said = out + err
    assert f"account work: the environment variable {mailbox.env_var} is not set" in said
    assert "work: account work" not in said


async def test_t_in_settings_says_the_servers_words_in_one_notification(
    mailbox: Mailbox, list_fails: ListFails
) -> None:
    """The app's login test (Settings > Mail accounts, t) was a worker failure: an internal error notification
    and a traceback in the log."""

    from textual.widgets import DataTable, OptionList

    from crm_tui.ui.app import CrmApp
    from crm_tui.ui.screens.settings import SettingsScreen
    from tests.ui.helpers import make_context, wait_for

    said = f"the server said: {'[SERVERBUG] ' if list_fails.answer == 'no' else ''}{FAILED.decode()}"

    def shown(app: CrmApp) -> list[str]:
        return [str(n.message) for n in app._notifications]

    app = CrmApp(make_context(mailbox.home, demo=False), start_mode="settings", sync_mail=False)
    async with app.run_test(size=(150, 44)) as pilot:
        screen = app.screen
        assert isinstance(screen, SettingsScreen)
        screen.query_one("#sections", OptionList).highlighted = 3
        await wait_for(lambda: screen.section == "accounts", pilot)
        table = screen.query_one("#settings-table", DataTable)
        await wait_for(lambda: table.row_count == 1, pilot)
        table.focus()
        await pilot.press("t")
        await wait_for(lambda: any(said in text for text in shown(app)), pilot, timeout=15)
        assert [text for text in shown(app) if text != "Logging in…"] == [
            f"work: logged in to 127.0.0.1:{list_fails.port}, but listing the folders failed: {said}"
        ]
    log = mailbox.home / "state" / "crm-tui.log"
    assert not log.exists() or "Traceback" not in log.read_text()
