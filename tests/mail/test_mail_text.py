"""Mail text on its way to the terminal: parsing real (hostile) mail and the one sanitising function."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from email.message import Message
from typing import Any, NoReturn

import pytest

from crm_tui.core.db import Database
from crm_tui.core.mail_data import MessageData
from crm_tui.core.sanitize import terminal_safe
from crm_tui.core.services import mail_store, mailbox
from crm_tui.mail.parse import parse_message
from tests.conftest import corpus_dir
from tests.utils.ids import id_of

DANGEROUS = ["\x1b", "\x07", "\x9b", "\u202e", "\u2066", "\u200b", "\x00", "\x7f", "\r"]


def test_terminal_safe_shows_controls_as_placeholders() -> None:
    hostile = "Invoice\x1b]0;pwned\x07 \x1b[2J\u202eFDP.exe\x9b31m\u200bok\r\nX-Injected: 1"
    safe = terminal_safe(hostile)
    assert not any(ch in safe for ch in DANGEROUS)
    assert "␛" in safe and "<U+202E>" in safe and "<U+009B>" in safe
    assert "\n" not in safe, "one-line fields are flattened"
    body = terminal_safe("line one\r\nline\ttwo\x1b[1m", single_line=False)
    assert body == "line one\nline\ttwo␛[1m"
    assert terminal_safe("x" * 50, max_length=10) == "x" * 9 + "…"
    assert terminal_safe("[bold]not markup[/bold]") == "[bold]not markup[/bold]", (
        "brackets kept; never rendered as markup"
    )


def test_encoded_words_are_decoded_before_sanitising() -> None:
    raw = (
        b"From: =?utf-8?q?M=C3=BCller_=1B=5B31m?= <m@example.com>\r\n"
        b"Subject: =?utf-8?b?w5xiZXIgG10wO3RpdGxlBw==?=\r\n\r\nbody\r\n"
    )
    data = parse_message(raw)
    assert data.from_name.startswith("Müller") and "\x1b" in data.from_name, "decoded, not yet sanitised"
    assert terminal_safe(data.subject) == "Über ␛]0;title␇"
    assert data.raw == raw


def test_broken_messages_parse_with_problems_recorded() -> None:
    raw = (
        b'From: "Unclosed <x@example.com>\r\nDate: Tue, 1 Jan 9999 00:00:00 +0000\r\n'
        b"Content-Type: multipart/mixed\r\nSubject: =?unknown-charset?q?abc?=\r\n\r\nno boundary here\r\n"
    )
    data = parse_message(raw)
    assert data.raw == raw
    assert data.sent_at is None
    assert data.problems, "what could not be read is recorded"


def test_every_corpus_message_parses_stores_and_shows(db: Database, now: datetime) -> None:
    folder = corpus_dir()
    files = sorted(folder.glob("*.eml"))
    assert len(files) >= 200
    with db.write() as session:
        for path in files:
            raw = path.read_bytes()
            data = parse_message(raw)
            stored = mail_store.store_message(session, data, now=now)
            shown = [
                terminal_safe(stored.subject),
                terminal_safe(stored.from_name),
                terminal_safe(stored.body_text[:20000], single_line=False),
            ]
            for text in shown:
                assert not any(ch in text for ch in DANGEROUS), path.name
            assert mailbox.raw_of(session, id_of(stored)) == raw, path.name
    with db.read() as session:
        assert mail_store.count_messages(session) == len(files)
        page = mail_store.list_messages(session, limit=50)
        assert len(page) == 50
        dated = [m.sent_at for m in page if m.sent_at is not None]
        assert dated == sorted(dated, reverse=True), "newest first"


def _header_blocks() -> list[bytes]:
    """Every corpus message's header block (as Dovecot serves it), then odd blocks: each must either read the
    same as the full parser reads it or be left to that parser."""
    from crm_tui.core.mail_identity import split_raw

    blocks = []
    for path in sorted(corpus_dir().glob("*.eml")):
        raw = path.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")  # as Dovecot serves it
        blocks.append(split_raw(raw)[0] + b"\r\n\r\n")
    blocks += [  # odd blocks: each either read the same or left to the full parser
        b"",
        b"\r\n",
        b"Subject: no blank line at the end",
        b"Subject: lf only\nFrom: a@b.example\n\n",
        b"SUBJECT: Upper\r\nfrom: a@b.example\r\nTo: x@y.example\r\nto: z@y.example\r\n\r\n",
        b"Subject:\r\n  folded\r\n\tacross three\r\nX-Subject: not this\r\n\r\n",
        b"Subject:   \r\n   \r\nDate: Fri, 20 Nov 2026 09:30:00 +0100\r\n\r\n",
        b"Subject: x\r\n\r\n  \r\n",
        b"Subject: x\r\n\r\nFrom: after the blank line\r\n\r\n",
        b"Subject : space before the colon\r\n\r\n",
        b"Subject: x\r\nno colon here\r\n\r\n",
        b" continuation first\r\nSubject: x\r\n\r\n",
        b"Subject: lone\rCR\r\n\r\n",
        b"Subject: mixed\r\n endings\n\tmore\r\nTo: a@b.example\n\r\n",
        b"To-Do: not To\r\nFrom-Address: not From\r\nSubject: kept\r\n\r\n",
        b"Subject: \x0bvertical tab\x0c form feed\r\n\r\n",
        b"Message-ID: <a@b>\r\nIn-Reply-To:\r\n <c@d>\r\nReferences: <e@f>\r\n <g@h>\r\n\r\n",
    ]
    return blocks


def test_the_quick_header_values_are_the_guarded_parsers_values(monkeypatch: pytest.MonkeyPatch) -> None:
    """The helper stores header_block_values; for every block, and with dates in several zones and years out
    of range, it equals header_values(parse_header_block(...)), problems included. Blocks the quick path
    declines (an exception, a problem to record) go to the guarded path; so does every block if it fails."""
    from crm_tui.core.mail_data import header_values
    from crm_tui.mail import headers, parse

    blocks = _header_blocks() + [
        f"Date: Fri, 20 Nov {year} 09:30:00 {zone}\r\nSubject: z\r\n\r\n".encode()
        for year in (1969, 2026, 2201)
        for zone in ("+0100", "-0000", "+0000", "-0530", "+1345")
    ]
    guarded = [header_values(parse.parse_header_block(block)) for block in blocks]
    assert [headers.header_block_values(block) for block in blocks] == guarded
    assert sum(1 for values in guarded if values[-1]) >= 3, "some blocks carry problems (and keep them)"

    def broken(fields: dict[str, list[str]]) -> NoReturn:
        raise ValueError("quick path broken on purpose")

    monkeypatch.setattr(headers, "_quick_values", broken)
    assert [headers.header_block_values(block) for block in blocks] == guarded


def test_the_fast_header_parser_agrees_with_the_full_parser_on_every_corpus_message() -> None:
    """The sync's time to headers uses parse_header_block; it must never differ from parse_message."""
    from crm_tui.mail.header_decoding import split_headers
    from crm_tui.mail.parse import parse_header_block

    fast_path = 0
    blocks = _header_blocks()
    for header in blocks:
        fast, full = parse_header_block(header), parse_message(header)
        fast_path += split_headers(header) is not None
        for name in (
            "message_id",
            "subject",
            "from_name",
            "from_address",
            "to",
            "cc",
            "sent_at",
            "in_reply_to",
            "references",
            "problems",
        ):
            assert getattr(fast, name) == getattr(full, name), (header[:300], name)
    assert fast_path > 150, "most real headers take the fast path"


