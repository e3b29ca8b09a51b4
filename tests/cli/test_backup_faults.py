"""Backups and restores under faults (issue 21): a restore on a full disk, or of an altered backup (a foreign
SQLite file, a newer schema, odd document paths), changes nothing and says what failed; a backup to a full
disk says no space is left and leaves no partial file. Real SQLite files, real full disks (a small tmpfs)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import sqlite3
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import col

from crm_tui.cli.main import main
from crm_tui.core import models as m
from crm_tui.core.db import open_database, sqlite_url
from crm_tui.core.services import attachments, users
from crm_tui.core.types import RecordRef, RecordType
from tests.conftest import NOW, PostgresUrls, SmallDisk, fill_disk
from tests.utils import factories
from tests.utils.ids import id_of


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _home_with_data(home: Path, document: bytes) -> str:
    """A home with a user, a contact 'Kept' and a document on it; returns the document's SHA-256."""
    db = open_database(sqlite_url(home / "data" / "crm.sqlite3"))
    source = home.parent / "offer.pdf"
    source.write_bytes(document)
    with db.write() as s:
        users.create_user(s, users.UserInput(name="Anna Berg", email="anna@crm.example"), now=NOW)
        contact = factories.contact(s, NOW, "Kept", emails=["kept@example.com"])
        attachments.add_document(s, RecordRef(RecordType.CONTACT, id_of(contact)), source,
                                 store=attachments.FileStore(home / "data" / "documents"), added_by_id=None, now=NOW)  # fmt: skip
    db.dispose()
    return hashlib.sha256(document).hexdigest()


def _add_contact(home: Path, name: str) -> None:
    db = open_database(sqlite_url(home / "data" / "crm.sqlite3"))
    with db.write() as s:
        factories.contact(s, NOW, name)
    db.dispose()


def _names(home: Path) -> set[str]:
    db = open_database(sqlite_url(home / "data" / "crm.sqlite3"))
    with db.read() as s:
        names = set(s.scalars(select(col(m.Contact.last_name))))
    db.dispose()
    return names


def _snapshot(folder: Path, *, but: tuple[str, ...] = ()) -> dict[str, str]:
    """Every file under ``folder`` with its SHA-256, and every folder: what 'exactly as before' compares."""
    found = {}
    for path in sorted(folder.rglob("*")):
        relative = str(path.relative_to(folder))
        if relative in but:
            continue
        found[relative] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "folder"
    return found


def _read(archive: tarfile.TarFile, item: tarfile.TarInfo) -> bytes:
    data = archive.extractfile(item)
    assert data is not None, f"{item.name} in the backup is not a file"
    return data.read()


def _rewritten(original: Path, target: Path, change: Callable[[dict[str, bytes]], object]) -> Path:
    """A copy of the backup ``original`` whose entries ``change(entries)`` rewrote (a dict of name to bytes, in
    order), the manifest's database checksum made to match the new database: a backup altered knowingly."""
    with tarfile.open(original) as source:
        entries = {item.name: _read(source, item) for item in source.getmembers()}
    change(entries)
    manifest = json.loads(entries["manifest.json"])
    manifest["database_sha256"] = hashlib.sha256(entries["crm.sqlite3"]).hexdigest()
    entries["manifest.json"] = json.dumps(manifest).encode()
    with tarfile.open(target, "w") as archive:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return target


def _with_database(
    entries: dict[str, bytes], work: Path, edit: Callable[[sqlite3.Connection], object]
) -> None:
    """The backup's database, changed by ``edit(connection)``."""
    path = work / "edited.sqlite3"
    path.write_bytes(entries["crm.sqlite3"])
    connection = sqlite3.connect(path)
    edit(connection)
    connection.commit()
    connection.execute("PRAGMA journal_mode = DELETE")
    connection.close()
    entries["crm.sqlite3"] = path.read_bytes()


