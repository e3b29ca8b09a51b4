"""Sync faults (issue 21, item 10): a disk that fills up mid-sync, a message of 0 bytes, a connection cut during
login, and a first sync that fails while its helper process starts. Each against the real parts: Dovecot, a
tmpfs that fills up, a TCP proxy that cuts, the CLI as its own process."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import col

from crm_tui.core import models as m
from crm_tui.core.mail_identity import body_hash
from crm_tui.mail.parse import parse_message
from tests.conftest import NOW, SmallDisk, corpus_dir, fill_disk
from tests.integration.conftest import Mailbox
from tests.integration.proxy import DroppingProxy
from tests.integration.test_sync import mail_json, message

FOLDERS = ("INBOX", "Archive")  # the corpus twice: 476 copies, enough for the sync's helper processes


def _corpus_into(box: Mailbox) -> int:
    """The mail corpus in each of FOLDERS; the number of copies on the server."""
    files = sorted(p for p in corpus_dir().iterdir() if p.suffix == ".eml")
    client = box.imap()
    for folder in FOLDERS:
        for path in files:
            client.append(folder, path.read_bytes())
    client.logout()
    return len(files) * len(FOLDERS)


def _served(box: Mailbox) -> list[bytes]:
    client = box.imap()
    served = []
    for folder in FOLDERS:
        client.select_folder(folder, readonly=True)
        served += [data[b"BODY[]"] for data in client.fetch(client.search(["ALL"]), ["BODY.PEEK[]"]).values()]
    client.logout()
    return served


def _on_small_disk(box: Mailbox, small_disk: SmallDisk, leave_kib: int) -> Path:
    """Move the box's home onto a tmpfs of its own, filled up to ``leave_kib`` KiB of free space."""
    disk = small_disk(16 * 1024)
    shutil.copytree(box.home, disk / "home")
    box.home = disk / "home"
    fill_disk(disk, leave_kib * 1024)
    return disk


def _count(box: Mailbox, sql: str) -> int:
    found = box.count(sql)
    assert found >= 0, "the database is readable"
    return found


WAITING = "SELECT count(*) FROM mail_message WHERE NOT has_body"
WITH_BODY = (
    "SELECT count(*) FROM mail_location JOIN mail_message ON mail_message.id = mail_location.message_id "
    "WHERE mail_message.has_body"
)


def _everything_once(box: Mailbox, capsys: pytest.CaptureFixture[str], copies: int) -> None:
    """Every server copy is one location, every message is listed once with its body and its own bytes."""
    served = _served(box)
    identities = set()
    for raw in served:
        parsed = parse_message(raw)
        identities.add((parsed.message_id, body_hash(raw, has_message_id=bool(parsed.message_id))))
    listed = mail_json(box, capsys, "mail", "list")
    assert len(listed) == len(identities), "every message once: nothing lost, nothing doubled"
    assert sum(len(item["locations"]) for item in listed) == copies == len(served)
    assert all(item["has_body"] for item in listed)
    db = box.database()
    with db.read() as session:
        raws = [bytes(raw) for raw in session.scalars(select(col(m.MailRaw.raw)))]
    db.dispose()
    assert len(raws) == len(identities) and set(raws) <= set(served)


