"""The ``crm-tui`` command: global options, then a subcommand (or none, to open the app).

Conventions every headless command follows: records are named ``TYPE:ID``; ``--json`` prints one JSON array of
objects (ids as ``TYPE:ID``, date-times ISO-8601 with offset, dates YYYY-MM-DD); ``--now`` / ``CRM_TUI_NOW``
pins the clock; exit 0 on success, 1 on failure, 2 on a usage error; an error is one line on stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from crm_tui import __version__

NOW_ENV = "CRM_TUI_NOW"
EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A command line that cannot be run as given (exit code 2)."""


class _Parser(argparse.ArgumentParser):
    """argparse with errors as one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more (got {value})")
    return value


def _iso_date(text: str) -> Any:
    from crm_tui.core.clock import parse_date

    try:
        return parse_date(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _iso_instant(text: str) -> str:
    from datetime import UTC

    from crm_tui.core.clock import parse_pinned

    try:
        # One without an offset is read in the local zone later: the range leaves room for any offset.
        parse_pinned(text, UTC)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
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
        "--now", metavar="ISO", type=_iso_instant, help=f"pin the clock to this date-time (also: ${NOW_ENV})"
    )
    commands = parser.add_subparsers(dest="command", metavar="SUBCOMMAND", parser_class=_Parser)

    def listing(group: argparse._SubParsersAction, name: str, help_text: str) -> argparse.ArgumentParser:  # type: ignore[type-arg]
        sub = group.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--json", action="store_true", help="print one JSON array of objects")
        sub.add_argument("--limit", type=_positive_int, metavar="N", help="at most N rows (default: all)")
        return sub

    contacts = commands.add_parser("contacts", help="contacts").add_subparsers(
        dest="action", metavar="ACTION", required=True, parser_class=_Parser
    )
    sub = listing(contacts, "list", "list contacts, sorted by name")
    sub.add_argument(
        "--search",
        metavar="TEXT",
        help="only contacts matching every word (name, e-mail, organization, phone)",
    )
    sub.set_defaults(handler="crm_tui.cli.records:contacts_list")

    people = commands.add_parser(
        "users", help="the people who use crm-tui (the first one is me)"
    ).add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=_Parser)
    sub = listing(people, "list", "list users")
    sub.set_defaults(handler="crm_tui.cli.records:users_list")
    sub = people.add_parser("add", help="add a user (the first one is me until the config says otherwise)")
    sub.add_argument("name", metavar="NAME")
    sub.add_argument("email", metavar="EMAIL")
    sub.set_defaults(handler="crm_tui.cli.records:users_add")

    deals = commands.add_parser("opportunities", help="opportunities (deals)").add_subparsers(
        dest="action", metavar="ACTION", required=True, parser_class=_Parser
    )
    sub = listing(deals, "list", "list opportunities by pipeline and stage")
    sub.add_argument("--pipeline", metavar="NAME", help="only this pipeline")
    sub.set_defaults(handler="crm_tui.cli.records:opportunities_list")

    acts = commands.add_parser("activities", help="activities (calls, meetings, tasks)").add_subparsers(
        dest="action", metavar="ACTION", required=True, parser_class=_Parser
    )
    sub = listing(acts, "list", "list activities by start time")
    sub.add_argument(
        "--from", dest="date_from", type=_iso_date, metavar="DATE", help="from this local day (YYYY-MM-DD)"
    )
    sub.add_argument(
        "--to", dest="date_to", type=_iso_date, metavar="DATE", help="up to and including this day"
    )
    sub.set_defaults(handler="crm_tui.cli.records:activities_list")

    _mail_commands(commands)

    sub = commands.add_parser(
        "database-password", help="store the database server's password in the OS keyring (asked for)"
    )
    sub.set_defaults(handler="crm_tui.cli.records:database_password")
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
    sub.set_defaults(handler="crm_tui.cli.interchange:import_records")
    sub = commands.add_parser(
        "export", help="export records as CSV (contacts also as vCard), or the calendar as iCalendar"
    )
    sub.add_argument(
        "type",
        choices=["contacts", "organizations", "leads", "opportunities", "activities", "tickets", "calendar"],
    )
    sub.add_argument("file", metavar="FILE", help="FILE.csv, FILE.vcf (contacts) or FILE.ics (calendar)")
    sub.add_argument("--owner", metavar="EMAIL", help="calendar: only this user's activities")
    sub.set_defaults(handler="crm_tui.cli.interchange:export_records")
    sub = commands.add_parser(
        "backup", help="a consistent copy of the database and documents in one file (the app may be running)"
    )
    sub.add_argument("file", metavar="FILE")
    sub.set_defaults(handler="crm_tui.cli.interchange:backup")
    sub = commands.add_parser(
        "restore", help="check a backup, then replace the data with it (the replaced data is kept aside)"
    )
    sub.add_argument("file", metavar="FILE")
    sub.add_argument("--yes", action="store_true", help="do not ask")
    sub.set_defaults(handler="crm_tui.cli.interchange:restore")

    autos = commands.add_parser(
        "automations", help="automation rules: list them, see what is pending, fire what is due (for cron)"
    ).add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=_Parser)
    sub = autos.add_parser("list", help="the rules, where and when they fire, and how many actions wait")
    sub.add_argument("--json", action="store_true", help="print one JSON array of objects")
    sub.set_defaults(handler="crm_tui.cli.automation:automations_list")
    sub = autos.add_parser("pending", help="scheduled actions not fired yet, soonest first")
    sub.add_argument("--json", action="store_true", help="print one JSON array of objects")
    sub.add_argument("--limit", type=_positive_int, metavar="N")
    sub.set_defaults(handler="crm_tui.cli.automation:automations_pending")
    sub = autos.add_parser("log", help="what fired, was skipped, failed or was cancelled, newest first")
    sub.add_argument("--json", action="store_true", help="print one JSON array of objects")
    sub.add_argument("--limit", type=_positive_int, metavar="N")
    sub.set_defaults(handler="crm_tui.cli.automation:automations_log")
    sub = autos.add_parser(
        "run", help="fire every action due now (exit 1 if one failed); --dry-run shows what would fire"
    )
    sub.add_argument("--now", dest="run_now", metavar="ISO", type=_iso_instant,
                     help="fire what is due at this ISO-8601 date-time instead of now")  # fmt: skip
    sub.add_argument("--dry-run", action="store_true", help="only show what would fire")
    sub.add_argument("--json", action="store_true", help="print one JSON array of objects")
    sub.set_defaults(handler="crm_tui.cli.automation:automations_run")

    demo = commands.add_parser("demo", help="the demo data set").add_subparsers(
        dest="action", metavar="ACTION", required=True, parser_class=_Parser
    )
    sub = demo.add_parser(
        "reset", help="rebuild the demo database for today (the real database is untouched)"
    )
    sub.set_defaults(handler="crm_tui.cli.records:demo_reset")
    return parser


def _port(text: str) -> int:
    value = _positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"a port is 1 to 65535 (got {value})")
    return value


def _since(text: str) -> Any:
    return "all" if text.strip().lower() == "all" else _iso_date(text)


def _account_options(sub: argparse.ArgumentParser, *, creating: bool) -> None:
    sub.add_argument("name", metavar="NAME", help="a short name for the account, e.g. work")
    sub.add_argument(
        "--preset",
        choices=["gmail", "yahoo", "fastmail", "other"],
        default="other" if creating else None,
        help="fill host, port and security for a provider (an app password is needed)",
    )
    sub.add_argument("--imap-host", metavar="HOST", help="IMAP server name or IP address")
    sub.add_argument("--imap-port", type=_port, metavar="PORT")
    sub.add_argument("--imap-security", choices=["ssl", "starttls", "none"])
    sub.add_argument("--ca-cert", metavar="FILE", help="trust this CA certificate (a self-signed server)")
    sub.add_argument("--user", metavar="LOGIN", help="the login name (often the e-mail address)")
    secret = sub.add_mutually_exclusive_group()
    secret.add_argument(
        "--password-env", metavar="VAR", help="read the password from this environment variable"
    )
    secret.add_argument("--password-command", metavar="CMD", help="run CMD; its output is the password")
    if not creating:
        secret.add_argument(
            "--password", action="store_true", help="store a new password in the OS keyring (asked for)"
        )
        sub.add_argument("--rename", dest="new_name", metavar="NEW", help="give the account a new name")
    sub.add_argument("--smtp-host", metavar="HOST")
    sub.add_argument("--smtp-port", type=_port, metavar="PORT")
    sub.add_argument("--smtp-security", choices=["ssl", "starttls", "none"])
    sub.add_argument(
        "--address", action="append", metavar="ADDR", help="my own address on this account (repeatable)"
    )
    sub.add_argument(
        "--refresh-minutes", type=_positive_int, metavar="N", help="sync every N minutes (default 5)"
    )
    sub.add_argument(
        "--signature", metavar="TEXT", help='put under mail from this account ("\\n" for a new line)'
    )
    sub.add_argument(
        "--sync-since",
        type=_since,
        metavar="DATE|all",
        help="keep mail from this day on (default: 90 days back)",
    )


def _mail_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    accounts = commands.add_parser("account", help="mail accounts (IMAP)").add_subparsers(
        dest="action", metavar="ACTION", required=True, parser_class=_Parser
    )
    sub = accounts.add_parser(
        "add",
        help="add an IMAP account (the password goes to the OS keyring unless --password-env/-command)",
        description="Add an IMAP account. Without --password-env or --password-command the password is asked "
        "for (or read as one line from standard input) and kept in the OS keyring, never in a file.",
    )
    _account_options(sub, creating=True)
    sub.set_defaults(handler="crm_tui.cli.mail:account_add")
    sub = accounts.add_parser("edit", help="change an account (only the options given)")
    _account_options(sub, creating=False)
    sub.set_defaults(handler="crm_tui.cli.mail:account_edit")
    sub = accounts.add_parser("list", help="list accounts")
    sub.add_argument("--json", action="store_true", help="print one JSON array of objects")
    sub.set_defaults(handler="crm_tui.cli.mail:account_list")
    for name, help_text, handler in (
        ("remove", "remove an account (mail filed on records is kept)", "account_remove"),
        ("test", "log in and list the folders", "account_test"),
    ):
        sub = accounts.add_parser(name, help=help_text)
        sub.add_argument("name", metavar="NAME")
        sub.set_defaults(handler=f"crm_tui.cli.mail:{handler}")

    sub = commands.add_parser("sync", help="sync mail now (one pass, with progress and a summary)")
    sub.add_argument("--account", metavar="NAME", help="only this account (default: all)")
    sub.set_defaults(handler="crm_tui.cli.mail:sync")

    mail = commands.add_parser("mail", help="stored mail").add_subparsers(
        dest="action", metavar="ACTION", required=True, parser_class=_Parser
    )
    sub = mail.add_parser("list", help="list stored messages, newest first")
    sub.add_argument("--folder", metavar="F", help="only messages with a copy in this folder")
    sub.add_argument("--json", action="store_true", help="print one JSON array of objects")
    sub.add_argument("--limit", type=_positive_int, metavar="N")
    sub.set_defaults(handler="crm_tui.cli.mail:mail_list")
    sub = mail.add_parser(
        "problems",
        help="messages kept with problems (what could not be read, linked or stored), newest first",
    )
    sub.add_argument("--json", action="store_true", help="print one JSON array of objects")
    sub.add_argument("--limit", type=_positive_int, metavar="N")
    sub.set_defaults(handler="crm_tui.cli.mail:mail_problems")
    for action, help_text in (
        ("read", "mark read"),
        ("unread", "mark unread"),
        ("flag", "flag"),
        ("unflag", "remove the flag"),
        ("archive", "move to the account's archive folder"),
        ("delete", "move to the account's trash"),
    ):
        sub = mail.add_parser(action, help=f"{help_text} (at once here; on the server with the next sync)")
        sub.add_argument("ids", type=_positive_int, nargs="+", metavar="ID")
        sub.set_defaults(handler="crm_tui.cli.mail:mail_change", change=action)
    sub = mail.add_parser("move", help="move to a folder (at once here; on the server with the next sync)")
    sub.add_argument("ids", type=_positive_int, nargs="+", metavar="ID")
    sub.add_argument("--to", required=True, metavar="FOLDER")
    sub.set_defaults(handler="crm_tui.cli.mail:mail_change", change="move")
    for action, help_text in (
        ("link", "file a message on a record"),
        ("unlink", "take a message off a record"),
    ):
        sub = mail.add_parser(action, help=f"{help_text} (kept over automatic linking)")
        sub.add_argument("id", type=_positive_int, metavar="ID")
        sub.add_argument("record", metavar="TYPE:ID")
        sub.set_defaults(handler=f"crm_tui.cli.mail:mail_{action}")
    sub = mail.add_parser("raw", help="write a message's bytes exactly as the server sent them to stdout")
    sub.add_argument("id", type=_positive_int, metavar="ID")
    sub.add_argument(
        "--folder", metavar="FOLDER", help="the copy in this folder (copies may differ in their headers)"
    )
    sub.add_argument(
        "--uid", type=_positive_int, metavar="UID", help="the copy of this UID (see mail list --json)"
    )
    sub.set_defaults(handler="crm_tui.cli.mail:mail_raw")

    box = commands.add_parser("outbox", help="mail on its way out").add_subparsers(
        dest="action", metavar="ACTION", required=True, parser_class=_Parser
    )
    sub = box.add_parser(
        "list", help="the outbox: queued, sending, sent, partly sent, failed and uncertain mail"
    )
    sub.add_argument("--json", action="store_true", help="print one JSON array of objects")
    sub.set_defaults(handler="crm_tui.cli.mail:outbox_list")
    sub = box.add_parser("flush", help="deliver what is due now (exit 1 if something could not go out)")
    sub.add_argument("--account", metavar="NAME", help="only this account (default: all)")
    sub.add_argument(
        "--at-once",
        action="store_true",
        help="also what waits for its next try after a failure or for the end of its send delay",
    )
    sub.set_defaults(handler="crm_tui.cli.mail:outbox_flush")
    sub = box.add_parser(
        "decide",
        help="for an uncertain, failed, partly sent or cut-off item: resend (to whoever has not got it), count as sent, or drop",
    )
    sub.add_argument("id", type=_positive_int, metavar="ID")
    sub.add_argument("decision", choices=["resend", "sent", "drop"])
    sub.set_defaults(handler="crm_tui.cli.mail:outbox_decide")

    sub = commands.add_parser(
        "search",
        help='search mail: words, "phrases", from: to: subject: has:attachment is:unread before: after: '
        "linked:TYPE:ID unlinked -term OR",
    )
    sub.add_argument("query", metavar="QUERY")
    sub.add_argument("--json", action="store_true", help="print one JSON array of objects")
    sub.add_argument("--limit", type=_positive_int, metavar="N", default=200)
    sub.set_defaults(handler="crm_tui.cli.mail:search")


def _build_context(args: argparse.Namespace) -> Any:
    from crm_tui.core.clock import FixedClock, SystemClock, parse_pinned
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
            from crm_tui.ui.app import run_app

            return run_app(context)
        module_name, function_name = args.handler.split(":")
        import importlib

        handler = getattr(importlib.import_module(module_name), function_name)
        return int(handler(context, args) or 0)
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
        from crm_tui.core.errors import CrmError

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
