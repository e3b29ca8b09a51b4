"""Connecting to an account's IMAP server, with one clear line for each way it can fail."""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crm_tui.core.errors import CrmError
from crm_tui.mail import secrets
from crm_tui.mail.imap_session import ImapSession

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
    demo: bool = False  # the demo's account: every connection stops here

    def password(self) -> str:
        if self.demo:
            raise MailConnectionError(f"{self.endpoint.account}: not connected", "demo")
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
        demo=account.preset == "demo",  # core.services.mail_accounts.DEMO_PRESET (this module stays light)
    )


def load_login(db: Any, name: str) -> Login:
    """The Login of the account named ``name`` (NotFound, one line, if there is none)."""
    # Here, not at the top: the database layer (SQLAlchemy, ~150 ms) stays out of the sync's helper
    # processes, which import this module for the body fetch and never read the database.
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


LOGIN_ATTEMPTS = 2  # a connection cut during login is tried once more before the sync says so
LOGIN_RETRY_PAUSE = 0.2


class _CutDuringLogin(Exception):
    """The link went down between connecting and being logged in (inside ``connect`` only)."""


def connect(endpoint: Endpoint, password: str, *, timeout: float = TIMEOUT) -> Any:
    """A logged-in ``IMAPClient``, or MailConnectionError with one line naming what went wrong. A connection
    cut before the login is through (a flaky link, a server restarting) is tried once more; cut again, it is
    a "dropped" error in plain words (retried later like any network failure), not imaplib's text."""
    for attempt in range(LOGIN_ATTEMPTS):
        try:
            return _connect_once(endpoint, password, timeout)
        except _CutDuringLogin:
            if attempt + 1 < LOGIN_ATTEMPTS:
                time.sleep(LOGIN_RETRY_PAUSE)
    raise MailConnectionError(
        f"{endpoint.account}: the connection to {endpoint.host}:{endpoint.port} was cut during login "
        f"({LOGIN_ATTEMPTS} tries); check the network and sync again",
        "dropped",
    )


def _cut(exc: BaseException | None) -> bool:
    """Whether an error met while connecting or logging in is the link going down (EOF, a reset, a reply cut
    off), as opposed to the server's answer (a refusal, a BYE with its reason) or a timeout."""
    from imapclient import exceptions as imap_errors  # loaded on the first connection, not at start

    if isinstance(exc, imap_errors.LoginError):  # imapclient wraps whatever failed in the LOGIN command
        exc = exc.__context__
    if isinstance(exc, (EOFError, ConnectionResetError, ConnectionAbortedError, BrokenPipeError)):
        return True
    if isinstance(exc, ssl.SSLEOFError):
        return True
    return isinstance(exc, imap_errors.IMAPClientAbortError) and "socket error" in str(exc)


def _connect_once(endpoint: Endpoint, password: str, timeout: float) -> Any:
    # imapclient (and imaplib) load on the first connection, not when the app or the CLI starts.
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
            ImapSession(client).quiet()
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
    except (imap_errors.IMAPClientError, OSError, EOFError) as exc:
        if _cut(exc):
            raise _CutDuringLogin from None
        if isinstance(exc, ssl.SSLError):
            raise MailConnectionError(
                f"{endpoint.account}: TLS with {where} failed ({exc.reason or exc}); check --imap-security",
                "tls",
            ) from None
        raise MailConnectionError(f"{endpoint.account}: {where}: {exc}", "protocol") from None
    try:
        client.login(endpoint.username, password)
    except (imap_errors.IMAPClientError, OSError, EOFError) as exc:
        _quietly_close(client)
        if _cut(exc):
            raise _CutDuringLogin from None
        if isinstance(exc, TimeoutError):
            raise MailConnectionError(
                f"{endpoint.account}: {where} did not answer the login within {timeout:.0f} s", "timeout"
            ) from None
        if isinstance(exc, imap_errors.LoginError):
            raise MailConnectionError(
                f"{endpoint.account}: the server refused the user name or password (user {endpoint.username!r})",
                "password",
            ) from None
        raise MailConnectionError(f"{endpoint.account}: login failed: {exc}", "protocol") from None
    return client


def command_failed(exc: BaseException, *, timeout: float = TIMEOUT) -> str:
    """Why an IMAP command failed once logged in, in words: the server's own (a NO, a BAD, a BYE with its
    reason: "the server said: ..."), without imaplib's "command: LIST => " or imapclient's "list failed: ";
    the link going down or a silence in plain words. Never a class name."""
    if isinstance(exc, TimeoutError):
        return f"the server did not answer within {timeout:.0f} s"
    text = " ".join(str(exc).split())
    text = re.sub(r"^command: [A-Za-z]+ => ", "", text)
    text = re.sub(r"^[A-Za-z ]+ failed: ", "", text)
    if isinstance(exc, (EOFError, OSError)) or text.startswith("socket error"):
        return "the connection was cut"
    return f"the server said: {text}"[:300] if text else "the server refused it without a reason"


def folder_names(login: Login) -> list[str]:
    """Log in and list the account's folders: what ``account test`` and ``t`` in Settings show. One
    MailConnectionError in words for whatever fails, the listing included (the server's own words for a
    command it fails: a Dovecot answering LIST with "Internal error occurred")."""
    from imapclient.exceptions import IMAPClientError  # loaded on the first connection, not at start

    endpoint = login.endpoint
    client = connect_login(login)
    try:
        return [n.decode() if isinstance(n, bytes) else str(n) for _f, _d, n in client.list_folders()]
    except (IMAPClientError, OSError, EOFError) as exc:  # the server's failure (or the link's), not ours
        raise MailConnectionError(
            f"{endpoint.account}: logged in to {endpoint.host}:{endpoint.port}, but listing the folders failed: "
            f"{command_failed(exc)}",
            "protocol",
        ) from None
    finally:
        logout(client)


def _quietly_close(client: Any) -> None:
    with contextlib.suppress(Exception):  # closing a broken connection
        client.shutdown()


def logout(client: Any) -> None:
    try:
        client.logout()
    except Exception:  # noqa: BLE001 - the connection may already be gone
        _quietly_close(client)
