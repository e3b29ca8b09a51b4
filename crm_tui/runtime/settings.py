"""Typed settings read from ``config.toml`` (no Textual here)."""

from __future__ import annotations

import contextlib
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from crm_tui.core.errors import ConfigError
from crm_tui.core.private_files import open_private, private_dir

EXAMPLE_CONFIG = """\
# crm-tui configuration (TOML).

# The current user ("me"), by e-mail address. Default: the first user in the database.
# me = "anna.berg@example.com"

# Time zone used to show times. Default: the system's local time zone.
# timezone = "Europe/Berlin"

# The inbox's "No reply to me" view: my mails without an answer for this many days (default 3).
# no_reply_days = 3

# Mass mail pace: mails a minute (default 30; providers limit how fast one may send).
# mass_mail_per_minute = 30

# Seconds a mail waits in the outbox before it goes out: u in the inbox takes it back meanwhile (default 10;
# 0 sends at once).
# send_delay_seconds = 10

# Key bindings: binding id = keys (comma separated), e.g.
# [keymap]
# "app.quit" = "ctrl+q,q"
"""


@dataclass(frozen=True)
class Settings:
    """Everything a user can set in ``config.toml``."""

    me: str | None = None
    """E-mail address of the current user; the first user when unset."""
    timezone: str | None = None
    """IANA time zone name for showing times; the system's local zone when unset."""
    database_url: str | None = None
    """SQLAlchemy URL of the database; the local SQLite file when unset. Never with a password in it."""
    database_password: str | None = None
    """Where the database password is: "env:VAR", "command:CMD ARGS" or "keyring" (unset: none, or
    PostgreSQL's own ~/.pgpass)."""
    keymap: dict[str, str] = field(default_factory=dict)
    """Binding id -> keys, to remap the app's key bindings."""
    no_reply_days: int = 3
    """The inbox's "No reply to me" view lists my mails unanswered for this many days."""
    mass_mail_per_minute: int = 30
    """The pace of a mass mail, in mails a minute."""
    send_delay_seconds: int = 10
    """A mail written in the app waits this long in the outbox before it goes out (u takes it back)."""

    def zone(self) -> ZoneInfo | None:
        if not self.timezone:
            return None
        return ZoneInfo(self.timezone)


_KNOWN = {
    "me": str,
    "timezone": str,
    "database_url": str,
    "database_password": str,
    "keymap": dict,
    "no_reply_days": int,
    "mass_mail_per_minute": int,
    "send_delay_seconds": int,
}


def load_settings(path: Path) -> Settings:
    """Read settings from ``path``; a missing file gives the defaults, a broken one a ConfigError."""
    try:
        raw_bytes = path.read_bytes()
    except FileNotFoundError:
        return Settings()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        data: dict[str, Any] = tomllib.loads(raw_bytes.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    for key, value in data.items():
        expected = _KNOWN.get(key)
        if expected is None:
            raise ConfigError(f"{path}: unknown setting {key!r} (known: {', '.join(sorted(_KNOWN))})")
        if not isinstance(value, expected):
            raise ConfigError(f"{path}: {key} must be a {expected.__name__}")
    keymap = data.get("keymap", {})
    for binding_id, keys in keymap.items():
        if not isinstance(keys, str) or not keys.strip():
            raise ConfigError(f"{path}: keymap.{binding_id} must be a non-empty string of keys")
    settings = Settings(
        me=data.get("me"),
        timezone=data.get("timezone"),
        database_url=data.get("database_url"),
        database_password=data.get("database_password"),
        keymap=dict(keymap),
        no_reply_days=data.get("no_reply_days", 3),
        mass_mail_per_minute=data.get("mass_mail_per_minute", 30),
        send_delay_seconds=data.get("send_delay_seconds", 10),
    )
    if settings.database_url:
        # SQLAlchemy loads slowly: only to check a database_url that is set
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            has_password = make_url(settings.database_url).password is not None
        except ArgumentError:
            raise ConfigError(f"{path}: database_url is not a database URL") from None
        if has_password:
            raise ConfigError(
                f"{path}: database_url must not hold the password (it would sit here in plain text); set "
                'database_password = "env:VAR", "command:CMD" or "keyring", or use ~/.pgpass'
            )
    source = settings.database_password
    if source and not (source == "keyring" or source.startswith(("env:", "command:"))):
        raise ConfigError(f'{path}: database_password is "env:VAR", "command:CMD" or "keyring"')
    if not 1 <= settings.mass_mail_per_minute <= 10_000:
        raise ConfigError(f"{path}: mass_mail_per_minute must be between 1 and 10000")
    if not 1 <= settings.no_reply_days <= 365:
        raise ConfigError(f"{path}: no_reply_days must be between 1 and 365")
    if settings.timezone:
        try:
            settings.zone()
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(f"{path}: unknown timezone {settings.timezone!r}") from exc
    return settings


def set_config_value(path: Path, key: str, value: str | int) -> None:
    """Set one top-level setting in config.toml, keeping everything else as the user wrote it: comments, blank
    lines, the order of keys and tables, keys crm-tui does not know (a missing file starts as the example)."""
    import tomlkit  # a TOML writer that keeps comments: only when the config is written

    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        text = EXAMPLE_CONFIG
    try:
        document = tomlkit.parse(text)
    except tomlkit.exceptions.ParseError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    document[key] = (
        value  # a key already there keeps its place and its comment; a new one goes before the tables
    )
    private_dir(path.parent, tighten_existing=False)
    temporary = path.with_suffix(".toml.tmp")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()  # left by a write that was cut off
    with os.fdopen(open_private(temporary), "w", encoding="utf-8") as out:  # 0600 whatever the umask
        out.write(tomlkit.dumps(document))
    temporary.replace(path)
    load_settings(path)  # what we wrote must read back
