"""Backups: one file (a tar archive) with a consistent copy of the database, the documents it refers to and a
manifest; restore checks all of it before anything is replaced, and keeps the replaced data aside.

The database is copied with SQLite's online backup API, so the app may keep running meanwhile; documents are
content-addressed (their name is their SHA-256) and never change once stored, so copying those the copy
refers to is consistent with it.
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
from typing import Any

from crm_tui import __version__
from crm_tui.core.db import SCHEMA_HEAD, Database, backup_sqlite, known_revisions
from crm_tui.core.errors import CrmError

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


def _counts(connection: sqlite3.Connection) -> dict[str, int]:
    return {table: connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in COUNTED}  # noqa: S608


def make_backup(db: Database, documents_dir: Path, target: Path, *, now: datetime) -> str:
    """Write the backup to ``target`` (atomically). Returns a one-line summary."""
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise CrmError(f"the folder {folder} does not exist")
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
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.")
        os.close(handle)
        try:
            with tarfile.open(temporary, "w") as archive:
                data = json.dumps(manifest, indent=2).encode()
                info = tarfile.TarInfo("manifest.json")
                info.size, info.mtime = len(data), int(now.timestamp())
                archive.addfile(info, io.BytesIO(data))
                archive.add(copy, arcname=DB_NAME)
                for name in stored:
                    path = documents_dir / name[:2] / name
                    if path.is_file():
                        archive.add(path, arcname=f"documents/{name[:2]}/{name}")
            os.replace(temporary, target)
        except OSError as exc:
            Path(temporary).unlink(missing_ok=True)
            if exc.errno == 28:
                raise CrmError(f"the disk is full: no backup was written to {target}") from None
            raise CrmError(f"cannot write {target}: {exc.strerror or exc}") from None
    size = target.stat().st_size
    note = f"; {len(missing)} documents were already missing" if missing else ""
    return (
        f"backup written to {target} ({size / 2**20:.1f} MiB): {counts['contact']} contacts, "
        f"{counts['opportunity']} deals, {counts['mail_message']} mails, {manifest['documents']} documents{note}"
    )


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
    aside = keep_dir / now.strftime("%Y%m%dT%H%M%S")
    aside.mkdir(parents=True, exist_ok=False)
    for suffix in ("", "-wal", "-shm"):
        current = database_file.with_name(database_file.name + suffix)
        if current.exists():
            shutil.move(str(current), aside / current.name)
    if documents_dir.exists():
        shutil.move(str(documents_dir), aside / documents_dir.name)
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
