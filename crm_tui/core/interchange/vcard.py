"""vCard 2.1, 3.0 and 4.0 (RFC 2426, RFC 6350) read into plain cards, and cards written as vCard 3.0 (the version
address books, phones and mail clients all read).

Read: lines unfolded (a line starting with a space or tab continues the last), property groups dropped,
parameters kept (TYPE values lower-cased), values unescaped (``\\,`` ``\\;`` ``\\n`` ``\\\\``), quoted-printable
and charset of 2.1 decoded, ``tel:`` URIs of 4.0 stripped. A card that cannot be read is reported with the line
it starts on (and lines outside any card with theirs); the others are kept.
"""

from __future__ import annotations

import quopri
from dataclasses import dataclass, field


@dataclass
class Card:
    line: int  # where BEGIN:VCARD stood
    first_name: str = ""
    last_name: str = ""
    full_name: str = ""
    organization: str = ""
    title: str = ""
    emails: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)
    street: str = ""
    postcode: str = ""
    city: str = ""
    region: str = ""
    country: str = ""
    note: str = ""
    extra: dict[str, str] = field(default_factory=dict)  # X-CRM-TUI-* properties (owner, custom fields, ...)


@dataclass
class ReadProblem:
    line: int
    message: str


def _unescape(value: str) -> str:
    out, i = [], 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value):
            nxt = value[i + 1]
            out.append({"n": "\n", "N": "\n", ",": ",", ";": ";", "\\": "\\"}.get(nxt, nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _split(value: str, sep: str) -> list[str]:
    """Split a structured value on unescaped ``sep``, then unescape each part."""
    parts, current, i = [], [], 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value):
            current.append(value[i : i + 2])
            i += 2
            continue
        if ch == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current))
    return [_unescape(p) for p in parts]


def _logical_lines(text: str) -> list[tuple[int, str]]:
    lines: list[tuple[int, str]] = []
    for number, raw in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), 1):
        if raw[:1] in (" ", "\t") and lines:
            lines[-1] = (lines[-1][0], lines[-1][1] + raw[1:])
        elif (
            lines
            and lines[-1][1].endswith("=")
            and "QUOTED-PRINTABLE" in lines[-1][1].upper().split(":", 1)[0]
        ):
            lines[-1] = (lines[-1][0], lines[-1][1][:-1] + "=\n" + raw)  # a 2.1 soft line break
        elif raw.strip():
            lines.append((number, raw))
    return lines


def _parse_line(line: str) -> tuple[str, dict[str, list[str]], str]:
    head, sep, value = line.partition(":")
    if not sep:
        raise ValueError(f"not a vCard line: {line[:60]!r}")
    name, *raw_params = head.split(";")
    name = name.rsplit(".", 1)[-1].upper()  # "item1.EMAIL" -> EMAIL
    params: dict[str, list[str]] = {}
    for param in raw_params:
        key, eq, val = param.partition("=")
        if not eq:  # 2.1: "TEL;WORK;VOICE:..."
            key, val = "TYPE", key
        params.setdefault(key.upper(), []).extend(v.strip('"').lower() for v in val.split(","))
    if "quoted-printable" in params.get("ENCODING", []):
        charset = (params.get("CHARSET") or ["utf-8"])[0]
        value = quopri.decodestring(value.replace("=\n", "=\r\n").encode("latin-1", "replace")).decode(
            charset, "replace"
        )
    return name, params, value


def holds_cards(text: str) -> bool:
    """Whether ``text`` has a BEGIN:VCARD line at all (else it is no vCard file)."""
    return any(line.strip().upper().replace(" ", "") == "BEGIN:VCARD" for line in text.splitlines()[:100_000])


def read(text: str) -> tuple[list[Card], list[ReadProblem]]:
    """The cards, and a problem for every card that cannot be read and every line outside a card (a run of them
    once), so every line of the file is either read or reported."""
    cards: list[Card] = []
    problems: list[ReadProblem] = []
    card: Card | None = None
    broken = False
    outside: list[int] = []  # the lines of the current run outside any card

    def report_outside() -> None:
        if outside:
            where = (
                f"line {outside[0]} is" if len(outside) == 1 else f"lines {outside[0]} to {outside[-1]} are"
            )
            problems.append(ReadProblem(outside[0], f"{where} outside any card (BEGIN:VCARD ... END:VCARD)"))
            outside.clear()

    for number, line in _logical_lines(text):
        try:
            name, params, value = _parse_line(line)
        except ValueError as exc:
            if card is not None:
                if not broken:  # one problem a card: the first line that cannot be read
                    problems.append(ReadProblem(number, f"{exc}: the card of line {card.line} was left out"))
                broken = True
            else:
                outside.append(number)
            continue
        if name == "BEGIN" and value.strip().upper() == "VCARD":
            report_outside()
            if card is not None:
                problems.append(
                    ReadProblem(card.line, "the card has no END:VCARD (the next card begins first)")
                )
            card, broken = Card(line=number), False
            continue
        if card is None:
            outside.append(number)
            continue
        if name == "END":
            if not broken:
                if not (card.full_name or card.first_name or card.last_name or card.emails):
                    problems.append(ReadProblem(card.line, "a card without a name or an address"))
                else:
                    cards.append(card)
            card = None
            continue
        _apply(card, name, params, value)
    report_outside()
    if card is not None:
        problems.append(ReadProblem(card.line, "the card has no END:VCARD (the file is cut off?)"))
    problems.sort(key=lambda problem: problem.line)
    return cards, problems


