"""Turn raw message bytes into the decoded fields the store needs, without ever failing on hostile mail.

Python's email package raises when a broken message is *used* (see ../shared/FACTS.md), so every access is
wrapped; a field that cannot be decoded falls back to its raw form and the problem is recorded. The raw bytes
are never changed. Text comes back decoded but not sanitised: ``core.sanitize.terminal_safe`` runs at display.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import functools
import re
from collections.abc import Callable
from datetime import datetime
from email.message import Message
from html.parser import HTMLParser as TagReader
from typing import Any, TypeVar

from crm_tui.core.mail_data import MessageData
from crm_tui.core.mail_identity import LONE_CR, LONE_CR_TEXT, is_automatic, no_nul
from crm_tui.mail.delivery_reports import returned
from crm_tui.mail.header_decoding import (
    MAX_HEADER_CHARS,
    ImplausibleYear,
    address_pairs,
    date_value,
    decoded_words,
    formatted_address,
    message_ids_in,
    split_headers,
    undeliverable,
)

T = TypeVar("T")

MAX_BODY_CHARS = 1_000_000
MAX_PARTS = 500
MAX_DEPTH = 20


def _attempt(problems: list[str], what: str, action: Callable[[], T], fallback: T) -> T:
    try:
        return action()
    except (Exception, RecursionError) as exc:  # noqa: BLE001 - real mail breaks the email package in many ways
        problems.append(f"{what}: {type(exc).__name__}")
        return fallback


def _raw_values(message: Message | _Headers, name: str) -> list[str]:
    """Every value of a header field as the mail wrote it. Raw 8-bit bytes (RFC 6532 allows UTF-8 in headers;
    older programs wrote their own charset there) are read as UTF-8, else as Windows-1252: the email
    package's own reading turned each such byte into U+FFFD ("Steinkr��ger")."""
    if not isinstance(message, Message):  # a _Headers block (ASCII only, split without the feedparser)
        return [str(value) for value in message.get_all(name) or []]
    wanted = name.lower()
    return [_from_8bit(value) for key, value in message.raw_items() if key.lower() == wanted]


def _from_8bit(value: Any) -> str:
    text = str(value)
    if text.isascii():
        return text
    data = text.encode("utf-8", "surrogateescape")  # the bytes as they came (the parser escaped them)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace")


def _raw_header(message: Message | _Headers, name: str) -> str | None:
    values = _raw_values(message, name)
    return values[0][: MAX_HEADER_CHARS * 4] if values else None


def decode_text_header(message: Message | _Headers, name: str, problems: list[str]) -> str:
    """An unstructured header (Subject) decoded from RFC 2047, or its raw text if that fails."""
    raw = _raw_header(message, name)
    if raw is None:
        return ""
    decoded = _attempt(problems, f"{name} header", lambda: decoded_words(raw), raw)
    return no_nul(" ".join(decoded.split())[:MAX_HEADER_CHARS])


def decode_addresses(message: Message | _Headers, name: str, problems: list[str]) -> list[tuple[str, str]]:
    """(display name, address) pairs of an address header, decoded; at most MAX_ADDRESSES."""
    raw = [value[: MAX_HEADER_CHARS * 16] for value in _raw_values(message, name)]

    def decode_name(display: str) -> str:
        return _attempt(problems, f"{name} name", lambda: decoded_words(display), display)

    def parse() -> list[tuple[str, str]]:
        return address_pairs(raw, decode_name)

    pairs: list[tuple[str, str]] = _attempt(problems, f"{name} header", parse, [])
    for address in undeliverable(pairs)[:3]:
        problems.append(f"{name} header: {address[:80]!r} is no address (it has no domain)")
    return pairs


def _filename(part: Message) -> str | None:
    """An attachment's name: RFC 2231 as the email package reads it, and the RFC 2047 encoded words many
    programs put there instead ("=?UTF-8?B?44Gm44GZ44GoLnR4dA==?=" is てすと.txt), and raw 8-bit bytes."""
    name = part.get_filename()
    if name is None:
        return None
    name = _from_8bit(name)
    return decoded_words(name) if "=?" in name else name


def _charset_decode(payload: bytes, charset: str | None, problems: list[str]) -> str:
    if not charset and not payload.isascii():
        # No charset said (RFC 2045: US-ASCII), yet 8-bit text: UTF-8 if it is, else Windows-1252 (the charset
        # mail programs assume, as mutt's and aerc's defaults do), never a U+FFFD for every letter.
        try:
            return payload.decode("utf-8")
        except UnicodeDecodeError:
            return payload.decode("cp1252", "replace")
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