def test_a_restore_on_a_full_disk_changes_nothing_and_says_no_space_is_left(
    small_disk: SmallDisk, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The home on a small disk: the restore's new database and documents do not fit. Before the fix the live
    database was moved into data/replaced first, a partial .restoring file stayed, the message said "nothing
    was saved" and the next command made an empty database."""
    # Room for the live data, the restored copy and the set-aside one once the filler is gone (the schema grows
    # with every migration: 6 MiB no longer held the three).
    home = small_disk(8 * 1024) / "home"
    _home_with_data(home, os.urandom(1_500_000))
    backup = tmp_path / "crm.backup"
    code, _, err = cli(capsys, "--home", str(home), "backup", str(backup))
    assert code == 0, err
    _add_contact(home, "AfterBackup")
    fill_disk(home, leave_bytes=512 * 1024)
    before = _snapshot(home)

    code, out, err = cli(capsys, "--home", str(home), "restore", str(backup), "--yes")

    assert code == 1, out
    assert "no space is left on the disk" in err and "unchanged" in err, err
    assert "internal error" not in err and "Error" not in err
    assert _snapshot(home) == before  # the live data as it was, no partial file, nothing set aside
    assert {"Kept", "AfterBackup"} <= _names(home)

    (home / "filler").unlink()
    code, out, err = cli(capsys, "--home", str(home), "restore", str(backup), "--yes")
    assert code == 0, err
    names = _names(home)
    assert "Kept" in names and "AfterBackup" not in names
    [aside] = list((home / "data" / "replaced").iterdir())
    kept = sqlite3.connect(aside / "crm.sqlite3")
    assert ("AfterBackup",) in kept.execute("SELECT last_name FROM contact").fetchall()
    kept.close()
    leftovers = [path.name for path in (home / "data").iterdir() if "restoring" in path.name]
    assert leftovers == []


def test_a_restore_while_another_crm_tui_has_the_database_open_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The app (or a sync) would go on writing into the file the restore sets aside: refused, nothing
    changes; once it is closed the restore goes through."""
    home = tmp_path / "home"
    _home_with_data(home, b"%PDF-1.4 offer")
    code, _, err = cli(capsys, "--home", str(home), "backup", str(tmp_path / "crm.backup"))
    assert code == 0, err
    _add_contact(home, "AfterBackup")
    other = open_database(sqlite_url(home / "data" / "crm.sqlite3"))
    with other.read() as s:
        assert s.scalars(select(m.Contact)).first() is not None
    try:
        # Its write-ahead log and shared memory are the other crm-tui's to change; the rest stays as it was.
        before = _snapshot(home / "data", but=("crm.sqlite3-wal", "crm.sqlite3-shm"))
        code, out, err = cli(capsys, "--home", str(home), "restore", str(tmp_path / "crm.backup"), "--yes")
        assert code == 1, out
        assert "another crm-tui" in err and "has the database open" in err and "nothing changed" in err, err
        assert _snapshot(home / "data", but=("crm.sqlite3-wal", "crm.sqlite3-shm")) == before
    finally:
        other.dispose()
    assert {"Kept", "AfterBackup"} <= _names(home)
    code, _, err = cli(capsys, "--home", str(home), "restore", str(tmp_path / "crm.backup"), "--yes")
    assert code == 0, err
    assert "AfterBackup" not in _names(home)


def _foreign(entries: dict[str, bytes], work: Path) -> None:
    path = work / "foreign.sqlite3"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
    connection.execute("INSERT INTO notes (text) VALUES ('not a crm')")
    connection.commit()
    connection.close()
    entries["crm.sqlite3"] = path.read_bytes()


def _foreign_with_version(entries: dict[str, bytes], work: Path) -> None:
    """Another application's database that uses Alembic too, at a revision crm-tui also has."""
    path = work / "foreign.sqlite3"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
    connection.execute(
        "INSERT INTO alembic_version VALUES (?)", (json.loads(entries["manifest.json"])["schema"],)
    )
    connection.execute("CREATE TABLE invoice (id INTEGER PRIMARY KEY)")
    connection.commit()
    connection.close()
    entries["crm.sqlite3"] = path.read_bytes()


def _newer_schema(entries: dict[str, bytes], work: Path) -> None:
    _with_database(entries, work, lambda c: c.execute("UPDATE alembic_version SET version_num = '9999'"))


def _document_named_oddly(entries: dict[str, bytes], work: Path) -> None:
    _with_database(
        entries, work, lambda c: c.execute("UPDATE document SET stored_name = '../../crm.sqlite3'")
    )


@pytest.mark.parametrize(
    ("alter", "said"),
    [
        (_foreign, "not a crm-tui database"),
        (_foreign_with_version, "not a crm-tui database"),
        (_newer_schema, "schema 9999, which this crm-tui does not know"),
        (_document_named_oddly, "names a document file '../../crm.sqlite3'"),
    ],
    ids=["foreign-sqlite", "foreign-with-alembic", "newer-schema", "odd-stored-name"],
)
def test_a_restore_checks_the_database_itself_before_anything_changes(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    alter: Callable[[dict[str, bytes], Path], None],
    said: str,
) -> None:
    """The manifest is intact and its checksum matches, but the database in the backup is not one this
    crm-tui can use. Before the fix the restore swapped it in and the next command refused the database."""
    home = tmp_path / "home"
    _home_with_data(home, b"%PDF-1.4 offer")
    code, _, err = cli(capsys, "--home", str(home), "backup", str(tmp_path / "crm.backup"))
    assert code == 0, err
    _add_contact(home, "AfterBackup")
    altered = _rewritten(tmp_path / "crm.backup", tmp_path / "altered.backup", lambda e: alter(e, tmp_path))
    before = _snapshot(home)

    code, out, err = cli(capsys, "--home", str(home), "restore", str(altered), "--yes")

    assert code == 1, out
    assert said in err, err
    assert "internal error" not in err
    assert _snapshot(home) == before
    code, out, err = cli(capsys, "--home", str(home), "contacts", "list")
    assert code == 0, err
    assert "AfterBackup" in out


@pytest.mark.parametrize(
    "entry",
    [
        "documents/{sha}",
        "documents/{ab}/{sha}/{sha}",
        "documents/{ab}/../{sha}",
        "/documents/{ab}/{sha}",
        "documents/ff/{sha}",
        "documents/{AB}/{SHA}",
        "notes.txt",
    ],
    ids=["no-prefix-folder", "nested", "dot-dot", "absolute", "wrong-prefix", "upper-case", "other-file"],
)
def test_a_restore_refuses_odd_document_paths_before_anything_changes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], entry: str
) -> None:
    """Each document of a backup is documents/<first two of its SHA-256>/<SHA-256>. Before the fix a document
    at documents/<sha> passed the check and crashed the restore after the live data was moved aside (an
    internal error, the app then empty); an absolute or foreign entry was restored silently."""
    home = tmp_path / "home"
    sha = _home_with_data(home, b"%PDF-1.4 offer")
    assert not sha.startswith("ff")
    code, _, err = cli(capsys, "--home", str(home), "backup", str(tmp_path / "crm.backup"))
    assert code == 0, err
    _add_contact(home, "AfterBackup")
    odd = entry.format(sha=sha, ab=sha[:2], SHA=sha.upper(), AB=sha[:2].upper())

    def move_document(entries: dict[str, bytes]) -> None:
        entries[odd] = entries.pop(f"documents/{sha[:2]}/{sha}")

    altered = _rewritten(tmp_path / "crm.backup", tmp_path / "altered.backup", move_document)
    before = _snapshot(home)

    code, out, err = cli(capsys, "--home", str(home), "restore", str(altered), "--yes")

    assert code == 1, out
    assert f"unexpected entry {odd!r}" in err, err
    assert "internal error" not in err
    assert _snapshot(home) == before
    assert {"Kept", "AfterBackup"} <= _names(home)


