"""Recipients as To, Cc and Bcc complete them: the people a mail can go to, found by what is typed.

Who: contacts (every address of theirs), leads, organizations' general addresses (info@) and the team (active
users). What matches: every typed word is the start of a word of the name, in any order ("Lea Sch", "Scholz
Lea"), or the typed text is a part of the address ("lea.sch", "@lindgruen"). Best first: a name match or an
address that starts so, then the people last written to (outgoing mail and the outbox, newest first), then by
name.

It runs on each key in To, so it stays small: the people written to lately and the team are read once per
mail being written (an ``AddressBook``); the rest is found through the search indexes (SQLite's trigram index,
PostgreSQL's pg_trgm) with a bounded number of candidates, and the exact rule is applied to those here.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, func, select
from sqlalchemy import text as sql_text
from sqlmodel import Session, col

from crm_tui.core import models as m
from crm_tui.core import search_index
from crm_tui.core.mail_identity import format_address, stored_addresses
from crm_tui.core.search_text import like_pattern

MIN_PART = 3  # a part of an address counts from three characters (two find half the book)
CANDIDATES = 120  # rows read per source and pass: enough to rank, few enough for every key
RECENT_MESSAGES = 400  # outgoing mails read for "written to lately"
KIND_ORDER = {"contact": 0, "user": 1, "lead": 2, "organization": 3}
_WORD = re.compile(r"\w+")
_COMBINING = re.compile("[\u0300-\u036f]")  # the accents NFKD splits off


@dataclass(frozen=True)
class Recipient:
    """Someone a mail can go to: a record's name and one of its addresses."""

    name: str
    address: str
    kind: str  # contact, lead, organization, user
    record_id: int
    last_written: datetime | None = None

    @property
    def text(self) -> str:
        """As it goes into To: "Lea Scholz <lea.scholz@x.example>"."""
        return format_address(self.name, self.address) if self.name else self.address


@dataclass
class AddressBook:
    """What a mail being written reads once: when each address was last written to, and the people behind
    those addresses and the team (few: matched here, without a query per key)."""

    last_written: dict[str, datetime] = field(default_factory=dict)
    known: list[Recipient] = field(default_factory=list)


def typed_words(typed: str) -> list[str]:
    """The words of what is typed, lower case, without the <>"' a half-typed "Name <addr" carries."""
    return [
        word for word in typed.lower().replace("<", " ").replace(">", " ").replace('"', " ").split() if word
    ][:6]


def fold(text: str) -> str:
    """Lower case without accents ("Müller" and "muller" alike), as the word index (SQLite) folds them."""
    lowered = text.lower()
    if lowered.isascii():
        return lowered
    return _COMBINING.sub("", unicodedata.normalize("NFKD", lowered))


def _name_words(name: str) -> list[str]:
    folded = fold(name)
    return [*folded.split(), *_WORD.findall(folded)]


def tier(words: list[str], name: str, address: str) -> int | None:
    """0: every typed word starts a word of the name (any order), or the address starts with what is typed;
    1: what is typed is a part of the address; None: no match. ``words`` are folded (``fold``)."""
    if not words:
        return None
    name_words = _name_words(name)
    if name_words and all(any(part.startswith(word) for part in name_words) for word in words):
        return 0
    if len(words) == 1:
        address = fold(address)
        if address.startswith(words[0]):
            return 0
        if words[0] in address:
            return 1
    return None


def _sort_key(recipient: Recipient, rank: int) -> tuple[Any, ...]:
    written = recipient.last_written
    return (
        rank,
        0 if written else 1,
        -written.timestamp() if written else 0.0,
        KIND_ORDER.get(recipient.kind, 9),
        recipient.name.lower(),
        recipient.address,
    )