EDGE_CASES = [
    b"Subject: plain\r\n\r\nbody\r\n",
    b"Subject: no body",
    b"Subject: lf only\n\nbody\n",
    b'Content-Type: multipart/mixed; boundary="b"\r\n\r\npreamble\r\n--b\r\n\r\nno headers\r\n--b\r\n'
    b"Content-Type: text/html\r\n\r\n<p>x</p>\r\n--b--  \r\nepilogue\r\n",
    b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: multipart/alternative; '
    b'boundary="c"\r\n\r\n--c\r\n\r\ninner\r\n--c--\r\n--b\r\nContent-Type: application/pdf; name="a.pdf"\r\n'
    b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--b--\r\n",
    b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n\r\ntruncated, no closing boundary\r\n',
    b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n--b\r\n\r\ntwo boundary lines\r\n--b--\r\n',
    b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--bx\r\nnot a boundary\r\n--b\r\n\r\nx--b\r\n--b--',
    b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: message/rfc822\r\n\r\n'
    b"Subject: inner\r\n\r\nforwarded\r\n--b--\r\n",
    b'Content-Type: multipart/digest; boundary="b"\r\n\r\n--b\r\n\r\nSubject: d\r\n\r\nx\r\n--b--\r\n',
    b"Content-Type: multipart/mixed\r\n\r\nno boundary parameter\r\n",
    b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\rlone CR\r\n--b--\r\n',
    b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nnot a header line\r\n\r\nx\r\n--b--\r\n',
    b"From someone@example.com Mon Jan  1 00:00:00 2024\r\nSubject: envelope\r\n\r\nx\r\n",
    b" continuation first\r\nSubject: x\r\n\r\nx\r\n",
    b"Subject: caf\xc3\xa9 8-bit\r\nFrom: J\xc3\xbcrgen <j@example.com>\r\n\r\n\xff\xfe body\r\n",
    b'From: Anna Berg <anna@example.com>, "Berg, Anna" <a@example.com>, x@y (comment), Dr. No <n@o>\r\n\r\n',
    b"To: undisclosed-recipients:;\r\nCc: <a@b.example>, , c@d.example\r\n\r\n",
]


