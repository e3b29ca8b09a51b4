"""A full home disk (issue 21 follow-up): the commands that only read still work, a backup to another disk is
made, and a command that must write says the disk holding the database is full (it was "database error: disk
I/O error" for all of them). Real SQLite files on a real full disk (a small tmpfs)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from crm_tui.cli.main import main
from crm_tui.core.db import open_database, sqlite_url
from crm_tui.core.services import users
from tests.conftest import NOW, SmallDisk, fill_disk
from tests.utils import factories


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def full_home(small_disk: SmallDisk) -> Path:
    """A home with a user and a contact 'Kept', on a disk with no free space left (the database closed
    cleanly before: no -wal, no -shm, as after any command)."""
    home = small_disk(4 * 1024) / "home"
    db = open_database(sqlite_url(home / "data" / "crm.sqlite3"))
    with db.write() as s:
        users.create_user(s, users.UserInput(name="Anna Berg", email="anna@crm.example"), now=NOW)
        factories.contact(s, NOW, "Kept", emails=["kept@example.com"])
    db.dispose()
    fill_disk(home)
    return home


def test_reading_commands_work_when_the_home_disk_is_full(
    full_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "--home", str(full_home), "contacts", "list")
    assert code == 0, err
    assert "Kept" in out
    code, out, err = cli(capsys, "--home", str(full_home), "users", "list")
    assert code == 0, err
    assert "Anna Berg" in out
    code, out, err = cli(capsys, "--home", str(full_home), "search", "angebot")
    assert code == 0, err
    code, out, err = cli(capsys, "--home", str(full_home), "contacts", "list", "--search", "Kept")
    assert code == 0 and "Kept" in out, err
    assert "Logging error" not in err


def test_a_backup_to_another_disk_is_made_when_the_home_disk_is_full(
    full_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "elsewhere" / "crm.backup"
    target.parent.mkdir()
    code, out, err = cli(capsys, "--home", str(full_home), "backup", str(target))
    assert code == 0, err
    assert "backup written" in out and "1 contact" in out


def test_a_write_on_a_full_home_disk_says_the_disk_holding_the_database_is_full(
    full_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "new.csv"
    source.write_text("name,email\nBea Holm,bea@example.com\n")
    code, out, err = cli(capsys, "--home", str(full_home), "import", "contacts", str(source))
    assert code == 1, out
    assert f"the disk holding the database ({full_home / 'data'}) is full" in err, err
    assert "nothing was saved" in err
    assert "disk I/O error" not in err and "internal error" not in err
    code, out, err = cli(capsys, "--home", str(full_home), "contacts", "list")
    assert code == 0, err
    assert "Kept" in out and "Bea Holm" not in out
    (full_home / "filler").unlink()
    connection = sqlite3.connect(full_home / "data" / "crm.sqlite3")
    assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    connection.close()


def test_a_log_record_that_does_not_fit_on_the_full_disk_prints_nothing(
    full_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The log is on the full disk too: the record is lost, but no "--- Logging error ---" traceback lands on
    the screen (over the app, or a command's output)."""
    from crm_tui.runtime.logs import LOGGER, open_log
    from crm_tui.runtime.paths import resolve_paths

    before = list(LOGGER.handlers)
    open_log(resolve_paths(full_home))
    capsys.readouterr()
    try:
        LOGGER.error("something went wrong: %s", "x" * 100_000)
        for handler in LOGGER.handlers:
            handler.flush()
    finally:
        for handler in [h for h in LOGGER.handlers if h not in before]:
            LOGGER.removeHandler(handler)
            handler.close()
    _, err = capsys.readouterr()
    assert "Logging error" not in err and "Traceback" not in err


def test_what_was_written_before_a_crash_is_read_from_the_log_when_the_disk_is_full(
    small_disk: SmallDisk, capsys: pytest.CaptureFixture[str]
) -> None:
    """A crm-tui killed after its last commit leaves that commit in the -wal only; with its -shm gone and the
    disk full, the log is read into memory (exclusive locking) rather than ignored: the last contact shows."""
    import subprocess
    import sys
    import textwrap

    home = small_disk(4 * 1024) / "home"
    code = textwrap.dedent(
        f"""
        import os
        from crm_tui.core.db import open_database, sqlite_url
        from tests.conftest import NOW
        from tests.utils import factories
        db = open_database(sqlite_url({str(home / "data" / "crm.sqlite3")!r}))
        with db.write() as s:
            factories.contact(s, NOW, "Kept")
        db.engine.raw_connection().driver_connection.execute("PRAGMA wal_autocheckpoint = 0")
        with db.write() as s:
            factories.contact(s, NOW, "OnlyInTheLog")
        os._exit(0)  # killed: no checkpoint, the last commit stays in the -wal
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])
    wal = home / "data" / "crm.sqlite3-wal"
    assert wal.stat().st_size > 0
    (home / "data" / "crm.sqlite3-shm").unlink()
    fill_disk(home)
    code_, out, err = cli(capsys, "--home", str(home), "contacts", "list")
    assert code_ == 0, err
    assert "Kept" in out and "OnlyInTheLog" in out


def test_an_older_database_on_a_full_disk_says_it_must_be_upgraded_first_and_changes_nothing(
    small_disk: SmallDisk, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its upgrade copies it to data/backups first: that failed with 'internal error: OperationalError:
    database or disk is full' and left a partial copy."""
    import shutil

    from tests.core.test_migrations import _database_at, _revision

    home = small_disk(4 * 1024) / "home"
    (home / "data").mkdir(parents=True)
    shutil.copy(_database_at(tmp_path, "0018"), home / "data" / "crm.sqlite3")
    fill_disk(home)

    code, out, err = cli(capsys, "--home", str(home), "contacts", "list")

    assert code == 1, out
    assert err.strip() == (
        "crm-tui: the database must first be upgraded to this crm-tui's schema, but the disk holding the "
        f"database ({home / 'data'}) is full: nothing was saved; free some space there and try again"
    )
    assert [p.name for p in (home / "data" / "backups").glob("*")] == []
    connection = sqlite3.connect(f"file:{home / 'data' / 'crm.sqlite3'}?immutable=1", uri=True)
    assert connection.execute("SELECT version_num FROM alembic_version").fetchall() == [("0018",)]
    connection.close()
    (home / "filler").unlink()
    code, out, err = cli(capsys, "--home", str(home), "contacts", "list")
    assert code == 0, err
    assert _revision(home / "data" / "crm.sqlite3") != "0018"