def last_written(session: Session, *, limit: int = RECENT_MESSAGES) -> dict[str, datetime]:
    """Address -> when I last wrote to it: the recipients of the newest outgoing mails and outbox items."""
    found: dict[str, datetime] = {}

    def note(addresses: Iterable[str], when: datetime | None) -> None:
        if when is None:
            return
        for address in addresses:
            if address not in found or found[address] < when:
                found[address] = when

    outgoing = session.execute(
        select(col(m.MailMessage.to_addresses), col(m.MailMessage.cc_addresses), col(m.MailMessage.sent_at))
        .where(col(m.MailMessage.is_outgoing).is_(True), col(m.MailMessage.sent_at).is_not(None))
        .order_by(col(m.MailMessage.sent_at).desc())
        .limit(limit)
    )
    for to, cc, sent_at in outgoing:
        note(stored_addresses(f"{to}\n{cc}"), sent_at)
    queued = session.execute(
        select(col(m.OutboxItem.recipients), col(m.OutboxItem.created_at))
        .order_by(col(m.OutboxItem.id).desc())
        .limit(limit)
    )
    for recipients, created_at in queued:
        note((line.strip().lower() for line in recipients.splitlines() if "@" in line), created_at)
    return found


def _people_at(session: Session, addresses: list[str]) -> list[Recipient]:
    """Contacts, leads and organizations with one of these addresses."""
    people: list[Recipient] = []
    for start in range(0, len(addresses), 400):  # bound the IN list
        chunk = addresses[start : start + 400]
        for contact_id, first, last, address in session.execute(
            select(
                col(m.Contact.id),
                col(m.Contact.first_name),
                col(m.Contact.last_name),
                col(m.ContactEmail.address),
            )
            .join(m.ContactEmail, col(m.ContactEmail.contact_id) == col(m.Contact.id))
            .where(col(m.ContactEmail.address).in_(chunk))
        ):
            people.append(Recipient(f"{first} {last}".strip(), address, "contact", contact_id))
        for lead_id, person, company, address in session.execute(
            select(
                col(m.Lead.id), col(m.Lead.person_name), col(m.Lead.company_name), col(m.LeadEmail.address)
            )
            .join(m.LeadEmail, col(m.LeadEmail.lead_id) == col(m.Lead.id))
            .where(col(m.LeadEmail.address).in_(chunk))
        ):
            people.append(Recipient(person or company or "", address, "lead", lead_id))
        for org_id, name, address in session.execute(
            select(col(m.Organization.id), col(m.Organization.name), col(m.OrganizationEmail.address))
            .join(m.OrganizationEmail, col(m.OrganizationEmail.organization_id) == col(m.Organization.id))
            .where(col(m.OrganizationEmail.address).in_(chunk))
        ):
            people.append(Recipient(name, address, "organization", org_id))
    return people


def address_book(session: Session) -> AddressBook:
    """Read once per mail being written: who was written to when, those people, and the team."""
    written = last_written(session)
    known = [
        Recipient(name, email_address.lower(), "user", user_id)
        for user_id, name, email_address in session.execute(
            select(col(m.User.id), col(m.User.name), col(m.User.email)).where(col(m.User.active).is_(True))
        )
    ]
    known.extend(_people_at(session, sorted(written)))
    return AddressBook(written, known)


def _word_query(words: list[str]) -> str:
    """An FTS5 MATCH string: a word starting with each typed word (its letters and digits, each part)."""
    parts = [part for word in words for part in _WORD.findall(word)]
    return " AND ".join('"' + part.replace('"', '""') + '"*' for part in parts)


def _indexed(index: str, match: str, key: Any) -> Any:
    """``key IN (the rows of the full-text index ``index`` matching ``match``)``."""
    rows = sql_text(f"SELECT rowid FROM {index} WHERE {index} MATCH :match").bindparams(match=match)
    return key.in_(rows.columns(rowid=Integer))


def _word_start(column: Any, word: str) -> Any:
    """``column`` has a word starting with ``word`` (at its start, after a space or a hyphen): a regular
    expression PostgreSQL's trigram index serves (three LIKEs joined by OR made it read the whole table)."""
    return column.regexp_match("(^|[ -])" + re.sub(r"(\W)", r"\\\1", word))


