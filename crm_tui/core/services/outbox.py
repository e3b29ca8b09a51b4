"""The outbox: every mail goes out through it, so sending works offline and nothing goes out twice by itself.

States: queued -> sending -> sent; a refusal the server calls final -> failed (with its reason); a temporary
one or no connection -> queued again with a growing delay. An item is marked ``sending`` (and by which
process: ``claimed_by``) in its own committed transaction before the SMTP DATA command: one still ``sending``
when a delivery starts was cut off mid-send; the delivery looks for it in the account's Sent folder (by
Message-ID) and marks it sent, or uncertain for the user to decide (send again, or count it as sent). One left
``sending`` by a process that no longer runs can be decided by the user as well.

Exactly once across machines (a team's shared database): whether a process on another host runs cannot be
asked, so its claim (``claimed_at``) holds for ``CLAIM_LEASE``; only then is its item counted as cut off, to be
looked up in Sent and decided. An item claimed on this host by a process that no longer runs is cut off at once.

Each recipient's outcome is kept (``OutboxRecipient``): a mail the server took for some recipients and refused
for good for others is ``partial`` (partly sent), naming whom and why; sending it again goes only to whoever
has not got it, with the same Message-ID. Ids are never given again (AUTOINCREMENT on SQLite).
Delivery itself lives in ``mail.outbox``.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlmodel import Session, col

from crm_tui.core import models as m
from crm_tui.core.errors import CrmError, NotFound
from crm_tui.core.holders import holder, holder_alive
from crm_tui.core.sanitize import terminal_safe
from crm_tui.core.services import activities, drafts
from crm_tui.core.services.drafts import DraftFields
from crm_tui.core.services.mail_accounts import DEMO_PRESET
from crm_tui.core.services.rows import id_of, rows_affected

STATES = ("queued", "sending", "sent", "partial", "failed", "uncertain")
DECIDABLE = ("queued", "sending", "partial", "failed", "uncertain")
NO_COPY = "no copy saved in Sent"  # how a sent item's note about its Sent copy starts
BACKOFF_MINUTES = (1, 2, 5, 15, 30, 60)
# How long a claim by a process on another host holds: longer than one item's worst-case delivery (the SMTP
# steps wait up to 30 s each; MAIL, RCPT per recipient, DATA with large attachments on a slow uplink take
# minutes), with room for the two machines' clocks to differ by a few minutes. Until it runs out the item is
# "being delivered", neither settled by another flush nor decidable; after it, it is cut off.
CLAIM_LEASE = timedelta(minutes=15)


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
    refused: list[tuple[str, str]] = field(default_factory=list)  # (address, the server's reply), for good
    stale: bool = False  # "sending" by a process that no longer runs: the user can decide it

    @property
    def shown_state(self) -> str:
        """The state as the outbox view says it: the demo's mail waits for good; a partly sent mail says how
        many were refused; a sent mail whose copy could not be saved says so."""
        if self.demo and self.state in ("queued", "sending"):
            return "never delivered (demo)"
        if self.state == "partial":
            return f"partly sent: {len(self.refused)} refused"
        if self.state == "queued" and self.sent_at is not None and self.refused:
            put_off = sum(1 for _, reply in self.refused if _temporary(reply))
            return f"partly sent: {put_off} put off, tried again by itself"
        if self.state == "sent" and self.last_error and self.last_error.startswith(NO_COPY):
            return "sent, no copy saved"
        if self.state == "sending" and self.stale:
            return "sending, cut off"
        return self.state

    @property
    def needs_decision(self) -> bool:
        return self.state in ("failed", "uncertain", "partial") or (self.state == "sending" and self.stale)

    @property
    def explanation(self) -> str:
        """What the user should know about the item, in words: the refusals, the error, the copy."""
        lines = [f"refused {address}: {reason}" for address, reason in self.refused]
        if self.last_error:
            lines.append(self.last_error)
        if self.state == "sending" and self.stale:
            lines.append("the process sending it stopped before it said how it went")
        return "\n".join(lines)

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
            "refused": [{"address": a, "reason": r} for a, r in self.refused],
            "needs_decision": self.needs_decision,
        }


DELIVERING: set[int] = set()  # items this process is delivering right now (by any of its threads)


@contextmanager
def delivering(item_id: int) -> Iterator[None]:
    """While this process delivers the item: its ``sending`` is not a cut-off one, whichever thread asks."""
    DELIVERING.add(item_id)
    try:
        yield
    finally:
        DELIVERING.discard(item_id)


def _stale(item: m.OutboxItem, now: datetime) -> bool:
    """A ``sending`` item no running process is delivering (cut off: a kill, a crash). A process of this
    host is asked; one of another host (a shared database) is taken to deliver it until its claim's lease
    runs out (an item claimed before claims had a time: long ago)."""
    if item.state != "sending":
        return False
    if item.claimed_by == holder():  # this process: cut off unless one of its deliveries has it now
        return item.id not in DELIVERING
    alive = holder_alive(item.claimed_by)
    if alive is not None:  # a process of this host: it runs, or it is gone
        return not alive
    if not item.claimed_by:  # claimed by nobody known (before claims were named)
        return True
    return _lease_left(item, now) is None


def _lease_left(item: m.OutboxItem, now: datetime) -> timedelta | None:
    """How long another host's claim on the item still holds (None: it ran out, or it has no time)."""
    if item.claimed_at is None:
        return None
    left = item.claimed_at + CLAIM_LEASE - now
    return left if left > timedelta(0) else None


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


