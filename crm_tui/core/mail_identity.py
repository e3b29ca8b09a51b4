"""What makes two copies of a message the same message, and what makes two messages one thread.

Identity (issue: mail engine): the Message-ID header plus a hash of the body bytes. The header block is left out
of the hash because servers add Received and similar headers to each copy; line endings are normalised because
a server may store LF and serve CRLF. A message without a Message-ID also hashes its From, Date and Subject
lines, so two different messages with the same short body ("Thanks!") do not merge.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

_SEPARATOR = re.compile(rb"\r?\n\r?\n")
LONE_CR = re.compile(rb"\r(?!\n)")  # a CR that ends no CRLF (the email package reads it as a line end)
LONE_CR_TEXT = re.compile("\r(?!\n)")  # the same in decoded text
_PREFIX = re.compile(
    r"^\s*(?:(?:re|fw|fwd|aw|wg|sv|vs|antw|tr|rif|ref|r|enc|res)\s*(?:\[\d+\]|\(\d+\))?\s*[:：]\s*)+",
    re.IGNORECASE,
)
_LIST_TAG = re.compile(r"^\s*\[[^\]]{1,40}\]\s*")


def split_raw(raw: bytes) -> tuple[bytes, bytes]:
    """(header block, body) of a raw message; a message with no blank line is all header."""
    match = _SEPARATOR.search(raw)
    if match is None:
        return raw, b""
    return raw[: match.start()], raw[match.end() :]


def _header_lines(header: bytes, names: tuple[bytes, ...]) -> bytes:
    lines = header.replace(b"\r\n", b"\n").split(b"\n")
    wanted = [line.strip() for line in lines if line.split(b":", 1)[0].strip().lower() in names]
    return b"\n".join(sorted(wanted))


def body_hash(raw: bytes, *, has_message_id: bool = True) -> str:
    header, body = split_raw(raw)
    # CRLF to LF; where every CR starts a CRLF, dropping the CRs does that at a third of the cost.
    lines = body.replace(b"\r\n", b"\n") if LONE_CR.search(body) else body.translate(None, b"\r")
    digest = hashlib.sha256(lines.rstrip(b"\n"))
    if not has_message_id:
        digest.update(b"\0" + _header_lines(header, (b"from", b"date", b"subject")))
    return digest.hexdigest()[:32]


def subject_key(subject: str) -> str:
    """The subject of a thread: without reply/forward prefixes (in several languages) and list tags."""
    text = subject or ""
    if ":" not in text and "：" not in text and "[" not in text:
        return " ".join(text.lower().split())[:200]  # no prefix, no list tag: most subjects
    for _ in range(10):
        stripped = _LIST_TAG.sub("", _PREFIX.sub("", text))
        if stripped == text:
            break
        text = stripped
    return " ".join(text.lower().split())[:200]


def no_nul(text: str) -> str:
    """``text`` with each NUL as U+FFFD: a NUL (raw, or decoded from an encoded word or a body) is no
    character any text column takes on PostgreSQL, and no one wrote it to be read."""
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


_SPECIALS = re.compile(r'[()<>@,;:\\".\[\]]')


def format_address(name: str | None, address: str) -> str:
    """ "Name <address>" as a person reads and types it: the name in its own letters (never RFC 2047's
    ``=?utf-8?q?...?=``), in quotes where it holds a special character (``Müller, Anna``, ``Dr. Böhm``);
    the message builder encodes it for the wire. Any address is taken as it is (one beyond ASCII too)."""
    name = " ".join((name or "").split())
    if not name:
        return address
    if _SPECIALS.search(name):
        name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{name} <{address}>"


_BOUNCE_SENDERS = ("mailer-daemon", "postmaster")
_AUTO_PRECEDENCE = ("auto_reply", "bulk", "junk")


def is_automatic(get: Callable[[str], object], from_address: str = "") -> bool:
    """Whether a message was sent by a machine, not written to be answered: an automatic reply or bounce
    (``Auto-Submitted`` other than "no", RFC 3834), a delivery or read report (``multipart/report``, RFC 6522),
    an out-of-office marker (``X-Autoreply``, ``X-Autorespond``, ``Precedence: auto_reply``), bulk mail, or a
    bounce sender (MAILER-DAEMON, postmaster). ``get`` reads one header's raw value (None when absent)."""

    def value(name: str) -> str:
        found = get(name)
        return str(found).strip().lower() if found is not None else ""

    submitted = value("Auto-Submitted")
    if submitted and not submitted.startswith("no"):
        return True
    if value("Content-Type").startswith("multipart/report"):
        return True
    if any(value(name) not in ("", "no", "false", "0") for name in ("X-Autoreply", "X-Autorespond")):
        return True
    if value("Precedence") in _AUTO_PRECEDENCE:
        return True
    local = from_address.strip().lower().partition("@")[0]
    return local in _BOUNCE_SENDERS


_ANGLE = re.compile(r"<([^<>@\s]+@[^<>\s]+)>")


def stored_addresses(text: str | None) -> list[str]:
    """The addresses of a stored To or Cc (one per line, "Name <a@b>" or "a@b"), lower case, in order; a line
    that is no address (a group's name, "undisclosed-recipients", ``MAILER-DAEMON``) gives none."""
    found: list[str] = []
    for line in (text or "").splitlines():
        match = _ANGLE.search(line)
        address = match.group(1) if match else line.strip()
        local, at, domain = address.rpartition("@")
        if at and local and domain.strip():
            found.append(address.lower())
    return found
