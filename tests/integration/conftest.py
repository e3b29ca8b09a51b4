"""Fixtures for the mail engine tests: a real Dovecot per test process, a fresh IMAP user per test, and an app
home with one account on it (password from an environment variable)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from crm_tui.cli.main import main
from crm_tui.core.db import Database, open_database, sqlite_url
from tests.conftest import NOW
from tests.integration import dovecot as dovecot_module
from tests.integration.smtp import SmtpServer

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
    db_url: str | None = None  # a PostgreSQL database (team mode), else the home's SQLite file

    def where(self) -> list[str]:
        """The command-line options that point crm-tui at this mailbox's home and database."""
        return ["--home", str(self.home), *(["--db", self.db_url] if self.db_url else [])]

    def imap(self) -> Any:
        return self.server.client(self.user)

    def append(self, folder: str, raw: bytes, flags: tuple[str | bytes, ...] = ()) -> None:
        client = self.imap()
        try:
            client.append(folder, raw, flags=flags)
        finally:
            client.logout()

    def cli(self, *argv: str) -> int:
        return main([*self.where(), "--now", NOW.isoformat(), *argv])

    def database(self) -> Database:
        return open_database(self.db_url or sqlite_url(self.home / "data" / "crm.sqlite3"))

    def count(self, sql: str) -> int:
        """A count read straight from the database (-1 when it cannot be read right now)."""
        if self.db_url is None:
            import sqlite3

            path = self.home / "data" / "crm.sqlite3"
            try:
                with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
                    return int(db.execute(sql).fetchone()[0])
            except sqlite3.OperationalError:
                return -1
        import psycopg

        try:
            with psycopg.connect(self.db_url.replace("postgresql+psycopg://", "postgresql://")) as db:
                row = db.execute(sql).fetchone()
                assert row is not None, "a count has its one row"
                return int(row[0])
        except psycopg.Error:
            return -1


def eventually(condition: Callable[[], object], timeout: float, interval: float = 0.05) -> bool:
    """Whether ``condition`` comes true within ``timeout`` seconds, looked at every ``interval`` seconds: the
    wait on another process, a server or a terminal (a Pilot test waits with tests/ui/helpers.py wait_for)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


ON_BOTH = pytest.mark.parametrize("mailbox", ["sqlite", "postgresql"], indirect=True)
"""Runs a mail test twice: on the home's SQLite file and on a PostgreSQL database (team mode)."""


@pytest.fixture
def mailbox(
    dovecot: dovecot_module.Dovecot,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> Mailbox:
    user = f"user{next(_users)}"
    password = dovecot.users[user]
    env_var = "CRM_TEST_IMAP_PASSWORD"
    monkeypatch.setenv(env_var, password)
    home = tmp_path / "crm-home"
    db_url = None
    if getattr(request, "param", "sqlite") == "postgresql":
        db_url = request.getfixturevalue("postgres_urls")()
    box = Mailbox(dovecot, user, password, home, env_var, db_url)
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


def point_smtp_at(box: Mailbox, port: int) -> None:
    """The account "work" sends through plain SMTP on loopback at ``port``."""
    code = box.cli(
        "account", "edit", "work", "--smtp-host", "127.0.0.1", "--smtp-port", str(port), "--smtp-security", "none"
    )  # fmt: skip
    assert code == 0


@pytest.fixture
def smtp(mailbox: Mailbox) -> Iterator[SmtpServer]:
    """A real SMTP server (aiosmtpd) the account "work" sends through."""
    server = SmtpServer().start()
    point_smtp_at(mailbox, server.port)
    yield server
    server.stop()
