"""Connecting to an account's IMAP server, with one clear line for each way it can fail."""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crm_tui.core.errors import CrmError

TIMEOUT = 30.0


class MailConnectionError(CrmError):
    """The server could not be reached or refused us. ``kind`` says which, for the status bar and retries:
    host, port, timeout, certificate, tls, password, protocol."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind

    @property
    def retry(self) -> bool:
        """Worth retrying later by itself (the network), as opposed to waiting for the user (password)."""
        return self.kind in ("host", "port", "timeout", "protocol", "dropped")


@dataclass(frozen=True)
class Endpoint:
    account: str
    host: str
    port: int
    security: str  # ssl | starttls | none
    username: str
    ca_cert: str | None = None


@dataclass(frozen=True)
class Login:
    """How to reach and log in to one account: plain data, safe to hand to another thread or process."""

    endpoint: Endpoint
    password_source: str
    password_ref: str | None

    def password(self) -> str:
        from crm_tui.mail import secrets

        return secrets.password_for(self.endpoint.account, self.password_source, self.password_ref)


def login_of(account: Any) -> Login:
    """The Login of a stored account (an ``models.MailAccount``)."""
    return Login(
        Endpoint(
            account.name,
            account.imap_host,
            account.imap_port,
            account.imap_security,
            account.username,
            account.ca_cert,
        ),
        account.password_source,
        account.password_ref,
    )


def load_login(db: Any, name: str) -> Login:
    """The Login of the account named ``name`` (NotFound, one line, if there is none)."""
    from crm_tui.core.services import mail_accounts

    with db.read() as session:
        return login_of(mail_accounts.get_account(session, name))


def connect_login(login: Login) -> Any:
    """Log in with the account's password from wherever it is kept."""
    return connect(login.endpoint, login.password())


def _ssl_context(endpoint: Endpoint) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if endpoint.ca_cert:
        context.load_verify_locations(cafile=str(Path(endpoint.ca_cert).expanduser()))
    return context


def connect(endpoint: Endpoint, password: str, *, timeout: float = TIMEOUT) -> Any:
    """A logged-in ``IMAPClient``, or MailConnectionError with one line naming what went wrong."""
    import imapclient
    from imapclient import exceptions as imap_errors

    where = f"{endpoint.host}:{endpoint.port}"
    try:
        client = imapclient.IMAPClient(
            endpoint.host,
            port=endpoint.port,
            ssl=endpoint.security == "ssl",
            ssl_context=_ssl_context(endpoint) if endpoint.security != "none" else None,
            timeout=timeout,
        )
        if not logging.getLogger("imapclient.imaplib").isEnabledFor(logging.DEBUG):
            # imapclient turns on imaplib's debug output to feed its logger: every line read is formatted for
            # a log nobody reads (a tenth of a header pass). Kept when that logger is on.
            client._imap.debug = 0
        if endpoint.security == "starttls":
            client.starttls(_ssl_context(endpoint))
    except socket.gaierror:
        raise MailConnectionError(
            f"{endpoint.account}: unknown host {endpoint.host!r} (check --imap-host)", "host"
        ) from None
    except ConnectionRefusedError:
        raise MailConnectionError(
            f"{endpoint.account}: nothing answers on {where} (check --imap-port)", "port"
        ) from None
    except TimeoutError:
        raise MailConnectionError(
            f"{endpoint.account}: {where} did not answer within {timeout:.0f} s", "timeout"
        ) from None
    except ssl.SSLCertVerificationError as exc:
        reason = getattr(exc, "verify_message", None) or str(exc)
        raise MailConnectionError(
            f"{endpoint.account}: the certificate of {endpoint.host} is not trusted ({reason}); "
            "give the CA with --ca-cert FILE",
            "certificate",
        ) from None
    except ssl.SSLError as exc:
        raise MailConnectionError(
            f"{endpoint.account}: TLS with {where} failed ({exc.reason or exc}); check --imap-security", "tls"
        ) from None
    except (imap_errors.IMAPClientError, OSError) as exc:
        raise MailConnectionError(f"{endpoint.account}: {where}: {exc}", "protocol") from None
    try:
        client.login(endpoint.username, password)
    except imap_errors.LoginError:
        _quietly_close(client)
        raise MailConnectionError(
            f"{endpoint.account}: the server refused the user name or password (user {endpoint.username!r})",
            "password",
        ) from None
    except (imap_errors.IMAPClientError, OSError) as exc:
        _quietly_close(client)
        raise MailConnectionError(f"{endpoint.account}: login failed: {exc}", "protocol") from None
    return client


def _quietly_close(client: Any) -> None:
    with contextlib.suppress(Exception):  # closing a broken connection
        client.shutdown()


def logout(client: Any) -> None:
    try:
        client.logout()
    except Exception:  # noqa: BLE001 - the connection may already be gone
        _quietly_close(client)