@pytest.mark.parametrize(
    "leave_kib, stopped_at",
    [
        (300, "headers"),
        (4000, "bodies"),
    ],  # free space: the headers of one folder fit; all headers and some bodies
)
def test_a_sync_on_a_full_disk_says_what_was_saved_and_the_next_one_completes_it(
    mailbox: Mailbox,
    capsys: pytest.CaptureFixture[str],
    small_disk: SmallDisk,
    leave_kib: int,
    stopped_at: str,
) -> None:
    copies = _corpus_into(mailbox)
    disk = _on_small_disk(mailbox, small_disk, leave_kib)
    capsys.readouterr()
    assert mailbox.cli("sync") == 1
    err = capsys.readouterr().err
    assert "nothing was saved" not in err
    headers = _count(mailbox, "SELECT count(*) FROM mail_location")
    assert 0 < headers <= copies
    if stopped_at == "headers":
        assert headers < copies
        assert err == (
            f"crm-tui: work: the disk is full: {headers} headers were saved, the rest of the new mail was not; "
            "free some space and sync again\n"
        )
    else:
        assert headers == copies, "every header was saved before the bodies filled the disk"
        bodies, waiting = _count(mailbox, WITH_BODY), _count(mailbox, WAITING)
        assert bodies < copies and waiting > 0
        saved = (
            f"{headers} headers and {bodies} bodies" if bodies else f"{headers} headers"
        )  # as far as it got
        assert err == (
            f"crm-tui: work: the disk is full: {saved} were saved, the bodies of {waiting} messages were not; "
            "free some space and sync again\n"
        )
    # What was saved is there to read: the list shows it.
    assert len(mail_json(mailbox, capsys, "mail", "list")) == _count(
        mailbox, "SELECT count(*) FROM mail_message"
    )

    (disk / "filler").unlink()  # space again
    capsys.readouterr()
    assert mailbox.cli("sync") == 0, capsys.readouterr().err
    summary = capsys.readouterr().out
    assert f"work: {copies - headers} new" in summary, summary
    _everything_once(mailbox, capsys, copies)


async def test_the_app_says_what_a_sync_on_a_full_disk_saved(
    mailbox: Mailbox, capsys: pytest.CaptureFixture[str], small_disk: SmallDisk, make_app: Any
) -> None:
    from crm_tui.ui.widgets.paged_table import PagedTable
    from crm_tui.ui.widgets.status_bar import StatusBar
    from tests.ui.helpers import wait_for

    copies = _corpus_into(mailbox)
    disk = _on_small_disk(mailbox, small_disk, 4000)
    app = make_app(mailbox.home, demo=False, start_mode="inbox")

    def said() -> list[str]:
        return [text for severity, text in app.shown if "disk is full" in text]

    async with app.run_test(size=(150, 44)) as pilot:
        await wait_for(lambda: said(), pilot, timeout=60)
        (text,) = said()
        found = re.fullmatch(
            r"Mail: work: the disk is full: (\d+) headers(?: and (\d+) bodies)? were saved, the bodies of "
            r"(\d+) messages were not; free some space and sync again",
            text,
        )
        assert found, text
        assert int(found[1]) == copies and int(found[2] or 0) == _count(mailbox, WITH_BODY)
        assert int(found[3]) == _count(mailbox, WAITING)
        # The mail saved before the disk filled up is listed (a page of it); the status bar says why no more.
        table = app.screen.query_one(PagedTable)
        await wait_for(lambda: table.row_count > 0, pilot)
        assert "work: the disk is full (free some space)" in str(app.screen.query_one(StatusBar).render())
    (disk / "filler").unlink()
    capsys.readouterr()
    assert mailbox.cli("sync") == 0, capsys.readouterr().err
    _everything_once(mailbox, capsys, copies)


def _empty_message_in_inbox(box: Mailbox) -> None:
    """A message of 0 bytes: Dovecot refuses one by APPEND, so it goes into the Maildir as a file."""
    box.imap().logout()  # the Maildir exists once the user logged in
    directory = box.server.root / "mail" / box.user / "Maildir" / "new"
    path = directory / "1700000000.M1P1.crm-test-empty"
    path.write_bytes(b"")
    owner = os.stat(directory)
    os.chown(path, owner.st_uid, owner.st_gid)