def mail_named(subject: str, recipients: list[str]) -> str:
    """An outbox mail as messages name it, by what the user sees of it (the outbox view shows no ids):
    '“Angebot Dach” to lea@example.com (and 2 more)', '(no subject) to lea@example.com'. Terminal-safe."""
    named = f"“{terminal_safe(subject, max_length=60)}”" if subject.strip() else "(no subject)"
    if recipients:
        named += f" to {terminal_safe(recipients[0], max_length=60)}"
        if len(recipients) > 1:
            named += f" (and {len(recipients) - 1} more)"
    return named


def _named(item: m.OutboxItem) -> str:
    return mail_named(item.subject or "", [r for r in item.recipients.splitlines() if r])


def _was(session: Session, item: m.OutboxItem) -> str:
    """What is known of a sent item: the server took it (for some or all), or the user counted it as sent
    (the demo's, a failed or uncertain one: maybe never delivered)."""
    if item.state == "partial":
        return "went out to some of its recipients"
    accepted = session.scalar(
        select(col(m.OutboxRecipient.id)).where(
            col(m.OutboxRecipient.item_id) == item.id, col(m.OutboxRecipient.state) == "accepted"
        )
    )
    return "was delivered" if accepted is not None else "was counted as sent"


def take_back(session: Session, item_id: int, fields: DraftFields, *, now: datetime) -> m.MailDraft:
    """Withdraw a mail that has not gone out yet: it leaves the outbox and is a draft again (``fields``: as it
    was written). A mail being delivered, or delivered (or counted as sent), cannot be taken back."""
    item = session.get(m.OutboxItem, item_id)
    if item is None:
        raise NotFound(f"the mail (outbox item {item_id}) is no longer in the outbox")
    if item.state != "queued":
        what = "is being delivered" if item.state == "sending" else None
        if item.state in ("sent", "partial"):
            what = _was(session, item)
        raise CrmError(f"the mail {what or f'is {item.state}'}: too late to take it back")
    session.delete(item)
    session.flush()
    return drafts.save(session, None, fields, now=now)


def fields_of(item: m.OutboxItem) -> DraftFields:
    """An outbox item as the draft it was written as, read back from its bytes (To, Cc, the envelope's others as
    Bcc, subject, text, threading; its attachments stay in ``raw``)."""
    message = email.message_from_bytes(bytes(item.raw), policy=email.policy.default)
    shown = {name: ", ".join(str(value) for value in message.get_all(name, [])) for name in ("To", "Cc")}
    seen = {address.lower() for _, address in email.utils.getaddresses([shown["To"], shown["Cc"]])}
    bcc = [address for address in item.recipients.splitlines() if address and address.lower() not in seen]
    part = message.get_body(preferencelist=("plain",))
    try:
        body = part.get_content() if part is not None else ""
    except (LookupError, KeyError):  # an unknown charset: the text as far as it can be read
        payload = part.get_payload(decode=True) if part is not None else None  # a leaf part's: bytes or None
        body = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    return DraftFields(
        item.account_id, item.from_address, shown["To"], shown["Cc"], ", ".join(bcc), str(message["Subject"] or ""),
        body.replace("\r\n", "\n"), str(message["In-Reply-To"] or "") or None,
        str(message["References"] or "").split(), bytes(item.raw), item.reply_to_id,
        (item.record_type, item.record_id) if item.record_type and item.record_id else None,
    )  # fmt: skip


