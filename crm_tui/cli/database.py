"""`crm-tui database-password`: the database server's password, kept in the OS keyring."""

from __future__ import annotations

import argparse
import getpass
from typing import TYPE_CHECKING

from crm_tui.cli.arguments import Commands
from crm_tui.core.errors import ConfigError

if TYPE_CHECKING:
    from crm_tui.runtime.context import AppContext


def register(commands: Commands) -> None:
    sub = commands.add_parser(
        "database-password", help="store the database server's password in the OS keyring (asked for)"
    )
    sub.set_defaults(handler=database_password)


def database_password(context: AppContext, args: argparse.Namespace) -> int:
    """Store the database's password in the OS keyring (asked for, never echoed); config.toml then says
    database_password = "keyring"."""
    # the database layer and the keyring's helpers load slowly: imported when the command runs (--help starts fast)
    from crm_tui.mail.secrets import SERVICE, keyring_backend
    from crm_tui.runtime.context import database_keyring_key

    url = context.database_url
    if url.startswith("sqlite"):
        raise ConfigError("the local SQLite database has no password (set database_url for a server first)")
    usable, backend = keyring_backend()
    if not usable:
        raise ConfigError(
            f'no OS keyring here ({backend}): use database_password = "env:VAR" or "command:CMD"'
        )
    password = getpass.getpass(f"Password for {url}: ")
    if not password:
        raise ConfigError("no password given: nothing stored")
    import keyring  # loads its backends (slow): only when a password is stored

    keyring.set_password(SERVICE, database_keyring_key(url), password)
    print('stored in the keyring; config.toml: database_password = "keyring"')
    return 0
