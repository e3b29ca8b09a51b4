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

import hashlib
import io
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy.exc import DBAPIError

from crm_tui import __version__
from crm_tui.core.db import (
    SCHEMA_HEAD,
    Database,
    backup_sqlite,
    describe_db_error,
    ensure_change_notices,
    known_revisions,
    run_migrations,
)
from crm_tui.core.errors import CrmError
from crm_tui.core.interchange import table_copy

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
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        if exc.errno == 28:
            raise CrmError(f"the disk is full: no backup was written to {target}") from None
        raise CrmError(f"cannot write {target}: {exc.strerror or exc}") from None


def _summary(target: Path, manifest: dict[str, Any]) -> str:
    counts, missing = manifest["counts"], manifest["documents_missing"]
    note = f"; {len(missing)} documents were already missing" if missing else ""
    return (
        f"backup written to {target} ({target.stat().st_size / 2**20:.1f} MiB): {counts['contact']} contacts, "
        f"{counts['opportunity']} deals, {counts['mail_message']} mails, {manifest['documents']} documents{note}"
    )


def make_backup(db: Database, documents_dir: Path, target: Path, *, now: datetime) -> str:
    """Write the backup to ``target`` (atomically). Returns a one-line summary."""
    if not db.is_sqlite:
        return _make_table_backup(db, target, now=now)
    folder = _target_folder(target)
    with tempfile.TemporaryDirectory(prefix="crm-tui-backup-", dir=folder) as work:
        copy = Path(work) / DB_NAME
        with db.engine.connect() as connection:
            backup_sqlite(connection, copy)
        check = sqlite3.connect(str(copy))
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


def check_backup(archive_path: Path) -> dict[str, Any]:
    """The backup's manifest, after checking the archive, the database (its checksum, SQLite's integrity check,
    a schema this crm-tui knows) and every document against its name. Raises CrmError saying what is wrong."""
    try:
        archive = tarfile.open(archive_path, "r")  # noqa: SIM115 - closed by the with below
    except FileNotFoundError:
        raise CrmError(f"{archive_path} does not exist") from None
    except (tarfile.TarError, OSError) as exc:
        raise CrmError(f"{archive_path} is not a crm-tui backup ({exc})") from None
    with archive, tempfile.TemporaryDirectory(prefix="crm-tui-restore-check-") as work:
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
        if manifest.get("kind") == "tables":
            _check_tables(archive, manifest)
            return manifest
        database = Path(work) / DB_NAME
        try:
            source = archive.extractfile(DB_NAME)
            if source is None:
                raise KeyError(DB_NAME)
            with database.open("wb") as out:
                shutil.copyfileobj(source, out)
        except (KeyError, tarfile.TarError) as exc:
            raise CrmError(f"the backup has no readable database ({exc})") from None
        if _sha256(database) != manifest.get("database_sha256"):
            raise CrmError("the backup's database does not match its checksum: the file is damaged")
        connection = sqlite3.connect(str(database))
        try:
            result = connection.execute("PRAGMA integrity_check").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise CrmError(f"the backup's database is damaged: {exc}") from None
        finally:
            connection.close()
        if result != "ok":
            raise CrmError(f"the backup's database fails SQLite's integrity check: {result}")
        for item in archive.getmembers():
            if not item.name.startswith("documents/"):
                continue
            if not item.isfile() or ".." in item.name.split("/"):
                raise CrmError(f"the backup holds an unexpected entry {item.name!r}")
            handle = archive.extractfile(item)
            digest = hashlib.sha256(handle.read() if handle else b"").hexdigest()
            if digest != item.name.rsplit("/", 1)[-1]:
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
    keep_dir.mkdir(parents=True, exist_ok=True)
    stamp = now.strftime("%Y%m%dT%H%M%S")
    for counter in range(1, 1000):
        aside = keep_dir / (stamp if counter == 1 else f"{stamp}-{counter}")
        try:
            aside.mkdir()
        except FileExistsError:
            continue
        return aside
    raise CrmError(f"too many restores kept in {keep_dir}: clear some out")


def _move_aside(database_file: Path, documents_dir: Path, keep_dir: Path, now: datetime) -> Path:
    """The local database (with its WAL) and documents, moved into a new folder under ``keep_dir``."""
    aside = _aside_folder(keep_dir, now)
    for suffix in ("", "-wal", "-shm"):
        current = database_file.with_name(database_file.name + suffix)
        if current.exists():
            shutil.move(str(current), aside / current.name)
    if documents_dir.exists():
        shutil.move(str(documents_dir), aside / documents_dir.name)
    return aside


def describe(manifest: dict[str, Any]) -> str:
    counts = manifest.get("counts", {})
    return (
        f"backup of {manifest.get('created_at')} (crm-tui {manifest.get('crm_tui')}, schema {manifest.get('schema')}): "
        f"{counts.get('contact', 0)} contacts, {counts.get('organization', 0)} organizations, "
        f"{counts.get('opportunity', 0)} deals, {counts.get('activity', 0)} activities, "
        f"{counts.get('mail_message', 0)} mails, {manifest.get('documents', 0)} documents; checked: intact"
    )