def test_the_fast_message_parser_builds_what_the_email_package_builds() -> None:
    """The sync's body parse cuts MIME parts with str.find and reads everyday addresses with a regular
    expression; on every corpus message (as stored and as Dovecot serves it, CRLF) and on the odd cases above
    the result must equal the email package's own, and most real mail must take the fast path."""
    import email
    import email.policy

    from crm_tui.core.mail_identity import LONE_CR
    from crm_tui.mail import header_decoding, parse

    def slow(raw: bytes) -> MessageData:
        fast_tree, fast_addresses = parse._message_tree, header_decoding._plain_addresses
        parse._message_tree = lambda raw: email.message_from_bytes(raw, policy=email.policy.compat32)
        header_decoding._plain_addresses = lambda values: None
        try:
            return parse.parse_safely(raw)
        finally:
            parse._message_tree, header_decoding._plain_addresses = fast_tree, fast_addresses

    messages = list(EDGE_CASES)
    for path in sorted(corpus_dir().glob("*.eml")):
        raw = path.read_bytes()
        messages += [raw, raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")]
    fast_trees = 0
    for raw in messages:
        assert parse.parse_safely(raw) == slow(raw), raw[:200]
        if not LONE_CR.search(raw):
            fast_trees += parse._part(raw, 0, len(raw), nested=False, depth=0) is not None
    assert len(messages) > 400
    assert fast_trees > 0.55 * len(messages), (
        "most mail takes the fast path (the corpus is unusually odd mail)"
    )


def test_the_body_hash_keeps_its_definition_on_every_corpus_message() -> None:
    """Stored messages keep their identity across versions: the hash is SHA-256 of the body with CRLF read as
    LF, whichever way the code gets there (lone CRs stay; they are not line ends)."""
    import hashlib

    from crm_tui.core.mail_identity import body_hash, split_raw

    messages = list(EDGE_CASES) + [
        b"S: x\r\n\r\nlone\rCR\r\nend\r\n",
        b"S: x\r\n\r\nends in CR\r",
        b"S: x\n\nb\r\r\n",
    ]
    for path in sorted(corpus_dir().glob("*.eml")):
        raw = path.read_bytes()
        messages += [raw, raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")]
    for raw in messages:
        body = split_raw(raw)[1]
        expected = hashlib.sha256(body.replace(b"\r\n", b"\n").rstrip(b"\n")).hexdigest()[:32]
        assert body_hash(raw) == expected, raw[:200]
    assert body_hash(b"S: x\r\n\r\nlone\rCR\r\n") != body_hash(b"S: x\r\n\r\nloneCR\r\n")


def test_invitations_are_read_with_their_time_zone_or_not_at_all() -> None:
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from crm_tui.mail.invites import find_invitation

    berlin = ZoneInfo("Europe/Berlin")

    def mail(ics: str) -> bytes:
        return (
            'From: a@b.example\r\nContent-Type: multipart/mixed; boundary="x"\r\n\r\n--x\r\n'
            "Content-Type: text/plain\r\n\r\nsee invite\r\n--x\r\nContent-Type: text/calendar; method=REQUEST\r\n\r\n"
            + ics
            + "\r\n--x--\r\n"
        ).encode()

    floating = mail(
        "BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nSUMMARY:Baustelle\r\n ntermin\r\n"
        "DTSTART:20261124T100000\r\nDURATION:PT90M\r\nATTENDEE;CN=Karl:mailto:Karl@Firma.example\r\n"
        "END:VEVENT\r\nEND:VCALENDAR"
    )
    invitation = find_invitation(floating, berlin)
    assert invitation is not None and invitation.summary == "Baustellentermin", "folded lines unfolded"
    assert invitation.start == datetime(2026, 11, 24, 9, 0, tzinfo=UTC), "floating time: the user's zone"
    assert invitation.end == datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
    assert invitation.attendees == [("Karl", "karl@firma.example")]
    all_day = find_invitation(
        mail(
            "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:Messe\r\nDTSTART;VALUE=DATE:20261201\r\nEND:VEVENT\r\nEND:VCALENDAR"
        ),
        berlin,
    )
    assert all_day is not None and all_day.all_day and all_day.end is not None
    assert (
        find_invitation(mail("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:garbage\r\nEND:VCALENDAR"), berlin)
        is None
    )
    assert find_invitation(b"Subject: none\r\n\r\nplain\r\n", berlin) is None


def test_nothing_from_an_incoming_mail_can_add_a_header_to_a_reply() -> None:
    import email as email_package
    import email.policy
    from datetime import UTC, datetime

    from crm_tui.mail import compose

    original = compose.Original(
        from_name="Evil\r\nBcc: everyone@x.example",
        from_address="evil@x.example",
        reply_to=[],
        to=[],
        cc=[],
        subject="Angebot\r\nBcc: hidden@x.example\r\nX-Injected: yes",
        sent_at=datetime(2026, 11, 20, 9, 0, tzinfo=UTC),
        message_id="<m1@x.example>\r\nX-Other: 1",
        references=[],
        body="Hallo <b>fett</b> & so\n",
    )
    draft = compose.reply(
        original, from_name="Anna", from_address="anna@crm.example", mine=set(), everyone=False, zone=UTC
    )
    raw, _, recipients = compose.build(draft, now=datetime(2026, 11, 22, tzinfo=UTC))
    sent = email_package.message_from_bytes(raw, policy=email.policy.default)
    assert sent["Bcc"] is None and sent["X-Injected"] is None and sent["X-Other"] is None
    assert recipients == ["evil@x.example"]
    assert sent["Subject"] == "Re: Angebot Bcc: hidden@x.example X-Injected: yes"
    assert sent.get_content_type() == "text/plain" and "<b>fett</b> & so" in sent.get_content(), (
        "no markup added"
    )


def email_package_decoding(text: str) -> str:
    """The reference: the email package's decoding; where it knows no charset (LookupError: "X-IAS-German",
    "NONE"), the words' bytes read as UTF-8, which crm-tui shows instead of the encoded words."""
    from email.header import decode_header, make_header

    pieces = decode_header(text)
    try:
        return str(make_header(pieces))
    except LookupError:
        return "".join(p if isinstance(p, str) else p.decode("utf-8", "replace") for p, _ in pieces)


def test_a_charset_only_mail_programs_name_is_read() -> None:
    """Real mail names charsets as the WHATWG Encoding Standard lists them (windows-874, x-mac-roman,
    iso-8859-8-i); one nobody knows is read as UTF-8 rather than shown as encoded words."""
    from crm_tui.mail.header_decoding import decoded_words
    from crm_tui.mail.parse import parse_message

    assert decoded_words("=?WInDOWS-874?B?4cC=?=") == "แภ"
    assert decoded_words("=?x-mac-roman?Q?Gr=9Fe?=") == "Grüe"
    assert decoded_words("=?X-IAS-German?B?U3VibWl0IHlvdXIgdGF4IHJlZnVuZA==?=") == "Submit your tax refund"
    data = parse_message(
        b"Subject: =?windows-874?B?4cA=?=\r\nFrom: a@b.example\r\nContent-Type: text/plain; charset=windows-874"
        b"\r\n\r\n\xe1\xc0\r\n"
    )
    assert (data.subject, data.body_text.strip(), data.problems) == ("แภ", "แภ", [])


def test_headers_without_encoded_words_skip_the_email_package_with_the_same_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``decoded_words`` returns text without ``=?`` as it is; on every corpus message (and some 8-bit and
    odd headers) the parsed headers, problems included, equal those of the email package's round trip."""

    from crm_tui.core.mail_identity import split_raw
    from crm_tui.mail import parse

    headers = [
        split_raw(path.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))[0] + b"\r\n\r\n"
        for path in sorted(corpus_dir().glob("*.eml"))
    ]
    headers += [
        b"Subject: Gr\xfc\xdfe  aus   K\xf6ln\r\nFrom: J\xfcrgen M\xfcller <j@example.com>\r\n\r\n",
        'Subject: Grüße\r\nFrom: "Müller, Jürgen" <j@example.com>\r\n\r\n'.encode(),
        b"Subject:   \r\n  folded\r\n\tsubject  \r\nTo: a@example.com, B <b@example.com>\r\n\r\n",
        b"Subject: =?utf-8?q?half?= plain\r\nFrom: =?iso-8859-1?q?J=FCrgen?= <j@example.com>\r\n\r\n",
    ]
    fast = [parse.parse_header_block(h) for h in headers]
    monkeypatch.setattr(parse, "decoded_words", email_package_decoding)
    slow = [parse.parse_header_block(h) for h in headers]
    fields = ("subject", "from_name", "from_address", "to", "cc", "problems")
    for one, other, header in zip(fast, slow, headers, strict=True):
        assert [getattr(one, f) for f in fields] == [getattr(other, f) for f in fields], header[:200]


def _decoded(part: Message) -> bytes:
    """A leaf part's payload, its transfer encoding undone."""
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes), "a leaf part decodes to bytes"
    return payload


