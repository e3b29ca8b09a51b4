"""Backups: one file (a tar archive) with a consistent copy of the database, the documents it refers to and a
manifest; restore checks all of it before anything is replaced, and keeps the replaced data aside.

A local SQLite database is copied with SQLite's online backup API, so the app may keep running meanwhile;
documents are content-addressed (their name is their SHA-256) and never change once stored, so copying those
the copy refers to is consistent with it.

A shared PostgreSQL database is written table by table (``table_copy``: JSON lines, documents included, as
they live in the database there) inside one REPEATABLE READ transaction: one snapshot, while the team works
on. Restoring one replaces every table in one transaction (PostgreSQL's DDL is transactional: a restore that
fails leaves the data as it was), after the current data was written aside as a backup of its own. Either
kind of backup restores into either kind of database: a SQLite backup restored with ``--db postgresql://...``
moves a salesperson's local data onto the team's server.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import tarfile
import tempfile
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import create_engine, insert, inspect
from sqlalchemy.exc import DBAPIError

from crm_tui import __version__
from crm_tui.core import bulk, search_index
from crm_tui.core import models as m
from crm_tui.core.db import (
    SCHEMA_HEAD,
    Database,
    backup_sqlite,
    describe_db_error,
    ensure_change_notices,
    held_alone,
    known_revisions,
    make_engine,
    run_migrations,
    sqlite_driver,
    sqlite_url,
)
from crm_tui.core.errors import CrmError
from crm_tui.core.interchange import table_copy
from crm_tui.core.private_files import open_private, private_dir
from crm_tui.core.services.attachments import content_rows
from crm_tui.core.wording import plural

FORMAT = 1
DB_NAME = "crm.sqlite3"
COUNTED = (
    "contact",
    "organization",
    "lead",
    "opportunity",
    "activity",
    "mail_message",
    "document",
    "automation_rule",
)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _sha256_of(handle: IO[bytes]) -> str:
    digest = hashlib.sha256()
    while chunk := handle.read(1 << 20):
        digest.update(chunk)
    return digest.hexdigest()


def _counts(connection: sqlite3.Connection) -> dict[str, int]:
    return {table: connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in COUNTED}  # noqa: S608


def _target_folder(target: Path) -> Path:
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise CrmError(f"the folder {folder} does not exist")
    return folder


def _write_archive(
    target: Path, manifest: dict[str, Any], members: list[tuple[Path, str]], now: datetime
) -> None:
    """The tar file at ``target``, written beside it and renamed into place: never half a backup."""
    handle, temporary = tempfile.mkstemp(dir=_target_folder(target), prefix=f".{target.name}.")
    os.close(handle)
    try:
        with tarfile.open(temporary, "w") as archive:
            data = json.dumps(manifest, indent=2).encode()
            info = tarfile.TarInfo("manifest.json")
            info.size, info.mtime = len(data), int(now.timestamp())
            archive.addfile(info, io.BytesIO(data))
            for path, name in members:
                archive.add(path, arcname=name)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _summary(target: Path, manifest: dict[str, Any]) -> str:
    counts, missing = manifest["counts"], manifest["documents_missing"]
    note = f"; {plural(len(missing), 'document')} {'was' if len(missing) == 1 else 'were'} already missing"
    return (
        f"backup written to {target} ({target.stat().st_size / 2**20:.1f} MiB): "
        f"{plural(counts['contact'], 'contact')}, {plural(counts['opportunity'], 'deal')}, "
        f"{plural(counts['mail_message'], 'mail')}, {plural(manifest['documents'], 'document')}"
        f"{note if missing else ''}"
    )


def make_backup(db: Database, documents_dir: Path, target: Path, *, now: datetime) -> str:
    """Write the backup to ``target`` (atomically: never half a backup). Returns a one-line summary."""
    try:
        if not db.is_sqlite:
            return _make_table_backup(db, target, now=now)
        return _make_sqlite_backup(db, documents_dir, target, now=now)
    except (OSError, sqlite3.Error, DBAPIError) as exc:
        if _no_space(exc):
            raise CrmError(
                f"{NO_SPACE} holding {_target_folder(target)}: no backup was written to {target} "
                "(free some space or choose another place, then try again)"
            ) from None
        if isinstance(exc, DBAPIError):
            raise CrmError(f"no backup was written to {target}: {describe_db_error(exc)}") from exc
        reason = getattr(exc, "strerror", None) or str(exc)
        raise CrmError(f"no backup was written to {target}: {reason}") from exc


def _make_sqlite_backup(db: Database, documents_dir: Path, target: Path, *, now: datetime) -> str:
    folder = _target_folder(target)
    with tempfile.TemporaryDirectory(prefix="crm-tui-backup-", dir=folder) as work:
        copy = Path(work) / DB_NAME
        with db.engine.connect() as connection:
            backup_sqlite(connection, copy)
        check = sqlite3.connect(copy.resolve().as_uri() + "?immutable=1", uri=True)  # writes nothing
        try:
            revision = check.execute("SELECT version_num FROM alembic_version").fetchone()[0]
            stored = [row[0] for row in check.execute("SELECT DISTINCT stored_name FROM document")]
            counts = _counts(check)
        finally:
            check.close()
        missing = [name for name in stored if not (documents_dir / name[:2] / name).is_file()]
        manifest: dict[str, Any] = {
            "format": FORMAT, "crm_tui": __version__, "schema": revision, "created_at": now.isoformat(),
            "database_sha256": _sha256(copy), "documents": len(stored) - len(missing),
            "documents_missing": missing, "counts": counts,
        }  # fmt: skip
        members = [(copy, DB_NAME)] + [
            (documents_dir / name[:2] / name, f"documents/{name[:2]}/{name}")
            for name in stored
            if name not in missing
        ]
        _write_archive(target, manifest, members, now)
    return _summary(target, manifest)


def _make_table_backup(db: Database, target: Path, *, now: datetime) -> str:
    """A shared database, table by table in one snapshot (documents are rows there too)."""
    folder = _target_folder(target)
    with tempfile.TemporaryDirectory(prefix="crm-tui-backup-", dir=folder) as work:
        members: list[tuple[Path, str]] = []
        tables: dict[str, dict[str, Any]] = {}
        snapshot = db.engine.connect().execution_options(isolation_level="REPEATABLE READ")
        with snapshot as connection, connection.begin():
            connection.exec_driver_sql("SET TRANSACTION READ ONLY")
            revision = connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
            metadata = table_copy.reflect(connection)
            for name, table in sorted(metadata.tables.items()):
                path = Path(work) / f"{name}.jsonl"
                with path.open("wb") as out:
                    rows = table_copy.dump_table(connection, table, out)
                tables[name] = {"rows": rows, "sha256": _sha256(path)}
                members.append((path, f"tables/{name}.jsonl"))
            stored = list(connection.exec_driver_sql("SELECT DISTINCT stored_name FROM document").scalars())
            present = set(
                connection.exec_driver_sql("SELECT sha256 FROM document_content WHERE part = 0").scalars()
            )
        empty = hashlib.sha256(b"").hexdigest()
        missing = [name for name in stored if name not in present and name != empty]
        manifest: dict[str, Any] = {
            "format": FORMAT, "kind": "tables", "crm_tui": __version__, "schema": revision,
            "created_at": now.isoformat(), "tables": tables, "documents": len(stored) - len(missing),
            "documents_missing": missing,
            "counts": {name: tables.get(name, {}).get("rows", 0) for name in COUNTED},
        }  # fmt: skip
        _write_archive(target, manifest, members, now)
    return _summary(target, manifest)


NO_SPACE = "no space is left on the disk"
_DOCUMENT_ENTRY = re.compile(r"documents/([0-9a-f]{2})/([0-9a-f]{64})")
_STORED_NAME = re.compile(r"[0-9a-f]{64}")
# Tables every crm-tui database has had since its first schema: a file without them is not one.
_REQUIRED_TABLES = ("alembic_version", "user", "organization", "contact", "opportunity", "activity", "document",
                    "mail_message")  # fmt: skip


def _no_space(exc: BaseException) -> bool:
    """Whether ``exc`` says the disk is full (an OSError, or SQLite's "database or disk is full")."""
    if isinstance(exc, OSError):
        return exc.errno == errno.ENOSPC
    text_ = str(getattr(exc, "orig", exc)).lower()
    return "disk is full" in text_ or "disk full" in text_


_SQLITE_HEADER = b"SQLite format 3\0"


def _what_the_file_is(archive_path: Path) -> str:
    """In words, what a file that does not open as a backup is (tarfile's own reason is one line per
    compression it tried, in exception reprs)."""
    try:
        if archive_path.is_dir():
            return "a folder, not a crm-tui backup"
        with archive_path.open("rb") as handle:
            head = handle.read(len(_SQLITE_HEADER))
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"
    if not head:
        return "empty, not a crm-tui backup"
    if head == _SQLITE_HEADER:
        return "a SQLite database, not a crm-tui backup: make one with crm-tui backup"
    return "not a crm-tui backup"


def _open_archive(archive_path: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(archive_path, "r")
    except FileNotFoundError:
        raise CrmError(f"{archive_path} does not exist") from None
    except (tarfile.TarError, OSError, EOFError):
        raise CrmError(f"{archive_path} is {_what_the_file_is(archive_path)}") from None


def _read_manifest(archive: tarfile.TarFile, archive_path: Path) -> dict[str, Any]:
    """The backup's manifest, if it is one this crm-tui can restore (its format and a schema it knows)."""
    try:
        member = archive.extractfile("manifest.json")
        manifest = json.loads(member.read()) if member else None
    except (KeyError, ValueError, tarfile.TarError):
        manifest = None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CrmError(f"{archive_path} is not a crm-tui backup (no readable manifest)")
    if manifest.get("schema") not in known_revisions():
        raise CrmError(
            f"the backup's database is at schema {manifest.get('schema')}, which this crm-tui does not know "
            f"(it knows up to {SCHEMA_HEAD}): upgrade crm-tui"
        )
    return manifest


def _document_entries(archive: tarfile.TarFile) -> list[tarfile.TarInfo]:
    """The documents of a database backup, after checking every entry's name and kind: the manifest, the
    database and ``documents/<first two of the SHA-256>/<SHA-256>`` files, each once; nothing else (no
    other folders, no ``..``, no absolute paths, no links)."""
    seen: set[str] = set()
    documents = []
    for item in archive.getmembers():
        match = _DOCUMENT_ENTRY.fullmatch(item.name)
        expected = item.name in ("manifest.json", DB_NAME) or (match is not None and match[1] == match[2][:2])
        if not expected or not item.isfile():
            raise CrmError(
                f"the backup holds an unexpected entry {item.name!r} (a document is "
                "documents/<first two of its SHA-256>/<SHA-256>): it was not made by crm-tui or was altered"
            )
        if item.name in seen:
            raise CrmError(f"the backup holds {item.name!r} twice: it was not made by crm-tui or was altered")
        seen.add(item.name)
        if match is not None:
            documents.append(item)
    if DB_NAME not in seen:
        raise CrmError("the backup has no database")
    return documents


def _check_database(database: Path, manifest: dict[str, Any]) -> None:
    """The backup's database file itself: its checksum, SQLite's integrity check, a crm-tui database (its
    tables) at a schema this crm-tui knows (the manifest's), documents named by their SHA-256. Opened as an
    immutable file: nothing is written beside it (no -wal or -shm)."""
    if _sha256(database) != manifest.get("database_sha256"):
        raise CrmError("the backup's database does not match its checksum: the file is damaged")
    try:
        connection = sqlite3.connect(database.resolve().as_uri() + "?immutable=1", uri=True)
    except sqlite3.Error as exc:
        raise CrmError(f"the backup's database cannot be opened: {exc}") from None
    try:
        result = connection.execute("PRAGMA integrity_check").fetchone()[0]
        if result != "ok":
            raise CrmError(f"the backup's database fails SQLite's integrity check: {result}")
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not set(_REQUIRED_TABLES) <= tables:
            raise CrmError("the backup's database is not a crm-tui database (its tables are not crm-tui's)")
        revisions = [row[0] for row in connection.execute("SELECT version_num FROM alembic_version")]
        if len(revisions) != 1 or revisions[0] not in known_revisions():
            raise CrmError(
                f"the backup's database is at schema {', '.join(map(str, revisions)) or 'none'}, which this "
                f"crm-tui does not know (it knows up to {SCHEMA_HEAD}): upgrade crm-tui"
            )
        if revisions[0] != manifest.get("schema"):
            raise CrmError(
                f"the backup's database is at schema {revisions[0]}, its manifest says {manifest.get('schema')}: "
                "the backup was altered"
            )
        for (name,) in connection.execute("SELECT DISTINCT stored_name FROM document"):
            if not isinstance(name, str) or not _STORED_NAME.fullmatch(name):
                raise CrmError(f"the backup's database names a document file {name!r}, not a SHA-256")
    except sqlite3.DatabaseError as exc:
        raise CrmError(f"the backup's database is damaged: {exc}") from None
    finally:
        connection.close()


def check_backup(archive_path: Path) -> dict[str, Any]:
    """The backup's manifest, after checking the archive (every entry's name), the database (its checksum,
    SQLite's integrity check, a crm-tui database at a schema this crm-tui knows) and every document against
    its name. Raises CrmError saying what is wrong (and that nothing changed: it is checked before a restore)."""
    try:
        return _check_backup(archive_path)
    except (CrmError, OSError, sqlite3.Error, tarfile.TarError) as exc:
        raise _restore_failed(exc, archive_path, Path(tempfile.gettempdir())) from exc


def _check_backup(archive_path: Path) -> dict[str, Any]:
    with (
        _open_archive(archive_path) as archive,
        tempfile.TemporaryDirectory(prefix="crm-tui-restore-check-") as work,
    ):
        manifest = _read_manifest(archive, archive_path)
        if manifest.get("kind") == "tables":
            _check_tables(archive, manifest)
            return manifest
        documents = _document_entries(archive)
        database = Path(work) / DB_NAME
        try:
            source = archive.extractfile(DB_NAME)
            if source is None:
                raise KeyError(DB_NAME)
            with database.open("wb") as out:
                shutil.copyfileobj(source, out)
        except (KeyError, tarfile.TarError) as exc:
            raise CrmError(f"the backup has no readable database ({exc})") from None
        _check_database(database, manifest)
        for item in documents:
            handle = archive.extractfile(item)
            if handle is None or _sha256_of(handle) != item.name.rsplit("/", 1)[-1]:
                raise CrmError(f"the document {item.name} in the backup is damaged")
    return manifest


def _check_tables(archive: tarfile.TarFile, manifest: dict[str, Any]) -> None:
    tables = manifest.get("tables")
    if not isinstance(tables, dict) or "contact" not in tables:
        raise CrmError("the backup's manifest lists no tables")
    names = {f"tables/{name}.jsonl": info for name, info in tables.items()}
    for item in archive.getmembers():
        if item.name == "manifest.json":
            continue
        if item.name not in names or not item.isfile():
            raise CrmError(f"the backup holds an unexpected entry {item.name!r}")
    for member, info in names.items():
        try:
            handle = archive.extractfile(member)
        except KeyError:
            handle = None
        if handle is None:
            raise CrmError(f"the backup has lost {member}")
        if _sha256_of(handle) != info.get("sha256"):
            raise CrmError(f"{member} in the backup does not match its checksum: the file is damaged")


def _aside_folder(keep_dir: Path, now: datetime) -> Path:
    """A new folder for the data a restore replaces: the time, with a counter when two restores meet."""
    private_dir(keep_dir)
    stamp = now.strftime("%Y%m%dT%H%M%S")
    for counter in range(1, 1000):
        aside = keep_dir / (stamp if counter == 1 else f"{stamp}-{counter}")
        try:
            aside.mkdir(mode=0o700)
        except FileExistsError:
            continue
        return aside
    raise CrmError(f"too many restores kept in {keep_dir}: clear some out")


def _settle_live(database_file: Path) -> None:
    """The live database complete in its own file: what its write-ahead log holds checkpointed into it, and
    the -wal and -shm files gone (SQLite removes them when the last connection closes). Refused while another
    crm-tui has it open: it would go on writing into the replaced file."""
    if not database_file.exists():
        return
    try:
        connection = sqlite3.connect(str(database_file), timeout=5, isolation_level=None)
        try:
            busy = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        finally:
            connection.close()
    except sqlite3.Error as exc:
        if _no_space(exc):
            raise CrmError(f"{NO_SPACE} holding {database_file.parent}") from None
        if isinstance(exc, sqlite3.DatabaseError) and _damaged(exc):
            return  # a damaged database is what a restore is for: it is kept aside as it is
        raise CrmError(f"the current database cannot be read ({exc}); nothing changed") from None
    if busy or any(database_file.with_name(database_file.name + s).exists() for s in ("-wal", "-shm")):
        raise CrmError(ANOTHER_HAS_IT)


def _damaged(exc: sqlite3.Error) -> bool:
    """SQLite's words for a file that is not (or no longer) a sound database."""
    text = str(exc).lower()
    return "not a database" in text or "malformed" in text or "corrupt" in text


def _fsync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _swap_in(staged_db: Path, staged_documents: Path, database_file: Path, documents_dir: Path, *,
             keep_dir: Path, now: datetime) -> Path:  # fmt: skip
    """The new database and documents (written and checked beside the live ones) put in place by renames;
    the replaced ones kept in a new folder under ``keep_dir`` (returned). The live database gets a second name
    there (a hard link: no copy, no space) before the new file replaces it in one step (``os.replace``); if
    anything fails on the way, every rename is undone: the live data is as it was."""
    with held_alone(database_file, ANOTHER_HAS_IT):
        return _swap_in_alone(staged_db, staged_documents, database_file, documents_dir, keep_dir=keep_dir,
                              now=now)  # fmt: skip


ANOTHER_HAS_IT = (
    "another crm-tui (the app, a sync) has the database open: close it and restore again; nothing changed"
)


def _swap_in_alone(staged_db: Path, staged_documents: Path, database_file: Path, documents_dir: Path, *,
                   keep_dir: Path, now: datetime) -> Path:  # fmt: skip
    _settle_live(database_file)
    aside = _aside_folder(keep_dir, now)
    documents_aside = aside / documents_dir.name
    moved_documents = staged_in = False
    try:
        if database_file.exists():
            try:
                os.link(database_file, aside / database_file.name)
            except OSError as exc:
                if exc.errno == errno.ENOSPC:
                    raise
                shutil.copy2(database_file, aside / database_file.name)  # no hard links there: a copy
        if documents_dir.exists():
            os.rename(documents_dir, documents_aside)
            moved_documents = True
        os.rename(staged_documents, documents_dir)
        staged_in = True
        os.replace(staged_db, database_file)
    except BaseException:
        if staged_in:
            os.rename(documents_dir, staged_documents)
        if moved_documents:
            os.rename(documents_aside, documents_dir)
        shutil.rmtree(aside, ignore_errors=True)
        raise
    _fsync_folder(database_file.parent)
    return aside


def _restore_failed(exc: BaseException, archive_path: Path, folder: Path) -> CrmError:
    """What to tell when a restore failed before its swap: what failed, and that nothing changed."""
    if isinstance(exc, CrmError):
        said = str(exc)
        return (
            exc if "nothing changed" in said or "unchanged" in said else CrmError(f"{said}; nothing changed")
        )
    if _no_space(exc):
        return CrmError(
            f"{NO_SPACE} holding {folder}: the backup {archive_path} was not restored; the current data is "
            "unchanged (free some space and try again)"
        )
    if isinstance(exc, DBAPIError):
        return CrmError(f"the backup could not be restored, nothing changed: {describe_db_error(exc)}")
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return CrmError(f"the backup could not be restored ({reason}); the current data is unchanged")


def _discard_staged(staged_db: Path | None, staged_documents: Path | None) -> None:
    if staged_db is not None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            staged_db.with_name(staged_db.name + suffix).unlink(missing_ok=True)
    if staged_documents is not None:
        shutil.rmtree(staged_documents, ignore_errors=True)


def _staging(database_file: Path, documents_dir: Path) -> tuple[Path, Path]:
    """A new empty database file and documents folder beside the live ones (the same disk, so the swap is
    a rename), under names of their own: private, and never mistaken for live data."""
    private_dir(database_file.parent)
    private_dir(documents_dir.parent)
    handle, name = tempfile.mkstemp(dir=database_file.parent, prefix=f".{database_file.name}.restoring-")
    os.close(handle)
    try:
        documents = tempfile.mkdtemp(dir=documents_dir.parent, prefix=f".{documents_dir.name}.restoring-")
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name), Path(documents)


def describe(manifest: dict[str, Any]) -> str:
    counts = manifest.get("counts", {})
    return (
        f"backup of {manifest.get('created_at')} (crm-tui {manifest.get('crm_tui')}, schema {manifest.get('schema')}): "
        f"{plural(counts.get('contact', 0), 'contact')}, {plural(counts.get('organization', 0), 'organization')}, "
        f"{plural(counts.get('opportunity', 0), 'deal')}, {plural(counts.get('activity', 0), 'activity')}, "
        f"{plural(counts.get('mail_message', 0), 'mail')}, {plural(manifest.get('documents', 0), 'document')}; "
        "checked: intact"
    )


def restore_backup(
    archive_path: Path, database_file: Path, documents_dir: Path, *, keep_dir: Path, now: datetime
) -> Path:
    """Replace the database and documents with the backup's; the replaced ones go to a new folder under
    ``keep_dir``, which is returned. The new database and documents are written beside the live ones first
    and checked there (the database's checksum, integrity, tables and schema; each document against its
    SHA-256); only then are they swapped in. Any failure before (a full disk, an altered backup) leaves the
    live data as it was and no file of the restore behind."""
    staged_db: Path | None = None
    staged_documents: Path | None = None
    try:
        with _open_archive(archive_path) as archive:
            manifest = _read_manifest(archive, archive_path)
            if manifest.get("kind") == "tables":
                raise CrmError(
                    "this backup is of a shared database: restore it with restore_tables_into_sqlite"
                )
            documents = _document_entries(archive)
            staged_db, staged_documents = _staging(database_file, documents_dir)
            source = archive.extractfile(DB_NAME)
            if source is None:
                raise CrmError("the backup has no readable database")
            with staged_db.open("wb") as out:
                shutil.copyfileobj(source, out)
                out.flush()
                os.fsync(out.fileno())
            _check_database(staged_db, manifest)
            for item in documents:
                _, prefix, name = item.name.split("/")
                _write_document(
                    staged_documents / prefix, name, archive.extractfile(item), f"document {item.name}"
                )
        return _swap_in(staged_db, staged_documents, database_file, documents_dir, keep_dir=keep_dir, now=now)
    except BaseException as exc:
        _discard_staged(staged_db, staged_documents)
        if isinstance(exc, (CrmError, OSError, sqlite3.Error, tarfile.TarError)):
            raise _restore_failed(exc, archive_path, database_file.parent) from exc
        raise


def _write_document(folder: Path, name: str, data: IO[bytes] | Iterable[bytes] | None, entry: str) -> None:
    """One document of a backup as ``folder/name`` (0600), checked against its SHA-256 as it is written.
    ``data``: a file to read, or the bytes in parts."""
    if data is None:
        raise CrmError(f"the {entry} in the backup is damaged")
    chunks = iter(lambda: data.read(1 << 20), b"") if hasattr(data, "read") else data
    private_dir(folder)
    digest = hashlib.sha256()
    with os.fdopen(open_private(folder / name), "wb") as out:
        for chunk in chunks:
            digest.update(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    if digest.hexdigest() != name:
        raise CrmError(f"the {entry} in the backup is damaged")


def _drop_everything(connection: Any) -> None:
    """Every crm-tui table of a shared database, with the change triggers' function (one transaction)."""
    names = inspect(connection).get_table_names()
    if names:
        connection.exec_driver_sql("DROP TABLE " + ", ".join(f'"{name}"' for name in names) + " CASCADE")
    connection.exec_driver_sql("DROP FUNCTION IF EXISTS crm_tui_changed() CASCADE")


def _load(connection: Any, archive: tarfile.TarFile, manifest: dict[str, Any], work: Path) -> dict[str, int]:
    """The backup's rows (and documents) into the freshly migrated tables on ``connection``."""
    if manifest.get("kind") == "tables":
        listed = manifest["tables"]

        def rows_of(name: str) -> Any:
            if name not in listed:
                return []
            handle = archive.extractfile(f"tables/{name}.jsonl")
            return table_copy.read_lines(handle) if handle is not None else []

        return table_copy.load(connection, rows_of)
    source_file = work / DB_NAME
    with source_file.open("wb") as out:
        packed = archive.extractfile(DB_NAME)
        assert packed is not None  # the backup was checked: its database is a file
        shutil.copyfileobj(packed, out)
    source = create_engine(f"sqlite:///{source_file}")
    try:
        with source.connect() as reading:
            wanted = set(table_copy.reflect(connection).tables)
            present = set(
                reading.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'table'").scalars()
            )
            metadata = table_copy.reflect(reading, only=sorted(wanted & present))

            def plain_rows(name: str) -> Any:
                if name not in metadata.tables:
                    return []
                return (dict(row._mapping) for row in reading.execute(metadata.tables[name].select()))

            counts = table_copy.load(connection, plain_rows, encoded=False)
    finally:
        source.dispose()

    for item in archive.getmembers():
        handle = archive.extractfile(item) if item.name.startswith("documents/") and item.isfile() else None
        if handle is not None:
            for row in content_rows(item.name.rsplit("/", 1)[-1], handle):
                connection.execute(insert(bulk.table_of(m.DocumentContent)), row)
    return counts


def restore_into_database(db: Database, archive_path: Path, *, keep_dir: Path, now: datetime) -> Path:
    """Replace a shared database's data with a backup's (of either kind), in one transaction; the data it
    replaces is written first as a backup in a new folder under ``keep_dir``, which is returned."""
    manifest = check_backup(archive_path)
    aside = _aside_folder(keep_dir, now)
    try:
        make_backup(db, Path(), aside / "replaced.crm-backup", now=now)
    except BaseException as exc:
        shutil.rmtree(aside, ignore_errors=True)
        if isinstance(exc, CrmError):
            raise CrmError(
                f"the data a restore would replace could not be backed up first: {exc}; nothing changed"
            ) from exc
        raise
    with (
        tempfile.TemporaryDirectory(prefix="crm-tui-restore-") as work,
        tarfile.open(archive_path, "r") as archive,
        db.engine.connect() as connection,
        connection.begin(),
    ):
        try:
            _drop_everything(connection)
            run_migrations(connection, manifest["schema"])
            _load(connection, archive, manifest, Path(work))
            run_migrations(connection, "head")
            search_index.ensure(connection)
            ensure_change_notices(connection)
        except DBAPIError as exc:
            raise CrmError(
                f"the backup could not be restored, nothing changed: {describe_db_error(exc)}"
            ) from exc
    return aside


def restore_tables_into_sqlite(
    archive_path: Path, database_file: Path, documents_dir: Path, *, keep_dir: Path, now: datetime
) -> Path:
    """A shared database's backup as the local SQLite database: built and checked beside it first (rows,
    then the documents as files, each against its SHA-256), then swapped in with the replaced data kept aside,
    as ``restore_backup`` does; any failure before leaves the live data as it was."""
    manifest = check_backup(archive_path)
    staged_db: Path | None = None
    staged_documents: Path | None = None
    engine = None
    try:
        staged_db, staged_documents = _staging(database_file, documents_dir)
        engine = make_engine(sqlite_url(staged_db))
        with (
            tempfile.TemporaryDirectory(prefix="crm-tui-restore-") as work,
            tarfile.open(archive_path) as archive,
        ):
            with engine.connect() as connection:
                sqlite_driver(connection).execute("PRAGMA foreign_keys = OFF")
                with connection.begin():
                    run_migrations(connection, manifest["schema"])
                    _load(connection, archive, manifest, Path(work))
                    run_migrations(connection, "head")
                    search_index.ensure(connection)
                    problems = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if problems:
                        raise CrmError(f"the backup's rows have {len(problems)} broken references")
                    stored = connection.exec_driver_sql("SELECT DISTINCT stored_name FROM document").scalars()
                    for name in list(stored):
                        if not isinstance(name, str) or not _STORED_NAME.fullmatch(name):
                            raise CrmError(f"the backup names a document file {name!r}, not a SHA-256")
                    names = connection.exec_driver_sql(
                        "SELECT DISTINCT sha256 FROM document_content"
                    ).scalars()
                    for name in list(names):
                        if not isinstance(name, str) or not _STORED_NAME.fullmatch(name):
                            raise CrmError(f"the backup holds document bytes named {name!r}, not a SHA-256")
                        _write_document(staged_documents / name[:2], name, connection.exec_driver_sql(
                            "SELECT data FROM document_content WHERE sha256 = ? ORDER BY part", (name,)
                        ).scalars(), f"document {name}")  # fmt: skip
                    connection.exec_driver_sql("DELETE FROM document_content")
            with engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        engine.dispose()  # the last connection: SQLite removes the staged file's -wal and -shm
        return _swap_in(staged_db, staged_documents, database_file, documents_dir, keep_dir=keep_dir, now=now)
    except BaseException as exc:
        if engine is not None:
            engine.dispose()
        _discard_staged(staged_db, staged_documents)
        if isinstance(exc, (CrmError, OSError, sqlite3.Error, DBAPIError, tarfile.TarError)):
            raise _restore_failed(exc, archive_path, database_file.parent) from exc
        raise