# HTML whose layout would take inscriptis too long (about 25 µs a table cell, 6 µs an element): such a mail is
# hostile or a machine's dump, and reads well enough with its tags removed.
MAX_HTML_TAGS = 50_000
MAX_HTML_CELLS = 5_000
_TABLE_CELL = re.compile(r"<t[dh][\s/>]", re.IGNORECASE)
# C0 and C1 controls other than tab and newline (CR is left for plain_text): never text in HTML, and an escape
# written as &#27; would otherwise reach the stored body.
_HTML_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_BLANK_LINES = re.compile(r"\n{3,}")
_MAX_INDENT = 16


def _html_to_text(html: str) -> str:
    """The text of an HTML body as a reader sees it, laid out by inscriptis (on lxml, libxml2's HTML parser):
    an unclosed ``<head>``, lists and tables read as a browser would (cells apart, rows on lines); scripts,
    styles and the head are dropped, link targets are not shown. Lines end without blanks, at most one empty
    line in a row, indentation kept but capped, no control characters.

    Input libxml2 would cut (nested deeper than 256 elements) or that would take inscriptis long (see
    MAX_HTML_TAGS) has its tags removed instead (``_stripped_html``)."""
    text = None
    if html.count("<") <= MAX_HTML_TAGS and len(_TABLE_CELL.findall(html)) <= MAX_HTML_CELLS:
        text = _inscriptis_text(html)
    if text is None:
        text = _stripped_html(html)
    if _HTML_CONTROLS.search(text):
        text = _HTML_CONTROLS.sub("", text)
    text = text.replace("\xa0", " ")
    lines = []
    for line in text.splitlines():
        line = line.rstrip()
        stripped = line.lstrip()
        if len(line) - len(stripped) > _MAX_INDENT:
            line = " " * _MAX_INDENT + stripped
        lines.append(line)
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip("\n")


@functools.cache
def _inscriptis() -> tuple[Any, Any, Any, Any, type[Exception]]:
    """inscriptis and lxml, imported on the first HTML mail (not at start), and the one configuration: the
    strict profile (a <div> is a block without the relaxed profile's indent, a <span> adds no blanks: mail
    nests both deeply, and "fi<span>r</span>st" is one word), no link targets, no image names."""
    # inscriptis and lxml: imported on the first HTML mail, not at start.
    from inscriptis.css_profiles import CSS_PROFILES
    from inscriptis.html_engine import Inscriptis
    from inscriptis.model.config import ParserConfig
    from lxml.etree import ParserError
    from lxml.html import HTMLParser, document_fromstring

    config = ParserConfig(css=CSS_PROFILES["strict"], display_links=False, display_images=False)
    return Inscriptis, config, HTMLParser, document_fromstring, ParserError


def _inscriptis_text(html: str) -> str | None:
    """inscriptis's text of ``html``, or None where libxml2 gave up part of it (nesting beyond its limit)."""
    inscriptis, config, html_parser, document_fromstring, parser_error = _inscriptis()
    html = html.strip()
    if not html:
        return ""
    if html.startswith("<?xml"):
        # lxml refuses a str that declares its encoding (the text is decoded already).
        html = html[html.find(">") + 1 :] if ">" in html else ""
    parser = html_parser(remove_comments=True)
    try:
        tree = document_fromstring(html, parser=parser)
    except (parser_error, ValueError):
        return None
    if any(error.type_name == "ERR_RESOURCE_LIMIT" for error in parser.error_log):
        return None
    text: str = inscriptis(tree, config).get_text()
    return text


def _stripped_html(html: str) -> str:
    """The text of HTML with its tags removed (scripts and styles dropped, blocks and table cells apart): for
    input too deep or too large to lay out."""
    blocks = {"br", "p", "div", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "blockquote", "pre"}

    class _Text(TagReader):
        def __init__(self) -> None:
            super().__init__(convert_charrefs=True)
            self.parts: list[str] = []
            self.skip = 0

        def handle_starttag(self, tag: str, attrs: object) -> None:
            if tag in ("script", "style"):
                self.skip += 1
            elif tag in blocks:
                self.parts.append("\n")
            elif tag in ("td", "th"):
                self.parts.append("  ")

        def handle_endtag(self, tag: str) -> None:
            if tag in ("script", "style") and self.skip:
                self.skip -= 1

        def handle_data(self, data: str) -> None:
            if not self.skip:
                self.parts.append(data)

    parser = _Text()
    parser.feed(html)
    parser.close()
    return "\n".join(" ".join(line.split()) for line in "".join(parser.parts).splitlines())


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
        if isinstance(payload, bytes):
            newlines, returns = payload.count(b"\n"), payload.count(b"\r")
        else:
            newlines, returns = payload.count("\n"), payload.count("\r")
        return (len(payload) - newlines - returns) * 3 // 4
    return len(payload)


