"""Importing records from CSV (every importable type) and vCard (contacts).

``read_file`` gives rows with their line numbers (and what could not be read). ``run`` imports them in one
transaction, each row in a savepoint: a bad row is reported with its line and the reason, the others are kept;
a duplicate (by address for contacts and leads, by name or domain for organizations, by title, customer and
pipeline for deals) is merged into the existing record or skipped. ``preview=True`` does all of it and rolls
back: the report says exactly what an import would do, before anything is written.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session

from crm_tui.core.db import Database
from crm_tui.core.errors import CrmError, ValidationError
from crm_tui.core.interchange import tables, vcard
from crm_tui.core.services import organizations

MAX_BYTES = 50 * 2**20


@dataclass
class Row:
    line: int
    values: dict[str, str]


@dataclass
class RowResult:
    line: int
    action: str  # created | merged | skipped | failed
    label: str
    message: str = ""
    record_id: int | None = None


@dataclass
class ImportReport:
    type: str
    results: list[RowResult] = field(default_factory=list)
    unreadable: list[tuple[int, str]] = field(
        default_factory=list
    )  # (line, reason) of what could not be read
    unknown_columns: list[str] = field(default_factory=list)
    preview: bool = False
    organizations_created: list[str] = field(default_factory=list)
    touched: set[int] = field(default_factory=set)  # records made or matched by this import's rows

    def count(self, action: str) -> int:
        return sum(1 for r in self.results if r.action == action)

    def problems(self) -> list[tuple[int, str]]:
        return sorted(
            [*self.unreadable, *((r.line, r.message) for r in self.results if r.action == "failed")]
        )

    def summary(self) -> str:
        verb = "would be" if self.preview else ""
        parts = [f"{self.count(a)} {verb} {a}".replace("  ", " ") for a in ("created", "merged", "skipped")]
        bad = len(self.problems())
        text = f"{self.type}: " + ", ".join(parts) + f", {bad} row{'s' if bad != 1 else ''} with problems"
        if self.organizations_created:
            text += f" ({len(self.organizations_created)} new organizations)"
        return text


_BOMS = (  # UTF-32's come first: its little-endian mark starts with UTF-16's
    (codecs.BOM_UTF32_LE, "utf-32", "UTF-32"),
    (codecs.BOM_UTF32_BE, "utf-32", "UTF-32"),
    (codecs.BOM_UTF8, "utf-8-sig", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16", "UTF-16"),
)
NOT_TEXT = "is not a text file (a spreadsheet's own format? save it as CSV)"


def _decode(data: bytes, path: Path) -> str:
    """The text of a file: by its byte order mark (UTF-8, UTF-16 or UTF-32, as spreadsheets and address books
    write them), else UTF-16 without one (every other byte zero), else UTF-8, else Windows-1252."""
    for bom, codec, name in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(codec)
            except UnicodeDecodeError as exc:
                raise CrmError(
                    f"{path} starts as {name} text, but byte {exc.start} of it is not {name}"
                ) from None
    if b"\0" in data:
        sample = data[:4096]
        # Latin text in UTF-16: the high byte of (nearly) every character is zero, the low byte (nearly) never.
        even, odd = sample[0::2].count(0) / len(sample) * 2, sample[1::2].count(0) / len(sample) * 2
        codec = "utf-16-le" if odd > 0.5 and even < 0.05 else "utf-16-be" if even > 0.5 and odd < 0.05 else ""
        try:
            text = data.decode(codec) if codec else "\0"
        except UnicodeDecodeError:
            text = "\0"
        if "\0" in text:
            raise CrmError(f"{path} {NOT_TEXT}")
        return text
    for encoding in ("utf-8", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def read_file(path: Path, *, kind: str | None = None) -> tuple[list[Row], list[tuple[int, str]], str]:
    """(rows, unreadable (line, reason), format). The format is vCard for a .vcf/.vcard name or a text that
    begins with BEGIN:VCARD, else CSV. A file named as a vCard that holds none is refused."""
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise CrmError(f"{path} is larger than {MAX_BYTES // 2**20} MiB")
        data = path.read_bytes()
    except FileNotFoundError:
        raise CrmError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise CrmError(f"{path} is a folder, not a file") from None
    except OSError as exc:
        raise CrmError(f"cannot read {path}: {exc.strerror or exc}") from None
    text = _decode(data, path)
    fmt = kind or ("vcard" if path.suffix.lower() in (".vcf", ".vcard") else "csv")
    if fmt == "csv" and kind is None and text.lstrip().upper().startswith("BEGIN:VCARD"):
        fmt = "vcard"
    if fmt == "vcard":
        if not text.strip():
            raise CrmError(f"{path} is empty")
        if not vcard.holds_cards(text):
            raise CrmError(f"{path} is not a vCard file: no BEGIN:VCARD in it (a CSV file? name it .csv)")
        cards, unread = vcard.read(text)
        return [Row(c.line, card_row(c)) for c in cards], [(p.line, p.message) for p in unread], fmt
    rows, problems = read_csv(text)
    return rows, problems, fmt


def _csv_problem(exc: csv.Error) -> str:
    reason = str(exc)
    if "unexpected end of data" in reason:
        return 'a quote (") opened in this row is never closed'
    if "expected after" in reason:
        return 'a quoted cell goes on after its closing quote (a " in a cell is written "")'
    return f"cannot be read ({reason})"


def read_csv(text: str) -> tuple[list[Row], list[tuple[int, str]]]:
    """Every row with its line, or the line and why it was left out. The file is read strictly, so a quote left
    open does not swallow the rows after it unseen: the row it opens in is reported and reading goes on with
    the next line. A row that runs over several lines (a cell with line breaks) must have the header's cells."""
    lines = io.StringIO(text, newline="").readlines()
    # The separator is the one the header row uses most (spreadsheets write "," or, in much of Europe, ";").
    header_line = lines[0] if lines else ""
    delimiter = max((",", ";", "\t"), key=header_line.count)

    def reader(position: int) -> Any:
        return csv.reader(
            itertools.islice(lines, position, None), csv.excel, delimiter=delimiter, strict=True
        )

    first = reader(0)
    try:
        header = next(first)
    except StopIteration:
        return [], [(1, "the file is empty (a header row names the columns)")]
    except csv.Error as exc:
        return [], [(1, f"the header row cannot be read: {_csv_problem(exc)}")]
    names = [h.strip() for h in header]
    if not any(names):
        return [], [(1, "the first row must name the columns")]
    rows: list[Row] = []
    problems: list[tuple[int, str]] = []
    position = first.line_num
    while position < len(lines):
        records = reader(position)
        while True:
            start = position + records.line_num  # the index of the row's first line
            try:
                cells = next(records)
            except StopIteration:
                position = len(lines)
                break
            except csv.Error as exc:
                problems.append(
                    (start + 1, f"{_csv_problem(exc)}: left out, the lines after it read on their own")
                )
                position = start + 1
                break
            line, last = start + 1, position + records.line_num
            if not any(c.strip() for c in cells):
                continue
            if last > line and len(cells) != len(names):
                problems.append((line, (
                    f'a quote (") opened on line {line} closes only on line {last}: lines {line} to {last} were '
                    f"read as one row of {len(cells)} cells, but the header names {len(names)} columns; none of "
                    "them was imported"
                )))  # fmt: skip
                continue
            if len(cells) > len(names) and any(c.strip() for c in cells[len(names) :]):
                problems.append((line, f"{len(cells)} cells, but the header names {len(names)} columns"))
                continue
            rows.append(
                Row(
                    line,
                    {
                        name: tables.from_spreadsheet(cells[i]) if i < len(cells) else ""
                        for i, name in enumerate(names)
                        if name
                    },
                )
            )
    return rows, problems