def take_back_item(session: Session, item_id: int, *, now: datetime) -> m.MailDraft:
    """Withdraw any queued mail (the outbox view's u): a draft again, as read back from its bytes."""
    item = session.get(m.OutboxItem, item_id)
    if item is None:
        raise NotFound(f"the mail (outbox item {item_id}) is no longer in the outbox")
    return take_back(session, item_id, fields_of(item), now=now)


def due(
    session: Session, *, now: datetime, account_id: int | None = None, at_once: bool = False
) -> list[int]:
    """The queued items to deliver now; ``at_once`` (the user said "deliver now"): also those waiting for
    their next try after a failure or for the end of their send delay."""
    query = select(col(m.OutboxItem.id)).where(col(m.OutboxItem.state) == "queued")
    if not at_once:
        query = query.where(
            or_(col(m.OutboxItem.next_attempt_at).is_(None), col(m.OutboxItem.next_attempt_at) <= now),
        )
    if account_id is not None:
        query = query.where(col(m.OutboxItem.account_id) == account_id)
    return list(session.scalars(query.order_by(col(m.OutboxItem.id))))


@dataclass
class Waiting:
    """Queued mail not due yet: ``retry`` after a failed try (``next_retry``: the first of their next tries,
    ``reason``: why the last one failed), ``held`` in their send delay (``next_held``: the first to go)."""

    retry: int = 0
    next_retry: datetime | None = None
    reason: str | None = None
    held: int = 0
    next_held: datetime | None = None


def waiting_later(session: Session, *, now: datetime, account_id: int | None = None) -> Waiting:
    """The queued mail that waits for a later time (a next try, the end of its send delay)."""
    query = select(m.OutboxItem).where(
        col(m.OutboxItem.state) == "queued",
        col(m.OutboxItem.next_attempt_at) > now,
    )
    if account_id is not None:
        query = query.where(col(m.OutboxItem.account_id) == account_id)
    waiting = Waiting()
    for item in session.scalars(query.order_by(col(m.OutboxItem.next_attempt_at))):
        if item.attempts:
            waiting.retry += 1
            if waiting.next_retry is None:
                waiting.next_retry, waiting.reason = item.next_attempt_at, item.last_error
        else:
            waiting.held += 1
            waiting.next_held = waiting.next_held or item.next_attempt_at
    return waiting


@dataclass
class OutboxMessage:
    """One outbox item to read: the mail as it goes out (``raw``) and what became of each recipient
    (address, outcome in words, the server's reply)."""

    row: OutboxRow
    raw: bytes
    outcomes: list[tuple[str, str, str]]


RECIPIENT_OUTCOME = {"accepted": "delivered", "refused": "refused", "pending": "to be sent again"}


def message_of(session: Session, item_id: int, *, now: datetime) -> OutboxMessage:
    """An outbox item with its bytes and each recipient's outcome (a recipient not tried yet: "not sent yet")."""
    item = _item(session, item_id)
    row = next((r for r in rows(session, now=now, limit=1, only=item_id)), None)
    if row is None:
        raise NotFound(f"the mail (outbox item {item_id}) is no longer in the outbox")
    said = {
        r.address.lower(): r
        for r in session.scalars(select(m.OutboxRecipient).where(col(m.OutboxRecipient.item_id) == item_id))
    }
    outcomes = []
    for address in item.recipients.splitlines():
        known = said.get(address.lower())
        state, reason = (known.state, known.reason or "") if known is not None else ("", "")
        if not state:
            state = "accepted" if item.state == "sent" else "not sent yet"
        if state == "refused" and reason.startswith("4"):
            state = "put off by the server"
        shown = RECIPIENT_OUTCOME.get(state, state)
        if known is not None and known.bounced_at is not None:  # the server took it; it came back later
            shown, reason = "bounced", known.bounce_reason or ""
        elif known is not None and known.replied_at is not None:
            shown += ", replied"
        outcomes.append((address, shown, reason))
    return OutboxMessage(row, bytes(item.raw), outcomes)