def _leaves(message: Message, problems: list[str]) -> list[tuple[Message, str, object, bool]]:
    """(part, content type, declared file name, is an attachment) of each non-multipart part: the one rule of
    what counts as an attachment (not text, or marked so, or named)."""
    found: list[tuple[Message, str, object, bool]] = []
    for part in _walk(message, problems):
        if part.is_multipart():
            continue
        content_type = _attempt(problems, "content type", part.get_content_type, "application/octet-stream")
        disposition = _attempt(problems, "content disposition", part.get_content_disposition, None)
        filename = _attempt(problems, "attachment name", functools.partial(_filename, part), None)
        if content_type.startswith("multipart/"):
            # A multipart the parser could not split (no boundary, or none found): its text is all there is.
            payload = _undecoded(part)
            if not payload or not payload.strip():
                continue
            problems.append("structure: a multipart without usable boundaries, shown as plain text")
            content_type = "text/plain"
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
                size = _attempt(problems, "attachment", functools.partial(_decoded_size, part), 0)
                attachments.append((name[:255], str(content_type)[:100], size))
            continue
        payload = _attempt(problems, "body", functools.partial(_decoded_payload, part), None)
        if not isinstance(payload, bytes):
            continue
        charset = _attempt(problems, "charset", part.get_content_charset, None)
        text = _charset_decode(payload[: MAX_BODY_CHARS * 4], charset, problems)
        (plain if content_type == "text/plain" else html).append(text)
    if plain:
        body = "\n\n".join(plain)
    elif html:
        body = _attempt(problems, "html body", lambda: _html_to_text("\n".join(html)), "\n".join(html))
    else:
        body = ""
    return plain_text(body[:MAX_BODY_CHARS]), has_attachments


def plain_text(text: str) -> str:
    """Text from mail as it is stored and used (previews, replies, forms made from the mail): lines end in
    ``\n`` (a body comes with CRLF from every IMAP server, and a lone CR ends a line too), and no NUL."""
    if "\r" in text:
        # Replacing each CRLF costs a 16 KB body 32 µs (a match every line); where every CR starts a CRLF
        # (nearly always), deleting the CRs gives the same text in 9 µs, and finding a lone CR takes 14.
        if LONE_CR_TEXT.search(text) is None:
            text = text.replace("\r", "")
        else:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
    return no_nul(text)


def parse_date(message: Message | _Headers, problems: list[str]) -> datetime | None:
    raw = _raw_header(message, "Date")
    if not raw:
        return None

    def convert() -> datetime | None:
        try:
            return date_value(raw)
        except ImplausibleYear as exc:
            problems.append(f"Date header: implausible year {exc.year}")
            return None

    return _attempt(problems, "Date header", convert, None)


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

    @property
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
        return super().get_payload(i, decode=True) if decode else super().get_payload(i)


def _decoded_payload(part: Message) -> Any:
    """A leaf's payload, transfer decoding done (``get_payload(decode=True)``)."""
    return part.get_payload(decode=True)


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
    headers._headers = fields  # type: ignore[attr-defined]  # Message's header list, undeclared in typeshed: set as the feedparser does
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
        leaf._headers = headers._headers  # type: ignore[attr-defined]  # (as above)
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
    headers._payload = children  # type: ignore[attr-defined]  # Message's payload, undeclared in typeshed: set as the feedparser does
    return headers


