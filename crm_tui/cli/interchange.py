"""`crm-tui import|export|backup|restore`: records in and out of files, and the whole database as one file."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from crm_tui.cli.arguments import Commands, UsageError
from crm_tui.core.errors import CrmError
from crm_tui.core.sanitize import terminal_safe

if TYPE_CHECKING:
    from crm_tui.runtime.context import AppContext


def register(commands: Commands) -> None:
    sub = commands.add_parser(
        "import",
        help="import contacts (vCard 3/4 or CSV), organizations, leads or opportunities (CSV)",
        description="Import records. Duplicates (by address for contacts and leads, by name or domain for "
        "organizations, by title, customer and pipeline for deals) are merged or skipped; a bad row is reported "
        "with its line number and the others are imported. Import organizations before the contacts and deals "
        "that name them.",
    )
    sub.add_argument("type", choices=["contacts", "organizations", "leads", "opportunities"])
    sub.add_argument("file", metavar="FILE")
    sub.add_argument(
        "--map", action="append", metavar="COLUMN=FIELD", help="the file's COLUMN holds FIELD (repeatable)"
    )
    sub.add_argument("--on-duplicate", choices=["merge", "skip"], default="merge", help="default: merge")
    sub.add_argument(
        "--preview", action="store_true", help="say what would happen, row by row; write nothing"
    )
    sub.set_defaults(handler=import_records)
    sub = commands.add_parser(
        "export", help="export records as CSV (contacts also as vCard), or the calendar as iCalendar"
    )
    sub.add_argument(
        "type",
        choices=["contacts", "organizations", "leads", "opportunities", "activities", "tickets", "calendar"],
    )
    sub.add_argument("file", metavar="FILE", help="FILE.csv, FILE.vcf (contacts) or FILE.ics (calendar)")
    sub.add_argument("--owner", metavar="EMAIL", help="calendar: only this user's activities")
    sub.set_defaults(handler=export_records)
    sub = commands.add_parser(
        "backup", help="a consistent copy of the database and documents in one file (the app may be running)"
    )
    sub.add_argument("file", metavar="FILE")
    sub.set_defaults(handler=backup)
    sub = commands.add_parser(
        "restore", help="check a backup, then replace the data with it (the replaced data is kept aside)"
    )
    sub.add_argument("file", metavar="FILE")
    sub.add_argument("--yes", action="store_true", help="do not ask")
    sub.set_defaults(handler=restore)


def _mapping(items: list[str] | None) -> dict[str, str]:
    mapping = {}
    for item in items or []:
        column, eq, field_name = item.partition("=")
        if not eq or not column.strip() or not field_name.strip():
            raise UsageError(f"--map wants COLUMN=FIELD, not {item!r}")
        mapping[column.strip()] = field_name.strip()
    return mapping


def import_records(context: AppContext, args: argparse.Namespace) -> int:
    # the interchange modules load the ORM: imported when the command runs, so that --help starts fast
    from crm_tui.core.interchange import importer

    path = Path(args.file)
    rows, unreadable, fmt = importer.read_file(path)
    if fmt == "vcard" and args.type != "contacts":
        raise UsageError("vCard files hold contacts: crm-tui import contacts FILE.vcf")
    rows = importer.apply_mapping(rows, _mapping(args.map))
    report = importer.run(
        context.database(), args.type, rows, on_duplicate=args.on_duplicate, now=context.clock.now(),
        preview=args.preview, unreadable=unreadable, owner_id=context.me_id(),
    )  # fmt: skip
    if report.unknown_columns:
        print(
            "ignored columns (no such field; map them with --map COLUMN=FIELD): "
            + ", ".join(terminal_safe(c, max_length=40) for c in report.unknown_columns)
        )
    for line, reason in report.problems():
        print(f"line {line}: {terminal_safe(reason, max_length=200)}", file=sys.stderr)
    if args.preview:
        for result in report.results:
            print(f"line {result.line:>5}  {result.action:<8} {terminal_safe(result.label, max_length=60)}")
    print(report.summary() + (" (preview: nothing was written)" if args.preview else ""))
    return 1 if report.problems() else 0


def export_records(context: AppContext, args: argparse.Namespace) -> int:
    # the interchange modules load the ORM: imported when the command runs, so that --help starts fast
    from crm_tui.core.interchange import exporter

    path = Path(args.file)
    suffix = path.suffix.lower()
    with context.database().read() as session:
        if args.type == "calendar":
            if suffix != ".ics":
                raise UsageError("the calendar is written as iCalendar: crm-tui export calendar FILE.ics")
            data, count = exporter.export_calendar(session, owner_email=args.owner, now=context.clock.now())
        elif suffix in (".vcf", ".vcard"):
            if args.type != "contacts":
                raise UsageError("only contacts are written as vCard; other records as .csv")
            text, count = exporter.export_vcards(session)
            data = text.encode("utf-8")
        elif suffix == ".csv":
            text, count = exporter.export_csv(session, args.type)
            data = text.encode("utf-8")
        else:
            raise UsageError(
                f"write to FILE.csv{', FILE.vcf' if args.type == 'contacts' else ''} (not {path.name!r})"
            )
    _write_atomically(path, data)
    print(f"{count} {args.type if args.type != 'calendar' else 'activities'} written to {path}")
    return 0


def _write_atomically(path: Path, data: bytes) -> None:
    import tempfile  # (and the random it loads) only when an export writes its file: --help starts fast

    folder = path.parent if str(path.parent) else Path(".")
    try:
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.")
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except FileNotFoundError:
        raise CrmError(f"the folder {folder} does not exist") from None
    except OSError as exc:
        if "temporary" in locals():
            Path(temporary).unlink(missing_ok=True)
        if exc.errno == 28:
            raise CrmError(f"the disk is full: {path} was not written") from None
        raise CrmError(f"cannot write {path}: {exc.strerror or exc}") from None


def backup(context: AppContext, args: argparse.Namespace) -> int:
    # the interchange modules load the ORM: imported when the command runs, so that --help starts fast
    from crm_tui.core.interchange import backup as backups

    summary = backups.make_backup(
        context.database(), context.documents_dir, Path(args.file), now=context.clock.now()
    )
    print(summary)
    return 0


def restore(context: AppContext, args: argparse.Namespace) -> int:
    # the interchange modules load the ORM: imported when the command runs, so that --help starts fast
    from crm_tui.core.interchange import backup as backups

    archive = Path(args.file)
    manifest = backups.check_backup(archive)
    print(backups.describe(manifest))
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError("restore replaces the current data: confirm with --yes")
        answer = input("Replace the current data with this backup? The current data is kept aside. [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing changed")
            return 1
    keep = context.paths.data_dir / "replaced"
    now = context.clock.now()
    from sqlalchemy.engine import make_url  # SQLAlchemy loads slowly: only when a restore runs

    url = make_url(context.database_url)
    if url.get_backend_name() != "sqlite":
        aside = backups.restore_into_database(context.database(), archive, keep_dir=keep, now=now)
        print(f"restored into {context.database().engine.url.render_as_string(hide_password=True)}; "
              f"the data it replaced is backed up in {aside}")  # fmt: skip
        return 0
    # A local database is not opened (nor migrated) first: a restore is what one does to a damaged one.
    context.close()
    context.paths.ensure()
    database_file = Path(url.database) if url.database else context.paths.database_file(demo=context.demo)
    restore = (
        backups.restore_tables_into_sqlite if manifest.get("kind") == "tables" else backups.restore_backup
    )
    aside = restore(archive, database_file, context.documents_dir, keep_dir=keep, now=now)
    print(f"restored; the data it replaced is in {aside}")
    return 0
