"""Headless mail subcommands: accounts, sync, listing, raw bytes and search."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any

from crm_tui.cli.arguments import CommandParser, Commands, UsageError, iso_date, port, positive_int, since
from crm_tui.cli.output import ProgressLine, print_json, print_json_object, print_table
from crm_tui.core.errors import ConfigError, CrmError
from crm_tui.core.sanitize import terminal_safe
from crm_tui.core.types import RecordRef
from crm_tui.core.wording import plural

if TYPE_CHECKING:
    from crm_tui.runtime.context import AppContext


def register(commands: Commands) -> None:
    accounts = commands.add_parser("account", help="mail accounts (IMAP)").add_subparsers(
        dest="action", metavar="ACTION", required=True, parser_class=CommandParser
    )
    sub = accounts.add_parser(
        "add",
        help="add an IMAP account (the password goes to the OS keyring unless --password-env/-command)",
        description="Add an IMAP account. Without --password-env or --password-command the password is asked "
        "for (or read as one line from standard input) and kept in the OS keyring, never in a file.",
    )
    _account_options(sub, creating=True)
    sub.set_defaults(handler=account_add)
    sub = accounts.add_parser("edit", help="change an account (only the options given)")
    _account_options(sub, creating=False)
    sub.set_defaults(handler=account_edit)
    sub = accounts.add_parser("list", help="list accounts")
    sub.add_argument("--json", action="store_true", help="print one JSON array of objects")
    sub.set_defaults(handler=account_list)
    for name, help_text, handler in (
        ("remove", "remove an account (mail filed on records is kept)", account_remove),
        ("test", "log in and list the folders", account_test),
    ):
        sub = accounts.add_parser(name, help=help_text)
        sub.add_argument("name", metavar="NAME")
        sub.set_defaults(handler=handler)

    sub = commands.add_parser("sync", help="sync mail now (one pass, with progress and a summary)")
    sub.add_argument("--account", metavar="NAME", help="only this account (default: all)")
    sub.add_argument(
        "--watch",
        action="store_true",
        help="keep going until stopped (Ctrl+C, SIGTERM): every account on its refresh interval, new mail at "
        "once through IMAP IDLE, the outbox delivered and automation fired when due",
    )
    sub.add_argument(
        "--json", action="store_true", help="with --watch: what happens, as one JSON object a line"
    )
    sub.set_defaults(handler=sync)

    mail = commands.add_parser("mail", help="stored mail").add_subparsers(
        dest="action", metavar="ACTION", required=True, parser_class=CommandParser
    )
    sub = mail.add_parser("list", help="list stored messages, newest first")
    sub.add_argument("--folder", metavar="F", help="only messages with a copy in this folder")
    sub.add_argument("--json", action="store_true", help="print one JSON array of objects")
    sub.add_argument("--limit", type=positive_int, metavar="N")
    sub.set_defaults(handler=mail_list)
    sub = mail.add_parser(
        "problems",
        help="messages kept with problems (what could not be read, linked or stored), newest first",
    )
    sub.add_argument("--json", action="store_true", help="print one JSON array of objects")
    sub.add_argument("--limit", type=positive_int, metavar="N")
    sub.set_defaults(handler=mail_problems)
    sub = mail.add_parser(
        "report",
        help="the sent-mail report: sent, failed, refused, bounced, replied per user and period, with the "
        "recipients behind each number",
        description="What a user's mail of a period became, one row per recipient of a mail: sent, failed, "
        "refused (by the server), bounced (a delivery report or the mail returned) and replied. A mail counts "
        "in the period by when it went out (or failed); the days are the configured time zone's.",
    )
    sub.add_argument("--user", metavar="EMAIL", help="whose mail (the owner of the accounts it went from; "
                     "default: you)")  # fmt: skip
    sub.add_argument("--from", dest="start", type=iso_date, metavar="DATE",
                     help="first day, YYYY-MM-DD (default: the first of this month)")  # fmt: skip
    sub.add_argument("--to", dest="end", type=iso_date, metavar="DATE", help="last day (default: today)")
    shape = sub.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true", help="print one JSON object: the counts and the rows")
    shape.add_argument("--csv", action="store_true", help="print the rows as CSV (outcome, at, recipient...)")
    sub.set_defaults(handler=mail_report)
    for action, help_text in (
        ("read", "mark read"),
        ("unread", "mark unread"),
        ("flag", "flag"),
        ("unflag", "remove the flag"),
        ("archive", "move to the account's archive folder"),
        ("delete", "move to the account's trash"),
    ):
        sub = mail.add_parser(action, help=f"{help_text} (at once here; on the server with the next sync)")
        sub.add_argument("ids", type=positive_int, nargs="+", metavar="ID")
        sub.set_defaults(handler=mail_change, change=action)
    sub = mail.add_parser("move", help="move to a folder (at once here; on the server with the next sync)")
    sub.add_argument("ids", type=positive_int, nargs="+", metavar="ID")
    sub.add_argument("--to", required=True, metavar="FOLDER")
    sub.set_defaults(handler=mail_change, change="move")
    for action, help_text, handler in (
        ("link", "file a message on a record", mail_link),
        ("unlink", "take a message off a record", mail_unlink),
    ):
        sub = mail.add_parser(action, help=f"{help_text} (kept over automatic linking)")
        sub.add_argument("id", type=positive_int, metavar="ID")
        sub.add_argument("record", metavar="TYPE:ID")
        sub.set_defaults(handler=handler)
    sub = mail.add_parser("raw", help="write a message's bytes exactly as the server sent them to stdout")
    sub.add_argument("id", type=positive_int, metavar="ID")
    sub.add_argument(
        "--folder", metavar="FOLDER", help="the copy in this folder (copies may differ in their headers)"
    )
    sub.add_argument(
        "--uid", type=positive_int, metavar="UID", help="the copy of this UID (see mail list --json)"
    )
    sub.set_defaults(handler=mail_raw)

    box = commands.add_parser("outbox", help="mail on its way out").add_subparsers(
        dest="action", metavar="ACTION", required=True, parser_class=CommandParser
    )
    sub = box.add_parser(
        "list", help="the outbox: queued, sending, sent, partly sent, failed and uncertain mail"
    )
    sub.add_argument("--json", action="store_true", help="print one JSON array of objects")
    sub.set_defaults(handler=outbox_list)
    sub = box.add_parser("flush", help="deliver what is due now (exit 1 if something could not go out)")
    sub.add_argument("--account", metavar="NAME", help="only this account (default: all)")
    sub.add_argument(
        "--at-once",
        action="store_true",
        help="also what waits for its next try after a failure or for the end of its send delay",
    )
    sub.set_defaults(handler=outbox_flush)
    sub = box.add_parser(
        "decide",
        help="for an uncertain, failed, partly sent or cut-off item: resend (to whoever has not got it), count as sent, or drop",
    )
    sub.add_argument("id", type=positive_int, metavar="ID")
    sub.add_argument("decision", choices=["resend", "sent", "drop"])
    sub.set_defaults(handler=outbox_decide)

    sub = commands.add_parser(
        "search",
        help='search mail: words, "phrases", from: to: subject: has:attachment is:unread before: after: '
        "linked:TYPE:ID unlinked -term OR",
    )
    sub.add_argument("query", metavar="QUERY")
    sub.add_argument("--json", action="store_true", help="print one JSON array of objects")
    sub.add_argument("--limit", type=positive_int, metavar="N", default=200)
    sub.set_defaults(handler=search)


def _account_options(sub: argparse.ArgumentParser, *, creating: bool) -> None:
    sub.add_argument("name", metavar="NAME", help="a short name for the account, e.g. work")
    sub.add_argument(
        "--preset",
        choices=["gmail", "yahoo", "fastmail", "other"],
        default="other" if creating else None,
        help="fill host, port and security for a provider (an app password is needed)",
    )
    sub.add_argument("--imap-host", metavar="HOST", help="IMAP server name or IP address")
    sub.add_argument("--imap-port", type=port, metavar="PORT")
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
    sub.add_argument("--smtp-port", type=port, metavar="PORT")
    sub.add_argument("--smtp-security", choices=["ssl", "starttls", "none"])
    sub.add_argument(
        "--address", action="append", metavar="ADDR", help="my own address on this account (repeatable)"
    )
    sub.add_argument(
        "--refresh-minutes", type=positive_int, metavar="N", help="sync every N minutes (default 5)"
    )
    sub.add_argument(
        "--signature", metavar="TEXT", help='put under mail from this account ("\\n" for a new line)'
    )
    sub.add_argument(
        "--sync-since",
        type=since,
        metavar="DATE|all",
        help="keep mail from this day on (default: 90 days back)",
    )
    copies = sub.add_mutually_exclusive_group()
    copies.add_argument(
        "--sent-copy",
        choices=["server", "none"],
        help="where the copy of a sent mail goes: server, the folder the server marks \\Sent (the default); "
        "none, no copy saved",
    )
    copies.add_argument(
        "--sent-copy-folder", metavar="FOLDER", help="put the copies of sent mail in this folder instead"
    )


def _account_input(args: argparse.Namespace, *, creating: bool) -> Any:
    # the services and models load the ORM: imported when the command runs, so that --help starts fast
    from crm_tui.core.services.mail_accounts import AccountInput

    source = ref = None
    if getattr(args, "password_env", None):
        source, ref = "env", args.password_env
    elif getattr(args, "password_command", None):
        source, ref = "command", args.password_command
    elif creating or getattr(args, "password", False):
        source = "keyring"
    return AccountInput(
        name=getattr(args, "new_name", None) or (args.name if creating else None),
        preset=args.preset,
        imap_host=args.imap_host,
        imap_port=args.imap_port,
        imap_security=args.imap_security,
        ca_cert=args.ca_cert,
        username=args.user,
        password_source=source,
        password_ref=ref,
        smtp_host=args.smtp_host,
        smtp_port=args.smtp_port,
        smtp_security=args.smtp_security,
        addresses=args.address,
        refresh_minutes=args.refresh_minutes,
        sync_since=None if args.sync_since in (None, "all") else args.sync_since,
        sync_all=args.sync_since == "all",
        signature=args.signature.replace("\\n", "\n")
        if getattr(args, "signature", None) is not None
        else None,
        sent_copy=args.sent_copy,
        sent_copy_folder=args.sent_copy_folder,
    )


def _ask_password(name: str) -> str:
    """The password for the keyring: asked on the terminal, or one line from standard input."""
    if sys.stdin.isatty():
        password = getpass.getpass(f"Password (app password) for {name}: ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise ConfigError("no password given")
    return password


def account_add(context: AppContext, args: argparse.Namespace) -> int:
    # the services load the ORM, the keyring's helpers subprocess: imported when the command runs (--help starts fast)
    from crm_tui.core.services import mail_accounts
    from crm_tui.mail import secrets

    data = _account_input(args, creating=True)
    if data.password_source == "keyring":
        usable, _ = secrets.keyring_backend()
        if not usable:
            raise ConfigError(secrets.NO_KEYRING)
    with context.database().write() as session:
        account = mail_accounts.create_account(
            session, data, now=context.clock.now(), default_user_id=context.me_id()
        )
        name = account.name
        if data.password_source == "keyring":
            # Inside the transaction: if the keyring refuses, no account is left without a password.
            secrets.store_in_keyring(name, _ask_password(name))
    print(f"account {name} added; check it with: crm-tui account test {name}")
    return 0


def account_edit(context: AppContext, args: argparse.Namespace) -> int:
    # the services load the ORM, the keyring's helpers subprocess: imported when the command runs (--help starts fast)
    from crm_tui.core.services import mail_accounts
    from crm_tui.mail import secrets

    data = _account_input(args, creating=False)
    with context.database().write() as session:
        before = mail_accounts.get_account(session, args.name)
        old_name, old_source = before.name, before.password_source
        account = mail_accounts.update_account(session, args.name, data, now=context.clock.now())
        name = account.name
        if data.password_source == "keyring":
            secrets.store_in_keyring(name, _ask_password(name))
        elif old_source == "keyring" and (account.password_source != "keyring" or name != old_name):
            if name != old_name and account.password_source == "keyring":
                # Keep the stored password under the new name.
                secret = secrets.password_for(old_name, "keyring", None)
                secrets.store_in_keyring(name, secret)
            secrets.forget(old_name)
    print(f"account {name} saved")
    return 0


def account_remove(context: AppContext, args: argparse.Namespace) -> int:
    # the services load the ORM, the keyring's helpers subprocess: imported when the command runs (--help starts fast)
    from crm_tui.core.services import mail_accounts
    from crm_tui.mail import secrets

    with context.database().write() as session:
        account = mail_accounts.get_account(session, args.name)
        source = account.password_source
        mail_accounts.remove_account(session, args.name)
    if source == "keyring":
        secrets.forget(args.name)
    print(f"account {args.name} removed (mail filed on records is kept)")
    return 0


def account_list(context: AppContext, args: argparse.Namespace) -> int:
    # the services and models load the ORM: imported when the command runs, so that --help starts fast
    from crm_tui.core.services import mail_accounts

    with context.database().read() as session:
        accounts = mail_accounts.list_accounts(session)
        rows = [
            {
                "name": a.name,
                "user": f"user:{a.user_id}",
                "preset": a.preset,
                "imap": f"{a.imap_host}:{a.imap_port} ({a.imap_security})",
                "smtp": f"{a.smtp_host}:{a.smtp_port} ({a.smtp_security})" if a.smtp_host else None,
                "login": a.username,
                "password": {"keyring": "keyring", "env": f"env {a.password_ref}", "command": "command"}.get(
                    a.password_source, a.password_source
                ),
                "addresses": [x for x in a.addresses.splitlines() if x],
                "refresh_minutes": a.refresh_minutes,
                "sync_since": a.sync_since or "all",
                "sent_copy": a.sent_copy,
                "sent_copy_folder": a.sent_copy_folder,
                "sent_copies_to": mail_accounts.sent_copy_text(a),
            }
            for a in accounts
        ]
    if args.json:
        print_json(rows, context.zone)
    else:
        print_table(
            ["name", "imap", "login", "password", "sync since", "sent copies"],
            (
                (r["name"], r["imap"], r["login"], r["password"], r["sync_since"], r["sent_copies_to"])
                for r in rows
            ),
            context.zone,
        )
    return 0


def account_test(context: AppContext, args: argparse.Namespace) -> int:
    # imapclient loads slowly: only for a command that talks to the server
    from crm_tui.mail.imap import folder_names, load_login

    login = load_login(context.database(), args.name)
    endpoint = login.endpoint
    if login.demo:
        print(
            f"{endpoint.account}: not connected (the demo's account never connects; mail waits in the outbox)"
        )
        return 0
    names = folder_names(login)
    print(
        f"{endpoint.account}: logged in to {endpoint.host}:{endpoint.port}; "
        f"{plural(len(names), 'folder')}: {', '.join(sorted(names))}"
    )
    return 0


def sync(context: AppContext, args: argparse.Namespace) -> int:
    if args.watch:
        return _watch(context, args)
    if args.json:
        raise UsageError("--json goes with --watch (one pass prints its summary)")
    # the services and models load the ORM: imported when the command runs, so that --help starts fast
    from crm_tui.core.services import mail_accounts
    from crm_tui.mail.sync import sync_account

    with context.database().read() as session:
        names = [args.account] if args.account else [a.name for a in mail_accounts.list_accounts(session)]
        if args.account:
            mail_accounts.get_account(session, args.account)
    if not names:
        raise ConfigError("no mail account yet: add one with 'crm-tui account add NAME --preset ...'")
    failures = 0
    for name in names:
        progress = ProgressLine()
        try:
            report = sync_account(context.database(), name, clock=context.clock, progress=progress)
        except CrmError as exc:
            progress.clear()
            if getattr(exc, "kind", None) == "demo":
                print(exc)  # the demo's account never connects: information, not a failure
                continue
            print(f"crm-tui: {exc}", file=sys.stderr)
            failures += 1
            continue
        progress.clear()
        print(report.summary())
        failures += bool(report.failed_folders)  # messages kept with problems are no failure: exit 0
    return 1 if failures else 0


def _watch(context: AppContext, args: argparse.Namespace) -> int:
    """``sync --watch``: the background work (runtime/background.py) until SIGTERM or Ctrl+C; a clean stop ends
    the IDLE connections and the sync's helper processes. Started by the app (ui/supervisor.py) it also reads
    ``sync [NAME]`` lines on stdin and ends with its parent."""
    # the background work loads the sync and the database layer: only for --watch
    from crm_tui.core.sanitize import terminal_safe
    from crm_tui.runtime.background import PARENT_ENV, BackgroundWork, read_commands, watch_parent

    if args.account:
        raise UsageError("--watch syncs every account (leave out --account)")
    printing = threading.Lock()
    out = sys.stdout
    if args.json:
        # The events alone on stdout: whatever else would print there (a library, a helper process) goes to
        # stderr, where it cannot break a line the app reads.
        out = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8", buffering=1)
        sys.stdout.flush()
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    def emit(event: dict[str, Any]) -> None:
        if args.json:
            line = json.dumps(event, ensure_ascii=False)
        elif event["type"] == "finished":
            line = event["error"] or event["summary"]  # each names its account
        elif event["type"] in ("outbox", "automation"):
            line = "\n".join([event["summary"], *event.get("failed", [])])
        else:
            return
        if not args.json:  # names, subjects and server words reach a terminal
            line = "\n".join(terminal_safe(part, max_length=300) for part in line.split("\n"))
        with printing:
            print(line, file=out, flush=True)

    parent = os.environ.get(PARENT_ENV)
    # On its own it fires the due automation too; the app that started it fires them itself (and says so).
    work = BackgroundWork(context, emit, automations=not parent)
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: work.stop())
    if parent:
        watch_parent(int(parent), work)
        read_commands(sys.stdin, work, stop_at_end=True)
    work.run()
    return 0


def mail_list(context: AppContext, args: argparse.Namespace) -> int:
    # the services and models load the ORM: imported when the command runs, so that --help starts fast
    from sqlalchemy import select
    from sqlmodel import col

    from crm_tui.core import models as m
    from crm_tui.core.services.mail_search import message_objects

    with context.database().read() as session:
        query = select(col(m.MailMessage.id)).order_by(
            col(m.MailMessage.sent_at).desc(), col(m.MailMessage.id).desc()
        )
        if args.folder:
            query = query.where(
                col(m.MailMessage.id).in_(
                    select(col(m.MailLocation.message_id))
                    .join(m.MailFolder, col(m.MailFolder.id) == m.MailLocation.folder_id)
                    .where(col(m.MailFolder.name) == args.folder)
                )
            )
        if args.limit:
            query = query.limit(args.limit)
        objects = message_objects(session, list(session.scalars(query)))
    _print_messages(context, objects, args.json)
    return 0


def mail_problems(context: AppContext, args: argparse.Namespace) -> int:
    """Messages kept with problems: each with what went wrong (parse, link, store); ``mail raw ID`` gives
    the bytes as they came."""
    # the services and models load the ORM: imported when the command runs, so that --help starts fast
    from sqlalchemy import select
    from sqlmodel import col

    from crm_tui.core import models as m
    from crm_tui.core.services.mail_search import message_objects

    with context.database().read() as session:
        query = (
            select(col(m.MailMessage.id))
            .where(col(m.MailMessage.parse_problems).is_not(None), col(m.MailMessage.parse_problems) != "")
            .order_by(col(m.MailMessage.sent_at).desc(), col(m.MailMessage.id).desc())
        )
        if args.limit:
            query = query.limit(args.limit)
        objects = message_objects(session, list(session.scalars(query)))
    if args.json:
        print_json((o.as_json() for o in objects), context.zone)
        return 0
    if not objects:
        print("no message kept with problems")
        return 0
    for o in objects:
        subject = terminal_safe(o.subject or "(no subject)", max_length=60)
        print(f"{o.id:>6}  {terminal_safe(o.from_, max_length=40):<40}  {subject}")
        for problem in o.problems:
            print(f"        {terminal_safe(problem, max_length=150)}")
    return 0


def search(context: AppContext, args: argparse.Namespace) -> int:
    # the services and models load the ORM: imported when the command runs, so that --help starts fast
    from crm_tui.core.services.mail_search import message_objects, search_ids

    with context.database().read() as session:
        ids = search_ids(session, args.query, context.zone, limit=args.limit)
        objects = message_objects(session, ids)
    _print_messages(context, objects, args.json)
    return 0


def _print_messages(context: AppContext, objects: list[Any], as_json: bool) -> None:
    if as_json:
        print_json((o.as_json() for o in objects), context.zone)
        return
    print_table(
        ["id", "date", "from", "subject", "links"],
        ((o.id, o.date, o.from_, o.subject, " ".join(link["record"] for link in o.links)) for o in objects),
        context.zone,
    )


def mail_raw(context: AppContext, args: argparse.Namespace) -> int:
    """The bytes of a message exactly as the server sent them (the first stored copy)."""
    # the services and models load the ORM: imported when the command runs, so that --help starts fast
    from crm_tui.core import models as m
    from crm_tui.core.services import mailbox

    raw: bytes | None
    if args.folder is not None or args.uid is not None:
        raw = _raw_of_copy(context, args.id, args.folder, args.uid)
    else:
        with context.database().read() as session:
            message = session.get(m.MailMessage, args.id)
            if message is None:
                raise CrmError(f"no message {args.id} (see 'crm-tui mail list')")
            raw = mailbox.raw_of(session, args.id) if message.has_body else None
        if raw is None:
            raw = _fetch_body_now(context, args.id)
    if not raw:
        # Nothing to write: said on stderr (stdout stays the message's bytes, none), not mistaken for a failure.
        print(f"crm-tui: message {args.id} is empty (0 bytes on the server)", file=sys.stderr)
        return 0
    out = sys.stdout.buffer
    out.write(raw)
    out.flush()
    return 0


def _fetch_body_now(context: AppContext, message_id: int) -> bytes:
    """Fetch the body of a provisional message from its first copy, store it, and return the bytes."""
    # the services and models load the ORM: imported when the command runs, so that --help starts fast
    from crm_tui.core.services import mail_copies, mailbox
    from crm_tui.mail.parse import parse_safely

    db = context.database()
    with db.read() as session:
        copies = mail_copies.copies_of(session, message_id)
    if not copies:
        raise CrmError(f"message {message_id}: its body was never downloaded and no server copy is known")
    first = copies[0]
    raw = _fetch_copy(
        context,
        message_id,
        first,
        out_of_reach="the body is not downloaded yet and the server is out of reach",
        gone="the server no longer has it",
    )
    with db.write() as session:
        # As the sync stores it: an empty or unreadable message is kept with its problem.
        mailbox.store_body(session, first.location_id, parse_safely(raw), now=context.clock.now())
    return raw


def _raw_of_copy(context: AppContext, message_id: int, folder: str | None, uid: int | None) -> bytes:
    """The bytes of one copy of a message (``mail raw ID --folder F [--uid U]``): copies merged as one
    message may differ in their headers, and each has its own. Fetched from the server by the copy's UID
    when they are not here (a body not downloaded yet; a copy merged before copies kept their bytes), and
    kept."""
    # the services and models load the ORM: imported when the command runs, so that --help starts fast
    from crm_tui.core import models as m
    from crm_tui.core.services import mail_copies, mailbox
    from crm_tui.mail.parse import parse_safely

    db = context.database()
    with db.read() as session:
        message = session.get(m.MailMessage, message_id)
        if message is None:
            raise CrmError(f"no message {message_id} (see 'crm-tui mail list')")
        has_body = message.has_body
        copies = mail_copies.copies_of(session, message_id)
        chosen = [c for c in copies if folder in (None, c.folder) and uid in (None, c.uid)]
        named = " ".join(
            ([f"in {terminal_safe(folder, max_length=100)}"] if folder is not None else [])
            + ([f"of UID {uid}"] if uid is not None else [])
        )
        if not chosen:
            known = ", ".join(f"{terminal_safe(c.folder, max_length=100)} UID {c.uid}" for c in copies)
            raise CrmError(
                f"message {message_id} has no copy {named}; "
                + (f"its copies: {known}" if known else "no copy of it on a server is known")
            )
        if len(chosen) > 1:
            uids = ", ".join(str(c.uid) for c in chosen)
            raise CrmError(
                f"message {message_id} has {len(chosen)} copies {named} (UIDs {uids}): say which with --uid"
            )
        copy = chosen[0]
        raw = mailbox.copy_raw(session, copy.location_id)
    if raw is not None:
        return raw
    raw = _fetch_copy(context, message_id, copy)
    with db.write() as session:
        if has_body:
            mailbox.keep_copy_raw(session, copy.location_id, raw)
        else:
            mailbox.store_body(session, copy.location_id, parse_safely(raw), now=context.clock.now())
    return raw


def _fetch_copy(
    context: AppContext,
    message_id: int,
    copy: Any,
    *,
    out_of_reach: str = "this copy's bytes are on the server only, and it is out of reach",
    gone: str = "the server no longer has this copy; run 'crm-tui sync'",
) -> bytes:
    """One copy's bytes from its server, by its UID (``mail_copies.Copy``). ``out_of_reach`` and ``gone`` say
    what failed when the server cannot be reached or no longer has the copy."""
    # the services and models load the ORM: imported when the command runs, so that --help starts fast
    from crm_tui.core.services import mail_accounts
    from crm_tui.mail.imap import MailConnectionError, connect_login, login_of, logout

    with context.database().read() as session:
        login = login_of(mail_accounts.get_account(session, copy.account))
    try:
        client = connect_login(login)
    except MailConnectionError as exc:
        raise CrmError(f"message {message_id}: {out_of_reach} ({exc})") from None
    try:
        state = client.select_folder(copy.folder, readonly=True)
        if int(state[b"UIDVALIDITY"]) != copy.uidvalidity:
            raise CrmError(
                f"message {message_id}: the folder changed on the server; run 'crm-tui sync' first"
            )
        reply = client.fetch([copy.uid], ["BODY.PEEK[]"]).get(copy.uid, {})
    finally:
        logout(client)
    if b"BODY[]" not in reply:
        raise CrmError(f"message {message_id}: {gone}")
    return bytes(reply[b"BODY[]"] or b"")  # a message of 0 bytes is one too (NIL or an empty literal)


def mail_change(context: AppContext, args: argparse.Namespace) -> int:
    # the services and models load the ORM: imported when the command runs, so that --help starts fast
    from crm_tui.core.services import mailbox

    done = {"read": "marked read", "unread": "marked unread", "flag": "flagged", "unflag": "unflagged"}
    with context.database().write() as session:
        for message_id in args.ids:
            mailbox.queue_change(
                session, message_id, args.change, getattr(args, "to", None), now=context.clock.now()
            )
    what = done.get(args.change) or {"archive": "archived", "delete": "moved to the trash"}.get(
        args.change, f"moved to {getattr(args, 'to', '')}"
    )
    ids = ", ".join(str(i) for i in args.ids)
    print(f"message {ids}: {what} here; the server follows with the next sync")
    return 0


def _ref(text: str) -> Any:

    try:
        return RecordRef.parse(text)
    except ValueError as exc:
        raise CrmError(str(exc)) from None


def mail_link(context: AppContext, args: argparse.Namespace) -> int:
    # the services and models load the ORM: imported when the command runs, so that --help starts fast
    from crm_tui.core.services import mail_linking

    ref = _ref(args.record)
    with context.database().write() as session:
        mail_linking.link_manually(session, args.id, ref, now=context.clock.now())
    print(f"message {args.id} filed on {ref}")
    return 0


def mail_unlink(context: AppContext, args: argparse.Namespace) -> int:
    # the services and models load the ORM: imported when the command runs, so that --help starts fast
    from crm_tui.core.services import mail_linking

    ref = _ref(args.record)
    with context.database().write() as session:
        had = mail_linking.unlink(session, args.id, ref, now=context.clock.now())
    print(f"message {args.id} taken off {ref}" + ("" if had else " (it was not filed there; it will not be)"))
    return 0


def mail_report(context: AppContext, args: argparse.Namespace) -> int:
    # the services and models load the ORM: imported when the command runs, so that --help starts fast
    from crm_tui.core.services import mail_outcomes
    from crm_tui.core.services.users import current_user

    today = context.today()
    start, end = args.start or today.replace(day=1), args.end or today
    with context.database().read() as session:
        email = args.user
        if not email:
            me = current_user(session, context.settings.me)
            if me is None:
                raise CrmError("no user in this database: name one with --user EMAIL")
            email = me.email
        report = mail_outcomes.sent_mail_report(
            session, user_email=email, start=start, end=end, zone=context.zone
        )
    if args.json:
        print_json_object(report.as_json(), context.zone)
        return 0
    if args.csv:
        sys.stdout.write(mail_outcomes.report_csv(report, context.zone))
        return 0
    name = terminal_safe(f"{report.user_name} <{report.user_email}>", max_length=80)
    print(f"sent mail of {name}, {start:%Y-%m-%d} to {end:%Y-%m-%d}")
    print_table(("outcome", "recipients"), list(report.counts.items()), context.zone)
    for kind in mail_outcomes.KINDS:
        rows = report.rows_of(kind)
        if not rows:
            continue
        print(f"\n{kind} ({len(rows)})")
        print_table(
            ("at", "recipient", "subject", "detail"),
            [(row.at, terminal_safe(row.recipient, max_length=50), terminal_safe(row.subject, max_length=50),
              terminal_safe(row.detail, max_length=70)) for row in rows],
            context.zone,
        )  # fmt: skip
    return 0


def outbox_list(context: AppContext, args: argparse.Namespace) -> int:
    # the services and models load the ORM: imported when the command runs, so that --help starts fast
    from crm_tui.core.services import outbox

    with context.database().read() as session:
        rows = outbox.rows(session, now=context.clock.now())
    if args.json:
        print_json([row.as_json() for row in rows], context.zone)
        return 0
    if not rows:
        print("the outbox is empty")
        return 0
    for row in rows:
        when = (row.sent_at or row.created_at).astimezone(context.zone).strftime("%Y-%m-%d %H:%M")
        to = ", ".join(row.recipients[:3]) + (" …" if len(row.recipients) > 3 else "")
        to_text, subject = terminal_safe(to, max_length=40), terminal_safe(row.subject, max_length=60)
        print(f"{row.id:>5}  {row.shown_state:<9} {when}  {to_text:<40}  {subject}")
        for line in row.explanation.splitlines():
            print(f"       {terminal_safe(line, max_length=150)}")
        if row.needs_decision:
            print(f"       outbox decide {row.id} resend|sent|drop")
    return 0


def outbox_flush(context: AppContext, args: argparse.Namespace) -> int:
    # sending (smtplib, the outbox) loads slowly: only when the outbox is flushed
    from crm_tui.mail.outbox import flush

    if context.demo:
        print("demo mode: nothing is delivered; the outbox holds")
        return 0
    report = flush(
        context.database(),
        clock=context.clock,
        account_name=args.account,
        at_once=getattr(args, "at_once", False),
    )
    print(terminal_safe(report.summary(context.zone)))
    for problem in report.problems[1:]:  # the summary names the first
        print(terminal_safe(problem, max_length=300))
    # Mail waiting for its next try after a failure could not go out: that is an exit status of 1 too.
    return 1 if report.held_back or report.waiting.retry else 0


def outbox_decide(context: AppContext, args: argparse.Namespace) -> int:
    # the services and models load the ORM: imported when the command runs, so that --help starts fast
    from crm_tui.core.services import outbox

    with context.database().write() as session:
        was = outbox.decide(session, args.id, args.decision, now=context.clock.now()).state
        to = outbox.pending_recipients(session, args.id) if args.decision == "resend" else []
    said = {
        "resend": "queued again for " + ", ".join(to),
        "sent": "counted as sent",
        "drop": "the refused addresses let go; it stays sent to the others"
        if was == "sent"
        else "taken out of the outbox",
    }
    print(f"outbox item {args.id}: {said[args.decision]}")
    return 0
