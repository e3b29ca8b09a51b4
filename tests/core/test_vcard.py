"""The vCard reader and writer on their own: escaping, folding of long lines (never inside a UTF-8 character),
2.1 quoted-printable, 4.0 tel: URIs and item groups, and a written card read back unchanged."""

from __future__ import annotations

from crm_tui.core.interchange import vcard


def test_a_written_card_reads_back_the_same() -> None:
    card = vcard.Card(
        line=0, first_name="Jörg; der Ältere", last_name="Müller-Lüdenscheidt", full_name="Jörg Müller-Lüdenscheidt",
        organization="Sonne, Wind & Co", title="Leiter\\Technik", emails=["j@m.example", "joerg@privat.example"],
        phones=["+49 30 123", "0171 555"], street="Lange Straße 1; Hinterhaus", postcode="10115", city="Berlin",
        region="Berlin", country="DE", note="Zeile eins\nZeile zwei, mit Komma; und Semikolon",
        extra={"owner": "anna@crm.example", "custom.roof_area_m2": "120"},
    )  # fmt: skip
    text = vcard.write([card])
    assert all(len(line.encode()) <= 75 for line in text.split("\r\n"))
    [again], problems = vcard.read(text)
    assert problems == []
    again.line = 0
    assert again == card


def test_long_lines_fold_between_characters() -> None:
    card = vcard.Card(line=0, last_name="Ä" * 100, note="ü" * 200)
    text = vcard.write([card])
    for line in text.split("\r\n"):
        line.encode("utf-8")  # every folded piece is whole UTF-8
        assert len(line.encode()) <= 75
    [again], _ = vcard.read(text)
    assert again.last_name == "Ä" * 100 and again.note == "ü" * 200


def test_groups_uris_and_preferred_address() -> None:
    text = (
        "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Ada Lovelace\r\n"
        "item1.EMAIL;TYPE=home:ada@home.example\r\nitem2.EMAIL;PREF=1:ada@work.example\r\n"
        "TEL;VALUE=uri;TYPE=cell:tel:+44-20-7946-0958\r\nEND:VCARD\r\n"
    )
    [card], problems = vcard.read(text)
    assert problems == []
    assert card.emails == ["ada@work.example", "ada@home.example"]
    assert card.phones == ["+44-20-7946-0958"]
    assert (card.first_name, card.last_name, card.full_name) == ("", "", "Ada Lovelace")


def test_a_broken_card_is_reported_and_the_others_kept() -> None:
    text = "BEGIN:VCARD\nFN:Good\nEND:VCARD\nBEGIN:VCARD\nthis is no property\nFN:Bad\nEND:VCARD\nBEGIN:VCARD\nFN:Also good\nEND:VCARD\n"
    cards, problems = vcard.read(text)
    assert [c.full_name for c in cards] == ["Good", "Also good"]
    assert [(p.line, p.message[:18]) for p in problems] == [(5, "not a vCard line: ")]


def test_every_line_is_read_or_reported() -> None:
    """A card cut off by the next BEGIN was dropped without a word, and so were lines outside any card; a broken
    card is one problem however many of its lines are broken."""
    text = (
        "X-HEADER: junk\nBEGIN:VCARD\nFN:Cut\nBEGIN:VCARD\nFN:Kept\nEND:VCARD\nEND:VCARD\n"
        "BEGIN:VCARD\nbroken one\nbroken two\nFN:Bad\nEND:VCARD\n"
    )
    cards, problems = vcard.read(text)
    assert [c.full_name for c in cards] == ["Kept"]
    assert [(p.line, p.message) for p in problems] == [
        (1, "line 1 is outside any card (BEGIN:VCARD ... END:VCARD)"),
        (2, "the card has no END:VCARD (the next card begins first)"),
        (7, "line 7 is outside any card (BEGIN:VCARD ... END:VCARD)"),
        (9, "not a vCard line: 'broken one': the card of line 8 was left out"),
    ]
    assert vcard.holds_cards(text) and not vcard.holds_cards("first_name,last_name\nA,B\n")
