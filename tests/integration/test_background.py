"""``crm-tui sync --watch`` (runtime/background.py) as a real process against Dovecot and aiosmtpd: two accounts
synced side by side, new mail through IMAP IDLE, queued mail delivered, a wrong password paused for half an hour;
SIGTERM stops it cleanly (exit 0, its IDLE connections and helper processes gone)."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import NOW
from tests.integration.conftest import Mailbox, eventually
from tests.integration.smtp import SmtpServer
from tests.integration.test_outbox import queue_mail
from tests.integration.test_sync import mail_json, message


class Watch:
    """``sync --watch --json`` on the mailbox's home; its events read in a thread."""

    def __init__(self, box: Mailbox, env: dict[str, str] | None = None, *, own_group: bool = False) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "crm_tui",
                *box.where(),
                "--now",
                NOW.isoformat(),
                "sync",
                "--watch",
                "--json",
            ],
            env={**os.environ, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=own_group,  # its own process group, as a terminal's foreground job has
        )
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.events.put(json.loads(line))

    def until(self, matches: Any, timeout: float = 60, *, seen_ok: bool = False) -> dict[str, Any]:
        """The next event that ``matches`` (with ``seen_ok``: or one seen already)."""
        if seen_ok:
            for event in self.seen:
                if matches(event):
                    return event
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                event = self.events.get(timeout=0.1)
            except queue.Empty:
                assert self.process.poll() is None, self.process.stderr.read() if self.process.stderr else ""
                continue
            self.seen.append(event)
            if matches(event):
                return event
        raise AssertionError(f"no such event in time; seen: {self.seen[-5:]}")

    def stop(self) -> tuple[int, str]:
        self.process.send_signal(signal.SIGTERM)
        _, err = self.process.communicate(timeout=30)
        return self.process.returncode, err


def _children(parent: int) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[1]) == parent:
            found.append(int(proc.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _finished(account: str) -> Any:
    return lambda event: event["type"] == "finished" and event["account"] == account


def test_two_accounts_sync_side_by_side_idle_brings_new_mail_and_sigterm_stops_cleanly(
    mailbox: Mailbox, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    second_user = f"second-{mailbox.user}"
    mailbox.server.add_user(second_user, "pw-second")
    monkeypatch.setenv("SECOND_PW", "pw-second")
    code = mailbox.cli(
        "account", "add", "home", "--preset", "other", "--imap-host", "127.0.0.1",
        "--imap-port", str(mailbox.server.port), "--imap-security", "none", "--user", second_user,
        "--password-env", "SECOND_PW", "--address", "anna@home.example", "--sync-since", "all",
    )  # fmt: skip
    assert code == 0
    work = mailbox.imap()
    for n in range(500):  # enough for the helper processes (POOL_THRESHOLD)
        work.append("INBOX", message(n, mid=f"<w{n}@firma.example>"))
    work.logout()
    home = mailbox.server.client(second_user)
    for n in range(3):
        home.append("INBOX", message(n, mid=f"<h{n}@privat.example>", sender="oma@privat.example"))
    home.logout()

    watch = Watch(mailbox)
    try:
        both = {
            watch.until(lambda e: e["type"] == "finished")["account"],
            watch.until(lambda e: e["type"] == "finished")["account"],
        }
        assert both == {"work", "home"}
        finished = {e["account"]: e for e in watch.seen if e["type"] == "finished"}
        assert finished["work"]["new"] == 500 and finished["work"]["error"] is None
        assert finished["home"]["new"] == 3 and finished["home"]["error"] is None
        # Side by side: the second account's pass began before the first one's ended.
        order = [(e["type"], e["account"]) for e in watch.seen if e["type"] in ("syncing", "finished")]
        assert order[:2] in (
            [("syncing", "work"), ("syncing", "home")],
            [("syncing", "home"), ("syncing", "work")],
        )
        # IMAP IDLE: new mail comes at once (the refresh interval is 5 minutes).
        watch.until(lambda e: e == {"type": "idle", "account": "home", "ready": True}, seen_ok=True)
        mailbox.server.client(second_user).append("INBOX", message(9, mid="<h9@privat.example>"))
        assert watch.until(_finished("home"))["new"] == 1
        helpers = _children(watch.process.pid)
    finally:
        code, err = watch.stop()
    assert code == 0, err
    assert "Traceback" not in err
    assert helpers, "the 500 bodies were fetched by helper processes"
    # They end with their parent (told at its exit, or watching it).
    assert eventually(lambda: not any(_alive(pid) for pid in helpers), timeout=5), (
        "a clean stop leaves no helper process"
    )
    listed = mail_json(mailbox, capsys, "mail", "list")
    assert len(listed) == 504 and all(item["has_body"] for item in listed)


def test_the_outbox_is_delivered_and_a_wrong_password_waits_half_an_hour(
    mailbox: Mailbox, smtp: SmtpServer
) -> None:
    item_id, _ = queue_mail(mailbox)
    watch = Watch(mailbox, env={mailbox.env_var: "not-the-password"})
    try:
        event = watch.until(lambda e: e["type"] == "outbox")
        assert event["summary"].startswith("outbox: 1 sent")
        assert len(smtp.received) == 1
        refused = watch.until(_finished("work"), seen_ok=True)
        assert refused["kind"] == "password" and refused["retry_minutes"] == 30
    finally:
        code, err = watch.stop()
    assert code == 0, err
    assert item_id


def test_sigint_stops_it_too_and_one_pass_sync_is_unchanged(
    mailbox: Mailbox, capsys: pytest.CaptureFixture[str]
) -> None:
    mailbox.append("INBOX", message(1, mid="<p1@firma.example>"))
    watch = Watch(mailbox, own_group=True)
    watch.until(lambda e: e == {"type": "idle", "account": "work", "ready": True}, seen_ok=True)
    # ctrl+c in a terminal: SIGINT to the whole foreground group, the sync's helper processes included.
    os.killpg(watch.process.pid, signal.SIGINT)
    _, err = watch.process.communicate(timeout=30)
    assert watch.process.returncode == 0
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    mailbox.append("INBOX", message(2, mid="<p2@firma.example>"))
    capsys.readouterr()
    assert mailbox.cli("sync") == 0
    assert "1 new" in capsys.readouterr().out


def test_on_its_own_it_fires_due_automation_too(demo_home: Path) -> None:
    """Without the app (which fires automation itself), sync --watch fires the actions that are due: on the
    demo, the actions that came due while nobody ran crm-tui."""
    process = subprocess.Popen(
        [sys.executable, "-m", "crm_tui", "--demo", "--home", str(demo_home), "sync", "--watch", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    events: list[dict[str, Any]] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            events.append(json.loads(line))
            if {"automation", "finished"} <= {e["type"] for e in events}:
                break
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    fired = next(e for e in events if e["type"] == "automation")
    assert fired["summary"].startswith("automation: ") and " 0 failed" in fired["summary"]
    assert not fired["summary"].startswith("automation: 0 fired") and not fired["failed"]
    assert next(e for e in events if e["type"] == "finished")["kind"] == "demo"
