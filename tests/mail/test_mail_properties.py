"""Generated mail (Hypothesis): address lists (no domain, groups, quoted local parts, non-ASCII, empty), header
values with encoded words, dates in every shape. Parsing and linking never raise; the header pass's fast
parser (mail/headers.py) gives exactly what the guarded parser (mail/parse.py) gives, on every generated block;
the whole message's parse agrees with the header block's."""

from __future__ import annotations

import base64
import quopri
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm_tui.core.mail_data import header_values
from crm_tui.core.mail_identity import is_automatic
from crm_tui.core.sanitize import terminal_safe
from crm_tui.mail import headers, parse
from tests.utils.ids import id_of

if TYPE_CHECKING:
    from crm_tui.core.db import Database

_ATOM = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCXYZ0123456789.!#$%&'*+-/=?^_`{|}~", min_size=1, max_size=12
)
_UNICODE = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"], exclude_characters="\r\n\x00"),
    max_size=14,
)
_WORDS = st.sampled_from(
    ["Lea", "Schulz", "Müller", "Ωμέγα", "Иван", "李", "O'Neil", "Dr. X", "a,b", 'x"y', ""]
)


def _encoded_word(text: str, charset: str, kind: str) -> str:
    data = text.encode(charset if charset != "x-unknown" else "utf-8", "replace")  # a name nobody knows
    if kind == "B":
        payload = base64.b64encode(data).decode()
    else:
        payload = quopri.encodestring(data, header=True).decode().replace("\n", "").replace("=\r", "")
    return f"=?{charset}?{kind}?{payload}?="


_ENCODED = st.builds(
    _encoded_word, _UNICODE, st.sampled_from(["utf-8", "iso-8859-1", "windows-1252", "koi8-r", "x-unknown"]),
    st.sampled_from(["B", "Q", "b", "q"]),
)  # fmt: skip
_DOMAIN = st.one_of(
    st.just(""),
    st.sampled_from(
        ["nordwind.example", "sub.firma.de", "example.net", "xn--mller-kva.example", "localhost"]
    ),
    st.builds(lambda a: f"{a}.example", _ATOM),
)
_LOCAL = st.one_of(
    _ATOM, st.builds(lambda t: '"' + t.replace('"', "").replace("\\", "") + '"', _UNICODE), _UNICODE
)
_ADDRESS = st.builds(lambda local, domain: f"{local}@{domain}" if domain else local, _LOCAL, _DOMAIN)
_NAME = st.one_of(
    st.just(""), _WORDS, _ENCODED, st.builds(lambda a, b: f'"{a} {b}"', _WORDS, _WORDS), _UNICODE
)
_MAILBOX = st.one_of(
    _ADDRESS,
    st.builds(lambda name, address: f"{name} <{address}>", _NAME, _ADDRESS),
    st.builds(lambda address, comment: f"{address} ({comment})", _ADDRESS, _WORDS),
)
_GROUP = st.builds(
    lambda name, members: f"{name}: {', '.join(members)};", _WORDS, st.lists(_MAILBOX, max_size=3)
)
_ADDRESS_LIST = st.one_of(
    st.just(""),
    st.lists(st.one_of(_MAILBOX, _GROUP), min_size=1, max_size=5).map(", ".join),
    st.lists(_MAILBOX, min_size=1, max_size=3).map(",,".join),
)
_SUBJECT = st.one_of(
    _UNICODE,
    _ENCODED,
    st.lists(st.one_of(_ENCODED, _WORDS), min_size=1, max_size=4).map(" ".join),
    st.builds(lambda prefix, text: f"{prefix} {text}", st.sampled_from(["Re:", "AW:", "Fwd:", "RE: Re:", "[list]"]), _UNICODE),
)  # fmt: skip
_DATE = st.one_of(
    st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2300, 1, 1), timezones=st.just(UTC)).map(
        lambda d: d.strftime("%a, %d %b %Y %H:%M:%S +0000")
    ),
    st.sampled_from(
        ["", "yesterday", "Fri, 31 Feb 2026 25:61:00 +0100", "20 Nov 2026 09:30 CET", "Fri, 20 Nov 26 09:30:00 GMT",
         "2026-11-20T09:30:00Z", "Fri, 20 Nov 2026 09:30:00 +9999", "Fri, 20 Nov 10000 09:30:00 +0000"]
    ),
    _UNICODE,
)  # fmt: skip
_MESSAGE_ID = st.one_of(
    st.just(""),
    st.builds(lambda a, d: f"<{a}@{d or 'x'}>", _ATOM, _DOMAIN),
    _UNICODE,
    st.lists(st.builds(lambda a: f"<{a}@x>", _ATOM), max_size=4).map(" ".join),
)


