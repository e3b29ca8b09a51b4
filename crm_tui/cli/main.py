"""The ``crm-tui`` command: global options, then a subcommand (or none, to open the app).

Conventions every headless command follows: records are named ``TYPE:ID``; ``--json`` prints one JSON array of
objects (ids as ``TYPE:ID``, date-times ISO-8601 with offset, dates YYYY-MM-DD); ``--now`` / ``CRM_TUI_NOW``
pins the clock; exit 0 on success, 1 on failure, 2 on a usage error; an error is one line on stderr.

Each command group (records, mail, interchange, automation, database, demo) registers its subcommands with
``register``; a subcommand's handler is a function ``handler(context, args) -> exit code``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from crm_tui import __version__
from crm_tui.cli import automation, database, demo, interchange, mail, records
from crm_tui.cli.arguments import CommandParser, UsageError, iso_instant
from crm_tui.core.clock import FixedClock, parse_pinned
from crm_tui.core.errors import CrmError
from crm_tui.runtime.clock import SystemClock

NOW_ENV = "CRM_TUI_NOW"
EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = CommandParser(
        prog="crm-tui",
        description="A keyboard-driven terminal CRM. Without a subcommand, opens the app.",
        epilog="Global options go before the subcommand, e.g.: crm-tui --demo contacts list --search berg --json",
    )
    parser.add_argument("--version", action="version", version=f"crm-tui {__version__}")
    parser.add_argument(
        "--home", metavar="DIR", help="keep all data and config under DIR (also: $CRM_TUI_HOME)"
    )
    parser.add_argument("--demo", action="store_true", help="use the demo database (made on first use)")
    parser.add_argument("--db", metavar="URL", help="database URL (default: the local SQLite file)")
    parser.add_argument(
        "--now", metavar="ISO", type=iso_instant, help=f"pin the clock to this date-time (also: ${NOW_ENV})"
    )
    commands = parser.add_subparsers(dest="command", metavar="SUBCOMMAND", parser_class=CommandParser)
    for group in (records, mail, database, interchange, automation, demo):  # in the order --help lists them
        group.register(commands)
    return parser


def _build_context(args: argparse.Namespace) -> Any:
    # what a command runs in (the context's module loads the database layer; settings, TOML and the time zones):
    # imported when a command runs, not for --help
    from crm_tui.runtime.context import AppContext
    from crm_tui.runtime.paths import resolve_paths
    from crm_tui.runtime.settings import load_settings
    from crm_tui.runtime.timezones import local_zone

    paths = resolve_paths(args.home)
    settings = load_settings(paths.config_file)
    zone = settings.zone() or local_zone()
    now_text = args.now or os.environ.get(NOW_ENV) or None
    clock: Any = SystemClock()
    if now_text:
        try:
            clock = FixedClock(parse_pinned(now_text, zone))
        except ValueError as exc:
            source = "--now" if args.now else NOW_ENV
            raise UsageError(f"{source}: {exc}") from None
    if args.demo and args.db:
        raise UsageError("--demo and --db exclude each other (the demo has its own database)")
    return AppContext(paths=paths, settings=settings, clock=clock, zone=zone, demo=args.demo, db_url=args.db)


def _report_internal_error(exc: BaseException, context: Any, home: str | None) -> str:
    """Write the traceback to the log file (private); return where it went (or why it could not be written).
    Before the context is built, the log is still the one of the home given (--home), not the default's."""
    try:
        # logging and the home's folders: only after an internal error
        from crm_tui.runtime.logs import LOGGER, log_error, open_log
        from crm_tui.runtime.paths import resolve_paths

        paths = context.paths if context is not None else resolve_paths(home)
        open_log(paths)
        log_error(exc, f"crm-tui {__version__}: internal error")
        for handler in LOGGER.handlers:
            handler.flush()
        if not paths.log_file.exists():
            return "the log file could not be written"
        return f"details in {paths.log_file}"
    except OSError:
        return "the log file could not be written"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    context = None
    home: str | None = None
    try:
        try:
            args = parser.parse_args(argv)
        except SystemExit as exit_:  # --help and --version
            return int(exit_.code or 0)
        home = getattr(args, "home", None)
        context = _build_context(args)
        if args.command is None:
            from crm_tui.ui.app import run_app  # Textual loads slowly: only when the app opens

            return run_app(context)
        return int(args.handler(context, args) or 0)
    except UsageError as exc:
        print(f"crm-tui: usage error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("crm-tui: interrupted", file=sys.stderr)
        return EXIT_FAILURE
    except BrokenPipeError:
        # The reader went away (crm-tui ... | head): not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - the one place that turns any failure into one line
        if isinstance(exc, CrmError):
            print(f"crm-tui: {exc}", file=sys.stderr)
            return EXIT_FAILURE
        if isinstance(exc, OSError) and exc.errno == 28:
            print(
                "crm-tui: the disk is full: what the command was writing when it stopped was not saved; "
                "free some space and run it again",
                file=sys.stderr,
            )
            return EXIT_FAILURE
        where = _report_internal_error(exc, context, home)
        print(f"crm-tui: internal error: {type(exc).__name__}: {exc} ({where})", file=sys.stderr)
        return EXIT_FAILURE
    finally:
        if context is not None:
            context.close()