def card_row(card: vcard.Card) -> dict[str, str]:
    first, last = card.first_name, card.last_name
    if not first and not last:
        first, _, last = card.full_name.rpartition(" ")
        if not first and not last:
            last = card.emails[0].split("@")[0] if card.emails else ""
    row = {
        "first_name": first, "last_name": last, "emails": tables.SEP.join(card.emails),
        "phones": tables.SEP.join(card.phones), "job_title": card.title, "organization": card.organization,
        "street": card.street, "postcode": card.postcode, "city": card.city, "region": card.region,
        "country": card.country,
    }  # fmt: skip
    row.update(card.extra)
    return row


def apply_mapping(rows: list[Row], mapping: dict[str, str]) -> list[Row]:
    """``--map COLUMN=FIELD``: the file's column COLUMN holds FIELD (the rest keep their names)."""
    if not mapping:
        return rows
    return [Row(r.line, {mapping.get(k, k): v for k, v in r.values.items()}) for r in rows]


class _Rollback(Exception):
    pass


def run(
    db: Database,
    type_name: str,
    rows: list[Row],
    *,
    on_duplicate: str = "merge",
    now: datetime,
    preview: bool = False,
    unreadable: list[tuple[int, str]] | None = None,
    create_organizations: bool = True,
    owner_id: int | None = None,
) -> ImportReport:
    """Import ``rows`` as records of ``type_name`` in one transaction (rolled back for a ``preview``). A record
    it creates from a row that names no owner is owned by ``owner_id`` (the current user), as one made in the
    app is; a merged record keeps its owner."""
    if on_duplicate not in ("merge", "skip"):
        raise CrmError("--on-duplicate is merge or skip")
    table = tables.table(type_name)
    report = ImportReport(type_name, unreadable=list(unreadable or []), preview=preview)
    try:
        with db.write() as session:
            known = set(table.all_columns(session)) | {"name"}
            report.unknown_columns = sorted({k for r in rows for k in r.values} - known)
            for row in rows:
                report.results.append(
                    _one(session, table, row, on_duplicate, now, report, create_organizations, owner_id)
                )
            if preview:
                raise _Rollback
    except _Rollback:
        pass
    return report


