"""The outbox: every mail goes out through it, so sending works offline and nothing goes out twice by itself.

States: queued -> sending -> sent; a refusal the server calls final -> failed (with its reason); a temporary
one or no connection -> queued again with a growing delay. An item is marked ``sending`` in its own committed
transaction before the SMTP DATA command: one still ``sending`` when a delivery starts was cut off mid-send;
the delivery looks for it in the account's Sent folder (by Message-ID) and marks it sent, or uncertain for the
user to decide (send again, or count it as sent). Delivery itself lives in ``mail.outbox``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlmodel import Session

from crm_tui.core import models as m
from crm_tui.core.errors import CrmError, NotFound
from crm_tui.core.services import drafts
from crm_tui.core.services.drafts import DraftFields
from crm_tui.core.services.mail_accounts import DEMO_PRESET

STATES = ("queued", "sending", "sent", "failed", "uncertain")
BACKOFF_MINUTES = (1, 2, 5, 15, 30, 60)


@dataclass
class OutboxRow:
    id: int
    account: str
    state: str
    subject: str
    recipients: list[str]
    attempts: int
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    next_attempt_at: datetime | None
    message_id: str
    demo: bool = False  # from the demo's account, which never connects

    @property
    def shown_state(self) -> str:
        """The state as the outbox view says it: the demo's mail waits for good."""
        if self.demo and self.state in ("queued", "sending"):
            return "never delivered (demo)"
        return self.state

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "account": self.account,
            "state": self.state,
            "shown_state": self.shown_state,
            "subject": self.subject,
            "to": self.recipients,
            "attempts": self.attempts,
            "error": self.last_error,
            "created_at": self.created_at,
            "sent_at": self.sent_at,
            "next_attempt_at": self.next_attempt_at,
            "message_id": self.message_id,
        }


def queue(
    session: Session,
    *,
    account_id: int,
    message_id: str,
    from_address: str,
    recipients: list[str],
    subject: str,
    raw: bytes,
    now: datetime,
    reply_to_id: int | None = None,
    record: tuple[str, int] | None = None,
    hold: timedelta | None = None,
) -> m.OutboxItem:
    """Put a mail in the outbox. ``hold``: it goes out no sooner (meanwhile ``take_back`` withdraws it)."""
    if not recipients:
        raise CrmError("a mail needs at least one recipient")
    item = m.OutboxItem(
        account_id=account_id,
        message_id_header=message_id,
        from_address=from_address,
        recipients="\n".join(recipients),
        subject=subject,
        raw=raw,
        state="queued",
        reply_to_id=reply_to_id,
        record_type=record[0] if record else None,
        record_id=record[1] if record else None,
        created_at=now,
        next_attempt_at=now + hold if hold else None,
    )
    session.add(item)
    session.flush()
    return item


def take_back(session: Session, item_id: int, fields: DraftFields, *, now: datetime) -> m.MailDraft:
    """Withdraw a mail that has not gone out yet: it leaves the outbox and is a draft again (``fields``: as it
    was written). A mail being delivered, or delivered, cannot be taken back."""
    item = session.get(m.OutboxItem, item_id)
    if item is None:
        raise NotFound(f"the mail (outbox item {item_id}) is no longer in the outbox")
    if item.state != "queued":
        what = {"sending": "is being delivered", "sent": "was delivered"}.get(item.state, f"is {item.state}")
        raise CrmError(f"the mail {what}: too late to take it back")
    session.delete(item)
    session.flush()
    return drafts.save(session, None, fields, now=now)


def due(session: Session, *, now: datetime, account_id: int | None = None) -> list[int]:
    query = select(m.OutboxItem.id).where(
        m.OutboxItem.state == "queued",
        or_(m.OutboxItem.next_attempt_at.is_(None), m.OutboxItem.next_attempt_at <= now),  # type: ignore[union-attr,operator]
    )
    if account_id is not None:
        query = query.where(m.OutboxItem.account_id == account_id)
    return list(session.scalars(query.order_by(m.OutboxItem.id)))


def cut_off(session: Session, *, account_id: int | None = None) -> list[int]:
    """Items left ``sending`` by a delivery that did not finish (a crash, a kill)."""
    query = select(m.OutboxItem.id).where(m.OutboxItem.state == "sending")
    if account_id is not None:
        query = query.where(m.OutboxItem.account_id == account_id)
    return list(session.scalars(query.order_by(m.OutboxItem.id)))


def _item(session: Session, item_id: int) -> m.OutboxItem:
    item = session.get(m.OutboxItem, item_id)
    if item is None:
        raise NotFound(f"no outbox item {item_id}")
    return item


def mark_sending(session: Session, item_id: int, *, now: datetime) -> bool:
    """Claim a queued item for delivery (False: someone else has it, or it is no longer queued)."""
    done = session.execute(
        update(m.OutboxItem)
        .where(m.OutboxItem.id == item_id, m.OutboxItem.state == "queued")
        .values(state="sending", attempts=m.OutboxItem.attempts + 1)
    )
    return bool(done.rowcount)  # type: ignore[attr-defined]


def mark_sent(session: Session, item_id: int, *, now: datetime) -> m.OutboxItem:
    item = _item(session, item_id)
    item.state, item.sent_at, item.last_error, item.next_attempt_at = "sent", now, None, None
    _record_activity(session, item, now)
    session.flush()
    return item


