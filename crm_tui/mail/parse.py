"""Turn raw message bytes into the decoded fields the store needs, without ever failing on hostile mail.

Python's email package raises when a broken message is *used* (see ../shared/FACTS.md), so every access is
wrapped; a field that cannot be decoded falls back to its raw form and the problem is recorded. The raw bytes
are never changed. Text comes back decoded but not sanitised: ``core.sanitize.terminal_safe`` runs at display.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import re
from binascii import Error as BinasciiError
from binascii import a2b_base64
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime, timedelta, timezone
from email.header import decode_header, make_header
from email.message import Message
from email.quoprimime import header_decode
from typing import Any, TypeVar

from crm_tui.core.mail_data import MessageData, header_values
from crm_tui.core.mail_identity import LONE_CR, subject_key

T = TypeVar("T")

MAX_HEADER_CHARS = 4000
MAX_ADDRESSES = 200
MAX_BODY_CHARS = 1_000_000
MAX_PARTS = 500
MAX_DEPTH = 20


def _attempt(problems: list[str], what: str, action: Callable[[], T], fallback: T) -> T:
    try:
        return action()
    except (Exception, RecursionError) as exc:  # noqa: BLE001 - real mail breaks the email package in many ways
        problems.append(f"{what}: {type(exc).__name__}")
        return fallback


def _raw_header(message: Message, name: str) -> str | None:
    value = message.get(name)
    if value is None:
        return None
    return str(value)[: MAX_HEADER_CHARS * 4]


_ENCODED_WORD = r"=\?(?P<charset>[^?*]*)\?(?P<encoding>[bBqQ])\?(?P<text>[^?]*)\?="
_ANY_WORD = r"=\?[^?*]*\?[bBqQ]\?[^?]*\?="
_ENCODED_ONLY = re.compile(rf"[ \t\r\n]*{_ANY_WORD}(?:[ \t\r\n]+{_ANY_WORD})*\Z")
_ENCODED_WORDS = re.compile(_ENCODED_WORD)
_SIMPLE_CHARSETS = {"utf-8": "utf-8", "us-ascii": "us-ascii"}


def _decoded_words(text: str) -> str:
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
    return str(make_header(decode_header(text)))


def decode_text_header(message: Message, name: str, problems: list[str]) -> str:
    """An unstructured header (Subject) decoded from RFC 2047, or its raw text if that fails."""
    raw = _raw_header(message, name)
    if raw is None:
        return ""
    decoded = _attempt(problems, f"{name} header", lambda: _decoded_words(raw), raw)
    return " ".join(decoded.split())[:MAX_HEADER_CHARS]


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


def _address_pairs(raw: list[str], decode_name: Callable[[str], str]) -> list[tuple[str, str]]:
    """(display name, address) pairs of an address header's values, names decoded by ``decode_name``."""
    pairs = _plain_addresses(raw)
    if pairs is None:
        pairs = email.utils.getaddresses(raw)
    return [
        (" ".join((decode_name(display) if display else display).split())[:200], address.strip()[:320])
        for display, address in pairs[:MAX_ADDRESSES]
    ]


def decode_addresses(message: Message, name: str, problems: list[str]) -> list[tuple[str, str]]:
    """(display name, address) pairs of an address header, decoded; at most MAX_ADDRESSES."""
    values = message.get_all(name) or []
    raw = [str(v)[: MAX_HEADER_CHARS * 16] for v in values]

    def decode_name(display: str) -> str:
        return _attempt(problems, f"{name} name", lambda: _decoded_words(display), display)

    def parse() -> list[tuple[str, str]]:
        return _address_pairs(raw, decode_name)

    return _attempt(problems, f"{name} header", parse, [])


def _charset_decode(payload: bytes, charset: str | None, problems: list[str]) -> str:
    for candidate in (charset, "utf-8"):
        if not candidate:
            continue
        try:
            return payload.decode(candidate)
        except (LookupError, UnicodeDecodeError):
            continue
    if charset:
        problems.append(f"body: undecodable text in charset {charset[:40]!r}")
    return payload.decode("utf-8", errors="replace")