def _outcome(function: Callable[[str], Any], text: str) -> tuple[str, Any]:
    try:
        return ("value", function(text))
    except Exception as exc:  # noqa: BLE001 - the same failure is part of the same result
        return ("error", type(exc).__name__)


def _corpus_header_values(name: str) -> list[str]:
    from email import message_from_bytes
    from email.policy import compat32

    values = []
    for path in sorted(corpus_dir().glob("*.eml")):
        message = message_from_bytes(path.read_bytes(), policy=compat32)
        values += [str(v) for v in message.get_all(name) or []]
    return values


def test_the_quick_date_reading_agrees_with_the_email_package() -> None:
    """``_plain_date`` reads the everyday Date form itself; whatever it reads must come out exactly as
    ``email.utils.parsedate_to_datetime`` gives it (zone, naive for -0000, the same errors), on every corpus
    Date and on odd ones."""
    from email.utils import parsedate_to_datetime

    from crm_tui.mail.header_decoding import _plain_date

    dates = _corpus_header_values("Date") + [
        "Fri, 20 Nov 2026 09:30:00 +0100",
        "20 Nov 2026 09:30:00 +0100",
        "Fri,20 Nov 2026 09:30:00 +0100",
        "Mon, 1 Jan 2024 00:00:00 -0000",
        "Mon, 1 Jan 2024 00:00:00 +0000",
        "Sun, 31 Dec 2023 23:59:59 -0800",
        "Tue, 12 Mar 2024 12:00:00 +0530",
        "Tue, 12 Mar 2024 12:00:00 +0160",
        "Wed, 31 Feb 2024 12:00:00 +0100",
        "Wed, 10 Feb 2024 25:00:00 +0100",
        "Wed, 10 Feb 2024 12:00:60 +0100",
        "Wed, 10 Feb 2024 12:00:00 +9999",
        "Wed, 10 Feb 0099 12:00:00 +0100",
        "Wed, 10 Feb 99 12:00:00 +0100",
        "Wed, 10 Feb 2024 12:00 +0100",
        "Wed, 10 Feb 2024 12:00:00 CET",
        "Wed, 10 Feb 2024 12:00:00 +0100 (CET)",
        "Wed, 10 feb 2024 12:00:00 +0100",
        "  Thu, 5 Sep 2024 08:07:06 +0200  ",
    ]
    assert len(dates) > 150
    quick = 0
    for text in dates:
        mine = _outcome(_plain_date, text)
        if mine == ("value", None):
            continue  # not the everyday form: the email package reads it
        quick += 1
        theirs = _outcome(parsedate_to_datetime, text)
        assert mine == theirs, text
        if mine[0] == "value":
            assert (mine[1].tzinfo, mine[1].utcoffset()) == (theirs[1].tzinfo, theirs[1].utcoffset()), text
    assert quick > 100, "most real dates take the quick way"


