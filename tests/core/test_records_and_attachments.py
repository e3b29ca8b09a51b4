"""Quotes, tickets, comments, documents, stored mail and the uniform TYPE:ID reference."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import pytest

from crm_tui.core.db import Database
from crm_tui.core.errors import CrmError, NotFound, ValidationError
from crm_tui.core.services import attachments, mail_store, records, sales_documents
from crm_tui.core.services.sales_documents import QuoteInput, QuoteItemInput, TicketInput
from crm_tui.core.types import RecordRef, RecordType
from tests.utils import factories
from tests.utils.ids import id_of


def test_record_references_parse_and_print() -> None:
    ref = RecordRef.parse(" Contact:42 ")
    assert (ref.type, ref.id, str(ref)) == (RecordType.CONTACT, 42, "contact:42")
    for bad in ("contact", "contact:0", "contact:-1", "contact:x", "invoice:3", ":3"):
        with pytest.raises(ValueError):
            RecordRef.parse(bad)


def test_records_resolve_and_label(db: Database, now: datetime) -> None:
    with db.write() as session:
        person = factories.contact(session, now, first_name="Ida", last_name="Lang")
        ref = RecordRef(RecordType.CONTACT, id_of(person))
        assert records.record_label(session, ref) == "Ida Lang"
        with pytest.raises(NotFound, match="contact:999 does not exist"):
            records.get_record(session, RecordRef(RecordType.CONTACT, 999))


def test_quotes_total_exactly_and_number_themselves(db: Database, now: datetime) -> None:
    with db.write() as session:
        deal = factories.deal(session, now, factories.pipeline(session), currency="CHF")
        quote = sales_documents.create_quote(
            session,
            QuoteInput(
                opportunity_id=id_of(deal),
                items=[QuoteItemInput("Hours", "2.5", 80_00), QuoteItemInput("Part", 3, 19_99)],
            ),
            now=now,
        )
        assert quote.total_cents == 2_59_97 and quote.currency == "CHF"
        assert quote.number == "Q-2026-0001"
        second = sales_documents.create_quote(session, QuoteInput(opportunity_id=id_of(deal)), now=now)
        assert second.number == "Q-2026-0002"
        with pytest.raises(ValidationError) as excinfo:
            sales_documents.create_quote(
                session,
                QuoteInput(
                    opportunity_id=id_of(deal),
                    number="Q-2026-0001",
                    status="paid",
                    items=[QuoteItemInput("", "0", -1), QuoteItemInput("x", "1.0005", 1)],
                ),
                now=now,
            )
        assert set(excinfo.value.errors) == {
            "number",
            "status",
            "items[0].description",
            "items[0].quantity",
            "items[0].unit_price",
            "items[1].quantity",
        }


def test_ticket_rules(db: Database, now: datetime) -> None:
    with db.write() as session:
        with pytest.raises(ValidationError) as excinfo:
            sales_documents.create_ticket(
                session, TicketInput(subject="", status="solved", contact_id=77), now=now
            )
        assert set(excinfo.value.errors) == {"subject", "status", "contact_id"}
        ticket = sales_documents.create_ticket(session, TicketInput(subject="Inverter error"), now=now)
        sales_documents.update_ticket(
            session, id_of(ticket), TicketInput(subject="Inverter error", status="closed"), now=now
        )
        assert ticket.status == "closed"


def test_comments_need_text_and_an_existing_record(db: Database, now: datetime) -> None:
    with db.write() as session:
        with pytest.raises(ValidationError, match="contact:5 does not exist"):
            attachments.add_comment(session, RecordRef(RecordType.CONTACT, 5), "hi", author_id=None, now=now)
        with pytest.raises(ValidationError, match="cannot carry comments"):
            attachments.add_comment(session, RecordRef(RecordType.USER, 1), "hi", author_id=None, now=now)
        person = factories.contact(session, now)
        with pytest.raises(ValidationError, match="body: is required"):
            attachments.add_comment(
                session, RecordRef(RecordType.CONTACT, id_of(person)), " ", author_id=None, now=now
            )


def test_documents_are_copied_into_the_store_and_named_safely(
    db: Database, now: datetime, tmp_path: Path
) -> None:
    """A copy of the file (three parts of the database store's 1 MiB, or a file beside SQLite), read back
    byte for byte after the source is gone; removed with the last row that uses it."""
    source = tmp_path / "..\u202eevil\x1b[31m.pdf"
    content = os.urandom(2 * attachments.PART_BYTES + 123)
    source.write_bytes(content)
    store = attachments.store_for(db, tmp_path / "documents")
    with db.write() as session:
        person = factories.contact(session, now)
        ref = RecordRef(RecordType.CONTACT, id_of(person))
        doc = attachments.add_document(session, ref, source, store=store, added_by_id=None, now=now)
        assert (
            "\x1b" not in doc.filename and "\u202e" not in doc.filename and not doc.filename.startswith(".")
        )
        with pytest.raises(ValidationError, match="does not exist"):
            attachments.add_document(
                session, ref, tmp_path / "missing.pdf", store=store, added_by_id=None, now=now
            )
    source.unlink()
    with db.read() as session:
        assert store.read(session, doc.stored_name) == content
        assert store.missing(session, [doc.stored_name, "0" * 64]) == ["0" * 64]
        saved = attachments.export_document(session, store, doc, tmp_path / "out")
        again = attachments.export_document(session, store, doc, tmp_path / "out")
    assert saved.read_bytes() == content and again.name.endswith("(1).pdf"), "never overwritten"
    with db.write() as session:
        removable = attachments.delete_document(session, id_of(doc))
    store.discard(removable)
    with db.read() as session:
        assert store.missing(session, [doc.stored_name]) == [doc.stored_name]
        with pytest.raises(CrmError, match="missing"):
            store.read(session, doc.stored_name)
    if isinstance(store, attachments.FileStore):
        assert os.listdir(tmp_path / "documents" / doc.stored_name[:2]) == []


def test_stored_mail_keeps_raw_bytes_and_links_once(db: Database, now: datetime) -> None:
    raw = b"Subject: hello\r\nFrom: a@example.com\r\n\r\nbody\x00with nul\r\n"
    with db.write() as session:
        person = factories.contact(session, now)
        message = mail_store.store_message(session, mail_store.MessageData(raw=raw, subject="hello"), now=now)
        ref = RecordRef(RecordType.CONTACT, id_of(person))
        first = mail_store.link_message(session, id_of(message), ref, reason="address", now=now)
        again = mail_store.link_message(session, id_of(message), ref, reason="manual", now=now)
        assert first.id == again.id
        assert [m.subject for m in mail_store.messages_on(session, ref)] == ["hello"]
        with pytest.raises(ValidationError, match="does not exist"):
            mail_store.link_message(
                session, id_of(message), RecordRef(RecordType.LEAD, 9), reason="x", now=now
            )
    with db.read() as session:
        from crm_tui.core.services import mailbox

        assert mailbox.raw_of(session, id_of(message)) == raw


def test_a_file_shared_by_two_records_is_removed_only_with_the_last(
    db: Database, now: datetime, tmp_path: Path
) -> None:
    from crm_tui.core.services import contacts, opportunities

    source = tmp_path / "site-plan.pdf"
    source.write_bytes(b"plan")
    store = attachments.store_for(db, tmp_path / "documents")
    with db.write() as session:
        person = factories.contact(session, now)
        deal = factories.deal(session, now, factories.pipeline(session))
        doc = attachments.add_document(
            session,
            RecordRef(RecordType.CONTACT, id_of(person)),
            source,
            store=store,
            added_by_id=None,
            now=now,
        )
        attachments.copy_document(
            session, id_of(doc), RecordRef(RecordType.OPPORTUNITY, id_of(deal)), now=now
        )
        assert contacts.delete_contact(session, id_of(person)) == [], "the deal still uses the file"
        assert opportunities.delete_opportunity(session, id_of(deal)) == [doc.stored_name]