def _html_to_text(html: str) -> str:
    from html.parser import HTMLParser

    class _Text(HTMLParser):
        def __init__(self) -> None:
            super().__init__(convert_charrefs=True)
            self.parts: list[str] = []
            self.skip = 0

        def handle_starttag(self, tag: str, attrs: object) -> None:
            if tag in ("script", "style", "head"):
                self.skip += 1
            elif tag in ("br", "p", "div", "tr", "li", "h1", "h2", "h3"):
                self.parts.append("\n")

        def handle_endtag(self, tag: str) -> None:
            if tag in ("script", "style", "head") and self.skip:
                self.skip -= 1

        def handle_data(self, data: str) -> None:
            if not self.skip:
                self.parts.append(data)

    parser = _Text()
    parser.feed(html)
    parser.close()
    lines = [" ".join(line.split()) for line in "".join(parser.parts).splitlines()]
    text, blank = [], 0
    for line in lines:
        blank = blank + 1 if not line else 0
        if blank <= 1:
            text.append(line)
    return "\n".join(text).strip()


def _walk(message: Message, problems: list[str]) -> list[Message]:
    parts: list[Message] = []

    def visit(part: Message, depth: int) -> None:
        if len(parts) >= MAX_PARTS:
            return
        if depth > MAX_DEPTH:
            problems.append("structure: nested too deep")
            return
        parts.append(part)
        if part.is_multipart():
            payload = part.get_payload()
            if isinstance(payload, list):
                for child in payload:
                    if isinstance(child, Message):
                        visit(child, depth + 1)

    _attempt(problems, "structure", lambda: visit(message, 0), None)
    return parts


def _decoded_size(part: Message) -> int:
    """An attachment's size once decoded, estimated from its encoded form (decoding every attachment only to
    measure it cost a fifth of the parse); exact enough for a list ("2.1 MB")."""
    payload = _undecoded(part)
    if payload is None:
        return 0
    encoding = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    if encoding == "base64":
        newlines = payload.count(b"\n" if isinstance(payload, bytes) else "\n")
        returns = payload.count(b"\r" if isinstance(payload, bytes) else "\r")
        return (len(payload) - newlines - returns) * 3 // 4
    return len(payload)


def _leaves(message: Message, problems: list[str]) -> list[tuple[Message, str, object, bool]]:
    """(part, content type, declared file name, is an attachment) of each non-multipart part: the one rule of
    what counts as an attachment (not text, or marked so, or named)."""
    found = []
    for part in _walk(message, problems):
        if part.is_multipart():
            continue
        content_type = _attempt(problems, "content type", part.get_content_type, "application/octet-stream")
        disposition = _attempt(
            problems, "content disposition", lambda p=part: p.get_content_disposition(), None
        )
        filename = _attempt(problems, "attachment name", lambda p=part: p.get_filename(), None)
        is_attachment = (
            content_type not in ("text/plain", "text/html") or disposition == "attachment" or bool(filename)
        )
        found.append((part, content_type, filename, is_attachment))
    return found


def extract_body(
    message: Message, problems: list[str], attachments: list[tuple[str, str, int]] | None = None
) -> tuple[str, bool]:
    """The best plain text of the message (text/plain, else text/html as text) and whether it has attachments.

    ``attachments``, if given, receives (file name as declared, declared type, decoded size) of each.
    """
    plain: list[str] = []
    html: list[str] = []
    has_attachments = False
    for part, content_type, filename, is_attachment in _leaves(message, problems):
        if is_attachment:
            has_attachments = True
            if attachments is not None:
                name = filename if isinstance(filename, str) else ""
                size = _attempt(problems, "attachment", lambda p=part: _decoded_size(p), 0)
                attachments.append((name[:255], str(content_type)[:100], size))
            continue
        payload = _attempt(problems, "body", lambda p=part: p.get_payload(decode=True), None)
        if not isinstance(payload, bytes):
            continue
        charset = _attempt(problems, "charset", lambda p=part: p.get_content_charset(), None)
        text = _charset_decode(payload[: MAX_BODY_CHARS * 4], charset, problems)
        (plain if content_type == "text/plain" else html).append(text)
    if plain:
        body = "\n\n".join(plain)
    elif html:
        body = _attempt(problems, "html body", lambda: _html_to_text("\n".join(html)), "\n".join(html))
    else:
        body = ""
    return body[:MAX_BODY_CHARS], has_attachments