def retry_later(session: Session, item_id: int, reason: str, *, now: datetime) -> datetime:
    item = _item(session, item_id)
    delay = BACKOFF_MINUTES[min(max(item.attempts - 1, 0), len(BACKOFF_MINUTES) - 1)]
    item.state, item.last_error = "queued", reason[:500]
    item.next_attempt_at = now + timedelta(minutes=delay)
    session.flush()
    return item.next_attempt_at


def mark_failed(session: Session, item_id: int, reason: str) -> None:
    item = _item(session, item_id)
    item.state, item.last_error, item.next_attempt_at = "failed", reason[:500], None
    session.flush()


def mark_uncertain(session: Session, item_id: int, reason: str) -> None:
    item = _item(session, item_id)
    item.state, item.last_error = "uncertain", reason[:500]
    session.flush()


def decide(session: Session, item_id: int, decision: str, *, now: datetime) -> m.OutboxItem:
    """The user's word on an uncertain or failed item: "resend" queues it again, "sent" counts it as sent,
    "drop" takes it out of the outbox."""
    item = _item(session, item_id)
    if item.state not in ("uncertain", "failed", "queued"):
        raise CrmError(
            f"outbox item {item_id} is {item.state}; only queued, failed or uncertain ones can change"
        )
    if decision == "resend":
        item.state, item.next_attempt_at = "queued", None
    elif decision == "sent":
        mark_sent(session, item_id, now=now)
    elif decision == "drop":
        session.delete(item)
    else:
        raise CrmError(f"unknown decision {decision!r}: resend, sent or drop")
    session.flush()
    return item


def rows(session: Session, *, limit: int = 200, states: tuple[str, ...] = STATES) -> list[OutboxRow]:
    query = (
        select(m.OutboxItem, m.MailAccount.name, m.MailAccount.preset)
        .join(m.MailAccount, m.MailAccount.id == m.OutboxItem.account_id)
        .where(m.OutboxItem.state.in_(states))  # type: ignore[attr-defined]
        .order_by(m.OutboxItem.id.desc())  # type: ignore[union-attr]
        .limit(limit)
    )
    return [
        OutboxRow(
            id=item.id,  # type: ignore[arg-type]
            account=account,
            state=item.state,
            subject=item.subject,
            recipients=item.recipients.splitlines(),
            attempts=item.attempts,
            last_error=item.last_error,
            created_at=item.created_at,
            sent_at=item.sent_at,
            next_attempt_at=item.next_attempt_at,
            message_id=item.message_id_header,
            demo=preset == DEMO_PRESET,
        )
        for item, account, preset in session.execute(query).all()
    ]


def counts(session: Session) -> dict[str, int]:
    from sqlalchemy import func

    return dict(session.execute(select(m.OutboxItem.state, func.count()).group_by(m.OutboxItem.state)).all())  # type: ignore[arg-type]


def _record_activity(session: Session, item: m.OutboxItem, now: datetime) -> None:
    """A mail written from a record is an email activity on it, done when it is sent."""
    if not item.record_type or not item.record_id:
        return
    from crm_tui.core.services import activities

    field_name = {
        "contact": "contact_id",
        "lead": "lead_id",
        "organization": "organization_id",
        "opportunity": "opportunity_id",
        "ticket": "ticket_id",
        "quote": "quote_id",
    }.get(item.record_type)
    if field_name is None:
        return
    links: dict[str, int | None] = {field_name: item.record_id}
    # An activity needs a person: the record's own, or its primary contact. Without one the mail still counts
    # as sent; it is only not shown as an activity.
    if "contact_id" not in links and "lead_id" not in links:
        links["contact_id"] = _person_of(session, item.record_type, item.record_id)
        if links["contact_id"] is None:
            return
    activity = activities.create_activity(
        session,
        activities.ActivityInput(
            subject=item.subject or "(no subject)",
            start_at=now,
            type=m.ActivityType.EMAIL.value,
            description="To: " + ", ".join(item.recipients.splitlines()),
            **links,  # type: ignore[arg-type]
        ),
        now=now,
    )
    activities.complete_activity(session, activity.id, now=now)  # type: ignore[arg-type]


def _person_of(session: Session, record_type: str, record_id: int) -> int | None:
    """The contact a mail about this record is with: a ticket's contact, a deal's (or a quote's deal's) primary
    contact, an organization's first contact."""
    if record_type == "ticket":
        ticket = session.get(m.Ticket, record_id)
        return ticket.contact_id if ticket else None
    if record_type == "quote":
        quote = session.get(m.Quote, record_id)
        record_type, record_id = "opportunity", (quote.opportunity_id if quote else 0)
    if record_type == "opportunity":
        return session.scalars(
            select(m.OpportunityContact.contact_id)
            .where(m.OpportunityContact.opportunity_id == record_id)
            .order_by(m.OpportunityContact.is_primary.desc(), m.OpportunityContact.contact_id)  # type: ignore[attr-defined]
        ).first()
    if record_type == "organization":
        return session.scalars(
            select(m.Contact.id).where(m.Contact.organization_id == record_id).order_by(m.Contact.id)
        ).first()
    return None