def _label(values: dict[str, str]) -> str:
    for key in ("title", "name"):
        if (values.get(key) or "").strip():
            return values[key].strip()
    name = " ".join(
        p for p in ((values.get("first_name") or "").strip(), (values.get("last_name") or "").strip()) if p
    )
    return name or (tables.split(values.get("emails", "")) or ["(no name)"])[0]


def _one(
    session: Session, table: tables.Table, row: Row, on_duplicate: str, now: datetime, report: ImportReport,
    create_organizations: bool, owner_id: int | None = None,
) -> RowResult:  # fmt: skip
    label = _label(row.values)
    savepoint = session.begin_nested()
    made: list[str] = []
    try:
        if create_organizations and table.name in ("contacts", "leads"):
            made = _missing_organization(session, row.values, now)
        data = table.from_row(session, row.values)
        # A row is the same as a record that was there before this import and that no earlier row of the file
        # took: two rows of one file are two records (the file had them as two).
        taken = report.touched
        existing = next((i for i in table.duplicate(session, data) if i not in taken), None)
        if existing is not None and on_duplicate == "skip":
            savepoint.rollback()
            report.touched.add(existing)
            return RowResult(
                row.line, "skipped", label, f"already there ({table.entity}:{existing})", existing
            )
        if existing is not None:
            record = table.update(
                session, existing, tables.merge(table.current(session, existing), data), now
            )
            action = "merged"
        else:
            if owner_id is not None and getattr(data, "owner_id", 0) is None:
                data = replace(data, owner_id=owner_id)  # the row names no owner: the current user
            record = table.create(session, data, now, None)
            action = "created"
        if table.after is not None:
            table.after(session, record, row.values)
        savepoint.commit()
    except ValidationError as exc:
        savepoint.rollback()
        reasons = "; ".join(f"{k}: {v}" for k, v in exc.errors.items())
        return RowResult(row.line, "failed", label, reasons)
    except CrmError as exc:
        savepoint.rollback()
        return RowResult(row.line, "failed", label, str(exc))
    report.organizations_created.extend(made)
    report.touched.add(record.id)
    return RowResult(row.line, action, label, "", record.id)


def _missing_organization(session: Session, values: dict[str, str], now: datetime) -> list[str]:
    """A contact's organization that is not there yet is made (a customer), as address books expect."""
    name = (values.get("organization") or "").strip()
    if not name or organizations.find_by_name(session, name) is not None:
        return []
    organizations.create_organization(session, organizations.OrganizationInput(name=name), now=now)
    return [name]
