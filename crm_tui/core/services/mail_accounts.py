"""IMAP accounts: presets for the big providers, validation, and the addresses that are "me".

The password is not part of an account: ``password_source`` names where it lives (see ``crm_tui.mail.secrets``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from crm_tui.core import models as m
from crm_tui.core.bulk import table_of
from crm_tui.core.errors import FieldErrors, NotFound
from crm_tui.core.services import mailbox
from crm_tui.core.services.own_addresses import my_addresses as my_addresses  # kept here for its callers
from crm_tui.core.services.rows import id_of

SECURITIES = ("ssl", "starttls", "none")
PASSWORD_SOURCES = ("keyring", "env", "command")
DEFAULT_SYNC_DAYS = 90


@dataclass(frozen=True)
class Preset:
    imap_host: str
    imap_port: int
    imap_security: str
    smtp_host: str
    smtp_port: int
    smtp_security: str


# App passwords work with these; OAuth2 (and with it Microsoft accounts) is a later issue.
PRESETS: dict[str, Preset] = {
    "gmail": Preset("imap.gmail.com", 993, "ssl", "smtp.gmail.com", 465, "ssl"),
    "yahoo": Preset("imap.mail.yahoo.com", 993, "ssl", "smtp.mail.yahoo.com", 465, "ssl"),
    "fastmail": Preset("imap.fastmail.com", 993, "ssl", "smtp.fastmail.com", 465, "ssl"),
}
# The demo's account: it never connects (crm_tui.mail.imap.Login says "not connected"); never made by hand.
DEMO_PRESET = "demo"
DEMO_HOST = "demo.invalid"  # RFC 2606: a name that resolves nowhere
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class AccountInput:
    """What the user gives for an account (CLI flags or the settings form). None: keep / use the default."""

    name: str | None = None
    preset: str | None = None
    user_id: int | None = None
    imap_host: str | None = None
    imap_port: int | None = None
    imap_security: str | None = None
    ca_cert: str | None = None
    username: str | None = None
    password_source: str | None = None
    password_ref: str | None = None
    smtp_host: str | None = None
    smtp_port: int | None = None
    smtp_security: str | None = None
    addresses: list[str] | None = None
    refresh_minutes: int | None = None
    sync_since: date | None = None
    sync_all: bool = False
    signature: str | None = None
    sent_copy: str | None = None  # server | folder | none (SENT_COPIES)
    sent_copy_folder: str | None = None  # with sent_copy "folder"


def _apply(
    account: m.MailAccount, data: AccountInput, errors: FieldErrors, *, creating: bool, today: date
) -> None:
    if data.preset is not None and not (data.preset == DEMO_PRESET and account.preset == DEMO_PRESET):
        if data.preset != "other" and data.preset not in PRESETS:
            errors.add("preset", f"unknown preset {data.preset!r} (gmail, yahoo, fastmail or other)")
        else:
            account.preset = data.preset
            preset = PRESETS.get(data.preset)
            if preset is not None:
                for name in (
                    "imap_host",
                    "imap_port",
                    "imap_security",
                    "smtp_host",
                    "smtp_port",
                    "smtp_security",
                ):
                    if getattr(data, name) is None:
                        setattr(account, name, getattr(preset, name))
    for name in (f.name for f in fields(AccountInput)):
        if name in ("preset", "addresses", "sync_since", "sync_all", "name"):
            continue
        value = getattr(data, name)
        if value is not None:
            setattr(account, name, value)
    if data.name is not None:
        account.name = data.name.strip()
    if data.addresses is not None:
        account.addresses = "\n".join(dict.fromkeys(a.strip().lower() for a in data.addresses if a.strip()))
    if data.sync_all:
        account.sync_since = None
    elif data.sync_since is not None:
        account.sync_since = data.sync_since
    elif creating:
        account.sync_since = today - timedelta(days=DEFAULT_SYNC_DAYS)

    if not account.name or not _NAME.match(account.name):
        errors.add("name", "use letters, digits, '.', '_' or '-' (up to 64), starting with a letter or digit")
    if not (account.imap_host or "").strip():
        errors.add("imap_host", "required (or choose a preset)")
    if not account.imap_port or not 1 <= account.imap_port <= 65535:
        errors.add("imap_port", "a port from 1 to 65535")
    if account.imap_security not in SECURITIES:
        errors.add("imap_security", "ssl, starttls or none")
    if account.smtp_port is not None and not 1 <= account.smtp_port <= 65535:
        errors.add("smtp_port", "a port from 1 to 65535")
    if account.smtp_security is not None and account.smtp_security not in SECURITIES:
        errors.add("smtp_security", "ssl, starttls or none")
    if account.ca_cert and not Path(account.ca_cert).expanduser().is_file():
        errors.add("ca_cert", f"no such file: {account.ca_cert}")
    if not (account.username or "").strip():
        errors.add("username", "required (--user)")
    if account.password_source not in PASSWORD_SOURCES:
        errors.add("password", "keyring, an environment variable or a command")
    elif account.password_source == "env" and not _ENV_NAME.match(account.password_ref or ""):
        errors.add("password", "an environment variable name such as CRM_IMAP_PASSWORD")
    elif account.password_source == "command" and not (account.password_ref or "").strip():
        errors.add("password", "a command that prints the password")
    elif account.password_source == "keyring":
        account.password_ref = None
    bad = [a for a in account.addresses.splitlines() if not _ADDRESS.match(a)]
    if bad:
        errors.add("addresses", f"not an e-mail address: {bad[0]}")
    if not account.refresh_minutes or account.refresh_minutes < 1:
        errors.add("refresh_minutes", "1 minute or more")
    _check_sent_copy(account, data, errors)


# Where the copy of a sent mail goes, and how the settings and the CLI say it.
SENT_COPIES = {
    "server": "the server's Sent folder",
    "folder": "a folder chosen",
    "none": "no copy saved",
}


def _check_sent_copy(account: m.MailAccount, data: AccountInput, errors: FieldErrors) -> None:
    if data.sent_copy_folder is not None and data.sent_copy is None:
        account.sent_copy = "folder"  # a folder given is the folder chosen
    if account.sent_copy not in SENT_COPIES:
        errors.add("sent_copy", "server, folder or none")
        return
    folder = (account.sent_copy_folder or "").strip()
    if account.sent_copy != "folder":
        account.sent_copy_folder = None
    elif not folder:
        errors.add("sent_copy_folder", "the folder that receives the copies")
    elif len(folder) > 500 or any(ch < " " for ch in folder):
        errors.add("sent_copy_folder", "a folder name of one line")
    else:
        account.sent_copy_folder = folder


def sent_copy_text(account: m.MailAccount) -> str:
    """Where the account's sent copies go, in words ("Archive/Sent 2026", "no copy saved")."""
    if account.sent_copy == "folder" and account.sent_copy_folder:
        return account.sent_copy_folder
    return SENT_COPIES.get(account.sent_copy, account.sent_copy)