def parse_date(message: Message, problems: list[str]) -> datetime | None:
    raw = _raw_header(message, "Date")
    if not raw:
        return None

    def convert() -> datetime | None:
        try:
            return _date_value(raw)
        except _ImplausibleYear as exc:
            problems.append(f"Date header: implausible year {exc.year}")
            return None

    return _attempt(problems, "Date header", convert, None)


class _ImplausibleYear(Exception):
    def __init__(self, year: int) -> None:
        super().__init__(year)
        self.year = year


def _date_value(raw: str) -> datetime:
    """A Date header's moment in UTC (no zone: read as UTC); _ImplausibleYear outside 1970-2200."""
    value = _plain_date(raw) or email.utils.parsedate_to_datetime(raw)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if not 1970 <= value.year <= 2200:
        raise _ImplausibleYear(value.year)
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


def _message_ids(text: str | None) -> list[str]:
    if not text:
        return []
    ids = []
    for token in text.replace(",", " ").split():
        token = token.strip()
        if token.startswith("<") and token.endswith(">") and len(token) <= 1000:
            ids.append(token)
    return ids[:100]


def _display(pair: tuple[str, str]) -> str:
    name, address = pair
    return f"{name} <{address}>" if name else address


_PART_FIELD = re.compile(rb"([\x21-\x39\x3b-\x7e]+):[ \t]*([^\r\n]*(?:\r?\n[ \t][^\r\n]*)*)(\r?\n|\Z)")
_AS_IS = ("", "7bit", "8bit", "binary")  # transfer encodings whose decoded payload is the bytes themselves


class _Leaf(Message):
    """A non-multipart part as ``_part`` cuts it: the feedparser's part, except that its payload stays the raw
    bytes until someone asks for it as text (``get_payload()``).

    The feedparser decodes a whole message to a string (8-bit bytes as surrogates), and reading a body back
    (``get_payload(decode=True)``) encodes it to bytes again: with one umlaut in a message, both run over a
    two-byte-per-character string, attachments included. Here a body in 7bit/8bit is its bytes straight away,
    and an attachment's size is counted on its bytes (``_undecoded``); other encodings decode as the email
    package does. The same results (a test compares with the feedparser on the corpus)."""

    def __init__(self, body: bytes) -> None:
        super().__init__()
        self._body: bytes | None = body

    @property  # type: ignore[override]
    def _payload(self) -> Any:
        if self._body is not None:
            self._text = self._body.decode("ascii", "surrogateescape")
            self._body = None
        return self._text

    @_payload.setter
    def _payload(self, value: Any) -> None:
        self._body = None
        self._text = value

    def is_multipart(self) -> bool:
        return False

    def get_payload(self, i: Any = None, decode: bool = False) -> Any:
        as_is = decode and i is None and self._body is not None
        if as_is and str(self.get("content-transfer-encoding", "")).lower() in _AS_IS:
            return self._body
        return super().get_payload(i, decode)


def _undecoded(part: Message) -> bytes | str | None:
    """A leaf's payload before transfer decoding: bytes (a ``_Leaf`` not yet read as text) or the string the
    feedparser keeps (one character per byte); None for a multipart."""
    if isinstance(part, _Leaf) and part._body is not None:
        return part._body
    payload = part.get_payload()
    return payload if isinstance(payload, str) else None


def _message_tree(raw: bytes) -> Message:
    """The ``Message`` the email package builds (compat32), built faster where the message is ordinary.

    The feedparser reads a message line by line, attachments included: two thirds of a sync's parse time.
    Here each part's header block still goes through the email package's own header rules, but the parts are
    cut from the bytes at their boundary lines with ``bytes.find``, and leaves keep their bytes (``_Leaf``).
    Anything unusual (no closing boundary, message/* parts, lone CRs, envelope lines, a header block without
    its blank line...) goes to the feedparser, so the tree is always the one the email package would build (a
    test compares them on the whole corpus)."""
    if LONE_CR.search(raw):
        return email.message_from_bytes(raw, policy=email.policy.compat32)
    try:
        tree = _part(raw, 0, len(raw), nested=False, depth=0)
    except RecursionError:
        tree = None
    return tree if tree is not None else email.message_from_bytes(raw, policy=email.policy.compat32)


