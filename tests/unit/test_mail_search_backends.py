"""The mail search's words, the same on both databases: SQLite's FTS5 index and PostgreSQL's full-text search
(words as prefixes, all of them; a quoted phrase in order; addresses searchable; the other query terms too)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from crm_tui.core.db import Database
from crm_tui.core.services import mail_search, mail_store
from crm_tui.mail.parse import parse_message
from tests.conftest import NOW

ZONE = ZoneInfo("Europe/Berlin")


def _mail(n: int, subject: str, body: str, sender: str) -> bytes:
    return (
        f"From: Kunde {n} <{sender}>\r\nTo: Anna Berg <anna@crm.example>\r\nSubject: {subject}\r\n"
        f"Date: Fri, 20 Nov 2026 1{n}:00:00 +0100\r\nMessage-ID: <m{n}@test.example>\r\n\r\n{body}\r\n"
    ).encode()


def test_words_phrases_and_fields_find_the_same_mail_on_every_database(db: Database) -> None:
    ids = {}
    with db.write() as session:
        for n, subject, body, sender in (
            (1, "Angebot Solardach", "Das Dach ist 120 m2 groß.", "eva@nordwind.example"),
            (2, "Rueckfrage", "Ist das Solardach schon bestellt? Groß war es.", "olaf@brand.example"),
            (3, "Termin", "Dach groß, Angebot folgt", "ina@sommer.example"),
        ):
            ids[n] = mail_store.store_message(
                session, parse_message(_mail(n, subject, body, sender)), now=NOW
            ).id
    with db.read() as session:

        def found(query: str) -> list[int]:
            return sorted(mail_search.search_ids(session, query, ZONE))

        assert found("solardach") == [ids[1], ids[2]]
        assert found("solar") == [ids[1], ids[2]]  # a word's beginning finds it
        assert found("angebot dach") == [ids[1], ids[3]]  # every word
        assert found('"dach groß"') == [ids[3]]  # the phrase, in order
        assert found("brand") == [ids[2]]  # addresses are words too
        assert found("solardach -bestellt") == [ids[1]]
        assert found("termin OR rueckfrage") == [ids[2], ids[3]]
        assert found("from:eva") == [ids[1]]
        assert found("zeppelin") == []