def create_account(
    session: Session, data: AccountInput, *, now: datetime, default_user_id: int | None
) -> m.MailAccount:
    errors = FieldErrors()
    account = m.MailAccount(
        name="", user_id=0, imap_host="", imap_port=0, username="", created_at=now, refresh_minutes=5
    )
    _apply(account, data, errors, creating=True, today=now.date())
    user_id = data.user_id if data.user_id is not None else default_user_id
    if user_id is None or session.get(m.User, user_id) is None:
        errors.add(
            "user",
            "no user yet: an account belongs to one; add yourself first: crm-tui users add 'Your Name' you@example.com",
        )
    else:
        account.user_id = user_id
    if account.name and _by_name(session, account.name) is not None:
        errors.add("name", f"an account named {account.name!r} exists")
    errors.raise_if_any()
    session.add(account)
    session.flush()
    return account


def update_account(session: Session, name: str, data: AccountInput, *, now: datetime) -> m.MailAccount:
    account = get_account(session, name)
    errors = FieldErrors()
    old_name = account.name
    _apply(account, data, errors, creating=False, today=now.date())
    if data.user_id is not None:
        if session.get(m.User, data.user_id) is None:
            errors.add("user", "no such user")
        else:
            account.user_id = data.user_id
    if account.name != old_name and _by_name(session, account.name) is not None:
        errors.add("name", f"an account named {account.name!r} exists")
    if errors:
        session.expunge(account)
    errors.raise_if_any()
    session.flush()
    return account