def _part(raw: bytes, start: int, end: int, *, nested: bool, depth: int) -> Message | None:
    """The part in raw[start:end] (a subpart's bytes end before its next boundary line), or None: unusual."""
    if depth > MAX_DEPTH:
        return None
    # The header block, a field (with its continuation lines) per match: what the feedparser's line loop and
    # compat32's header_source_parse make of it (the name as written; the value without the blanks after the
    # colon and without its last line break; 8-bit bytes as surrogates).
    fields: list[tuple[str, str]] = []
    position = start
    while True:
        field = _PART_FIELD.match(raw, position, end)
        if field is None:
            break
        fields.append((field.group(1).decode("ascii"), field.group(2).decode("ascii", "surrogateescape")))
        position = field.end()
        if not field.group(3):
            break  # the part ends with this line
    if position < end:
        if raw.startswith(b"\r\n", position):
            position += 2
        elif raw.startswith(b"\n", position):
            position += 1
        else:
            return None  # a line that is no header, or no blank line after them: the feedparser decides
    headers = Message()
    headers._headers = fields  # type: ignore[attr-defined]
    maintype = headers.get_content_maintype()
    if maintype == "message":
        return None
    if maintype != "multipart":
        payload = raw[position:end]
        if nested:  # the line break before a boundary belongs to the boundary (RFC 2046)
            if payload.endswith(b"\r\n"):
                payload = payload[:-2]
            elif payload.endswith((b"\n", b"\r")):
                payload = payload[:-1]
        leaf = _Leaf(payload)
        leaf._headers = headers._headers  # type: ignore[attr-defined]
        return leaf
    boundary = headers.get_boundary()
    if boundary is None or headers.get_content_subtype() == "digest":
        return None
    try:
        separator = ("--" + boundary).encode("ascii", "surrogateescape")
    except UnicodeEncodeError:
        return None  # a boundary no byte string can hold: the feedparser finds no closing boundary either
    boundary_line = re.compile(
        b"(?P<sep>" + re.escape(separator) + rb")(?P<end>--)?(?P<ws>[ \t]*)(?P<linesep>\r\n|\r|\n)?$"
    )
    lines: list[tuple[int, int, bool]] = []  # (start, end, closing) of each boundary line
    search = position
    while True:
        found = raw.find(separator, search, end)
        if found < 0:
            return None  # no closing boundary
        search = found + 1
        if found != position and raw[found - 1] != 0x0A:  # not at a line start
            continue
        newline = raw.find(b"\n", found, end)
        line_end = newline + 1 if newline >= 0 else end
        matched = boundary_line.match(raw, found, line_end)
        if matched is None:
            continue
        if lines and lines[-1][1] == found:
            return None  # two boundary lines in a row: the feedparser's own reading decides
        closing = bool(matched.group("end"))
        lines.append((found, line_end, closing))
        if closing:
            break
        search = line_end
    if len(lines) < 2:
        return None
    children = []
    for (_, part_start, _), (part_end, _, _) in zip(lines, lines[1:], strict=False):
        child = _part(raw, part_start, part_end, nested=True, depth=depth + 1)
        if child is None:
            return None
        children.append(child)
    headers._payload = children  # type: ignore[attr-defined]
    return headers


def parse_message(raw: bytes) -> MessageData:
    """Everything the store needs from one message's raw bytes. Never raises for the message's content."""
    problems: list[str] = []
    message = _attempt(problems, "message", lambda: _message_tree(raw), Message())
    senders = decode_addresses(message, "From", problems)
    from_name, from_address = senders[0] if senders else ("", "")
    attachments: list[tuple[str, str, int]] = []
    body, has_attachments = extract_body(message, problems, attachments)
    message_id = _message_ids(_raw_header(message, "Message-ID"))
    in_reply_to = _message_ids(_raw_header(message, "In-Reply-To"))
    return MessageData(
        raw=raw,
        message_id=message_id[0] if message_id else None,
        subject=decode_text_header(message, "Subject", problems),
        from_name=from_name,
        from_address=from_address.lower(),
        to=[_display(pair) for pair in decode_addresses(message, "To", problems)],
        cc=[_display(pair) for pair in decode_addresses(message, "Cc", problems)],
        sent_at=parse_date(message, problems),
        in_reply_to=in_reply_to[0] if in_reply_to else None,
        references=_message_ids(_raw_header(message, "References")),
        body_text=body,
        has_attachments=has_attachments,
        attachments=attachments,
        problems=problems,
    )