@pytest.mark.parametrize("fails_at", ["database-copy", "archive"])
def test_a_backup_to_a_full_disk_says_no_space_is_left_and_leaves_no_partial_file(
    small_disk: SmallDisk, tmp_path: Path, capsys: pytest.CaptureFixture[str], fails_at: str
) -> None:
    """The backup's target on a small disk: full, or with room for the database's copy but not the archive.
    Before the fix a full disk was 'internal error: OperationalError: database or disk is full'."""
    home = tmp_path / "home"
    _home_with_data(home, os.urandom(1_000_000))
    database_size = (home / "data" / "crm.sqlite3").stat().st_size
    target = small_disk(2 * 1024)
    fill_disk(target, leave_bytes=0 if fails_at == "database-copy" else database_size + 128 * 1024)
    before = sorted(path.name for path in target.iterdir())

    code, out, err = cli(capsys, "--home", str(home), "backup", str(target / "crm.backup"))

    assert code == 1, out
    assert "no space is left on the disk" in err and "no backup was written" in err, err
    assert "internal error" not in err and "OperationalError" not in err
    assert sorted(path.name for path in target.iterdir()) == before


def _team_backup(
    postgres_urls: PostgresUrls, tmp_path: Path, capsys: pytest.CaptureFixture[str], document: bytes
) -> Path:
    """A backup of a shared PostgreSQL database (table by table) with a contact 'Team' and a document."""
    url = postgres_urls()
    shared = open_database(url)
    source = tmp_path / "plan.pdf"
    source.write_bytes(document)
    with shared.write() as s:
        users.create_user(s, users.UserInput(name="Anna Berg", email="anna@crm.example"), now=NOW)
        contact = factories.contact(s, NOW, "Team")
        attachments.add_document(s, RecordRef(RecordType.CONTACT, id_of(contact)), source,
                                 store=attachments.store_for(shared, tmp_path), added_by_id=None, now=NOW)  # fmt: skip
    shared.dispose()
    target = tmp_path / "team.backup"
    code, _, err = cli(capsys, "--home", str(tmp_path / "team-home"), "--db", url, "backup", str(target))
    assert code == 0, err
    return target