def restore_backup(
    archive_path: Path, database_file: Path, documents_dir: Path, *, keep_dir: Path, now: datetime
) -> Path:
    """Replace the database and documents with the backup's (checked first); the replaced ones go to a new
    folder under ``keep_dir``, which is returned."""
    check_backup(archive_path)
    aside = _move_aside(database_file, documents_dir, keep_dir, now)
    database_file.parent.mkdir(parents=True, exist_ok=True)
    documents_dir.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive_path, "r") as archive:
        source = archive.extractfile(DB_NAME)
        assert source is not None
        temporary = database_file.with_name(database_file.name + ".restoring")
        with temporary.open("wb") as out:
            shutil.copyfileobj(source, out)
        os.replace(temporary, database_file)
        for item in archive.getmembers():
            if item.name.startswith("documents/") and item.isfile():
                _, prefix, name = item.name.split("/")
                target = documents_dir / prefix / name
                target.parent.mkdir(parents=True, exist_ok=True)
                handle = archive.extractfile(item)
                with target.open("wb") as out:
                    shutil.copyfileobj(handle, out)  # type: ignore[arg-type]
    return aside


def _drop_everything(connection: Any) -> None:
    """Every crm-tui table of a shared database, with the change triggers' function (one transaction)."""
    from sqlalchemy import inspect

    names = inspect(connection).get_table_names()
    if names:
        connection.exec_driver_sql("DROP TABLE " + ", ".join(f'"{name}"' for name in names) + " CASCADE")
    connection.exec_driver_sql("DROP FUNCTION IF EXISTS crm_tui_changed() CASCADE")


def _load(connection: Any, archive: tarfile.TarFile, manifest: dict[str, Any], work: Path) -> dict[str, int]:
    """The backup's rows (and documents) into the freshly migrated tables on ``connection``."""
    from sqlalchemy import create_engine

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
        shutil.copyfileobj(archive.extractfile(DB_NAME), out)  # type: ignore[misc]
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
    from sqlalchemy import insert

    from crm_tui.core import models as m
    from crm_tui.core.services.attachments import content_rows

    for item in archive.getmembers():
        handle = archive.extractfile(item) if item.name.startswith("documents/") and item.isfile() else None
        if handle is not None:
            for row in content_rows(item.name.rsplit("/", 1)[-1], handle):
                connection.execute(insert(m.DocumentContent.__table__), row)
    return counts


def restore_into_database(db: Database, archive_path: Path, *, keep_dir: Path, now: datetime) -> Path:
    """Replace a shared database's data with a backup's (of either kind), in one transaction; the data it
    replaces is written first as a backup in a new folder under ``keep_dir``, which is returned."""
    from crm_tui.core import search_index

    manifest = check_backup(archive_path)
    aside = _aside_folder(keep_dir, now)
    make_backup(db, Path(), aside / "replaced.crm-backup", now=now)
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
    """A shared database's backup as the local SQLite database: built beside it first (rows, then the
    documents as files), then swapped in with the replaced data kept aside, as ``restore_backup`` does."""
    from crm_tui.core import search_index
    from crm_tui.core.db import make_engine, sqlite_url
    from crm_tui.core.services.attachments import FileStore

    manifest = check_backup(archive_path)
    database_file.parent.mkdir(parents=True, exist_ok=True)
    building = database_file.with_name(database_file.name + ".restoring")
    building.unlink(missing_ok=True)
    new_documents = documents_dir.with_name(documents_dir.name + ".restoring")
    shutil.rmtree(new_documents, ignore_errors=True)
    engine = make_engine(sqlite_url(building))
    try:
        with (
            tempfile.TemporaryDirectory(prefix="crm-tui-restore-") as work,
            tarfile.open(archive_path) as archive,
        ):
            with engine.connect() as connection:
                connection.connection.driver_connection.execute("PRAGMA foreign_keys = OFF")
                with connection.begin():
                    run_migrations(connection, manifest["schema"])
                    _load(connection, archive, manifest, Path(work))
                    run_migrations(connection, "head")
                    search_index.ensure(connection)
                    problems = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if problems:
                        raise CrmError(
                            f"the backup's rows have {len(problems)} broken references; nothing changed"
                        )
                    store = FileStore(new_documents)
                    names = connection.exec_driver_sql(
                        "SELECT DISTINCT sha256 FROM document_content"
                    ).scalars()
                    for name in list(names):
                        store.write(name, connection.exec_driver_sql(
                            "SELECT data FROM document_content WHERE sha256 = ? ORDER BY part", (name,)
                        ).scalars())  # fmt: skip
                    connection.exec_driver_sql("DELETE FROM document_content")
            with engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    except BaseException as exc:
        engine.dispose()
        building.unlink(missing_ok=True)
        shutil.rmtree(new_documents, ignore_errors=True)
        if isinstance(exc, DBAPIError):
            raise CrmError(
                f"the backup could not be restored, nothing changed: {describe_db_error(exc)}"
            ) from exc
        raise
    engine.dispose()
    aside = _move_aside(database_file, documents_dir, keep_dir, now)
    for suffix in ("-wal", "-shm"):
        building.with_name(building.name + suffix).unlink(missing_ok=True)
    os.replace(building, database_file)
    new_documents.mkdir(parents=True, exist_ok=True)
    os.replace(new_documents, documents_dir)
    return aside
