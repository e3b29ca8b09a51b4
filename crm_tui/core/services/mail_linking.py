"""Which records a message belongs to, and why.

Automatic links (``reason``): ``address`` (From/To/Cc is an address of a contact, lead or organization; my own
addresses never count), ``domain`` (the sender's or a recipient's domain is an organization's, never for
free-mail domains), ``thread`` (In-Reply-To / References name a message filed on an opportunity or ticket) and
``subject`` (a reply whose thread headers were lost: same thread subject, filed on an opportunity or ticket in
the last 90 days). ``manual`` links and the user's unlinks win: automatic linking never removes the one nor
re-creates the other.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from crm_tui.core import bulk
from crm_tui.core import models as m
from crm_tui.core.addresses import domain_of
from crm_tui.core.mail_identity import stored_addresses
from crm_tui.core.services.mail_store import link_message
from crm_tui.core.types import RecordRef, RecordType

THREAD_TYPES = (RecordType.OPPORTUNITY.value, RecordType.TICKET.value)
SUBJECT_WINDOW = timedelta(days=90)
MAX_THREAD_IDS = 100


def addresses_in(text: str) -> list[str]:
    """Addresses in stored address lines ("Name <a@b>" or "a@b", one per line), lower case."""
    return stored_addresses(text)


def _existing(session: Session, message_id: int) -> tuple[set[tuple[str, int]], set[tuple[str, int]]]:
    links = {
        (row.record_type, row.record_id)
        for row in session.execute(
            select(col(m.MailLink.record_type), col(m.MailLink.record_id)).where(
                col(m.MailLink.message_id) == message_id
            )
        )
    }
    unlinks = {
        (row.record_type, row.record_id)
        for row in session.execute(
            select(col(m.MailUnlink.record_type), col(m.MailUnlink.record_id)).where(
                col(m.MailUnlink.message_id) == message_id
            )
        )
    }
    return links, unlinks


class _Lookup:
    """What automatic linking needs for a batch of messages, fetched in a handful of queries."""

    def __init__(
        self,
        session: Session,
        messages: list[m.MailMessage],
        *,
        mine: set[str],
        free_domains: set[str] | frozenset[str],
    ):
        self.mine = mine
        self.free_domains = free_domains
        self.mine_domains = {domain_of(a) for a in mine} - {""}
        people: set[str] = set()
        refs: set[str] = set()
        for message in messages:
            people.update(self.people_of(message))
            refs.update(self.thread_ids_of(message))
        self.contacts: dict[str, list[int]] = {}
        self.leads: dict[str, list[int]] = {}
        self.org_emails: dict[str, list[int]] = {}
        self.org_domains: dict[str, list[int]] = {}
        self.thread_links: dict[str, list[tuple[int, str, int]]] = {}  # header -> (message, record type, id)
        addresses = sorted(people)
        for start in range(0, len(addresses), 500):
            chunk = addresses[start : start + 500]
            for target, column, owner in (
                (self.contacts, col(m.ContactEmail.address), col(m.ContactEmail.contact_id)),
                (self.leads, col(m.LeadEmail.address), col(m.LeadEmail.lead_id)),
                (self.org_emails, col(m.OrganizationEmail.address), col(m.OrganizationEmail.organization_id)),
            ):
                for address, record_id in session.execute(
                    select(column, owner).where(bulk.among(session, column, chunk))
                ):
                    target.setdefault(address, []).append(record_id)
        domains = sorted({domain_of(a) for a in people} - free_domains - self.mine_domains - {""})
        for start in range(0, len(domains), 500):
            chunk = domains[start : start + 500]
            for domain, org_id in session.execute(
                select(col(m.OrganizationDomain.domain), col(m.OrganizationDomain.organization_id)).where(
                    bulk.among(session, col(m.OrganizationDomain.domain), chunk)
                )
            ):
                self.org_domains.setdefault(domain, []).append(org_id)
        thread_ids = sorted(refs)
        for start in range(0, len(thread_ids), 500):
            chunk = thread_ids[start : start + 500]
            # Two indexed look-ups (the messages by Message-ID, then their links), not a join: SQLite's planner
            # started the join from every deal and ticket link, once per batch.
            headers = dict(
                session.execute(
                    select(col(m.MailMessage.id), col(m.MailMessage.message_id_header)).where(
                        bulk.among(session, col(m.MailMessage.message_id_header), chunk)
                    )
                ).all()
            )
            if not headers:
                continue
            for message_id, record_type, record_id in session.execute(
                select(
                    col(m.MailLink.message_id), col(m.MailLink.record_type), col(m.MailLink.record_id)
                ).where(
                    bulk.among(session, col(m.MailLink.message_id), list(headers)),
                    col(m.MailLink.record_type).in_(THREAD_TYPES),
                )
            ):
                self.thread_links.setdefault(headers[message_id], []).append(
                    (message_id, record_type, record_id)
                )

    def people_of(self, message: m.MailMessage) -> list[str]:
        found = [
            (message.from_address or "").lower(),
            *addresses_in(message.to_addresses),
            *addresses_in(message.cc_addresses),
        ]
        # Only addresses: a bounce's "MAILER-DAEMON" or a bare word names nobody (and has no domain).
        return [a for a in dict.fromkeys(found) if "@" in a and a not in self.mine]

    @staticmethod
    def thread_ids_of(message: m.MailMessage) -> list[str]:
        return [i for i in [message.in_reply_to, *(message.references or "").splitlines()] if i][
            :MAX_THREAD_IDS
        ]

    def candidates(self, session: Session, message: m.MailMessage) -> list[tuple[RecordRef, str]]:
        found: dict[tuple[str, int], str] = {}
        people = self.people_of(message)
        for address in people:
            for record_id in self.contacts.get(address, ()):
                found.setdefault((RecordType.CONTACT.value, record_id), "address")
            for record_id in self.leads.get(address, ()):
                found.setdefault((RecordType.LEAD.value, record_id), "address")
            for record_id in self.org_emails.get(address, ()):
                found.setdefault((RecordType.ORGANIZATION.value, record_id), "address")
        for address in people:
            for record_id in self.org_domains.get(domain_of(address), ()):
                found.setdefault((RecordType.ORGANIZATION.value, record_id), "domain")
        thread_ids = self.thread_ids_of(message)
        if thread_ids:
            for thread_id in thread_ids:
                for parent, record_type, record_id in self.thread_links.get(thread_id, ()):
                    if parent != message.id:
                        found.setdefault((record_type, record_id), "thread")
        elif message.subject_key and message.subject_key != " ".join(message.subject.lower().split()):
            # A reply (its subject had a Re:/AW: prefix) without thread headers: fall back to the thread subject.
            when = message.sent_at or message.received_at
            same = select(col(m.MailMessage.id)).where(
                col(m.MailMessage.subject_key) == message.subject_key, col(m.MailMessage.id) != message.id
            )
            if when is not None:
                same = same.where(col(m.MailMessage.sent_at) >= when - SUBJECT_WINDOW)
            for record_type, record_id in session.execute(
                select(col(m.MailLink.record_type), col(m.MailLink.record_id)).where(
                    col(m.MailLink.message_id).in_(same),
                    col(m.MailLink.record_type).in_(THREAD_TYPES),
                )
            ):
                found.setdefault((record_type, record_id), "subject")
        return [(RecordRef(RecordType(t), i), reason) for (t, i), reason in found.items()]


def candidates(
    session: Session, message: m.MailMessage, *, mine: set[str], free_domains: set[str] | frozenset[str]
) -> list[tuple[RecordRef, str]]:
    """(record, reason) pairs automatic linking would make for this message, best reason first per record."""
    return _Lookup(session, [message], mine=mine, free_domains=free_domains).candidates(session, message)


def link_automatically(
    session: Session,
    message_id: int,
    *,
    mine: set[str],
    free_domains: set[str] | frozenset[str],
    now: datetime,
) -> list[tuple[RecordRef, str]]:
    """Make the automatic links of one message (never over an unlink; a manual link stays manual)."""
    return link_many(session, [message_id], mine=mine, free_domains=free_domains, now=now).get(message_id, [])


_LINK_FIELDS = (
    "from_address",
    "to_addresses",
    "cc_addresses",
    "in_reply_to",
    "references",
    "subject",
    "subject_key",
    "sent_at",
)


def link_many(
    session: Session,
    message_ids: list[int],
    *,
    mine: set[str],
    free_domains: set[str] | frozenset[str],
    now: datetime,
    known: dict[int, dict[str, Any]] | None = None,
) -> dict[int, list[tuple[RecordRef, str]]]:
    """Automatic links for a batch of messages in a few queries (the sync's path).

    ``known``: the stored values of messages the caller has just written (``mailbox.store_bodies`` gives
    them), so they are not read back (a read past each row's raw bytes)."""
    known = known or {}
    given = [
        SimpleNamespace(
            id=message_id, received_at=None, **{name: known[message_id][name] for name in _LINK_FIELDS}
        )
        for message_id in message_ids
        if message_id in known and known[message_id].get("sent_at") is not None
    ]
    have = {row.id for row in given}
    # Plain rows of just the columns linking reads (no ORM objects: this runs for every synced batch).
    columns = (
        col(m.MailMessage.id),
        col(m.MailMessage.from_address),
        col(m.MailMessage.to_addresses),
        col(m.MailMessage.cc_addresses),
        col(m.MailMessage.in_reply_to),
        col(m.MailMessage.references),
        col(m.MailMessage.subject),
        col(m.MailMessage.subject_key),
        col(m.MailMessage.sent_at),
        col(m.MailMessage.received_at),
    )
    messages: list[Any] = list(given)
    wanted = [message_id for message_id in message_ids if message_id not in have]
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        messages.extend(
            session.execute(select(*columns).where(bulk.among(session, col(m.MailMessage.id), chunk))).all()
        )
    if not messages:
        return {}
    lookup = _Lookup(session, messages, mine=mine, free_domains=free_domains)
    taken: set[tuple[int, str, int]] = set()
    models: tuple[type[m.MailLink] | type[m.MailUnlink], ...] = (m.MailLink, m.MailUnlink)
    for model in models:
        for row in session.execute(
            select(col(model.message_id), col(model.record_type), col(model.record_id)).where(
                bulk.among(session, col(model.message_id), message_ids)
            )
        ):
            taken.add((row[0], row[1], row[2]))
    made: dict[int, list[tuple[RecordRef, str]]] = {}
    rows = []
    for message in messages:
        for ref, reason in lookup.candidates(session, message):
            key = (message.id, ref.type.value, ref.id)
            if key in taken:
                continue
            taken.add(key)
            rows.append(
                {
                    "message_id": message.id,
                    "record_type": ref.type.value,
                    "record_id": ref.id,
                    "reason": reason,
                    "created_at": now,
                }
            )
            made.setdefault(message.id, []).append((ref, reason))
    bulk.insert_rows(session, bulk.table_of(m.MailLink), rows)
    return made


def link_manually(session: Session, message_id: int, ref: RecordRef, *, now: datetime) -> m.MailLink:
    """File a message on a record by hand: the link is manual from now on and an earlier unlink is undone."""
    session.execute(
        bulk.table_of(m.MailUnlink)
        .delete()
        .where(
            (col(m.MailUnlink.message_id) == message_id)
            & (col(m.MailUnlink.record_type) == ref.type.value)
            & (col(m.MailUnlink.record_id) == ref.id)
        )
    )
    link = link_message(session, message_id, ref, reason="manual", now=now)
    link.reason = "manual"
    session.flush()
    return link


def unlink(session: Session, message_id: int, ref: RecordRef, *, now: datetime) -> bool:
    """Remove a link and remember it, so automatic linking does not make it again. True if there was one."""
    link = session.scalars(
        select(m.MailLink).where(
            col(m.MailLink.message_id) == message_id,
            col(m.MailLink.record_type) == ref.type.value,
            col(m.MailLink.record_id) == ref.id,
        )
    ).first()
    if link is not None:
        session.delete(link)
    exists = session.scalars(
        select(col(m.MailUnlink.id)).where(
            col(m.MailUnlink.message_id) == message_id,
            col(m.MailUnlink.record_type) == ref.type.value,
            col(m.MailUnlink.record_id) == ref.id,
        )
    ).first()
    if exists is None:
        session.add(
            m.MailUnlink(message_id=message_id, record_type=ref.type.value, record_id=ref.id, created_at=now)
        )
    session.flush()
    return link is not None
