"""Accounts: presets, validation, passwords never in plain text, the keyring (a real gnome-keyring too)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from crm_tui.cli.main import main
from tests.conftest import NOW
from tests.integration.conftest import Mailbox


def run(capsys: pytest.CaptureFixture[str], home: Path, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["--home", str(home), "--now", NOW.isoformat(), *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _with_user(home: Path) -> None:
    from crm_tui.core.db import open_database, sqlite_url
    from crm_tui.core.services import users

    db = open_database(sqlite_url(home / "data" / "crm.sqlite3"))
    with db.write() as session:
        users.create_user(session, users.UserInput(name="Anna Berg", email="anna@crm.example"), now=NOW)
    db.dispose()


def test_presets_fill_the_servers_and_bad_values_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "h"
    _with_user(home)
    code, _, err = run(
        capsys, home, "account", "add", "gm", "--preset", "gmail", "--user", "anna@gmail.com",
        "--password-env", "GM_PW", "--address", "anna@gmail.com",
    )  # fmt: skip
    assert code == 0, err
    code, out, _ = run(capsys, home, "account", "list", "--json")
    (account,) = json.loads(out)
    assert account["imap"] == "imap.gmail.com:993 (ssl)" and account["smtp"] == "smtp.gmail.com:465 (ssl)"
    assert account["password"] == "env GM_PW" and account["user"] == "user:1"
    assert account["sync_since"] == "2026-08-24", "90 days back by default"
    code, _, err = run(
        capsys, home, "account", "add", "bad", "--imap-host", "", "--user", "x", "--password-env", "1NVALID",
        "--address", "not-an-address",
    )  # fmt: skip
    assert code == 1
    assert "imap_host" in err and "password" in err and "addresses" in err
    code, _, err = run(capsys, home, "account", "add", "x", "--imap-port", "70000")
    assert code == 2 and "port" in err
    code, _, _ = run(capsys, home, "account", "remove", "gm")
    assert code == 0
    assert json.loads(run(capsys, home, "account", "list", "--json")[1]) == []


def test_without_a_keyring_the_user_is_told_the_other_ways(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import keyring
    from keyring.backends import fail

    home = tmp_path / "h"
    _with_user(home)
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())  # type: ignore[no-untyped-call]  # keyring's backends leave __init__ unannotated
    try:
        code, _, err = run(capsys, home, "account", "add", "k", "--imap-host", "127.0.0.1", "--user", "anna")
    finally:
        keyring.set_keyring(previous)
    assert code == 1
    assert "no OS keyring" in err and "--password-env" in err and "--password-command" in err
    assert json.loads(run(capsys, home, "account", "list", "--json")[1]) == [], "nothing half-made"


def test_a_password_command_works_and_a_failing_one_is_one_line(
    mailbox: Mailbox, capsys: pytest.CaptureFixture[str]
) -> None:
    script = mailbox.home.parent / "pw.sh"
    script.write_text(f"#!/bin/sh\necho '{mailbox.password}'\n")
    script.chmod(0o755)
    assert mailbox.cli("account", "edit", "work", "--password-command", str(script)) == 0
    capsys.readouterr()
    assert mailbox.cli("account", "test", "work") == 0
    assert "logged in" in capsys.readouterr().out
    assert mailbox.cli("account", "edit", "work", "--password-command", "false") == 0
    capsys.readouterr()
    assert mailbox.cli("account", "test", "work") == 1
    assert "password command exited with 1" in capsys.readouterr().err


def _secret_free(home: Path, secret: str) -> None:
    for path in home.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), f"the password is in {path}"


def test_the_keyring_path_against_a_real_gnome_keyring(mailbox: Mailbox, tmp_path: Path) -> None:
    """Under dbus-run-session with gnome-keyring's Secret Service: add (password on stdin), test, remove."""
    missing = [tool for tool in ("dbus-run-session", "gnome-keyring-daemon") if shutil.which(tool) is None]
    if missing:
        reason = f"{', '.join(missing)} missing (Debian: dbus, gnome-keyring)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(f"SKIPPED LOUDLY: {reason}")
    home = tmp_path / "kr-home"
    _with_user(home)
    crm = f"{sys.executable} -m crm_tui --home {home}"
    script = textwrap.dedent(
        f"""
        set -e
        printf unlock | gnome-keyring-daemon --unlock --components=secrets >/dev/null
        printf '%s\\n' '{mailbox.password}' | {crm} account add kr --imap-host 127.0.0.1 --imap-port {mailbox.server.port} \\
            --imap-security none --user {mailbox.user} --sync-since all
        {crm} account test kr
        {sys.executable} -c "import keyring; print('stored:', keyring.get_password('crm-tui', 'imap:kr') is not None)"
        {crm} sync --account kr
        {crm} account remove kr
        {sys.executable} -c "import keyring; print('after remove:', keyring.get_password('crm-tui', 'imap:kr'))"
        """
    )
    # A fresh keyring of its own: gnome-keyring keeps its files under $HOME/.local/share/keyrings.
    user_home = tmp_path / "user-home"
    user_home.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in (mailbox.env_var, "XDG_DATA_HOME", "DBUS_SESSION_BUS_ADDRESS")
    }
    env["HOME"] = str(user_home)
    result = subprocess.run(
        ["dbus-run-session", "--", "sh", "-c", script], capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert "logged in to 127.0.0.1" in result.stdout
    assert "stored: True" in result.stdout and "after remove: None" in result.stdout
    _secret_free(home, mailbox.password)
