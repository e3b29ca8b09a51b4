"""Fixtures for the mail engine tests: a real Dovecot per test process, a fresh IMAP user per test, and an app
home with one account on it (password from an environment variable)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from crm_tui.cli import main
from crm_tui.core.db import Database, open_database, sqlite_url
from tests.conftest import NOW
from tests.mail import dovecot as dovecot_module

_users = itertools.count(1)


@pytest.fixture(scope="session")
def dovecot() -> Iterator[dovecot_module.Dovecot]:
    server = dovecot_module.start()
    yield server
    server.stop()


@dataclass
class Mailbox:
    """One IMAP user on the test Dovecot, and a crm-tui home with an account "work" on it."""

    server: dovecot_module.Dovecot
    user: str
    password: str
    home: Path
    env_var: str

    def imap(self) -> Any:
        return self.server.client(self.user)

    def append(self, folder: str, raw: bytes, flags: tuple[str, ...] = ()) -> None:
        client = self.imap()
        try:
            client.append(folder, raw, flags=flags)
        finally:
            client.logout()

    def cli(self, *argv: str) -> int:
        return main(["--home", str(self.home), "--now", NOW.isoformat(), *argv])

    def database(self) -> Database:
        return open_database(sqlite_url(self.home / "data" / "crm.sqlite3"))


@pytest.fixture
def mailbox(dovecot: dovecot_module.Dovecot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Mailbox:
    user = f"user{next(_users)}"
    password = dovecot.users[user]
    env_var = "CRM_TEST_IMAP_PASSWORD"
    monkeypatch.setenv(env_var, password)
    home = tmp_path / "crm-home"
    box = Mailbox(dovecot, user, password, home, env_var)
    # A user who is "me", then the account.
    db = box.database()
    from crm_tui.core.services import users

    with db.write() as session:
        users.create_user(session, users.UserInput(name="Anna Berg", email="anna@crm.example"), now=NOW)
    db.dispose()
    code = box.cli(
        "account", "add", "work", "--preset", "other", "--imap-host", "127.0.0.1",
        "--imap-port", str(dovecot.port), "--imap-security", "none", "--user", user,
        "--password-env", env_var, "--address", "anna@crm.example", "--sync-since", "all",
    )  # fmt: skip
    assert code == 0
    return box