def remove_account(session: Session, name: str) -> None:
    """Remove the account, its folders and locations. Messages stay while another copy or a record keeps them."""
    account = get_account(session, name)
    folder_ids = list(
        session.scalars(select(col(m.MailFolder.id)).where(col(m.MailFolder.account_id) == account.id))
    )
    message_ids = set(
        session.scalars(
            select(col(m.MailLocation.message_id)).where(col(m.MailLocation.folder_id).in_(folder_ids))
        )
    )
    session.delete(account)
    session.flush()
    mailbox.drop_orphans(session, message_ids, keep_waiting=False)  # no sync of it will replay its changes


def _by_name(session: Session, name: str) -> m.MailAccount | None:
    return session.scalars(select(m.MailAccount).where(col(m.MailAccount.name) == name)).first()


def _no_account(name: str) -> NotFound:
    return NotFound(f"no account named {name!r} (see 'crm-tui account list')")


def get_account(session: Session, name: str) -> m.MailAccount:
    account = _by_name(session, name)
    if account is None:
        raise _no_account(name)
    return account


def account_row(session: Session, name: str) -> Any:
    """``get_account``'s values as a plain row, read without the ORM: a sync's login can start before the
    ORM's first use in the process (its mappers take 20-35 ms to configure) and overlap it."""
    table = table_of(m.MailAccount)
    row = session.execute(select(table).where(table.c.name == name)).first()
    if row is None:
        raise _no_account(name)
    return row


def list_accounts(session: Session) -> list[m.MailAccount]:
    return list(session.scalars(select(m.MailAccount).order_by(col(m.MailAccount.name))))


def account_names(session: Session) -> list[str]:
    """The names of every mail account, in the order ``list_accounts`` gives."""
    return [account.name for account in list_accounts(session)]


@dataclass
class Identity:
    """Who a mail can be sent as: an account, one of its addresses and the name shown."""

    account_id: int
    account: str
    name: str
    address: str

    signature: str = ""

    @property
    def label(self) -> str:
        return (
            f"{self.name} <{self.address}> ({self.account})"
            if self.name
            else f"{self.address} ({self.account})"
        )

    @property
    def key(self) -> str:
        return f"{self.account_id}:{self.address}"


def identities(session: Session) -> list[Identity]:
    """Every identity of every account: its own addresses, else its login when that is an address."""
    found: list[Identity] = []
    for account in list_accounts(session):
        user = session.get(m.User, account.user_id)
        name = user.name if user is not None else ""
        addresses = [a for a in account.addresses.splitlines() if a] or (
            [account.username.lower()] if "@" in account.username else []
        )
        found.extend(
            Identity(id_of(account), account.name, name, address, account.signature or "")
            for address in addresses
        )
    return found


def identity_for(session: Session, message_id: int) -> Identity | None:
    """The identity to answer a stored mail with: its account's, the address it was sent to if one of them."""
    mail = session.get(m.MailMessage, message_id)
    if mail is None:
        return None
    account_id = session.scalars(
        select(col(m.MailFolder.account_id))
        .join(m.MailLocation, col(m.MailLocation.folder_id) == col(m.MailFolder.id))
        .where(col(m.MailLocation.message_id) == message_id)
    ).first()
    candidates = [i for i in identities(session) if account_id is None or i.account_id == account_id]
    written_to = {line.lower() for line in (mail.to_addresses + "\n" + mail.cc_addresses).splitlines()}
    for identity in candidates:
        if any(identity.address.lower() in line for line in written_to):
            return identity
    return candidates[0] if candidates else None
