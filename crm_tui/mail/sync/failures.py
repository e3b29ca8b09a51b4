"""How a sync tells its failures apart and puts them in words: the environment's (the database, the
connection: the pass stops), a full disk (what was kept is said), one message's or one change's (recorded as
its problem, the pass goes on)."""

from __future__ import annotations

import errno
import os
import re
import sqlite3

from sqlalchemy.exc import InterfaceError, OperationalError

from crm_tui.mail.imap import MailConnectionError


def environmental(exc: BaseException) -> bool:
    """Whether an error is the database's or the connection's (locked, full, gone), not one message's: then
    the sync stops, as it always did, rather than marking every message of the batch as a problem."""
    environmental = (
        MailConnectionError,
        OperationalError,
        InterfaceError,
        sqlite3.OperationalError,
        sqlite3.InterfaceError,
        MemoryError,
    )
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            break
        if isinstance(seen, environmental):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def disk_full(exc: BaseException) -> bool:
    """Whether an error (or what caused it) is a full disk: SQLite's "database or disk is full", ENOSPC."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None or isinstance(seen, MailConnectionError):  # the server's words are not our disk
            return False
        if isinstance(seen, OSError) and seen.errno == errno.ENOSPC:
            return True
        text = str(getattr(seen, "orig", None) or seen).lower()
        if "disk is full" in text or "no space left on device" in text:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def in_words(exc: BaseException) -> str:
    """Why an offline change failed, in words for the user: the server's own words for what it refused
    (without imaplib's "select failed: " and the like), else the error's text; never a class name."""
    text = " ".join(str(exc).split())
    if type(exc).__name__ in ("error", "IMAPClientError", "CapabilityError"):
        text = re.sub(r"^[a-z ]+ failed: ", "", text)
        return f"the server said: {text}"[:300] if text else "the server refused it without a reason"
    if isinstance(exc, OSError) and not text:
        text = os.strerror(exc.errno) if exc.errno else ""
    return text[:300] if text else "it failed without a reason given"


def describe(exc: BaseException) -> str:
    """A failure as one line for a message's problems (no traceback; the database's own words, not its SQL)."""
    cause = getattr(exc, "orig", None) or exc
    text = " ".join(str(cause).split()) or type(cause).__name__
    return f"{type(cause).__name__}: {text}"[:300]