def test_a_message_of_0_bytes_gets_its_empty_body_and_mail_raw_says_it_is_empty(
    mailbox: Mailbox, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from crm_tui.mail.sync import AccountSync

    for n in (1, 2):
        mailbox.append("INBOX", message(n, mid=f"<z{n}@firma.example>"))
    _empty_message_in_inbox(mailbox)
    mailbox.append("INBOX", message(3, mid="<z3@firma.example>"))
    # A sync stopped after its header pass (killed, the app closed): the list is there, the bodies are not.
    with monkeypatch.context() as patch:
        patch.setattr(AccountSync, "_fetch_bodies", lambda self: None)
        capsys.readouterr()
        assert mailbox.cli("sync") == 0, capsys.readouterr().err
    listed = mail_json(mailbox, capsys, "mail", "list")
    assert len(listed) == 4 and not any(item["has_body"] for item in listed)
    empty = next(item for item in listed if not item["subject"] and not item["from"])

    # mail raw fetches it now: its bytes are none, which it says, and the body is stored as it is (empty).
    capsys.readouterr()
    assert mailbox.cli("mail", "raw", str(empty["id"])) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"crm-tui: message {empty['id']} is empty (0 bytes on the server)\n"
    again = next(item for item in mail_json(mailbox, capsys, "mail", "list") if item["id"] == empty["id"])
    assert again["has_body"] and again["problems"] == ["message: empty (0 bytes)"]
    assert mailbox.cli("mail", "raw", str(empty["id"])) == 0  # now from the store, no server needed
    assert capsys.readouterr() == ("", f"crm-tui: message {empty['id']} is empty (0 bytes on the server)\n")

    # The next sync brings the other bodies; nothing waits for a body, the empty one is not fetched again.
    assert mailbox.cli("sync") == 0
    assert "0 new, 3 bodies" in capsys.readouterr().out
    assert _count(mailbox, WAITING) == 0
    assert mailbox.cli("sync") == 0
    assert "0 new, 0 bodies" in capsys.readouterr().out


@pytest.mark.parametrize("parsed", ["here", "by the helpers"])
def test_the_sync_stores_the_empty_body_of_a_message_of_0_bytes(
    mailbox: Mailbox, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, parsed: str
) -> None:
    """The sync's own body fetch (in this process, or by its helper processes, which write the bytes
    themselves) stores a 0-byte message's empty body with its problem: nothing waits for a body afterwards,
    the next sync fetches nothing again, and mail raw says it is empty from the store, without the server."""
    from crm_tui.mail.sync import helper_processes

    used: list[int] = []
    if parsed == "by the helpers":
        monkeypatch.setattr(helper_processes, "POOL_THRESHOLD", 1)
        start = helper_processes.helpers

        def helpers(count: int = 1) -> list[Any]:
            pools = start(count)
            if count == helper_processes.HELPERS:  # the body phase's call (starting the first one asks for 1)
                used.append(len(pools))
            return pools

        monkeypatch.setattr(helper_processes, "helpers", helpers)
    for n in (1, 2):
        mailbox.append("INBOX", message(n, mid=f"<e{n}@firma.example>"))
    _empty_message_in_inbox(mailbox)
    capsys.readouterr()
    assert mailbox.cli("sync") == 0, capsys.readouterr().err
    assert "3 new, 3 bodies" in capsys.readouterr().out
    assert (max(used, default=0) > 0) == (parsed == "by the helpers"), "the helpers fetched the bodies"
    assert _count(mailbox, WAITING) == 0
    listed = mail_json(mailbox, capsys, "mail", "list")
    empty = next(item for item in listed if not item["subject"] and not item["from"])
    assert empty["has_body"] and empty["problems"] == ["message: empty (0 bytes)"]
    assert mailbox.cli("sync") == 0
    assert "0 new, 0 bodies" in capsys.readouterr().out
    from tests.integration.dovecot import free_port

    assert mailbox.cli("account", "edit", "work", "--imap-port", str(free_port())) == 0
    capsys.readouterr()
    assert mailbox.cli("mail", "raw", str(empty["id"])) == 0  # from the store: the server is out of reach
    assert capsys.readouterr() == ("", f"crm-tui: message {empty['id']} is empty (0 bytes on the server)\n")


GREETING = 123  # bytes of the test Dovecot's greeting; CAPABILITY's answer follows, then LOGIN's
LOGIN_CUTS = {
    "before the greeting": 0,
    "in the greeting": 60,
    "in the answer to CAPABILITY": GREETING,
    "in the answer to LOGIN": 300,
}


@pytest.mark.parametrize("where", list(LOGIN_CUTS))
def test_a_connection_cut_during_login_is_tried_again_and_else_said_in_plain_words(
    mailbox: Mailbox, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    for n in (1, 2):
        mailbox.append("INBOX", message(n, mid=f"<l{n}@firma.example>"))
    # Cut once: the login is tried again and the sync goes through.
    proxy = DroppingProxy(mailbox.server.port, drop_after=LOGIN_CUTS[where], drops=1)
    try:
        assert mailbox.cli("account", "edit", "work", "--imap-port", str(proxy.port)) == 0
        capsys.readouterr()
        assert mailbox.cli("sync") == 0, capsys.readouterr().err
        assert "work: 2 new, 2 bodies" in capsys.readouterr().out
        assert proxy.dropped == 1
    finally:
        proxy.close()
    # Cut at every try: one line in plain words (no imaplib text, no "wrong password"); a network failure,
    # which the app retries by itself.
    mailbox.append("INBOX", message(3, mid="<l3@firma.example>"))
    proxy = DroppingProxy(mailbox.server.port, drop_after=LOGIN_CUTS[where], drops=100)
    try:
        assert mailbox.cli("account", "edit", "work", "--imap-port", str(proxy.port)) == 0
        capsys.readouterr()
        assert mailbox.cli("sync") == 1
        assert capsys.readouterr().err == (
            f"crm-tui: work: the connection to 127.0.0.1:{proxy.port} was cut during login (2 tries); "
            "check the network and sync again\n"
        )
        assert proxy.dropped == 2
    finally:
        proxy.close()


def test_the_login_cut_is_a_network_failure_the_app_retries(mailbox: Mailbox) -> None:
    from crm_tui.mail.imap import MailConnectionError, connect_login, load_login

    proxy = DroppingProxy(mailbox.server.port, drop_after=300, drops=100)
    try:
        assert mailbox.cli("account", "edit", "work", "--imap-port", str(proxy.port)) == 0
        db = mailbox.database()
        login = load_login(db, "work")
        db.dispose()
        with pytest.raises(MailConnectionError) as failed:
            connect_login(login)
    finally:
        proxy.close()
    assert failed.value.kind == "dropped" and failed.value.retry


def _spawned_helpers(marker: bytes) -> list[int]:
    """Processes multiprocessing spawned for a process whose environment holds ``marker``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if (
                b"--multiprocessing-fork" in (proc / "cmdline").read_bytes()
                and marker in (proc / "environ").read_bytes()
            ):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


# A busy machine, in a ``sitecustomize`` for the CLI's process and its helper: starting a helper process takes
# well over a second, so a failure right after the helper process appears lands while it starts.
SLOW_START = """
import sys, time
if "--multiprocessing-fork" in sys.argv:
    time.sleep(0.5)  # the helper's interpreter starts slowly
else:
    import multiprocessing.process

    started = multiprocessing.process.BaseProcess.start

    def slow_start(self):
        started(self)
        time.sleep(1.0)  # and so does its hand-over in the sync's process

    multiprocessing.process.BaseProcess.start = slow_start
"""


def test_a_first_sync_that_fails_while_its_helper_starts_says_one_line(
    mailbox: Mailbox, tmp_path: Path
) -> None:
    """The failure comes while the helper process is starting (slowly, as on a busy machine): a server that
    cuts every connection once the helper runs. stderr holds the one line, no traceback of the helper."""
    marker = f"CRM_TEST_MARK={uuid.uuid4().hex}"
    slow = tmp_path / "slow-start"
    slow.mkdir()
    (slow / "sitecustomize.py").write_text(SLOW_START)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            deadline = threading.Event()
            for _ in range(200):  # until the helper process exists (at most 10 s)
                if _spawned_helpers(marker.encode()):
                    break
                deadline.wait(0.05)
            connection.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        assert mailbox.cli("account", "edit", "work", "--imap-port", str(port)) == 0
        env = {
            **os.environ,
            mailbox.env_var: mailbox.password,
            "CRM_TEST_MARK": marker.split("=", 1)[1],
            "PYTHONPATH": os.pathsep.join(filter(None, [str(slow), os.environ.get("PYTHONPATH")])),
        }
        done = subprocess.run(
            [sys.executable, "-m", "crm_tui", *mailbox.where(), "--now", NOW.isoformat(), "sync"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        listener.close()
    assert done.returncode == 1
    assert done.stderr == (
        f"crm-tui: work: the connection to 127.0.0.1:{port} was cut during login (2 tries); "
        "check the network and sync again\n"
    )
    assert not _spawned_helpers(marker.encode()), "no helper is left behind"
