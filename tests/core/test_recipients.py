"""Recipient completion (To, Cc, Bcc): any word of a name in any order, any part of an address, over contacts
(all their addresses), leads, organizations' addresses and the team; the people last written to first. On
SQLite and on PostgreSQL (the ``db`` fixture)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import col

from crm_tui.core import models as m
from crm_tui.core.db import Database
from crm_tui.core.services import contacts, recipients, users
from tests.conftest import NOW
from tests.utils import factories


@pytest.fixture
def book(db: Database) -> Database:
    with db.write() as session:
        org = factories.organization(
            session, NOW, "Lindgrün Metallbau", emails=["info@lindgruen-metallbau.example"]
        )
        factories.contact(
            session, NOW, "Scholz", first_name="Lea", organization_id=org.id,
            emails=["lea.scholz@lindgruen-metallbau.example", "lea@privat-post.example"],
        )  # fmt: skip
        # Names around Lea Scholz: a first-name-only completion offered these for "Lea Sch".
        factories.contact(session, NOW, "Werner", first_name="Lea", emails=["lea.werner@ahorn.example"])
        factories.contact(session, NOW, "Schmidt", first_name="Leon", emails=["leon.schmidt@ahorn.example"])
        factories.contact(session, NOW, "Scholz", first_name="Tobias", emails=["t.scholz@duenen.example"])
        factories.contact(
            session, NOW, "Müller-Lüdenscheidt", first_name="Jörg", emails=["joerg@mueller.example"]
        )
        factories.lead(
            session, NOW, title="Wärmepumpe", person_name="Jana Roth", emails=["jana.roth@neu.example"]
        )
        users.create_user(session, users.UserInput("Sven Holm", "sven.holm@example.com"), now=NOW)
        users.create_user(
            session, users.UserInput("Leonie Scharf", "leonie.scharf@example.com", active=False), now=NOW
        )
    return db


def texts(db: Database, typed: str, **options: Any) -> list[str]:  # options: complete()'s keywords
    with db.read() as session:
        return [r.text for r in recipients.complete(session, typed, **options)]


def test_a_first_name_finds_every_address_of_the_person(book: Database) -> None:
    found = texts(book, "Lea")
    assert "Lea Scholz <lea.scholz@lindgruen-metallbau.example>" in found
    assert "Lea Scholz <lea@privat-post.example>" in found
    assert "Lea Werner <lea.werner@ahorn.example>" in found
    assert not any("Leon" in text for text in found), "a word of the name starts with Lea, not Leo"


@pytest.mark.parametrize("typed", ["Lea Scho", "Scholz Lea", "lea sch", "LEA SCHOLZ", "lea.sch"])
def test_words_of_the_name_in_any_order_or_a_part_of_the_address(book: Database, typed: str) -> None:
    found = texts(book, typed)
    assert found and found[0] == "Lea Scholz <lea.scholz@lindgruen-metallbau.example>", found
    assert not any("Werner" in text or "Leon" in text or "Tobias" in text for text in found), found


def test_a_last_name_finds_everyone_of_that_name(book: Database) -> None:
    found = texts(book, "Scholz")
    assert {
        "Lea Scholz <lea.scholz@lindgruen-metallbau.example>",
        "Tobias Scholz <t.scholz@duenen.example>",
    } <= set(found)
    assert not any("Schmidt" in text for text in found)


def test_lea_sch_offers_lea_scholz_and_nobody_else(book: Database) -> None:
    found = texts(book, "Lea Sch")
    assert found == [
        "Lea Scholz <lea.scholz@lindgruen-metallbau.example>",
        "Lea Scholz <lea@privat-post.example>",
    ]


def test_a_part_of_an_address_in_its_middle(book: Database) -> None:
    assert texts(book, "privat-post") == ["Lea Scholz <lea@privat-post.example>"]
    assert texts(book, "duenen") == ["Tobias Scholz <t.scholz@duenen.example>"]


def test_a_word_after_a_hyphen_and_accents_as_typed(book: Database) -> None:
    assert texts(book, "Lüd") == ["Jörg Müller-Lüdenscheidt <joerg@mueller.example>"]
    assert texts(book, "jörg") == ["Jörg Müller-Lüdenscheidt <joerg@mueller.example>"]


def test_leads_organizations_and_the_team_complete_too(book: Database) -> None:
    assert texts(book, "Jana") == ["Jana Roth <jana.roth@neu.example>"]
    assert "Lindgrün Metallbau <info@lindgruen-metallbau.example>" in texts(book, "Lindgrün")
    assert texts(book, "info@lind") == ["Lindgrün Metallbau <info@lindgruen-metallbau.example>"]
    assert texts(book, "Sven") == ["Sven Holm <sven.holm@example.com>"], "a colleague"
    assert texts(book, "Leonie") == [], "an inactive user is not offered"
    with book.read() as session:
        (sven,) = recipients.complete(session, "Holm")
    assert sven.kind == "user"


def test_people_written_to_lately_come_first(book: Database) -> None:
    assert texts(book, "Lea")[0].startswith("Lea Scholz"), "by name while nobody was written to"
    with book.write() as session:
        for when, to in (
            (NOW - timedelta(days=30), "Lea Scholz <lea@privat-post.example>"),
            (NOW - timedelta(days=2), "Lea Werner <lea.werner@ahorn.example>"),
        ):
            session.add(
                m.MailMessage(
                    subject="Angebot",
                    from_address="me@example.com",
                    to_addresses=to,
                    sent_at=when,
                    is_outgoing=True,
                    received_at=when,
                )  # fmt: skip
            )
    with book.read() as session:
        found = recipients.complete(session, "Lea")
    assert [r.text for r in found][:2] == [
        "Lea Werner <lea.werner@ahorn.example>",
        "Lea Scholz <lea@privat-post.example>",
    ]
    assert found[0].last_written is not None
    # A name match stays before a match in the middle of an address, however recent.
    with book.write() as session:
        session.add(
            m.OutboxItem(
                account_id=factories.mail_inbox(session, NOW).account_id,
                message_id_header="<x@y>",
                from_address="me@example.com",
                recipients="t.scholz@duenen.example",
                subject="s",
                raw=b"",
                created_at=NOW,
            )  # fmt: skip
        )
    assert texts(book, "Tobias")[0] == "Tobias Scholz <t.scholz@duenen.example>"
    assert texts(book, "scholz")[0] == "Tobias Scholz <t.scholz@duenen.example>", "written to today"


def test_the_recipients_already_in_the_field_are_not_offered_again(book: Database) -> None:
    found = texts(book, "Lea Scholz", skip=["lea.scholz@lindgruen-metallbau.example"])
    assert found == ["Lea Scholz <lea@privat-post.example>"]


def test_one_letter_finds_nothing_and_a_renamed_contact_is_found_by_the_new_name(book: Database) -> None:
    assert texts(book, "L") == []
    assert texts(book, "Zander") == []
    with book.write() as session:
        contact_id = session.scalars(
            select(col(m.ContactEmail.contact_id)).where(
                col(m.ContactEmail.address) == "lea.werner@ahorn.example"
            )
        ).one()
        data = contacts.ContactInput(
            first_name="Lea", last_name="Zander", emails=["lea.werner@ahorn.example"]
        )
        contacts.update_contact(session, contact_id, data, now=NOW)
    assert texts(book, "Zander") == ["Lea Zander <lea.werner@ahorn.example>"]
    assert texts(book, "Werner") == ["Lea Zander <lea.werner@ahorn.example>"], "by a part of the address"


def test_completion_stays_fast_on_a_large_address_book(db: Database) -> None:
    """Thousands of people: a key's lookup reads a bounded number of rows through the indexes."""
    import time

    from sqlalchemy import insert

    firsts = ["Anna", "Lea", "Jonas", "Mia", "Paul", "Emma", "Lukas", "Sofia"]
    lasts = ["Scholz", "Schmidt", "Weber", "Wagner", "Becker", "Huber", "Maier", "Jung"]
    with db.write() as session:
        connection = session.connection()
        rows, addresses = [], []
        for i in range(1, 20_001):
            first, last = firsts[i % 8], lasts[(i // 8) % 8]
            address = f"{first.lower()}.{last.lower()}{i}@firma{i % 997}.example"
            rows.append(
                {"id": i, "first_name": first, "last_name": last, "mail_opt_out": False,
                 "search_text": f"{first} {last} {address}".lower(), "created_at": NOW, "updated_at": NOW}
            )  # fmt: skip
            addresses.append({"contact_id": i, "address": address, "position": 0})
        connection.execute(insert(m.Contact), rows)
        connection.execute(insert(m.ContactEmail), addresses)
    with db.read() as session:
        book = recipients.address_book(session)
        slowest = 0.0
        for typed in ("Le", "Lea Sch", "Scholz", "lea.scholz1", "firma99", "zz", "Xaver"):
            started = time.perf_counter()
            recipients.complete(session, typed, book=book)
            slowest = max(slowest, time.perf_counter() - started)
        assert len(recipients.complete(session, "Lea Scholz", book=book, limit=50)) == 50
    assert slowest < 0.25, f"a key's lookup took {slowest * 1000:.0f} ms"
