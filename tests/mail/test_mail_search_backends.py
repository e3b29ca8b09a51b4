"""The mail search's words, the same on both databases: SQLite's FTS5 index and PostgreSQL's full-text search
(words as prefixes, all of them; a quoted phrase in order; addresses searchable; the other query terms too)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from crm_tui.core.db import Database
from crm_tui.core.errors import ValidationError
from crm_tui.core.services import contacts, leads, mail_search, mail_store, organizations
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


def test_a_search_of_too_many_words_is_refused_with_a_message_on_every_database(db: Database) -> None:
    """999 words made SQLite fail with "Expression tree is too large"; PostgreSQL took them. Both now take up to
    MAX_WORDS words, whatever their shape (words, OR, operators, one hyphenated word), and refuse more, saying so."""
    body = " ".join(f"wort{i}" for i in range(mail_search.MAX_WORDS))
    with db.write() as session:
        found_id = mail_store.store_message(
            session, parse_message(_mail(1, "Lange Liste", body, "eva@nordwind.example")), now=NOW
        ).id
    words = [f"wort{i}" for i in range(mail_search.MAX_WORDS)]
    with db.read() as session:
        for query in (
            " ".join(words),
            " OR ".join(words),
            "-".join(words),
            " ".join(f"from:{w}" for w in words),
        ):
            found = mail_search.search_ids(session, query, ZONE)
            assert found == ([] if query.startswith("from:") else [found_id]), query
        many = [f"w{i}" for i in range(999)]
        for query, count in (
            (" ".join(many), 999), (" OR ".join(many), 999), ("-".join(many), 999),
            (" ".join(f"from:{w}" for w in many), 999), (" ".join(words) + " to:x", 33),
        ):  # fmt: skip
            with pytest.raises(ValidationError) as caught:
                mail_search.search_ids(session, query, ZONE)
            assert caught.value.errors == {
                "query": f"a search takes at most 32 words (this one has {count}): leave some out"
            }
        # Record searches take the first words (and their lists say so): 999 words are no error either.
        assert contacts.search_contacts(session, " ".join(many)) == []
        assert organizations.search_organizations(session, " ".join(many)) == []
        assert leads.search_leads(session, " ".join(many)) == []
