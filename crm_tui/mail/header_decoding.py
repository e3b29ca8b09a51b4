"""The decoders of header fields both header parsers use: the header pass's fast one (``mail.headers``) and
the email package's guarded one (``mail.parse``). RFC 2047 encoded words, address lists, Date values,
Message-IDs, and the split of a header block into the fields the message list needs.

Only the standard library's light modules load here (``re``, ``datetime``, ``binascii``): the email package
loads only when a value is unusual enough to need it (see ``mail.headers``: the sync's helper processes
import this from their start).
"""

from __future__ import annotations

import re
from binascii import Error as BinasciiError
from binascii import a2b_base64
from contextlib import suppress
from datetime import UTC, datetime, timedelta, timezone
from email.quoprimime import header_decode
from typing import TYPE_CHECKING

from crm_tui.core import charsets
from crm_tui.core.mail_identity import no_nul

charsets.register()  # the charset names real mail uses that Python does not know (windows-874...)

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


MAX_HEADER_CHARS = 4000
MAX_ADDRESSES = 200


_ENCODED_WORD = r"=\?(?P<charset>[^?*]*)\?(?P<encoding>[bBqQ])\?(?P<text>[^?]*)\?="
_ANY_WORD = r"=\?[^?*]*\?[bBqQ]\?[^?]*\?="
_ENCODED_ONLY = re.compile(rf"[ \t\r\n]*{_ANY_WORD}(?:[ \t\r\n]+{_ANY_WORD})*\Z")
_ENCODED_WORDS = re.compile(_ENCODED_WORD)
_SIMPLE_CHARSETS = {"utf-8": "utf-8", "us-ascii": "us-ascii"}


def decoded_words(text: str) -> str:
    """RFC 2047 encoded words decoded; text without any (most headers) as it is, without the email package's
    round trip (a fifth of a header's parse time; the same result, tested on the corpus).

    A value made only of UTF-8 encoded words (how mail programs encode a non-ASCII subject or name: a
    quarter of a mailbox's subjects) is decoded here, as the email package would: the words' bytes joined,
    then decoded, so a character split across two words comes out whole. Anything else (words mixed with
    plain text, other charsets, a decoding error) goes to the email package. Tested against it."""
    if "=?" not in text:
        return text
    if text.isascii() and _ENCODED_ONLY.match(text):
        words = _ENCODED_WORDS.findall(text)
        charset = _SIMPLE_CHARSETS.get(words[0][0].lower())
        if charset is not None and all(_SIMPLE_CHARSETS.get(w[0].lower()) == charset for w in words):
            parts = []
            for _, encoding, encoded in words:
                if encoding in "bB":
                    missing = len(encoded) % 4
                    try:
                        parts.append(a2b_base64(encoded + "==="[: 4 - missing] if missing else encoded))
                    except BinasciiError:
                        break  # the email package's error, with its message
                else:
                    parts.append(header_decode(encoded).encode("raw-unicode-escape"))
            else:
                with suppress(UnicodeDecodeError):
                    return b"".join(parts).decode(charset)
    from email.header import decode_header, make_header  # the general case: the email package

    pieces = decode_header(text)
    try:
        return str(make_header(pieces))
    except LookupError:  # a charset nobody knows ("X-IAS-German", "NONE"): its bytes read as UTF-8
        return "".join(_known_or_utf8(piece, charset) for piece, charset in pieces)


def _known_or_utf8(piece: bytes | str, charset: str | None) -> str:
    if isinstance(piece, str):
        return piece
    try:
        return piece.decode(charset or "us-ascii", "replace")
    except LookupError:
        return piece.decode("utf-8", "replace")


_ATEXT = r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+"
_ADDRESS = rf"{_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*"
_PLAIN_ADDRESS = re.compile(
    rf"[ \t\r\n]*(?:(?P<bare>{_ADDRESS})|(?P<phrase>(?:{_ATEXT}[ \t\r\n]+)*)<(?P<angle>{_ADDRESS})>)[ \t\r\n]*\Z"
)


def _plain_addresses(values: list[str]) -> list[tuple[str, str]] | None:
    """``email.utils.getaddresses`` for the everyday forms (``a@b``, ``Name <a@b>``, ``<a@b>``, lists of them),
    or None for anything else (quotes, comments, groups, dots in names, 8-bit): then the email package parses.
    A third of a message's parse time went to the general parser; the result is the same (tested)."""
    pairs = []
    for value in values:
        for item in value.split(","):
            match = _PLAIN_ADDRESS.match(item)
            if match is None:
                return None
            if match.group("bare"):
                pairs.append(("", match.group("bare")))
            else:
                pairs.append((" ".join(match.group("phrase").split()), match.group("angle")))
    return pairs


def address_pairs(raw: list[str], decode_name: Callable[[str], str]) -> list[tuple[str, str]]:
    """(display name, address) pairs of an address header's values, names decoded by ``decode_name``."""
    pairs = _plain_addresses(raw)
    if pairs is None:
        import email.utils  # the general case: the email package

        pairs = email.utils.getaddresses(raw)
    return [
        (
            no_nul(" ".join((decode_name(display) if display else display).split())[:200]),
            no_nul(address.strip()[:320]),
        )
        for display, address in pairs[:MAX_ADDRESSES]
    ]


