"""What every command group builds its subcommands with: the parser class (errors as one line, exit code 2),
the usage error, and the argument types (whole numbers, ports, dates, pinned instants)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC
from typing import Any, NoReturn, TypeAlias

from crm_tui.core.clock import parse_date, parse_pinned
from crm_tui.core.types import RecordRef, RecordType


class UsageError(Exception):
    """A command line that cannot be run as given (exit code 2)."""


class CommandParser(argparse.ArgumentParser):
    """argparse with errors as one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


# What ``add_subparsers`` returns: where a group registers its commands (generic only for type checkers).
Commands: TypeAlias = "argparse._SubParsersAction[CommandParser]"


def action_group(commands: Commands, name: str, help_text: str) -> Commands:
    """A command with actions (``crm-tui contacts list``): the subparsers of its actions."""
    return commands.add_parser(name, help=help_text).add_subparsers(
        dest="action", metavar="ACTION", required=True, parser_class=CommandParser
    )


def listing(group: Commands, name: str, help_text: str) -> argparse.ArgumentParser:
    """An action that lists rows: with --json and --limit."""
    sub = group.add_parser(name, help=help_text, description=help_text)
    sub.add_argument("--json", action="store_true", help="print one JSON array of objects")
    sub.add_argument("--limit", type=positive_int, metavar="N", help="at most N rows (default: all)")
    return sub


def showing(group: Commands, record_type: RecordType, help_text: str) -> argparse.ArgumentParser:
    """An action that shows one record: ``show ID`` (``12`` or ``TYPE:12``) with --json."""
    sub = group.add_parser("show", help=help_text, description=help_text)
    sub.add_argument(
        "id", metavar="ID", type=record_id(record_type), help=f"{record_type.value}:N, or just N"
    )
    sub.add_argument("--json", action="store_true", help="print one JSON array holding the record")
    return sub


def record_id(record_type: RecordType) -> Callable[[str], int]:
    """The argument type of a record's id where its type is known: ``12`` or ``quote:12``; a reference to
    another type is a usage error."""

    def parse(text: str) -> int:
        value = text.strip()
        if value.isdigit():
            value = f"{record_type.value}:{value}"
        try:
            ref = RecordRef.parse(value)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a {record_type.value} id (N or {record_type.value}:N, N from 1)"
            ) from None
        if ref.type is not record_type:
            raise argparse.ArgumentTypeError(
                f"{ref} is not a {record_type.value} (N or {record_type.value}:N)"
            )
        return ref.id

    return parse


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more (got {value})")
    return value


def port(text: str) -> int:
    value = positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"a port is 1 to 65535 (got {value})")
    return value


def iso_date(text: str) -> Any:
    try:
        return parse_date(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def since(text: str) -> Any:
    return "all" if text.strip().lower() == "all" else iso_date(text)


def iso_instant(text: str) -> str:
    try:
        # One without an offset is read in the local zone later: the range leaves room for any offset.
        parse_pinned(text, UTC)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text
