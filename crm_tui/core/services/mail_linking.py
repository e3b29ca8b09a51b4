"""Which records a message belongs to, and why.

Automatic links (``reason``): ``address`` (From/To/Cc is an address of a contact, lead or organization; my own
addresses never count), ``domain`` (the sender's or a recipient's domain is an organization's, never for
free-mail domains), ``thread`` (In-Reply-To / References name a message filed on an opportunity or ticket) and
``subject`` (a reply whose thread headers were lost: same thread subject, filed on an opportunity or ticket in
the last 90 days). ``manual`` links and the user's unlinks win: automatic linking never removes the one nor
re-creates the other.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlmodel import Session

from crm_tui.core import models as m
from crm_tui.core.services.mail_store import link_message
from crm_tui.core.types import RecordRef, RecordType

THREAD_TYPES = (RecordType.OPPORTUNITY.value, RecordType.TICKET.value)
SUBJECT_WINDOW = timedelta(days=90)
MAX_THREAD_IDS = 100
_ANGLE = re.compile(r"<([^<>@\s]+@[^<>\s]+)>")


def addresses_in(text: str) -> list[str]:
    """Addresses in stored address lines ("Name <a@b>" or "a@b", one per line), lower case."""
    found: list[str] = []
    for line in (text or "").splitlines():
        match = _ANGLE.search(line)
        address = match.group(1) if match else line.strip()
        if "@" in address:
            found.append(address.lower())
    return found


def _existing(session: Session, message_id: int) -> tuple[set[tuple[str, int]], set[tuple[str, int]]]:
    links = {
        (row.record_type, row.record_id)
        for row in session.execute(
            select(m.MailLink.record_type, m.MailLink.record_id).where(m.MailLink.message_id == message_id)
        )
    }
    unlinks = {
        (row.record_type, row.record_id)
        for row in session.execute(
            select(m.MailUnlink.record_type, m.MailUnlink.record_id).where(
                m.MailUnlink.message_id == message_id
            )
        )
    }
    return links, unlinks


def candidates(
    session: Session, message: m.MailMessage, *, mine: set[str], free_domains: set[str]
) -> list[tuple[RecordRef, str]]:
    """(record, reason) pairs automatic linking would make for this message, best reason first per record."""
    found: dict[tuple[str, int], str] = {}

    def add(record_type: RecordType, record_id: int, reason: str) -> None:
        found.setdefault((record_type.value, record_id), reason)

    people = [
        a
        for a in dict.fromkeys(
            [
                message.from_address.lower(),
                *addresses_in(message.to_addresses),
                *addresses_in(message.cc_addresses),
            ]
        )
        if a and a not in mine
    ]
    if people:
        for contact_id in session.scalars(
            select(m.ContactEmail.contact_id).where(m.ContactEmail.address.in_(people))
        ):  # type: ignore[attr-defined]
            add(RecordType.CONTACT, contact_id, "address")
        for lead_id in session.scalars(select(m.LeadEmail.lead_id).where(m.LeadEmail.address.in_(people))):  # type: ignore[attr-defined]
            add(RecordType.LEAD, lead_id, "address")
        for org_id in session.scalars(
            select(m.OrganizationEmail.organization_id).where(m.OrganizationEmail.address.in_(people))  # type: ignore[attr-defined]
        ):
            add(RecordType.ORGANIZATION, org_id, "address")
        domains = {a.rsplit("@", 1)[1] for a in people} - free_domains
        mine_domains = {a.rsplit("@", 1)[1] for a in mine if "@" in a}
        domains -= mine_domains
        if domains:
            for org_id in session.scalars(
                select(m.OrganizationDomain.organization_id).where(m.OrganizationDomain.domain.in_(domains))  # type: ignore[attr-defined]
            ):
                add(RecordType.ORGANIZATION, org_id, "domain")

    thread_ids = [i for i in [message.in_reply_to, *(message.references or "").splitlines()] if i][
        :MAX_THREAD_IDS
    ]
    if thread_ids:
        parents = select(m.MailMessage.id).where(m.MailMessage.message_id_header.in_(thread_ids))  # type: ignore[union-attr]
        for record_type, record_id in session.execute(
            select(m.MailLink.record_type, m.MailLink.record_id).where(
                m.MailLink.message_id.in_(parents),  # type: ignore[attr-defined]
                m.MailLink.record_type.in_(THREAD_TYPES),  # type: ignore[attr-defined]
                m.MailLink.message_id != message.id,
            )
        ):
            add(RecordType(record_type), record_id, "thread")
    elif message.subject_key and message.subject_key != " ".join(message.subject.lower().split()):
        # A reply (its subject had a Re:/AW: prefix) without thread headers: fall back to the thread subject.
        since = (
            (message.sent_at or message.received_at) - SUBJECT_WINDOW
            if (message.sent_at or message.received_at)
            else None
        )
        same = select(m.MailMessage.id).where(
            m.MailMessage.subject_key == message.subject_key, m.MailMessage.id != message.id
        )
        if since is not None:
            same = same.where(m.MailMessage.sent_at >= since)  # type: ignore[operator]
        for record_type, record_id in session.execute(
            select(m.MailLink.record_type, m.MailLink.record_id).where(
                m.MailLink.message_id.in_(same),  # type: ignore[attr-defined]
                m.MailLink.record_type.in_(THREAD_TYPES),  # type: ignore[attr-defined]
            )
        ):
            add(RecordType(record_type), record_id, "subject")
    return [(RecordRef(RecordType(t), i), reason) for (t, i), reason in found.items()]


def link_automatically(
    session: Session, message_id: int, *, mine: set[str], free_domains: set[str], now: datetime
) -> list[tuple[RecordRef, str]]:
    """Make the automatic links of one message (never over an unlink; a manual link stays manual)."""
    message = session.get(m.MailMessage, message_id)
    if message is None:
        return []
    links, unlinks = _existing(session, message_id)
    made = []
    for ref, reason in candidates(session, message, mine=mine, free_domains=free_domains):
        key = (ref.type.value, ref.id)
        if key in links or key in unlinks:
            continue
        session.add(
            m.MailLink(
                message_id=message_id,
                record_type=ref.type.value,
                record_id=ref.id,
                reason=reason,
                created_at=now,
            )
        )
        links.add(key)
        made.append((ref, reason))
    session.flush()
    return made


def link_manually(session: Session, message_id: int, ref: RecordRef, *, now: datetime) -> m.MailLink:
    """File a message on a record by hand: the link is manual from now on and an earlier unlink is undone."""
    session.execute(
        m.MailUnlink.__table__.delete().where(  # type: ignore[attr-defined]
            (m.MailUnlink.message_id == message_id)
            & (m.MailUnlink.record_type == ref.type.value)
            & (m.MailUnlink.record_id == ref.id)
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
            m.MailLink.message_id == message_id,
            m.MailLink.record_type == ref.type.value,
            m.MailLink.record_id == ref.id,
        )
    ).first()
    if link is not None:
        session.delete(link)
    exists = session.scalars(
        select(m.MailUnlink.id).where(
            m.MailUnlink.message_id == message_id,
            m.MailUnlink.record_type == ref.type.value,
            m.MailUnlink.record_id == ref.id,
        )
    ).first()
    if exists is None:
        session.add(
            m.MailUnlink(message_id=message_id, record_type=ref.type.value, record_id=ref.id, created_at=now)
        )
    session.flush()
    return link is not None