# (kind, the record's search text and id, its word index, its substring index, a query of name and address)
def _sources() -> list[tuple[str, Any, Any, str, str | None, Any]]:
    return [
        (
            "contact", col(m.Contact.search_text), col(m.Contact.id), "contact_words", "contact_search",
            select(
                col(m.Contact.id), col(m.Contact.first_name) + " " + col(m.Contact.last_name),
                col(m.ContactEmail.address),
            )
            .join(m.ContactEmail, col(m.ContactEmail.contact_id) == col(m.Contact.id)),
        ),
        (
            "lead", col(m.Lead.search_text), col(m.Lead.id), "lead_words", None,
            select(
                col(m.Lead.id), func.coalesce(col(m.Lead.person_name), col(m.Lead.company_name), ""),
                col(m.LeadEmail.address),
            )
            .join(m.LeadEmail, col(m.LeadEmail.lead_id) == col(m.Lead.id)),
        ),
        (
            "organization", col(m.Organization.search_text), col(m.Organization.id), "organization_words", None,
            select(col(m.Organization.id), col(m.Organization.name), col(m.OrganizationEmail.address))
            .join(m.OrganizationEmail, col(m.OrganizationEmail.organization_id) == col(m.Organization.id)),
        ),
    ]  # fmt: skip


def _candidates(session: Session, words: list[str], *, word_starts: bool) -> list[Recipient]:
    """Contacts, leads and organizations' addresses that may match, at most CANDIDATES of each: every word
    at the start of a word of their search text (``word_starts``: names, and addresses from their start),
    else the one word as a part of an address. The rule itself is applied by the caller."""
    indexed = search_index.available(session)
    found: list[Recipient] = []
    for kind, search_text, key, words_index, substring_index, query in _sources():
        if word_starts:
            match = _word_query(words)
            if indexed and match:
                conditions = [_indexed(words_index, match, key)]
            else:
                conditions = [_word_start(search_text, word) for word in words]
        else:
            address = query.selected_columns[2]
            conditions = [address.like(like_pattern(words[0]), escape="\\")]
            trigrams = search_index.match_expression(words) if indexed and substring_index else None
            if trigrams is not None and substring_index:  # (trigrams only with a substring index)
                conditions.append(_indexed(substring_index, trigrams, key))
            else:
                conditions.append(search_text.like(like_pattern(words[0]), escape="\\"))
        for record_id, name, address_value in session.execute(query.where(*conditions).limit(CANDIDATES)):
            found.append(Recipient((name or "").strip(), address_value, kind, record_id))
    return found


def complete(
    session: Session,
    typed: str,
    *,
    book: AddressBook | None = None,
    limit: int = 8,
    skip: Iterable[str] = (),
) -> list[Recipient]:
    """The people ``typed`` may mean, best first (see the module's doc); ``skip``: addresses already in the
    field. One word needs two letters (one finds too many)."""
    words = typed_words(typed)
    if not words or (len(words) == 1 and len(words[0]) < 2):
        return []
    book = book if book is not None else address_book(session)
    skipped = {address.lower() for address in skip}
    folded = [fold(word) for word in words]
    ranked: dict[str, tuple[int, Recipient]] = {}

    def consider(recipients: Iterable[Recipient]) -> None:
        for recipient in recipients:
            address = recipient.address.lower()
            if address in skipped:
                continue
            rank = tier(folded, recipient.name, address)
            if rank is None:
                continue
            seen = ranked.get(address)
            # One entry per address: the better match, else the one listed first (contact, user, lead, org).
            if seen is None or (rank, KIND_ORDER.get(recipient.kind, 9)) < (
                seen[0],
                KIND_ORDER.get(seen[1].kind, 9),
            ):
                written = book.last_written.get(address)
                ranked[address] = (
                    rank,
                    Recipient(recipient.name, address, recipient.kind, recipient.record_id, written),
                )

    consider(book.known)
    consider(_candidates(session, words, word_starts=True))
    if (
        len(words) == 1
        and len(words[0]) >= MIN_PART
        and sum(1 for rank, _ in ranked.values() if rank == 0) < limit
    ):
        consider(_candidates(session, words, word_starts=False))  # a part of an address
    ordered = sorted(ranked.values(), key=lambda item: _sort_key(item[1], item[0]))
    return [recipient for _, recipient in ordered[:limit]]


def recipient_of(session: Session, address: str) -> Recipient | None:
    """The record behind an address (a contact first, then a user, a lead, an organization)."""
    people = _people_at(session, [address.lower()])
    user = session.execute(
        select(col(m.User.id), col(m.User.name)).where(col(m.User.email) == address.lower())
    ).first()
    if user is not None:
        people.append(Recipient(user[1], address.lower(), "user", user[0]))
    people.sort(key=lambda person: KIND_ORDER.get(person.kind, 9))
    return people[0] if people else None