def test_the_quick_encoded_word_decoding_agrees_with_the_email_package() -> None:
    """``decoded_words`` decodes values made only of UTF-8 encoded words itself; on every corpus subject and
    name, and on words split inside a character, broken Base64, bad UTF-8, mixtures and other charsets, the
    result (or the failure) is the email package's."""
    import base64
    import random
    from email.header import Header

    from crm_tui.mail.header_decoding import decoded_words

    values = _corpus_header_values("Subject") + _corpus_header_values("From") + _corpus_header_values("To")
    rng = random.Random(4)
    alphabet = "aeiou XYZ äöüß€ 日本語 😀 ñ é _?=.-"
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 60)))
        values.append(Header(text, "utf-8").encode())
        values.append(Header(text, "utf-8", maxlinelen=30).encode(linesep="\r\n"))
        data = text.encode()
        cut = rng.randint(0, len(data))  # two words that split a character between them
        values.append(
            f"=?utf-8?b?{base64.b64encode(data[:cut]).decode()}?= =?UTF-8?B?{base64.b64encode(data[cut:]).decode()}?="
        )
        values.append(
            "=?utf-8?q?"
            + "".join(chr(b) if chr(b).isalnum() and b < 128 else f"={b:02X}" for b in data[:cut])
            + "?=\r\n\t=?utf-8?Q?"
            + "".join(f"={b:02x}" for b in data[cut:])
            + "?="
        )
    values += [
        "=?utf-8?b?w6Q?=",  # padding missing
        "=?utf-8?b?w6Q=?=",
        "=?utf-8?b?*&^%?=",
        "=?utf-8?b?w?=",  # too short for Base64
        "=?utf-8?b?/w==?=",  # 0xff: not UTF-8
        "=?utf-8?q?a_b=3Fc?=",
        "=?utf-8?q?=C3?= =?utf-8?q?=A4?=",
        "=?utf-8?q?=C3?=",
        "=?us-ascii?q?plain_text?=",
        "=?us-ascii?q?=E4?=",
        "=?iso-8859-1?q?J=FCrgen?=",
        "=?utf-8?q?one?= =?iso-8859-1?q?=E4?=",
        "=?utf-8*de?q?Gr=C3=BC=C3=9Fe?=",
        "Re: =?utf-8?q?Gr=C3=BC=C3=9Fe?=",
        "=?utf-8?q?Gr=C3=BC=C3=9Fe?= aus",
        "  =?utf-8?q?lead?=  ",
        "=?utf-8?q?a?=\r=?utf-8?q?b?=",
        "=?utf-8?q?a?=\x0c=?utf-8?q?b?=",
        "=?utf-8?q?what?is?=",
        "=?utf-8?x?unknown?=",
        "=?utf-8?q??=",
        "=?utf-8?b??=",
    ]
    for text in values:
        assert _outcome(decoded_words, text) == _outcome(email_package_decoding, text), text


