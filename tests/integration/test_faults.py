"""Faults a sync must survive: a SIGKILL at any point, a connection dropped mid-fetch, two syncs at once."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import col

from crm_tui.core import models as m
from tests.conftest import NOW
from tests.integration.conftest import ON_BOTH, Mailbox, eventually
from tests.integration.proxy import DroppingProxy
from tests.integration.test_sync import mail_json, message

MESSAGES = 1200


def _fill(box: Mailbox, count: int = MESSAGES) -> None:
    client = box.imap()
    for n in range(count):
        body = f"Nachricht {n}\r\n" + "Zeile mit Text. " * 40
        client.append("INBOX", message(n, mid=f"<k{n}@firma.example>", body=body))
    client.logout()


def _sync_process(box: Mailbox) -> subprocess.Popen[str]:
    env = {**os.environ, box.env_var: box.password}
    return subprocess.Popen(
        [sys.executable, "-m", "crm_tui", *box.where(), "--now", NOW.isoformat(), "sync"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _helpers_of(parent: int) -> list[int]:
    """The helper processes (the sync's fetch-and-parse pool) of the sync process ``parent``, running now.
    By parent, not by the test's environment: another test's sync running beside this one (pytest -n) has
    helpers with the same environment."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid == parent and b"spawn_main" in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def _running(pid: int) -> bool:
    """Whether the process is there and not a zombie waiting to be reaped."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _write_locked(box: Mailbox) -> bool:
    """Whether a writer holds the database's write lock right now (SQLite's, or the advisory lock writers
    take on PostgreSQL)."""
    if box.db_url is not None:
        from crm_tui.core.db import WRITER_LOCK_KEY

        return (
            box.count(f"SELECT CASE WHEN pg_try_advisory_xact_lock({WRITER_LOCK_KEY}) THEN 0 ELSE 1 END") != 0
        )
    path = box.home / "data" / "crm.sqlite3"
    db = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        db.execute("BEGIN IMMEDIATE")
        db.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError:
        return True
    finally:
        db.close()


def _count(box: Mailbox, sql: str) -> int:
    return box.count(sql)


def _kill_when(
    box: Mailbox, sql: str, at_least: int, timeout: float = 60, helpers: list[int] | None = None
) -> bool:
    """Start a sync and SIGKILL it once ``sql`` counts ``at_least``. False if it finished first. ``helpers``
    gets the helper processes that ran at the kill."""
    process = _sync_process(box)
    if not eventually(lambda: process.poll() is not None or _count(box, sql) >= at_least, timeout, 0.002):
        process.kill()
        raise AssertionError("the sync never got there")
    if process.poll() is not None:
        return False
    process.send_signal(signal.SIGSTOP)
    if helpers is not None:
        helpers.extend(_helpers_of(process.pid))
    process.send_signal(signal.SIGKILL)
    process.wait()
    return True


@ON_BOTH
def test_a_sync_killed_at_several_points_then_resynced_gives_every_message_once(
    mailbox: Mailbox, capsys: pytest.CaptureFixture[str]
) -> None:
    _fill(mailbox)
    points = [
        ("SELECT count(*) FROM mail_sync_lock", 1),  # logged in, nothing stored
        ("SELECT count(*) FROM mail_location", 1),  # headers being stored
        ("SELECT count(*) FROM mail_message WHERE has_body", 1),  # bodies arriving
        ("SELECT count(*) FROM mail_message WHERE has_body", MESSAGES // 2),  # half the bodies
    ]
    helpers: list[int] = []
    killed = [_kill_when(mailbox, sql, n, helpers=helpers) for sql, n in points]
    assert any(killed), "at least one kill landed mid-sync"
    assert helpers, "the syncs ran their helper processes (1,200 messages)"
    assert eventually(lambda: not any(_running(pid) for pid in helpers), timeout=5), (
        "a killed sync leaves no helper process behind"
    )
    assert mailbox.cli("sync") == 0, "a kill leaves the account unlocked for the next sync"
    listed = mail_json(mailbox, capsys, "mail", "list")
    subjects = [item["subject"] for item in listed]
    assert len(subjects) == MESSAGES and len(set(subjects)) == MESSAGES, "every message exactly once"
    assert all(item["has_body"] and len(item["locations"]) == 1 for item in listed)
    assert _count(mailbox, "SELECT count(*) FROM mail_sync_lock") == 0
    # The bytes (on SQLite the helpers write them, killed or not): each message's, exactly as served, once.
    client = mailbox.imap()
    client.select_folder("INBOX", readonly=True)
    served = {data[b"BODY[]"] for data in client.fetch(client.search(["ALL"]), ["BODY.PEEK[]"]).values()}
    client.logout()
    db = mailbox.database()
    with db.read() as session:
        stored = [bytes(raw) for raw in session.scalars(select(col(m.MailRaw.raw)))]
    db.dispose()
    assert len(stored) == MESSAGES and set(stored) == served


def test_a_connection_dropped_mid_fetch_recovers(
    mailbox: Mailbox, capsys: pytest.CaptureFixture[str]
) -> None:
    _fill(mailbox, 300)
    proxy = DroppingProxy(mailbox.server.port, drop_after=200_000, drops=1)
    try:
        assert mailbox.cli("account", "edit", "work", "--imap-port", str(proxy.port)) == 0
        capsys.readouterr()
        assert mailbox.cli("sync") == 0, capsys.readouterr().err
        assert proxy.dropped == 1, "the proxy did cut the first connection"
    finally:
        proxy.close()
    listed = mail_json(mailbox, capsys, "mail", "list")
    assert len(listed) == 300 and all(item["has_body"] for item in listed)


@ON_BOTH
def test_two_syncs_of_one_account_at_once_the_second_says_so(
    mailbox: Mailbox, capsys: pytest.CaptureFixture[str]
) -> None:
    _fill(mailbox)
    first = _sync_process(mailbox)
    try:

        def locked() -> bool:
            if _count(mailbox, "SELECT count(*) FROM mail_sync_lock") >= 1:
                return True
            assert first.poll() is None, "the first sync ended before it was seen"
            return False

        assert eventually(locked, timeout=30, interval=0.002), "the first sync never took the lock"

        def stopped_outside_a_write() -> bool:
            first.send_signal(signal.SIGSTOP)
            if not _write_locked(mailbox):
                return True
            first.send_signal(signal.SIGCONT)  # on out of the write, then stopped again
            return False

        # Hold it mid-sync (a sync is fast: it could end before the second starts), but never inside a write
        # transaction, where the second would wait for the database instead of finding the sync lock.
        assert eventually(stopped_outside_a_write, timeout=10, interval=0.003)
        capsys.readouterr()
        assert mailbox.cli("sync") == 1
        assert "already running" in capsys.readouterr().err
    finally:
        first.send_signal(signal.SIGCONT)
        out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    listed = mail_json(mailbox, capsys, "mail", "list")
    assert len(listed) == MESSAGES