def cut_off(session: Session, *, now: datetime, account_id: int | None = None) -> list[int]:
    """Items left ``sending`` by a delivery that did not finish (a crash, a kill); not those another running
    process is delivering right now (on another host: while its claim's lease holds)."""
    query = select(m.OutboxItem).where(col(m.OutboxItem.state) == "sending")
    if account_id is not None:
        query = query.where(col(m.OutboxItem.account_id) == account_id)
    return [
        id_of(item) for item in session.scalars(query.order_by(col(m.OutboxItem.id))) if _stale(item, now)
    ]


def still_cut_off(session: Session, item_id: int, *, now: datetime) -> bool:
    """Whether the item is (still) cut off, asked again inside the transaction that settles it: another
    flush may have settled it, or its delivery finished, since it was found."""
    item = session.get(m.OutboxItem, item_id)
    return item is not None and _stale(item, now)


def pending_recipients(session: Session, item_id: int) -> list[str]:
    """Whom a delivery of the item sends to: every envelope recipient the server has neither accepted nor
    refused for good (a 5xx reply: sent to again only when the user says so, ``decide(..., "resend")``)."""
    item = _item(session, item_id)
    done = {
        row.address
        for row in session.scalars(select(m.OutboxRecipient).where(col(m.OutboxRecipient.item_id) == item_id))
        if row.state == "accepted" or (row.state == "refused" and not _temporary(row.reason))
    }
    return [address for address in item.recipients.splitlines() if address and address not in done]


def _temporary(reply: str | None) -> bool:
    """A reply that puts a recipient off for now (4xx), as opposed to refusing it for good (5xx)."""
    return reply is not None and reply.startswith("4")


def _record(
    session: Session, item_id: int, outcomes: list[tuple[str, str, str | None]], now: datetime
) -> None:
    """Keep what the server said to each recipient: (address, "accepted" or "refused", reason)."""
    known = {
        r.address: r
        for r in session.scalars(select(m.OutboxRecipient).where(col(m.OutboxRecipient.item_id) == item_id))
    }
    for address, state, reason in outcomes:
        row = known.get(address)
        if row is None:  # (an address twice in one call is one row)
            known[address] = row = m.OutboxRecipient(
                item_id=item_id,
                address=address,
                state=state,
                reason=(reason or None) and reason[:400],
                at=now,
            )
            session.add(row)
        else:
            row.state, row.reason, row.at = state, (reason or None) and reason[:400], now


def refusals(session: Session, item_id: int) -> list[tuple[str, str]]:
    """The recipients the server refused for this item, with its reply."""
    return [
        (r.address, r.reason or "")
        for r in session.scalars(
            select(m.OutboxRecipient)
            .where(col(m.OutboxRecipient.item_id) == item_id, col(m.OutboxRecipient.state) == "refused")
            .order_by(col(m.OutboxRecipient.id))
        )
    ]


def _item(session: Session, item_id: int) -> m.OutboxItem:
    item = session.get(m.OutboxItem, item_id)
    if item is None:
        raise NotFound(f"no outbox item {item_id}")
    return item


def mark_sending(session: Session, item_id: int, *, now: datetime) -> bool:
    """Claim a queued item for delivery (False: someone else has it, or it is no longer queued)."""
    done = session.execute(
        update(m.OutboxItem)
        .where(col(m.OutboxItem.id) == item_id, col(m.OutboxItem.state) == "queued")
        .values(state="sending", attempts=col(m.OutboxItem.attempts) + 1, claimed_by=holder(), claimed_at=now)
    )
    return bool(rows_affected(done))


def mark_sent(
    session: Session,
    item_id: int,
    *,
    now: datetime,
    accepted: list[str] | None = None,
    refused: list[tuple[str, str]] | None = None,
) -> bool:
    """The server took the mail (for ``accepted``; ``refused``: (address, reply) it refused for good). Partly
    sent while any recipient stays refused. True the first time the item goes out (its Sent copy and its
    email activity are made then, not again when it goes to a refused address later)."""
    item = _item(session, item_id)
    _record(
        session,
        item_id,
        [(a, "accepted", None) for a in accepted or []] + [(a, "refused", r) for a, r in refused or []],
        now,
    )
    session.flush()
    first = item.sent_at is None
    still_refused = refusals(session, item_id)
    item.state = "partial" if still_refused else "sent"
    item.sent_at = item.sent_at or now
    item.last_error, item.next_attempt_at, item.claimed_by = None, None, None
    if any(_temporary(reply) for _, reply in still_refused):
        # A recipient only put off (4xx) gets it by itself later, as a mail put off entirely would.
        item.state = "queued"
        item.next_attempt_at = now + timedelta(minutes=_backoff(item.attempts))
    if first:
        _record_activity(session, item, now, still_refused)
    elif accepted:  # a refused address got it later: the record says so beside the first activity
        _record_activity(session, item, now, still_refused, only=accepted)
    session.flush()
    return first