def undeliverable(pairs: Any) -> list[str]:
    """The addresses among (name, address) pairs that have no domain (``MAILER-DAEMON``, ``postmaster``, a
    bare word): kept as written, never used to link or to reply; the parser records each as a problem. An
    empty group (``undisclosed-recipients:;``) gives no address at all, which is no problem."""
    return [address for _, address in pairs if address and "@" not in address]


class ImplausibleYear(Exception):
    def __init__(self, year: int) -> None:
        super().__init__(year)
        self.year = year


def date_value(raw: str) -> datetime:
    """A Date header's moment in UTC (no zone: read as UTC); ImplausibleYear outside 1970-2200."""
    value = _plain_date(raw)
    if value is None:
        import email.utils  # the general case: the email package

        value = email.utils.parsedate_to_datetime(raw)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if not 1970 <= value.year <= 2200:
        raise ImplausibleYear(value.year)
    return value.astimezone(UTC)


_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTHS = {name: number for number, name in enumerate(_MONTH_NAMES, 1)}
_PLAIN_DATE = re.compile(
    r"[ \t]*(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun),[ \t]*)?(\d{1,2})[ \t]+(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
    r"[ \t]+([1-9]\d{3})[ \t]+(\d{2}):(\d{2}):(\d{2})[ \t]+([+-])(\d{2})(\d{2})[ \t]*\Z"
)


_ZONES: dict[str, timezone] = {}  # "+0100": its zone, made once (mail comes from a handful of zones)


def _plain_date(text: str) -> datetime | None:
    """``email.utils.parsedate_to_datetime`` for the form nearly every mail program writes
    (``Fri, 20 Nov 2026 09:30:00 +0100``), a quarter of the time; None for anything else (then the email
    package parses: two-digit years, zone names, comments...). ``-0000`` (no zone known) comes back naive, as
    there. Tested against it."""
    match = _PLAIN_DATE.match(text)
    if match is None:
        return None
    day, month, year, hour, minute, second, sign, zone_hours, zone_minutes = match.groups()
    zone = _ZONES.get(sign + zone_hours + zone_minutes)
    if zone is None:
        offset = int(zone_hours) * 3600 + int(zone_minutes) * 60
        if sign == "-":
            if offset == 0:
                return datetime(int(year), _MONTHS[month], int(day), int(hour), int(minute), int(second))
            offset = -offset
        zone = _ZONES.setdefault(sign + zone_hours + zone_minutes, timezone(timedelta(seconds=offset)))
    return datetime(int(year), _MONTHS[month], int(day), int(hour), int(minute), int(second), tzinfo=zone)


def message_ids_in(text: str | None) -> list[str]:
    if not text:
        return []
    ids = []
    for token in text.replace(",", " ").split():
        token = token.strip()
        if token.startswith("<") and token.endswith(">") and len(token) <= 1000:
            ids.append(no_nul(token))
    return ids[:100]


def formatted_address(pair: tuple[str, str]) -> str:
    name, address = pair
    return f"{name} <{address}>" if name else address


# Header lines (a name, a colon, the value, continuation lines), as many as there are, from the start.
_FIELD_LINES = re.compile(r"(?:[\x21-\x39\x3b-\x7e]+:[^\r\n]*(?:\r?\n[ \t][^\r\n]*)*(?:\r?\n|\Z))*")
# The header fields the message list needs (``parse_header_block`` reads nothing else): the sync asks the
# server for these alone (``BODY.PEEK[HEADER.FIELDS (...)]``).
HEADER_FIELDS = ("From", "To", "Cc", "Subject", "Date", "Message-ID", "In-Reply-To", "References")
_WANTED = frozenset(name.lower() for name in HEADER_FIELDS)
# One header field: name, then the value with its continuation lines (leading blanks dropped).
_FIELD = re.compile(r"([\x21-\x39\x3b-\x7e]+):[ \t]*([^\r\n]*(?:\r?\n[ \t][^\r\n]*)*)")


def split_headers(raw: bytes) -> dict[str, list[str]] | None:
    """The wanted fields of a header block, or None when anything is unusual (the full parser then decides,
    so the result is always the same as ``parse_message``'s). Two regular expressions do the reading: one
    checks that the block is header lines (with their continuations) and blank lines only, the other splits
    it into fields; no Python loop runs over a block's lines (real blocks have dozens: Received, DKIM...)."""
    if not raw.isascii():
        return None  # raw 8-bit headers: the email package's own handling decides
    text = raw.decode("ascii")
    if "\r" in text and text.count("\r") != text.count("\r\n"):
        return None  # a lone CR ends a line for the email package: unusual, so it decides
    block = _FIELD_LINES.match(text)
    assert block is not None  # it matches the empty string too
    end = block.end()
    if text[end:].strip("\r\n"):
        return None  # a line that is no header (or a blank line inside the block): the full parser judges
    fields: dict[str, list[str]] = {}
    for name, value in _FIELD.findall(text, 0, end):
        name = name.lower()
        if name in _WANTED:
            if "\n" in value:  # unfolded as compat32 does it: the lines joined by CRLF
                value = value.replace("\r\n", "\n").replace("\n", "\r\n")
            if name in fields:
                fields[name].append(value)
            else:
                fields[name] = [value]
    return fields