def test_raw_8bit_headers_bodies_without_a_charset_and_encoded_file_names_are_read() -> None:
    """Real mail writes UTF-8 (RFC 6532) or its own charset straight into headers, 8-bit bodies without a
    charset, and RFC 2047 words into attachment names: all read as a person would, never as U+FFFD."""
    from crm_tui.mail.parse import attachment_payloads, parse_message

    utf8 = parse_message(
        "Subject: Facture à régler 🎉\r\nFrom: Philipp Steinkrüger <p@x.example>\r\nTo: Юникод <u@x.example>\r\n"
        "Content-Type: text/plain\r\n\r\nAquí tenemos £600\r\n".encode()
    )
    assert (utf8.subject, utf8.from_name) == ("Facture à régler 🎉", "Philipp Steinkrüger")
    assert "Юникод" in str(utf8.to)
    assert utf8.body_text.strip() == "Aquí tenemos £600" and utf8.problems == []
    legacy = parse_message(
        "Subject: Fräsche Verão\r\nFrom: Ingo Lütkebohle <i@x.example>\r\n\r\nAquí tenemos texto en español\r\n".encode(
            "cp1252"
        )
    )
    assert (legacy.subject, legacy.from_name) == ("Fräsche Verão", "Ingo Lütkebohle")
    assert legacy.body_text.strip() == "Aquí tenemos texto en español"
    raw = (
        b"From: a@x.example\r\nSubject: files\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n'
        b'--b\r\nContent-Type: text/plain; name="=?UTF-8?B?44Gm44GZ44GoLnR4dA==?="\r\n'
        b'Content-Disposition: attachment; filename="=?UTF-8?B?44Gm44GZ44GoLnR4dA==?="\r\n\r\ntest\r\n--b--\r\n'
    )
    assert [name for name, _kind, _data in attachment_payloads(raw)] == ["てすと.txt"]
    assert "てすと.txt" in str(parse_message(raw).attachments)


