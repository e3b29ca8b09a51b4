"""Private data is private (issue 21, item 7): the database with its WAL and SHM, the documents, the log and
the backups are made readable by the user only (files 0600, folders 0700) whatever the umask, and a home an
older crm-tui left with the umask's modes is tightened on start. Real files, real umasks."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from crm_tui.cli.main import main
from crm_tui.core.db import SCHEMA_HEAD, open_database, sqlite_url
from crm_tui.core.services import attachments, users
from crm_tui.core.types import RecordRef, RecordType
from crm_tui.runtime.logs import LOGGER, open_log
from crm_tui.runtime.paths import resolve_paths
from tests.conftest import NOW
from tests.utils import factories
from tests.utils.ids import id_of


@pytest.fixture(params=[0o022, 0o000], ids=["umask-022", "umask-000"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _not_private(folder: Path) -> list[str]:
    """Everything under ``folder`` that others could read, write or enter: 'path 0o644'."""
    found = []
    for path in [folder, *sorted(folder.rglob("*"))]:
        wanted = 0o700 if path.is_dir() else 0o600
        if _mode(path) != wanted:
            found.append(f"{path.relative_to(folder.parent)} {oct(_mode(path))}")
    return found


def _log_something(home: Path) -> None:
    open_log(resolve_paths(home))
    LOGGER.warning("a record for the log")
    for handler in LOGGER.handlers:
        handler.flush()


def test_what_a_new_home_holds_is_readable_by_the_user_only(umask: int, tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert main(["--home", str(home), "contacts", "list"]) == 0
    db = open_database(sqlite_url(home / "data" / "crm.sqlite3"))
    source = tmp_path / "offer.pdf"
    source.write_bytes(b"%PDF-1.4 offer")
    with db.write() as s:
        users.create_user(s, users.UserInput(name="Anna Berg", email="anna@crm.example"), now=NOW)
        contact = factories.contact(s, NOW, "Kept")
        attachments.add_document(s, RecordRef(RecordType.CONTACT, id_of(contact)), source,
                                 store=attachments.FileStore(home / "data" / "documents"), added_by_id=None, now=NOW)  # fmt: skip
    # While the database is open its write-ahead log and shared memory exist: private as the database.
    for suffix in ("", "-wal", "-shm"):
        assert _mode(home / "data" / f"crm.sqlite3{suffix}") == 0o600, suffix
    db.dispose()
    _log_something(home)
    assert (home / "state" / "crm-tui.log").exists()
    backups = tmp_path / "backups"
    backups.mkdir()
    assert main(["--home", str(home), "backup", str(backups / "crm.backup")]) == 0
    assert _mode(backups / "crm.backup") == 0o600
    assert main(["--home", str(home), "restore", str(backups / "crm.backup"), "--yes"]) == 0
    assert list((home / "data" / "replaced").iterdir())  # what the restore replaced, kept aside
    assert list((home / "data" / "documents").rglob("*.pdf")) == []  # stored by their SHA-256
    assert len([p for p in (home / "data" / "documents").rglob("*") if p.is_file()]) == 1

    assert _not_private(home) == []
    # A home whose first file is the log (an error before the database was ever opened): private as well.
    first_log = tmp_path / "another-home"
    _log_something(first_log)
    assert (first_log / "state" / "crm-tui.log").exists()
    assert _not_private(first_log) == []


def test_a_home_an_older_crm_tui_left_open_is_tightened_on_start(umask: int, tmp_path: Path) -> None:
    """An older crm-tui made the database, documents, backups and log with the umask's modes (0644 files,
    0755 folders; 0666/0777 under umask 0). The next start makes them private, and the backup it takes
    before upgrading the database is private too."""
    home = tmp_path / "home"
    files, folders = 0o666 & ~umask, 0o777 & ~umask
    old = open_database(sqlite_url(home / "data" / "crm.sqlite3"), migrate=False)
    from tests.core.test_migrations import _migrate

    _migrate(old, "0015")
    old.dispose()
    documents = home / "data" / "documents" / "ab"
    documents.mkdir(parents=True)
    (documents / ("ab" + "0" * 62)).write_bytes(b"a document")
    aside = home / "data" / "replaced" / "20261101T080000"
    aside.mkdir(parents=True)
    (aside / "crm.sqlite3").write_bytes(b"an older database")
    (home / "data" / "backups").mkdir()
    (home / "data" / "backups" / "crm.before-0015.bak").write_bytes(b"an older backup")
    (home / "state").mkdir()
    (home / "state" / "crm-tui.log").write_text("--- an older record\n")
    (home / "config").mkdir()
    (home / "config" / "config.toml").write_text("")
    for path in [home, *home.rglob("*")]:
        path.chmod(folders if path.is_dir() else files)
    script = home / "config" / "password.sh"  # a user's own --password-command, kept there
    script.write_text("#!/bin/sh\necho secret\n")
    script.chmod(0o755)
    assert _not_private(home / "data")  # as the older crm-tui left it

    assert main(["--home", str(home), "contacts", "list"]) == 0

    assert (home / "data" / "backups" / f"crm.before-{SCHEMA_HEAD}.bak").exists()
    assert _mode(script) == 0o700  # the others' bits gone, still executable
    script.unlink()
    for folder in ("config", "data", "state"):
        assert _not_private(home / folder) == [], folder


def test_the_config_file_the_app_writes_is_private(umask: int, tmp_path: Path) -> None:
    """config.toml names the accounts' servers and users: written 0600 whatever the umask."""
    from crm_tui.runtime.settings import load_settings, set_config_value

    config = tmp_path / "home" / "config" / "config.toml"
    set_config_value(config, "me", "anna@crm.example")
    assert _mode(config) == 0o600 and _mode(config.parent) == 0o700
    set_config_value(config, "me", "ben@crm.example")  # rewritten over an existing file
    assert _mode(config) == 0o600
    assert load_settings(config).me == "ben@crm.example"
