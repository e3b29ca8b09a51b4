"""Comments and documents: what hangs on any record through its ``TYPE:ID`` reference."""

from __future__ import annotations

import hashlib
import mimetypes
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Protocol

from sqlalchemy import delete, func, insert, select
from sqlmodel import Session, col

from crm_tui.core import models as m
from crm_tui.core.bulk import table_of
from crm_tui.core.db import Database, execute_core
from crm_tui.core.errors import CrmError, FieldErrors, ValidationError
from crm_tui.core.field_checks import check_text
from crm_tui.core.private_files import open_private, private_dir
from crm_tui.core.sanitize import terminal_safe
from crm_tui.core.services.records import ATTACHABLE, record_exists, record_label
from crm_tui.core.services.rows import get_or_404, id_of
from crm_tui.core.types import RecordRef, RecordType

MAX_DOCUMENT_BYTES = 512 * 1024 * 1024
PART_BYTES = 1 << 20
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def _check_target(errors: FieldErrors, session: Session, ref: RecordRef) -> None:
    if ref.type not in ATTACHABLE:
        errors.add("record", f"{ref.type.value} records cannot carry comments or documents")
    elif not record_exists(session, ref):
        errors.add("record", f"{ref} does not exist")


def add_comment(
    session: Session, ref: RecordRef, body: str, *, author_id: int | None, now: datetime
) -> m.Comment:
    errors = FieldErrors()
    _check_target(errors, session, ref)
    text = check_text(errors, "body", body, required=True, max_length=20000)
    errors.raise_if_any()
    comment = m.Comment(
        record_type=ref.type.value, record_id=ref.id, author_id=author_id, body=text or "", created_at=now
    )
    session.add(comment)
    session.flush()
    return comment


def delete_comment(session: Session, comment_id: int) -> bool:
    """Remove a comment (the take-back of adding it); False when it is gone already."""
    comment = session.get(m.Comment, comment_id)
    if comment is None:
        return False
    session.delete(comment)
    return True


def comments_on(session: Session, ref: RecordRef) -> list[m.Comment]:
    return list(
        session.scalars(
            select(m.Comment)
            .where(col(m.Comment.record_type) == ref.type.value, col(m.Comment.record_id) == ref.id)
            .order_by(col(m.Comment.created_at).desc(), col(m.Comment.id).desc())
        )
    )