def count_as_sent(session: Session, item_id: int, *, now: datetime) -> None:
    """The user's word: the mail went out (or, partly sent, the refused addresses are let go)."""
    item = _item(session, item_id)
    first = item.sent_at is None
    item.state, item.sent_at, item.next_attempt_at, item.claimed_by = "sent", item.sent_at or now, None, None
    if item.last_error and not item.last_error.startswith(NO_COPY):
        item.last_error = None
    if first:
        _record_activity(session, item, now, refusals(session, item_id))
    session.flush()


def note_no_copy(session: Session, item_id: int, reason: str) -> None:
    """The mail went out but its copy could not be saved in Sent: say so on the item (it stays sent)."""
    item = _item(session, item_id)
    item.last_error = f"{NO_COPY} ({reason})"[:500]
    session.flush()


def retry_later(session: Session, item_id: int, reason: str, *, now: datetime) -> datetime:
    item = _item(session, item_id)
    item.state, item.last_error, item.claimed_by = "queued", reason[:500], None
    item.next_attempt_at = now + timedelta(minutes=_backoff(item.attempts))
    session.flush()
    return item.next_attempt_at


def _backoff(attempts: int) -> int:
    return BACKOFF_MINUTES[min(max(attempts - 1, 0), len(BACKOFF_MINUTES) - 1)]


def mark_failed(
    session: Session,
    item_id: int,
    reason: str,
    *,
    refused: list[tuple[str, str]] | None = None,
    now: datetime | None = None,
) -> None:
    item = _item(session, item_id)
    if refused and now is not None:
        _record(session, item_id, [(a, "refused", r) for a, r in refused], now)
    # Refused for good; an item already sent to others stays partly sent (it is out, for them).
    state = "partial" if item.sent_at is not None else "failed"
    item.state, item.next_attempt_at, item.claimed_by = state, None, None
    item.last_error = reason[:500] if state == "failed" else None  # partly sent: its refusals say it
    session.flush()


def mark_uncertain(session: Session, item_id: int, reason: str) -> None:
    item = _item(session, item_id)
    item.state, item.last_error, item.claimed_by = "uncertain", reason[:500], None
    session.flush()


def decide(session: Session, item_id: int, decision: str, *, now: datetime) -> m.OutboxItem:
    """The user's word on an item: "resend" queues it again (a partly sent one only for the refused
    addresses, with the same Message-ID; a failed, uncertain or cut-off one for everyone), "sent" counts it
    as sent, "drop" takes it out of the outbox (a partly sent one stays, sent to the others: only its refused
    addresses are let go). An item another running process is delivering cannot change."""
    item = _item(session, item_id)
    if item.state not in DECIDABLE:
        was = _was(session, item)  # only a sent one is not decidable
        raise CrmError(
            f"the mail {_named(item)} {was}: only a queued, failed, uncertain, partly sent or cut-off mail "
            "can be sent again, counted as sent or dropped"
        )
    if item.state == "sending" and not _stale(item, now):
        left = _lease_left(item, now) if holder_alive(item.claimed_by) is None else None
        raise CrmError(
            f"the mail {_named(item)} is being delivered right now (by process {item.claimed_by}): "
            "decide once that delivery is over"
            + (
                f" (if that machine stopped, it counts as cut off in {_minutes(left)})"
                if left is not None
                else ""
            )
        )
    if decision == "resend":  # to whoever has not got it: a recipient is "accepted" only after a whole send
        item.state, item.next_attempt_at, item.claimed_by = "queued", None, None
        for row in session.scalars(
            select(m.OutboxRecipient).where(
                col(m.OutboxRecipient.item_id) == item_id, col(m.OutboxRecipient.state) == "refused"
            )
        ):
            row.state = "pending"  # the user's word: the refused addresses are tried again, 5xx or not
        if item.last_error and not item.last_error.startswith(NO_COPY):
            item.last_error = None
    elif decision == "sent":
        count_as_sent(session, item_id, now=now)
    elif decision == "drop":
        if item.sent_at is not None:  # out for the others (partly sent, or a send again cut off): it stays
            count_as_sent(session, item_id, now=now)
        else:
            session.delete(item)
    else:
        raise CrmError(f"unknown decision {decision!r}: resend, sent or drop")
    session.flush()
    return item