def _html_mail(html: str, charset: str = "utf-8") -> bytes:
    return (
        "From: a@x.example\r\nSubject: html\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: text/html; charset={charset}\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{html}"
    ).encode(charset)


def test_an_html_mail_whose_head_never_closes_has_its_text_previewed_and_found(
    db: Database, now: datetime
) -> None:
    """</head> is optional (browsers close it at <body>): the text after it is the mail, not part of the head."""
    from crm_tui.core import models as m
    from crm_tui.core.services import mail_search

    data = parse_message(_html_mail("<html><head><title>x</title><body><p>Hello from the unclosed head"))
    assert data.body_text == "Hello from the unclosed head"
    with db.write() as session:
        stored = mail_store.store_message(session, data, now=now)
    with db.read() as session:
        found = session.get(m.MailMessage, stored.id)
        assert found is not None and found.body_text.startswith("Hello from"), "the preview's text"
        assert now.tzinfo is not None
        assert mail_search.search_ids(session, "unclosed", now.tzinfo) == [stored.id]


def test_html_tables_lists_and_entities_read_as_in_a_browser() -> None:
    table = parse_message(
        _html_mail(
            "<table><tr><th>Item</th><th>Price</th></tr><tr><td>Wallbox</td><td>1.200 €</td></tr>"
            "<tr><td>Montage<td>300 €</table>"
        )
    ).body_text
    rows = table.splitlines()
    assert len(rows) == 3, table
    assert rows[1].split() == ["Wallbox", "1.200", "€"], "cells of a row apart, each row on its line"
    assert "WallboxMontage" not in table and "Wallbox1.200" not in table
    assert rows[1].index("1.200") == rows[0].index("Price"), "columns line up"
    lists = parse_message(_html_mail("<p>Steps:</p><ul><li>one<li>two</ul><ol><li>first</li><li>second</ol>"))
    assert "  * one\n  * two\n" in lists.body_text
    assert [line.split() for line in lists.body_text.splitlines()[-2:]] == [["1.", "first"], ["2.", "second"]]
    entities = parse_message(
        _html_mail("<p>Gr&uuml;&szlig;e &amp; &lt;Dank&gt;&nbsp;&#8364;&#x263A; &euro;</p>")
    )
    assert entities.body_text == "Grüße & <Dank> €☺ €"
    spans = parse_message(_html_mail("<div><div>fi<span>r</span>st   word</div></div>"))
    assert spans.body_text == "first word", "inline elements join, blanks collapse, no indent for divs"


def test_html_scripts_styles_and_the_head_are_not_text() -> None:
    html = (
        "<html><head><title>Title</title><style>p { color: red }</style><meta name=x content=y>"
        "<script>var secret = 1;</script></head><body><script>alert('x')</script><p>Visible</p>"
        "<style>.x{}</style><!-- a comment --><noscript></noscript></body></html>"
    )
    assert parse_message(_html_mail(html)).body_text == "Visible"


def test_hostile_html_never_raises_nor_reaches_the_text_as_controls() -> None:
    """Escapes written literally or as character references, nesting deeper than libxml2 keeps (256), a body of
    a million characters, tables of many cells, broken markup: the text is there, without control characters,
    quickly."""
    import time

    from crm_tui.mail.parse import MAX_HTML_CELLS, _html_to_text

    controls = _html_to_text("<p>a&#27;[2J&#x1b;]0;t&#7;b\x1b[31mc\x07d\x00e&#x9b;f&#0;g</p>")
    assert not any(ch in controls for ch in ("\x1b", "\x07", "\x00", "\x9b")), repr(controls)
    assert controls.replace("\ufffd", "").startswith("a[2J]0;tb[31mcde")
    for tag in ("div", "table><tr><td", "ul><li", "blockquote", "b"):
        text = _html_to_text(f"<{tag}>" * 5_000 + "deep inside")
        assert text.strip().endswith("deep inside"), tag
        assert max(len(line) - len(line.lstrip()) for line in text.splitlines()) <= 16, "indent capped"
    cells = "<table>" + "<tr><td>x<td>y" * MAX_HTML_CELLS + "</table>"
    started = time.perf_counter()
    assert _html_to_text(cells).split()[:4] == ["x", "y", "x", "y"]
    assert time.perf_counter() - started < 5, "a table too big to lay out has its tags removed instead"
    huge = parse_message(_html_mail("<p>" + "word " * 150_000 + "<b>end"))
    assert huge.body_text.endswith("word end") and len(huge.body_text) <= 1_000_000
    for broken in (
        "<",
        "<<>>",
        "</p></p>",
        "<?xml version='1.0' encoding='utf-8'?><p>x",
        "<![CDATA[x",
        "&#99999999;",
        "<a href='",
        "<script>",
        "<p \x00=1>x",
        "\ud800",
        "<table><td><table><td>",
        "",
    ):
        assert isinstance(_html_to_text(broken), str), repr(broken)
    assert _html_to_text("<?xml version='1.0' encoding='utf-8'?><p>x</p>") == "x"