def parse_message(raw: bytes) -> MessageData:
    """Everything the store needs from one message's raw bytes. Never raises for the message's content."""
    problems: list[str] = []
    message = _attempt(problems, "message", lambda: _message_tree(raw), Message())
    senders = decode_addresses(message, "From", problems)
    from_name, from_address = senders[0] if senders else ("", "")
    attachments: list[tuple[str, str, int]] = []
    body, has_attachments = extract_body(message, problems, attachments)
    message_id = message_ids_in(_raw_header(message, "Message-ID"))
    in_reply_to = message_ids_in(_raw_header(message, "In-Reply-To"))
    automatic = _attempt(problems, "automatic", lambda: is_automatic(message.get, from_address), False)
    # Only a machine's mail is read as mail coming back (a person forwarding a mail as an attachment is not).
    returned_ids: list[str] = []
    bounced: list[tuple[str, str]] = []
    if automatic:
        returned_ids, bounced = _attempt(
            problems, "delivery report", lambda: returned(raw), (returned_ids, bounced)
        )
    return MessageData(
        raw=raw,
        message_id=message_id[0] if message_id else None,
        subject=decode_text_header(message, "Subject", problems),
        from_name=from_name,
        from_address=from_address.lower(),
        to=[formatted_address(pair) for pair in decode_addresses(message, "To", problems)],
        cc=[formatted_address(pair) for pair in decode_addresses(message, "Cc", problems)],
        sent_at=parse_date(message, problems),
        in_reply_to=in_reply_to[0] if in_reply_to else None,
        references=message_ids_in(_raw_header(message, "References")),
        body_text=body,
        has_attachments=has_attachments,
        attachments=attachments,
        problems=problems,
        automatic=automatic,
        returned_ids=returned_ids,
        bounced=bounced,
    )


def parse_safely(raw: bytes) -> MessageData:
    """``parse_message`` of a whole message as the server sent it (an empty one is a problem), and should it
    ever raise, the raw message with the failure as its problem."""
    try:
        data = parse_message(raw)
    except Exception as exc:  # noqa: BLE001 - never stop a sync on one message
        return MessageData(raw=raw, problems=[f"message: {type(exc).__name__}: {str(exc)[:200]}"])
    if not raw or raw.isspace():  # not raw.strip(): that copies every message's bytes
        data.problems.insert(0, f"message: empty ({len(raw)} bytes)")
    return data


class _Headers:
    """The part of ``email.message.Message`` the decoders above use (``get``, ``get_all``), over a header block
    split without the feedparser: values as compat32 gives them (unfolded lines joined, CRLFs kept)."""

    def __init__(self, fields: dict[str, list[str]]) -> None:
        self._fields = fields

    def get(self, name: str, failobj: object = None) -> object:
        values = self._fields.get(name.lower())
        return values[0] if values else failobj

    def get_all(self, name: str, failobj: None = None) -> list[str] | None:
        return self._fields.get(name.lower()) or failobj


def parse_header_block(raw: bytes) -> MessageData:
    """What the message list needs from a header block (``BODY[HEADER]``), fast: the same result as
    ``parse_message`` on it, without building a ``Message`` (the feedparser was half the time to headers)."""
    fields = split_headers(raw)
    if fields is None:
        return parse_safely(raw)
    problems: list[str] = []
    message = _Headers(fields)
    senders = decode_addresses(message, "From", problems)
    from_name, from_address = senders[0] if senders else ("", "")
    message_id = message_ids_in(_raw_header(message, "Message-ID"))
    in_reply_to = message_ids_in(_raw_header(message, "In-Reply-To"))
    return MessageData(
        raw=raw,
        message_id=message_id[0] if message_id else None,
        subject=decode_text_header(message, "Subject", problems),
        from_name=from_name,
        from_address=from_address.lower(),
        to=[formatted_address(pair) for pair in decode_addresses(message, "To", problems)],
        cc=[formatted_address(pair) for pair in decode_addresses(message, "Cc", problems)],
        sent_at=parse_date(message, problems),
        in_reply_to=in_reply_to[0] if in_reply_to else None,
        references=message_ids_in(_raw_header(message, "References")),
        problems=problems,
        automatic=_attempt(problems, "automatic", lambda: is_automatic(message.get, from_address), False),
    )


def attachment_payloads(raw: bytes) -> list[tuple[str, str, bytes]]:
    """(file name as declared, declared type, decoded bytes) of each attachment, in the order and by the rule
    of ``extract_body`` (so they match the stored list). A part that cannot be decoded comes as raw bytes."""
    problems: list[str] = []
    message = _attempt(problems, "message", lambda: _message_tree(raw), Message())
    found: list[tuple[str, str, bytes]] = []
    for part, content_type, filename, is_attachment in _leaves(message, problems):
        if is_attachment:
            payload = _attempt(problems, "attachment", functools.partial(_decoded_payload, part), None)
            if not isinstance(payload, bytes):
                text = part.get_payload()
                payload = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else b""
            name = filename if isinstance(filename, str) else ""
            found.append((name[:255], str(content_type)[:100], payload))
    return found
