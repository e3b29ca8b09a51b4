"""Comments and documents: what hangs on any record through its ``TYPE:ID`` reference."""

from __future__ import annotations

import hashlib
import mimetypes
import os
import shutil
import tempfile
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlmodel import Session

from crm_tui.core import models as m
from crm_tui.core.errors import CrmError, FieldErrors, ValidationError
from crm_tui.core.services.common import check_text, get_or_404
from crm_tui.core.services.records import ATTACHABLE, record_exists
from crm_tui.core.types import RecordRef

MAX_DOCUMENT_BYTES = 512 * 1024 * 1024


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


def comments_on(session: Session, ref: RecordRef) -> list[m.Comment]:
    return list(
        session.scalars(
            select(m.Comment)
            .where(m.Comment.record_type == ref.type.value, m.Comment.record_id == ref.id)
            .order_by(m.Comment.created_at.desc(), m.Comment.id.desc())  # type: ignore[union-attr,attr-defined]
        )
    )


def safe_filename(name: str) -> str:
    """A file name fit to show and to save: no folders, controls, bidi marks or leading dots; at most 200."""
    from crm_tui.core.sanitize import terminal_safe

    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = terminal_safe(base).replace("\x00", "")
    base = "".join("_" if ch in '<>:"|?*' else ch for ch in base).lstrip(". ").strip()
    if len(base) > 200:
        stem, dot, ext = base.rpartition(".")
        base = (stem[: 200 - len(ext) - 1] + dot + ext) if dot and len(ext) <= 20 else base[:200]
    return base or "unnamed"


def store_file(source: Path, documents_dir: Path) -> tuple[str, int, str]:
    """Copy ``source`` into the content-addressed store. Returns (stored name, size, sha256)."""
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
    documents_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    handle, temporary = tempfile.mkstemp(dir=documents_dir, prefix=".incoming-")
    try:
        with os.fdopen(handle, "wb") as out, source.open("rb") as src:
            for chunk in iter(lambda: src.read(1 << 20), b""):
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        stored_name = digest.hexdigest()
        target = documents_dir / stored_name[:2] / stored_name
        target.parent.mkdir(exist_ok=True)
        os.replace(temporary, target)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        if exc.errno == 28:
            raise CrmError(
                "the disk is full: the document was not added; free some space and try again"
            ) from exc
        raise CrmError(f"cannot store {source.name}: {exc.strerror or exc}") from exc
    return stored_name, size, stored_name


def document_path(documents_dir: Path, stored_name: str) -> Path:
    return documents_dir / stored_name[:2] / stored_name


def add_document(
    session: Session,
    ref: RecordRef,
    source: Path,
    *,
    documents_dir: Path,
    added_by_id: int | None,
    now: datetime,
    filename: str | None = None,
) -> m.Document:
    """Attach a copy of the file at ``source`` to the record."""
    errors = FieldErrors()
    _check_target(errors, session, ref)
    errors.raise_if_any()
    stored_name, size, sha = store_file(source, documents_dir)
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
            .where(m.Document.record_type == ref.type.value, m.Document.record_id == ref.id)
            .order_by(m.Document.created_at.desc(), m.Document.id.desc())  # type: ignore[union-attr,attr-defined]
        )
    )


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
            select(func.count()).select_from(m.Document).where(m.Document.stored_name == name)
        )
        if not uses:
            result.append(name)
    return result


def remove_files(documents_dir: Path, stored_names: list[str]) -> None:
    """Delete stored files no row refers to any more (call after the transaction committed)."""
    for name in stored_names:
        document_path(documents_dir, name).unlink(missing_ok=True)


def export_document(documents_dir: Path, document: m.Document, target_dir: Path) -> Path:
    """Copy a stored document out under its (sanitised) name, never overwriting an existing file."""
    target_dir.mkdir(parents=True, exist_ok=True)
    name = safe_filename(document.filename)
    target = target_dir / name
    counter = 1
    while target.exists():
        stem, dot, ext = name.rpartition(".")
        target = target_dir / (f"{stem} ({counter}){dot}{ext}" if dot else f"{name} ({counter})")
        counter += 1
    shutil.copyfile(document_path(documents_dir, document.stored_name), target)
    return target