def test_every_corpus_html_mail_keeps_all_its_visible_words() -> None:
    """Each mail of both corpora whose only text is HTML: every word a browser shows is in the stored body."""
    import email
    import email.policy

    from lxml.html import document_fromstring

    from crm_tui.mail.parse import _charset_decode

    checked = 0
    for folder in (corpus_dir(), corpus_dir("mail2")):
        for path in sorted(folder.glob("*.eml")):
            raw = path.read_bytes()
            message = email.message_from_bytes(raw, policy=email.policy.compat32)
            parts = [p for p in message.walk() if not p.is_multipart() and not p.get_filename()]
            kinds = {p.get_content_type() for p in parts if p.get_content_disposition() != "attachment"}
            if "text/html" not in kinds or "text/plain" in kinds:
                continue
            html = "\n".join(
                _charset_decode(_decoded(p), p.get_content_charset(), [])
                for p in parts
                if p.get_content_type() == "text/html" and p.get_content_disposition() != "attachment"
            ).strip()
            body = parse_message(raw).body_text
            if html:
                tree = document_fromstring(html.split("?>", 1)[-1] if html.startswith("<?xml") else html)
                for hidden in tree.xpath("//head|//script|//style|//title"):
                    hidden.drop_tree()
                missing = [w for t in tree.itertext() for w in t.split() if w not in body]
                assert not missing, (path.name, missing[:5])
            checked += 1
    assert checked >= 20


def test_a_reply_to_my_own_mail_goes_to_whom_it_went() -> None:
    """From "No reply to me" a salesperson nudges the customer: r on my own sent mail addresses its To (not
    me), g also its Cc; a reply to someone else's mail is unchanged."""
    from datetime import UTC, datetime

    from crm_tui.mail import compose

    mine = {"anna@crm.example"}
    sent = compose.Original(
        from_name="Anna Berg", from_address="anna@crm.example", reply_to=[],
        to=["Farid Krüger <farid@rhein.example>"], cc=["Lea <lea@rhein.example>", "Anna Berg <anna@crm.example>"],
        subject="Fotos vom Dach", sent_at=datetime(2026, 11, 20, tzinfo=UTC), message_id="<o@crm>",
        references=[], body="Hallo",
    )  # fmt: skip
    one = compose.reply(
        sent, from_name="Anna Berg", from_address="anna@crm.example", mine=mine, everyone=False, zone=UTC
    )
    assert one.to == ["Farid Krüger <farid@rhein.example>"] and one.cc == []
    everyone = compose.reply(
        sent, from_name="Anna Berg", from_address="anna@crm.example", mine=mine, everyone=True, zone=UTC
    )
    assert everyone.to == ["Farid Krüger <farid@rhein.example>"] and everyone.cc == [
        "Lea <lea@rhein.example>"
    ]
    assert everyone.in_reply_to == "<o@crm>"
    theirs = compose.Original(
        from_name="Farid", from_address="farid@rhein.example", reply_to=[], to=["Anna Berg <anna@crm.example>"],
        cc=[], subject="Re: Fotos", sent_at=None, message_id="<r@rhein>", references=["<o@crm>"], body="ok",
    )  # fmt: skip
    assert compose.reply(
        theirs, from_name="A", from_address="anna@crm.example", mine=mine, everyone=True, zone=UTC
    ).to == ["Farid <farid@rhein.example>"]