def parse_safely(raw: bytes) -> MessageData:
    """``parse_message``, and should it ever raise, the raw message with the failure as its problem."""
    try:
        return parse_message(raw)
    except Exception as exc:  # noqa: BLE001 - never stop a sync on one message
        return MessageData(raw=raw, problems=[f"message: {type(exc).__name__}"])


# Header lines (a name, a colon, the value, continuation lines), as many as there are, from the start.
_FIELD_LINES = re.compile(r"(?:[\x21-\x39\x3b-\x7e]+:[^\r\n]*(?:\r?\n[ \t][^\r\n]*)*(?:\r?\n|\Z))*")
# The header fields the message list needs (``parse_header_block`` reads nothing else): the sync asks the
# server for these alone (``BODY.PEEK[HEADER.FIELDS (...)]``).
HEADER_FIELDS = ("From", "To", "Cc", "Subject", "Date", "Message-ID", "In-Reply-To", "References")
# Those fields: name, then the value with its continuation lines (leading blanks dropped).
_WANTED_FIELD = re.compile(
    rf"^({'|'.join(name.lower() for name in HEADER_FIELDS)}):[ \t]*([^\r\n]*(?:\r?\n[ \t][^\r\n]*)*)",
    re.IGNORECASE | re.MULTILINE,
)


class _Headers:
    """The part of ``email.message.Message`` the decoders above use (``get``, ``get_all``), over a header block
    split without the feedparser: values as compat32 gives them (unfolded lines joined, CRLFs kept)."""

    def __init__(self, fields: dict[str, list[str]]) -> None:
        self._fields = fields

    def get(self, name: str, failobj: object = None) -> object:
        values = self._fields.get(name.lower())
        return values[0] if values else failobj

    def get_all(self, name: str, failobj: object = None) -> object:
        return self._fields.get(name.lower()) or failobj


def _split_headers(raw: bytes) -> dict[str, list[str]] | None:
    """The wanted fields of a header block, or None when anything is unusual (the full parser then decides,
    so the result is always the same as ``parse_message``'s). Two regular expressions do the reading: one
    checks that the block is header lines (with their continuations) and blank lines only, the other picks
    the wanted fields; no Python loop runs over a block's lines (real blocks have dozens: Received, DKIM...)."""
    if not raw.isascii():
        return None  # raw 8-bit headers: the email package's own handling decides
    text = raw.decode("ascii")
    if "\r" in text and text.count("\r") != text.count("\r\n"):
        return None  # a lone CR ends a line for the email package: unusual, so it decides
    end = _FIELD_LINES.match(text).end()  # type: ignore[union-attr] - it matches the empty string too
    if text[end:].strip("\r\n"):
        return None  # a line that is no header (or a blank line inside the block): the full parser judges
    fields: dict[str, list[str]] = {}
    for match in _WANTED_FIELD.finditer(text, 0, end):
        value = match.group(2)
        if "\n" in value:  # unfolded as compat32 does it: the lines joined by CRLF
            value = value.replace("\r\n", "\n").replace("\n", "\r\n")
        fields.setdefault(match.group(1).lower(), []).append(value)
    return fields