def test_a_shared_database_s_backup_restored_onto_a_full_disk_changes_nothing(
    postgres_urls: PostgresUrls, small_disk: SmallDisk, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The other kind of backup (a team's PostgreSQL database) into a local home on a full disk: built
    beside the live data, which stays exactly as it was; after space is freed it goes through."""
    backup = _team_backup(postgres_urls, tmp_path, capsys, os.urandom(1_500_000))
    home = small_disk(16 * 1024) / "home"
    _home_with_data(home, b"%PDF-1.4 offer")
    fill_disk(home, leave_bytes=1024 * 1024)
    before = _snapshot(home / "data")

    code, out, err = cli(capsys, "--home", str(home), "restore", str(backup), "--yes")

    assert code == 1, out
    assert "no space is left on the disk" in err and "unchanged" in err, err
    assert _snapshot(home / "data") == before
    assert "Kept" in _names(home)
    (home / "filler").unlink()
    code, _, err = cli(capsys, "--home", str(home), "restore", str(backup), "--yes")
    assert code == 0, err
    assert "Team" in _names(home) and "Kept" not in _names(home)


def test_a_shared_database_s_backup_naming_a_document_oddly_is_refused_before_anything_changes(
    postgres_urls: PostgresUrls, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Document bytes in a table backup are named by their SHA-256; a name like '../../../escaped' would
    have been written outside the documents folder."""
    backup = _team_backup(postgres_urls, tmp_path, capsys, b"%PDF-1.4 plan")
    home = tmp_path / "nest" / "deeper" / "home"
    _home_with_data(home, b"%PDF-1.4 offer")
    with tarfile.open(backup) as source:
        entries = {item.name: _read(source, item) for item in source.getmembers()}
    manifest = json.loads(entries["manifest.json"])
    name = "tables/document_content.jsonl"
    rows = [json.loads(line) for line in entries[name].splitlines()]
    assert rows
    for row in rows:
        row["sha256"] = "../../../escaped"
    entries[name] = b"".join(json.dumps(row).encode() + b"\n" for row in rows)
    manifest["tables"]["document_content"]["sha256"] = hashlib.sha256(entries[name]).hexdigest()
    entries["manifest.json"] = json.dumps(manifest).encode()
    altered = tmp_path / "altered.backup"
    with tarfile.open(altered, "w") as archive:
        for entry, data in entries.items():
            info = tarfile.TarInfo(entry)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    before = _snapshot(home / "data")

    code, out, err = cli(capsys, "--home", str(home), "restore", str(altered), "--yes")

    assert code == 1, out
    assert "'../../../escaped', not a SHA-256" in err and "nothing changed" in err, err
    assert _snapshot(home / "data") == before
    assert not list(tmp_path.rglob("escaped"))


def test_a_restore_whose_check_finds_the_temporary_folder_full_changes_nothing(
    small_disk: SmallDisk, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The backup is checked in the temporary folder first; that disk full is said as such."""
    import tempfile

    home = tmp_path / "home"
    _home_with_data(home, b"%PDF-1.4 offer")
    code, _, err = cli(capsys, "--home", str(home), "backup", str(tmp_path / "crm.backup"))
    assert code == 0, err
    temporary = small_disk(512)
    fill_disk(temporary)
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    before = _snapshot(home)

    code, out, err = cli(capsys, "--home", str(home), "restore", str(tmp_path / "crm.backup"), "--yes")

    assert code == 1, out
    assert f"no space is left on the disk holding {temporary}" in err and "unchanged" in err, err
    assert _snapshot(home) == before
    assert sorted(path.name for path in temporary.iterdir()) == ["filler"]


@pytest.mark.parametrize("damage", ["garbage", "missing"])
def test_a_restore_brings_back_a_home_whose_database_is_damaged_or_gone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    """A restore is what one does to a damaged database (or on a new laptop): the live one is not opened
    first (it was, and a damaged one stopped the restore with 'file is not a database')."""
    home = tmp_path / "home"
    _home_with_data(home, b"%PDF-1.4 offer")
    archive = tmp_path / "crm.backup"
    assert cli(capsys, "--home", str(home), "backup", str(archive))[0] == 0
    live = home / "data" / "crm.sqlite3"
    for extra in (live.with_name("crm.sqlite3-wal"), live.with_name("crm.sqlite3-shm")):
        extra.unlink(missing_ok=True)
    if damage == "garbage":
        live.write_bytes(b"this is not a database any more" * 200)
    else:
        live.unlink()
    code, out, err = cli(capsys, "--home", str(home), "restore", str(archive), "--yes")
    assert code == 0, err
    assert "restored" in out
    assert _names(home) == {"Kept"}


def test_a_crm_tui_holding_the_database_without_a_trace_in_sqlite_still_stops_a_restore(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An app that has the database open but no connection at the moment leaves no -wal or -shm file: the
    restore went ahead and the app then wrote into the file set aside. The database's lock file says who has
    it open; and a crm-tui starting while a restore swaps the files waits for it, or says a restore is under
    way, instead of opening the old file."""
    from crm_tui.core import db as db_module

    home = tmp_path / "home"
    _home_with_data(home, b"%PDF-1.4 offer")
    assert cli(capsys, "--home", str(home), "backup", str(tmp_path / "crm.backup"))[0] == 0
    live = home / "data" / "crm.sqlite3"
    app = open_database(sqlite_url(live))
    app.engine.dispose()  # idle: no connection, so no -wal or -shm file
    assert not live.with_name("crm.sqlite3-wal").exists()
    try:
        code, _, err = cli(capsys, "--home", str(home), "restore", str(tmp_path / "crm.backup"), "--yes")
        assert code == 1 and "has the database open" in err and "nothing changed" in err, err
    finally:
        app.dispose()
    monkeypatch.setattr(db_module, "RESTORE_WAIT", 0.3)
    with db_module.held_alone(live, "busy"):  # what a restore holds while it swaps the files
        code, _, err = cli(capsys, "--home", str(home), "contacts", "list")
        assert code == 1 and "is being restored from a backup" in err, err
    assert cli(capsys, "--home", str(home), "contacts", "list")[0] == 0
    assert cli(capsys, "--home", str(home), "restore", str(tmp_path / "crm.backup"), "--yes")[0] == 0
