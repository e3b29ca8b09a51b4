"""Record events of a deal as automation triggers: "a quote is accepted", "a document is signed".

A rule with the trigger ``event`` waits for one event of ``EVENTS`` on the deals it applies to (every deal, or
the deals of one pipeline; its conditions checked as for any rule). ``record_event`` is called by the service
that changes the record, in the same write: it schedules the rules' jobs through the same schedule as the
stage and sub-state triggers, keyed by the event and the record it happened to, so an event recorded twice (a
quote accepted again, a retry, a second process) schedules each rule once. The engine fires them exactly once.

More events: add them to ``EVENTS`` (the name stored on the rule, the record type it happens to, its words)
and call ``record_event`` where the record changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from crm_tui.core import models as m
from crm_tui.core.automation import schedule
from crm_tui.core.errors import CrmError, NotFound
from crm_tui.core.services.records import record_label
from crm_tui.core.types import RecordRef, RecordType


@dataclass(frozen=True)
class Event:
    source: RecordType  # what it happens to (a quote, a document of the deal)
    words: str  # "a quote is accepted": how rules and previews say it
    done: str  # "accepted": what a job's "event" says happened ("quote Q-2026-0003 accepted")


EVENTS: dict[str, Event] = {
    "quote_accepted": Event(RecordType.QUOTE, "a quote is accepted", "accepted"),
    "quote_declined": Event(RecordType.QUOTE, "a quote is declined", "declined"),
    "document_signed": Event(RecordType.DOCUMENT, "a document is signed", "signed"),
    "document_declined": Event(RecordType.DOCUMENT, "a document is declined", "declined"),
    "document_expired": Event(RecordType.DOCUMENT, "a document expires", "expired"),
}

# The quote statuses that are events (the status a quote is saved with, when it had another before).
QUOTE_STATUS_EVENTS = {
    m.QuoteStatus.ACCEPTED.value: "quote_accepted",
    m.QuoteStatus.REJECTED.value: "quote_declined",
}


def words(event: str | None) -> str:
    """The event in words ("a quote is accepted"); none chosen yet "a record event"; an unknown name as itself."""
    if not event:
        return "a record event"
    known = EVENTS.get(event)
    return known.words if known else f"event {event}"


def job_key(event: str, source_ref: RecordRef) -> str:
    """The key of the jobs one event schedules: one job per rule, event and record, however often it is
    recorded."""
    return f"event:{event}:{source_ref}"


def record_event(
    session: Session, deal_id: int, event: str, source_ref: RecordRef, *, now: datetime
) -> list[m.AutomationJob]:
    """The event happened to ``source_ref`` on the deal: the enabled rules waiting for it on this deal are
    scheduled (due now, or after their delay) in the caller's write. Returns the jobs (those scheduled by an
    earlier recording of the same event included). An unknown event, a record of another type than the event's
    or a missing deal is refused (CrmError / NotFound)."""
    known = EVENTS.get(event)
    if known is None:
        raise CrmError(f"unknown record event {event!r} (one of {', '.join(EVENTS)})")
    if source_ref.type != known.source:
        raise CrmError(f"{words(event)} happens to a {known.source.value}, not to {source_ref}")
    deal = session.get(m.Opportunity, deal_id)
    if deal is None:
        raise NotFound(f"opportunity:{deal_id} does not exist")
    rules = [r for r in schedule.event_rules(session, "opportunity", event) if schedule.applies_to(r, deal)]
    if not rules:
        return []
    try:
        name = record_label(session, source_ref)
    except CrmError:
        name = str(source_ref)
    said = f"{known.source.value} {name} {known.done}"
    jobs = []
    for rule in rules:
        job = schedule.schedule(session, rule, "opportunity", deal, moment=now, now=now,
                                key=job_key(event, source_ref), event=said)  # fmt: skip
        if job is not None:
            jobs.append(job)
    return jobs


def quote_status_changed(session: Session, quote: m.Quote, previous: str | None, *, now: datetime) -> None:
    """A quote was saved: accepted or declined (from another status, or created so) is an event of its deal."""
    event = QUOTE_STATUS_EVENTS.get(quote.status)
    if event is None or previous == quote.status or quote.id is None:
        return
    record_event(session, quote.opportunity_id, event, RecordRef(RecordType.QUOTE, quote.id), now=now)


@dataclass(frozen=True)
class WaitingForEvent:
    """An enabled rule that waits for an event of this deal: "when a quote is accepted: mail 'Thanks' to the
    primary contact"."""

    rule: str
    when: str  # the trigger in words, delay included ("2 days after a quote is accepted")
    does: str  # what it will do to this deal, its merge fields filled

    def text(self) -> str:
        return f"{self.when}: {self.does}"
