"""Writing the body in $EDITOR, in a real terminal (tmux): the app steps aside, the editor runs, the text comes
back into the mail, and the mail goes out through the outbox to the test SMTP server."""

from __future__ import annotations

import email
import email.policy
import os
import shutil
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import Mailbox, eventually
from tests.integration.smtp import SmtpServer
from tests.integration.test_sync import message
from tests.integration.test_terminal_safety import Tmux


def test_the_body_written_in_the_editor_is_sent(mailbox: Mailbox, smtp: SmtpServer, tmp_path: Path) -> None:  # noqa: F811
    if shutil.which("tmux") is None:
        reason = "tmux is not installed (Debian: apt-get install tmux); the real-terminal check needs it"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(f"SKIPPED LOUDLY: {reason}")
    mailbox.append("INBOX", message(1, mid="<e1@firma.example>", subject="Anfrage"))
    assert mailbox.cli("sync") == 0
    editor = tmp_path / "editor.sh"
    editor.write_text(
        '#!/bin/sh\n{ printf "Text aus dem Editor\\n"; cat "$1"; } > "$1.new" && mv "$1.new" "$1"\n'
    )
    editor.chmod(0o755)
    tmux = Tmux()
    try:
        tmux("-f", "/dev/null", "new-session", "-d", "-s", "t", "-x", "160", "-y", "48", "sh")
        command = (
            f"env -u COLUMNS -u LINES EDITOR={editor} {mailbox.env_var}={mailbox.password} "
            f"{sys.executable} -m crm_tui --home {mailbox.home}"
        )
        tmux("new-window", "-t", "t:", "-n", "app", command)  # "t:": session t, the next free index
        tmux.wait_for("t:app", "Contacts")
        tmux("send-keys", "-t", "t:app", "1")
        tmux.wait_for("t:app", "Anfrage 1")
        tmux("send-keys", "-t", "t:app", "r")
        tmux.wait_for("t:app", "Re: Anfrage 1")
        tmux("send-keys", "-t", "t:app", "C-e")
        tmux.wait_for("t:app", "Text aus dem Editor")
        tmux("send-keys", "-t", "t:app", "C-s")  # queued without asking; it goes out after the send delay
        tmux.wait_for("t:app", "Queued to")
        eventually(lambda: bool(smtp.received), timeout=30, interval=0.2)
        tmux("send-keys", "-t", "t:app", "C-q")
    finally:
        tmux("kill-server")
    assert len(smtp.received) == 1
    sent = email.message_from_bytes(smtp.received[0][2], policy=email.policy.default)
    body = sent.get_content().replace("\r\n", "\n")
    assert body.startswith("Text aus dem Editor\n") and "> Hello" in body