def _apply(card: Card, name: str, params: dict[str, list[str]], value: str) -> None:
    if name == "N":
        parts = _split(value, ";") + [""] * 5
        card.last_name, card.first_name = (
            parts[0].strip(),
            " ".join(p for p in (parts[1], parts[2]) if p).strip(),
        )
    elif name == "FN":
        card.full_name = _unescape(value).strip()
    elif name == "ORG":
        card.organization = _split(value, ";")[0].strip()
    elif name == "TITLE":
        card.title = _unescape(value).strip()
    elif name == "EMAIL":
        address = _unescape(value).strip().removeprefix("mailto:")
        if address and address.lower() not in (e.lower() for e in card.emails):
            preferred = "pref" in params.get("TYPE", []) or params.get("PREF") == ["1"]
            card.emails.insert(0, address) if preferred else card.emails.append(address)
    elif name == "TEL":
        number = _unescape(value).strip().removeprefix("tel:")
        if number and number not in card.phones:
            card.phones.append(number)
    elif name == "ADR" and not card.street and not card.city:
        parts = _split(value, ";") + [""] * 7
        _pobox, extended, street, city, region, postcode, country = (p.strip() for p in parts[:7])
        card.street = ", ".join(p for p in (street, extended) if p)
        card.city, card.region, card.postcode, card.country = city, region, postcode, country
    elif name == "NOTE":
        card.note = _unescape(value)
    elif name.startswith("X-CRM-TUI-"):
        key = name.removeprefix("X-CRM-TUI-").lower().replace("-", "_")
        if key == "custom":
            key = "custom." + (params.get("KEY") or [""])[0]
        card.extra[key] = _unescape(value)


def _escape(value: str) -> str:
    return (
        value.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\n")
        .replace("\n", "\\n")
    )


def _fold(line: str) -> str:
    """Lines of at most 75 octets, continued with a space (never splitting a UTF-8 character)."""
    out: list[str] = []
    current = b""
    for ch in line:
        encoded = ch.encode("utf-8")
        if len(current) + len(encoded) > (75 if not out else 74):
            out.append(current.decode("utf-8"))
            current = b""
        current += encoded
    out.append(current.decode("utf-8"))
    return "\r\n ".join(out)


def write(cards: list[Card]) -> str:
    lines: list[str] = []
    for card in cards:
        full = card.full_name or " ".join(p for p in (card.first_name, card.last_name) if p)
        lines += ["BEGIN:VCARD", "VERSION:3.0", f"N:{_escape(card.last_name)};{_escape(card.first_name)};;;"]
        lines.append(f"FN:{_escape(full)}")
        if card.organization:
            lines.append(f"ORG:{_escape(card.organization)}")
        if card.title:
            lines.append(f"TITLE:{_escape(card.title)}")
        for index, address in enumerate(card.emails):
            lines.append(f"EMAIL;TYPE=INTERNET{',PREF' if index == 0 else ''}:{_escape(address)}")
        for number in card.phones:
            lines.append(f"TEL;TYPE=VOICE:{_escape(number)}")
        if any((card.street, card.city, card.region, card.postcode, card.country)):
            parts = ["", "", card.street, card.city, card.region, card.postcode, card.country]
            lines.append("ADR;TYPE=WORK:" + ";".join(_escape(p) for p in parts))
        if card.note:
            lines.append(f"NOTE:{_escape(card.note)}")
        for key, value in card.extra.items():
            if key.startswith("custom."):
                lines.append(f"X-CRM-TUI-CUSTOM;KEY={key[7:]}:{_escape(value)}")
            else:
                lines.append(f"X-CRM-TUI-{key.upper().replace('_', '-')}:{_escape(value)}")
        lines.append("END:VCARD")
    return "".join(_fold(line) + "\r\n" for line in lines)