def parse_header_block(raw: bytes) -> MessageData:
    """What the message list needs from a header block (``BODY[HEADER]``), fast: the same result as
    ``parse_message`` on it, without building a ``Message`` (the feedparser was half the time to headers)."""
    fields = _split_headers(raw)
    if fields is None:
        return parse_safely(raw)
    problems: list[str] = []
    message = _Headers(fields)
    senders = decode_addresses(message, "From", problems)  # type: ignore[arg-type]
    from_name, from_address = senders[0] if senders else ("", "")
    message_id = _message_ids(_raw_header(message, "Message-ID"))  # type: ignore[arg-type]
    in_reply_to = _message_ids(_raw_header(message, "In-Reply-To"))  # type: ignore[arg-type]
    return MessageData(
        raw=raw,
        message_id=message_id[0] if message_id else None,
        subject=decode_text_header(message, "Subject", problems),  # type: ignore[arg-type]
        from_name=from_name,
        from_address=from_address.lower(),
        to=[_display(pair) for pair in decode_addresses(message, "To", problems)],  # type: ignore[arg-type]
        cc=[_display(pair) for pair in decode_addresses(message, "Cc", problems)],  # type: ignore[arg-type]
        sent_at=parse_date(message, problems),  # type: ignore[arg-type]
        in_reply_to=in_reply_to[0] if in_reply_to else None,
        references=_message_ids(_raw_header(message, "References")),  # type: ignore[arg-type]
        problems=problems,
    )


def parse_header_blocks(raws: list[bytes]) -> list[tuple[Any, ...]]:
    """Run in the sync's helper process: ``parse_header_block`` for a batch, each as the stored values of its
    header columns (``core.mail_data.header_values``). Lives here, beside the parser, so the helper imports
    only the email package, not the database layer."""
    return [header_block_values(raw) for raw in raws]


def header_block_values(raw: bytes) -> tuple[Any, ...]:
    """``header_values(parse_header_block(raw))``, a quarter quicker for an everyday block: its fields are
    decoded straight into the stored values, by the same decoders without their per-field guards (the
    closures and the ``MessageData`` cost 5 of a header's 22 µs; one helper parses a whole header pass).
    Whatever raises, or would be recorded as a problem, sends the block to the guarded path: so the result
    is the same (a test compares the two on the corpus)."""
    fields = _split_headers(raw)
    if fields is not None:
        try:
            return _quick_values(fields)
        except Exception:  # noqa: BLE001, S110 - the guarded path below decides, and records the problem
            pass
    return header_values(parse_header_block(raw))


def _quick_values(fields: dict[str, list[str]]) -> tuple[Any, ...]:
    def first(name: str) -> str | None:
        values = fields.get(name)
        return values[0][: MAX_HEADER_CHARS * 4] if values else None

    def addresses(name: str) -> list[tuple[str, str]]:
        raw = [value[: MAX_HEADER_CHARS * 16] for value in fields.get(name) or ()]
        return _address_pairs(raw, _decoded_words) if raw else []

    senders = addresses("from")
    from_name, from_address = senders[0] if senders else ("", "")
    subject = first("subject")
    subject = " ".join(_decoded_words(subject).split())[:MAX_HEADER_CHARS] if subject is not None else ""
    date = first("date")
    sent_at = _date_value(date) if date else None  # an implausible year raises: recorded there
    message_id = _message_ids(first("message-id"))
    in_reply_to = _message_ids(first("in-reply-to"))
    from_address = from_address.lower()
    return (
        message_id[0] if message_id else None,
        subject,
        subject_key(subject),
        from_name,
        from_address,
        "\n".join(_display(pair) for pair in addresses("to")),
        "\n".join(_display(pair) for pair in addresses("cc")),
        sent_at,
        in_reply_to[0] if in_reply_to else None,
        "\n".join(_message_ids(first("references"))) or None,
        None,
    )


def attachment_payloads(raw: bytes) -> list[tuple[str, str, bytes]]:
    """(file name as declared, declared type, decoded bytes) of each attachment, in the order and by the rule
    of ``extract_body`` (so they match the stored list). A part that cannot be decoded comes as raw bytes."""
    problems: list[str] = []
    message = _attempt(problems, "message", lambda: _message_tree(raw), Message())
    found: list[tuple[str, str, bytes]] = []
    for part, content_type, filename, is_attachment in _leaves(message, problems):
        if is_attachment:
            payload = _attempt(problems, "attachment", lambda p=part: p.get_payload(decode=True), None)
            if not isinstance(payload, bytes):
                text = part.get_payload()
                payload = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else b""
            name = filename if isinstance(filename, str) else ""
            found.append((name[:255], str(content_type)[:100], payload))
    return found