def _minutes(span: timedelta) -> str:
    minutes = max(1, -(-int(span.total_seconds()) // 60))
    return f"{minutes} minute" + ("" if minutes == 1 else "s")


def rows(
    session: Session,
    *,
    now: datetime,
    limit: int = 200,
    states: tuple[str, ...] = STATES,
    only: int | None = None,
) -> list[OutboxRow]:
    query = (
        select(m.OutboxItem, col(m.MailAccount.name), col(m.MailAccount.preset))
        .join(m.MailAccount, col(m.MailAccount.id) == col(m.OutboxItem.account_id))
        .where(col(m.OutboxItem.state).in_(states))
        .order_by(col(m.OutboxItem.id).desc())
        .limit(limit)
    )
    if only is not None:
        query = query.where(col(m.OutboxItem.id) == only)
    found = session.execute(query).all()
    refused: dict[int, list[tuple[str, str]]] = {}
    ids = [item.id for item, _, _ in found]
    if ids:
        for row in session.scalars(
            select(m.OutboxRecipient)
            .where(col(m.OutboxRecipient.item_id).in_(ids), col(m.OutboxRecipient.state) == "refused")
            .order_by(col(m.OutboxRecipient.id))
        ):
            refused.setdefault(row.item_id, []).append((row.address, row.reason or ""))
    return [
        OutboxRow(
            id=item.id,
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
            refused=refused.get(item.id, [])
            if item.state in ("partial", "failed") or (item.state == "queued" and item.sent_at is not None)
            else [],
            stale=_stale(item, now),
        )
        for item, account, preset in found
    ]


def counts(session: Session) -> dict[str, int]:
    return dict(
        session.execute(select(col(m.OutboxItem.state), func.count()).group_by(col(m.OutboxItem.state))).all()
    )


def _record_activity(
    session: Session,
    item: m.OutboxItem,
    now: datetime,
    refused: list[tuple[str, str]] | None = None,
    only: list[str] | None = None,
) -> None:
    """A mail written from a record is an email activity on it, done when it is sent; it names the
    recipients the server refused, and why. ``only``: sent again to these (once refused) alone."""
    if not item.record_type or not item.record_id:
        return

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
            description=_activity_text(item, refused or [], only),
            contact_id=links.get("contact_id"),
            lead_id=links.get("lead_id"),
            organization_id=links.get("organization_id"),
            opportunity_id=links.get("opportunity_id"),
            ticket_id=links.get("ticket_id"),
            quote_id=links.get("quote_id"),
        ),
        now=now,
    )
    activity.outbox_item_id = item.id  # a bounce of this mail is noted on it (``mail_outcomes``)
    activities.complete_activity(session, id_of(activity), now=now)


def _activity_text(item: m.OutboxItem, refused: list[tuple[str, str]], only: list[str] | None = None) -> str:
    refused_addresses = {address for address, _ in refused}
    if only is not None:
        got = only
        text = "Sent again to: " + ", ".join(got) + " (refused by the server before)"
    else:
        got = [a for a in item.recipients.splitlines() if a and a not in refused_addresses]
        text = "To: " + ", ".join(got)
    if refused:
        text += "\nNot delivered (refused by the server):\n" + "\n".join(
            f"  {address}: {reason}" for address, reason in refused
        )
    return text


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
            select(col(m.OpportunityContact.contact_id))
            .where(col(m.OpportunityContact.opportunity_id) == record_id)
            .order_by(col(m.OpportunityContact.is_primary).desc(), col(m.OpportunityContact.contact_id))
        ).first()
    if record_type == "organization":
        return session.scalars(
            select(col(m.Contact.id))
            .where(col(m.Contact.organization_id) == record_id)
            .order_by(col(m.Contact.id))
        ).first()
    return None