def _fold(value: str) -> str:
    """Long values folded as mail programs do (a line break before a space)."""
    if len(value) < 60 or " " not in value[40:]:
        return value
    cut = value.index(" ", 40)
    return value[:cut] + "\r\n" + value[cut:]


@st.composite
def header_blocks(draw: st.DrawFn) -> bytes:
    fields = {
        "From": draw(_ADDRESS_LIST),
        "To": draw(_ADDRESS_LIST),
        "Cc": draw(_ADDRESS_LIST),
        "Subject": draw(_SUBJECT),
        "Date": draw(_DATE),
        "Message-ID": draw(_MESSAGE_ID),
        "In-Reply-To": draw(_MESSAGE_ID),
        "References": draw(_MESSAGE_ID),
    }
    names = draw(st.permutations(list(fields)))
    keep = draw(st.lists(st.booleans(), min_size=len(names), max_size=len(names)))
    lines = [f"{name}: {_fold(fields[name])}" for name, kept in zip(names, keep, strict=True) if kept]
    raw = "\r\n".join(lines) + "\r\n\r\n"
    # Raw 8-bit header text: UTF-8 (RFC 6532) or a legacy charset, as older programs wrote it.
    return raw.encode(draw(st.sampled_from(["utf-8", "cp1252", "koi8-r"])), "replace")


@given(header_blocks())
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_the_fast_header_parser_equals_the_guarded_parser_on_every_generated_block(block: bytes) -> None:
    guarded = header_values(parse.parse_header_block(block))
    assert headers.header_block_values(block) == guarded


@given(header_blocks(), st.sampled_from([b"Hallo\r\n", b"", b"\xff\xfe caf\xe9\r\n", b"<p>Hi</p>"]))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_parsing_a_whole_generated_message_never_raises_and_agrees_with_its_header(
    block: bytes, body: bytes
) -> None:
    data = parse.parse_safely(block + body)
    from_block = parse.parse_header_block(block)
    # The header's stored values are the same whether the header pass or the body pass wrote them.
    assert header_values(data)[:-1] == header_values(from_block)[:-1]
    for text in (data.subject, data.from_name, *data.to, *data.cc, data.body_text):
        shown = terminal_safe(text)
        assert not any(ord(ch) < 32 and ch not in "\n\t" for ch in shown)
    is_automatic(lambda name: None, data.from_address)  # never raises on what the parser gives


@given(st.lists(header_blocks(), min_size=1, max_size=6))
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
def test_storing_threading_and_linking_generated_mail_never_raises(
    tmp_path_factory: pytest.TempPathFactory, blocks: list[bytes]
) -> None:
    from crm_tui.core.free_mail import free_domains
    from crm_tui.core.services import mail_linking, mail_store

    database = _database(tmp_path_factory)
    now = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
    with database.write() as session:
        stored = [
            mail_store.store_message(session, parse.parse_safely(block + b"Hallo\r\n"), now=now)
            for block in blocks
        ]
        made = mail_linking.link_many(
            session, [id_of(message) for message in stored], mine={"anna@crm.example"}, free_domains=set(free_domains()),
            now=now,
        )  # fmt: skip
        assert set(made) <= {message.id for message in stored}
        assert all(message.thread_id is not None for message in stored)


_CACHE: dict[str, Database] = {}


def _database(tmp_path_factory: pytest.TempPathFactory) -> Database:
    """One database for all examples (each example's mail is added to it: threads and links meet old mail)."""
    from crm_tui.core.db import open_database, sqlite_url

    if "db" not in _CACHE:
        _CACHE["db"] = open_database(sqlite_url(tmp_path_factory.mktemp("properties") / "crm.sqlite3"))
    return _CACHE["db"]
