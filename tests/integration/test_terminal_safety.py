"""A hostile mail opened in a real terminal (tmux; Pilot has no terminal): escape sequences that would set the
window title or the clipboard (OSC 2, OSC 52) and bidi overrides show as inert placeholders, and the terminal
is left as it was. A control run proves the same sequences do change this tmux when printed raw."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
import uuid

import pytest

from tests.integration.conftest import Mailbox, eventually

TITLE = "\x1b]2;pwned-title\x07"
CLIPBOARD = "\x1b]52;c;" + base64.b64encode(b"pwned-clipboard").decode() + "\x07"
BIDI = "\u202eexe.pdf"


def hostile_mail() -> bytes:
    subject = f"Rechnung {TITLE}{CLIPBOARD} {BIDI}"
    encoded = "=?utf-8?b?" + base64.b64encode(subject.encode()).decode() + "?="
    body = f"Hallo\r\n{TITLE}\r\n{CLIPBOARD}\r\n\x1b[2J\x1b[31mrot\r\n{BIDI}\r\nGruss\r\n"
    return (
        f"From: =?utf-8?b?{base64.b64encode(('Evil ' + TITLE).encode()).decode()}?= <evil@x.example>\r\n"
        f"To: anna@crm.example\r\nSubject: {encoded}\r\nMessage-ID: <evil@x.example>\r\n"
        "Date: Fri, 20 Nov 2026 10:00:00 +0100\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body
    ).encode()


class Tmux:
    def __init__(self) -> None:
        self.socket = f"crm-tui-test-{uuid.uuid4().hex[:8]}"

    def __call__(self, *args: str) -> str:
        done = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=20)
        if done.returncode != 0 and args[0] not in ("kill-server",):
            raise AssertionError(f"tmux {' '.join(args)}: {done.stderr}")
        return done.stdout

    def wait_for(self, target: str, text: str, timeout: float = 30) -> str:
        screen = ""

        def shows() -> bool:
            nonlocal screen
            screen = self("capture-pane", "-p", "-t", target)
            return text in screen

        if eventually(shows, timeout, interval=0.2):
            return screen
        raise AssertionError(f"{text!r} never showed; the screen was:\n{screen}")


def test_a_hostile_mail_leaves_the_terminal_as_it_was(mailbox: Mailbox) -> None:
    if shutil.which("tmux") is None:
        reason = "tmux is not installed (Debian: apt-get install tmux); the real-terminal check needs it"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(f"SKIPPED LOUDLY: {reason}")
    mailbox.append("INBOX", hostile_mail())
    assert mailbox.cli("sync") == 0
    tmux = Tmux()
    try:
        tmux("-f", "/dev/null", "new-session", "-d", "-s", "t", "-x", "160", "-y", "48", "sh")
        tmux("set-option", "-g", "default-size", "160x48")
        tmux("set-option", "-g", "set-clipboard", "on")
        tmux("set-option", "-g", "allow-rename", "on")
        # Control: printed raw, the sequences do set this tmux's pane title and clipboard buffer.
        tmux(
            "send-keys",
            "-t",
            "t",
            f"printf '\\033]2;control-title\\007\\033]52;c;{base64.b64encode(b'control').decode()}\\007'",
            "Enter",
        )
        assert eventually(
            lambda: tmux("display-message", "-p", "-t", "t", "#{pane_title}").strip() == "control-title",
            timeout=10,
            interval=0.1,
        ), "OSC 2 sets tmux's pane title when printed raw"
        assert "control" in tmux("show-buffer"), "OSC 52 reaches tmux's clipboard when printed raw"
        tmux("delete-buffer")
        tmux("select-pane", "-t", "t", "-T", "before")
        tmux("set-buffer", "clipboard-before")
        command = (
            f"env -u COLUMNS -u LINES {mailbox.env_var}={mailbox.password} {sys.executable} -m crm_tui "
            f"--home {mailbox.home}"
        )
        tmux("new-window", "-t", "t:", "-n", "app", command)  # "t:": session t, the next free index
        tmux("select-pane", "-t", "t:app", "-T", "before")
        tmux.wait_for("t:app", "Contacts")
        tmux("send-keys", "-t", "t:app", "1")
        screen = tmux.wait_for("t:app", "Gruss")  # the preview of the only mail
        tmux("send-keys", "-t", "t:app", "Enter")  # and the reader
        screen += tmux.wait_for("t:app", "rot")
        assert "␛]2;pwned-title␇" in screen and "<U+202E>" in screen, "shown as placeholders"
        assert tmux("display-message", "-p", "-t", "t:app", "#{pane_title}").strip() == "before"
        assert tmux("list-buffers", "-F", "#{buffer_sample}").split() == ["clipboard-before"]
        tmux("send-keys", "-t", "t:app", "q")
        tmux("send-keys", "-t", "t:app", "C-q")
    finally:
        tmux("kill-server")