def safe_filename(name: str) -> str:
    """A file name fit to show and to save: no folders, controls, bidi marks or leading dots; at most 200."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = terminal_safe(base).replace("\x00", "")
    base = "".join("_" if ch in '<>:"|?*' else ch for ch in base).lstrip(". ").strip()
    if len(base) > 200:
        stem, dot, ext = base.rpartition(".")
        base = (stem[: 200 - len(ext) - 1] + dot + ext) if dot and len(ext) <= 20 else base[:200]
    return base or "unnamed"


def _check_source(source: Path) -> int:
    try:
        size = source.stat().st_size
    except FileNotFoundError:
        raise ValidationError.single("path", f"{source} does not exist") from None
    except OSError as exc:
        raise ValidationError.single("path", f"{source}: {exc.strerror}") from None
    if not source.is_file():
        raise ValidationError.single("path", f"{source} is not a file")
    if size > MAX_DOCUMENT_BYTES:
        raise ValidationError.single("path", f"{source} is larger than {MAX_DOCUMENT_BYTES // 2**20} MiB")
    return size


def _unreadable(source: Path, exc: OSError) -> CrmError:
    if exc.errno == 28:
        return CrmError("the disk is full: the document was not added; free some space and try again")
    return CrmError(f"cannot store {source.name}: {exc.strerror or exc}")


class DocumentStore(Protocol):
    """Where the bytes of documents live, keyed by their SHA-256 (a document row's ``stored_name``)."""

    def put(self, session: Session, source: Path) -> tuple[str, int]:
        """Store a copy of ``source`` (in the session's transaction where the store is the database);
        returns (SHA-256, size)."""
        ...

    def read(self, session: Session, stored_name: str) -> bytes:
        """The bytes of a stored document; CrmError when they are missing."""
        ...

    def missing(self, session: Session, stored_names: list[str]) -> list[str]:
        """Those of ``stored_names`` whose bytes are not in the store."""
        ...

    def discard(self, stored_names: list[str]) -> None:
        """Remove the bytes no document row refers to any more (after the delete committed)."""
        ...


class FileStore:
    """Documents as files under the data dir (``ab/abcdef...``): a local SQLite database."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, stored_name: str) -> Path:
        return self.folder / stored_name[:2] / stored_name

    def put(self, session: Session, source: Path) -> tuple[str, int]:
        size = _check_source(source)
        try:
            private_dir(self.folder)
            handle, temporary = tempfile.mkstemp(dir=self.folder, prefix=".incoming-")  # 0600
        except OSError as exc:
            raise _unreadable(source, exc) from exc
        digest = hashlib.sha256()
        try:
            with os.fdopen(handle, "wb") as out, source.open("rb") as src:
                for chunk in iter(lambda: src.read(PART_BYTES), b""):
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            target = self.path(digest.hexdigest())
            private_dir(target.parent)
            os.replace(temporary, target)
        except OSError as exc:
            Path(temporary).unlink(missing_ok=True)
            raise _unreadable(source, exc) from exc
        return digest.hexdigest(), size

    def write(self, stored_name: str, chunks: Iterable[bytes]) -> None:
        """Bytes known by their name (a restore's), written beside and renamed into place."""
        target = self.path(stored_name)
        private_dir(target.parent)
        temporary = target.with_name(f".{stored_name}.incoming")
        with os.fdopen(open_private(temporary, exclusive=False), "wb") as out:
            for chunk in chunks:
                out.write(chunk)
        os.replace(temporary, target)

    def read(self, session: Session, stored_name: str) -> bytes:
        try:
            return self.path(stored_name).read_bytes()
        except OSError as exc:
            raise CrmError(f"the document's file is missing or unreadable: {exc.strerror or exc}") from exc

    def missing(self, session: Session, stored_names: list[str]) -> list[str]:
        return [name for name in stored_names if not self.path(name).is_file()]

    def discard(self, stored_names: list[str]) -> None:
        for name in stored_names:
            self.path(name).unlink(missing_ok=True)


class DatabaseStore:
    """Documents in the database itself (``document_content``, parts of 1 MiB): a shared PostgreSQL
    database, where every instance must read the same documents. Stored in the transaction that adds the
    document row, so a row never points at bytes that are not there."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def put(self, session: Session, source: Path) -> tuple[str, int]:
        size = _check_source(source)
        digest = hashlib.sha256()
        try:
            with source.open("rb") as src:
                for chunk in iter(lambda: src.read(PART_BYTES), b""):
                    digest.update(chunk)
                sha = digest.hexdigest()
                if self.missing(session, [sha]):
                    src.seek(0)
                    for row in content_rows(sha, src):
                        execute_core(session, insert(table_of(m.DocumentContent)), row)
        except OSError as exc:
            raise _unreadable(source, exc) from exc
        return sha, size

    def read(self, session: Session, stored_name: str) -> bytes:
        table = table_of(m.DocumentContent)
        parts = execute_core(
            session, select(table.c.data).where(table.c.sha256 == stored_name).order_by(table.c.part)
        ).scalars()
        data = b"".join(parts)
        if not data and stored_name != EMPTY_SHA256:
            raise CrmError("the document's content is missing from the database")
        return data

    def missing(self, session: Session, stored_names: list[str]) -> list[str]:
        table = table_of(m.DocumentContent)
        present = set(
            execute_core(
                session, select(table.c.sha256).where(table.c.sha256.in_(stored_names), table.c.part == 0)
            ).scalars()
        )
        return [name for name in stored_names if name not in present and name != EMPTY_SHA256]

    def discard(self, stored_names: list[str]) -> None:
        if not stored_names:
            return
        table = table_of(m.DocumentContent)
        used = (
            select(col(m.Document.stored_name)).where(col(m.Document.stored_name) == table.c.sha256).exists()
        )
        with self.db.write() as session:
            execute_core(session, delete(table).where(table.c.sha256.in_(stored_names), ~used))


def content_rows(stored_name: str, handle: IO[bytes]) -> Iterator[dict[str, Any]]:
    """The ``document_content`` rows of the bytes read from ``handle``: parts of PART_BYTES, numbered."""
    part = 0
    while chunk := handle.read(PART_BYTES):
        yield {"sha256": stored_name, "part": part, "data": chunk}
        part += 1


def store_for(db: Database, documents_dir: Path) -> DocumentStore:
    """The document store of a database: files beside a local SQLite file, the database itself when shared."""
    return FileStore(documents_dir) if db.is_sqlite else DatabaseStore(db)


def add_document(
    session: Session,
    ref: RecordRef,
    source: Path,
    *,
    store: DocumentStore,
    added_by_id: int | None,
    now: datetime,
    filename: str | None = None,
) -> m.Document:
    """Attach a copy of the file at ``source`` to the record."""
    errors = FieldErrors()
    _check_target(errors, session, ref)
    errors.raise_if_any()
    stored_name, size = store.put(session, source)
    sha = stored_name
    name = safe_filename(filename or source.name)
    document = m.Document(
        record_type=ref.type.value,
        record_id=ref.id,
        filename=name,
        stored_name=stored_name,
        size=size,
        sha256=sha,
        content_type=mimetypes.guess_type(name)[0],
        added_by_id=added_by_id,
        created_at=now,
    )
    session.add(document)
    session.flush()
    return document


def documents_on(session: Session, ref: RecordRef) -> list[m.Document]:
    return list(
        session.scalars(
            select(m.Document)
            .where(col(m.Document.record_type) == ref.type.value, col(m.Document.record_id) == ref.id)
            .order_by(col(m.Document.created_at).desc(), col(m.Document.id).desc())
        )
    )


def document_counts(session: Session, record_type: RecordType, ids: Iterable[int]) -> dict[int, int]:
    """How many documents each of these records carries (those with none left out): one query for a list's
    rows, so an activity in a timeline can say it has attachments."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = session.execute(
        select(col(m.Document.record_id), func.count())
        .where(col(m.Document.record_type) == record_type.value, col(m.Document.record_id).in_(wanted))
        .group_by(col(m.Document.record_id))
    )
    return {record_id: count for record_id, count in rows}


def attachment_mark(count: int) -> str:
    """What a row says of the files it carries: "📎 2", nothing when none."""
    return f"📎 {count}" if count else ""


@dataclass(frozen=True)
class DocumentInfo:
    """A document as a list names it (its bytes are read only when it is saved, opened or attached)."""

    id: int
    filename: str
    content_type: str
    size: int
    record: str = ""  # the label of the record it hangs on, where a list mixes records


def _info(document: m.Document, record: str = "") -> DocumentInfo:
    return DocumentInfo(
        id_of(document),
        document.filename,
        document.content_type or "application/octet-stream",
        document.size,
        record,
    )


def document_infos(session: Session, ref: RecordRef) -> list[DocumentInfo]:
    """The documents of a record, the newest first."""
    return [_info(document) for document in documents_on(session, ref)]


def documents_for_mail(session: Session, refs: Iterable[RecordRef]) -> list[DocumentInfo]:
    """The documents a mail about these records can attach: theirs and their contacts' organizations', each
    named with its record's label."""
    refs = list(refs)
    for ref in list(refs):
        if ref.type is RecordType.CONTACT:
            contact = session.get(m.Contact, ref.id)
            if contact is not None and contact.organization_id:
                refs.append(RecordRef(RecordType.ORGANIZATION, contact.organization_id))
    found: list[DocumentInfo] = []
    for ref in dict.fromkeys(refs):
        label = record_label(session, ref)
        found.extend(_info(document, label) for document in documents_on(session, ref))
    return found


def read_document(session: Session, store: DocumentStore, document_id: int) -> tuple[DocumentInfo, bytes]:
    """A document and its bytes; CrmError when it was removed meanwhile or its bytes are missing."""
    document = session.get(m.Document, document_id)
    if document is None:
        raise CrmError("this document was removed meanwhile")
    return _info(document), store.read(session, document.stored_name)


def copy_document(session: Session, document_id: int, ref: RecordRef, *, now: datetime) -> m.Document:
    """Attach an already stored document to another record too (the file is shared)."""
    original = get_or_404(session, m.Document, document_id, "document")
    copy = m.Document(
        record_type=ref.type.value,
        record_id=ref.id,
        filename=original.filename,
        stored_name=original.stored_name,
        size=original.size,
        sha256=original.sha256,
        content_type=original.content_type,
        added_by_id=original.added_by_id,
        created_at=now,
    )
    session.add(copy)
    session.flush()
    return copy


def delete_document(session: Session, document_id: int) -> list[str]:
    """Remove a document row; returns its stored name if no other row uses the file (delete after commit)."""
    document = get_or_404(session, m.Document, document_id, "document")
    session.delete(document)
    session.flush()
    return unreferenced(session, [document.stored_name])


def unreferenced(session: Session, stored_names: list[str]) -> list[str]:
    result = []
    for name in set(stored_names):
        uses = session.scalar(
            select(func.count()).select_from(m.Document).where(col(m.Document.stored_name) == name)
        )
        if not uses:
            result.append(name)
    return result


def export_document(session: Session, store: DocumentStore, document: m.Document, target_dir: Path) -> Path:
    """Write a stored document out under its (sanitised) name, never overwriting an existing file."""
    data = store.read(session, document.stored_name)
    target_dir.mkdir(parents=True, exist_ok=True)
    name = safe_filename(document.filename)
    target = target_dir / name
    counter = 1
    while target.exists():
        stem, dot, ext = name.rpartition(".")
        target = target_dir / (f"{stem} ({counter}){dot}{ext}" if dot else f"{name} ({counter})")
        counter += 1
    with open(target, "xb") as out:
        out.write(data)
    return target
