"""Quotes (numbered, with line items, on a deal) and tickets (support cases)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from sqlalchemy import Select, delete, func, or_, select
from sqlmodel import Session, col

from crm_tui.core import models as m
from crm_tui.core.automation import events as automation_events
from crm_tui.core.automation import fields as rule_fields
from crm_tui.core.automation import schedule
from crm_tui.core.errors import FieldErrors
from crm_tui.core.field_checks import check_choice, check_currency, check_text
from crm_tui.core.search_text import like_pattern, search_terms
from crm_tui.core.services.records import delete_record, refuse_if_changed
from crm_tui.core.services.rows import check_exists, get_or_404, id_of, owned_by_default
from crm_tui.core.types import RecordRef, RecordType


@dataclass
class QuoteItemInput:
    description: str
    quantity: Decimal | str | int = 1
    unit_price_cents: int = 0


@dataclass
class QuoteInput:
    opportunity_id: int
    items: list[QuoteItemInput] = field(default_factory=list)
    number: str | None = None  # None: the next free Q-YEAR-NNNN
    status: str = m.QuoteStatus.DRAFT.value
    currency: str | None = None  # None: the deal's currency
    valid_until: date | None = None


def _quantity_milli(errors: FieldErrors, index: int, raw: Decimal | str | int) -> int:
    try:
        quantity = Decimal(str(raw).strip().replace(",", "."))
    except InvalidOperation:
        errors.add(f"items[{index}].quantity", f"{raw!r} is not a number")
        return 0
    if not quantity.is_finite() or quantity <= 0:
        errors.add(f"items[{index}].quantity", "must be more than zero")
        return 0
    milli = quantity * 1000
    if milli != milli.to_integral_value():
        errors.add(f"items[{index}].quantity", "at most three decimals")
        return 0
    return int(milli)


def line_total_cents(quantity_milli: int, unit_price_cents: int) -> int:
    return int(
        (Decimal(quantity_milli) * unit_price_cents / 1000).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    )


def next_quote_number(session: Session, year: int) -> str:
    prefix = f"Q-{year}-"
    last = session.scalar(select(func.max(col(m.Quote.number))).where(col(m.Quote.number).like(f"{prefix}%")))
    sequence = int(last.rsplit("-", 1)[1]) + 1 if last and last.rsplit("-", 1)[1].isdigit() else 1
    return f"{prefix}{sequence:04d}"


def _save_quote(session: Session, quote: m.Quote | None, data: QuoteInput, *, now: datetime) -> m.Quote:
    errors = FieldErrors()
    deal = check_exists(session, errors, "opportunity_id", m.Opportunity, data.opportunity_id)
    check_choice(errors, "status", data.status, [s.value for s in m.QuoteStatus])
    currency = check_currency(errors, "currency", data.currency or (deal.currency if deal else "EUR"))
    number = check_text(errors, "number", data.number, max_length=40)
    if number:
        other = session.scalars(select(m.Quote).where(col(m.Quote.number) == number)).first()
        if other is not None and (quote is None or other.id != quote.id):
            errors.add("number", f"quote number {number} is taken")
    lines: list[tuple[str, int, int]] = []
    for index, item in enumerate(data.items):
        description = check_text(
            errors, f"items[{index}].description", item.description, required=True, max_length=500
        )
        quantity = _quantity_milli(errors, index, item.quantity)
        if not isinstance(item.unit_price_cents, int) or item.unit_price_cents < 0:
            errors.add(f"items[{index}].unit_price", "must be zero or more")
        lines.append((description or "", quantity, item.unit_price_cents))
    errors.raise_if_any()
    if quote is None:
        quote = m.Quote(
            number=number or next_quote_number(session, now.year),
            created_at=now,
            opportunity_id=data.opportunity_id,
        )
    elif number:
        quote.number = number
    previous = None if quote.id is None else quote.status
    quote.opportunity_id = data.opportunity_id
    quote.status = data.status
    quote.currency = currency
    quote.valid_until = data.valid_until
    quote.total_cents = sum(line_total_cents(q, p) for _, q, p in lines)
    quote.updated_at = now
    session.add(quote)
    session.flush()
    quote_id = id_of(quote)
    session.execute(delete(m.QuoteItem).where(col(m.QuoteItem.quote_id) == quote_id))
    session.add_all(
        m.QuoteItem(quote_id=quote_id, position=i, description=d, quantity_milli=q, unit_price_cents=p)
        for i, (d, q, p) in enumerate(lines)
    )
    session.flush()
    # Accepted or declined now: rules waiting for that event on the deal are scheduled in this same write.
    automation_events.quote_status_changed(session, quote, previous, now=now)
    return quote


def create_quote(session: Session, data: QuoteInput, *, now: datetime) -> m.Quote:
    return _save_quote(session, None, data, now=now)


def update_quote(
    session: Session, quote_id: int, data: QuoteInput, *, now: datetime, expected: QuoteRecord | None = None
) -> m.Quote:
    """Edit a quote. With ``expected`` (as its form showed it), a quote changed or deleted since is refused
    (RecordChanged) in this same write."""
    refuse_if_changed(quote_record(session, quote_id) if expected else None, expected)
    return _save_quote(session, get_or_404(session, m.Quote, quote_id, "quote"), data, now=now)


def quote_items(session: Session, quote_id: int) -> list[m.QuoteItem]:
    return list(
        session.scalars(
            select(m.QuoteItem)
            .where(col(m.QuoteItem.quote_id) == quote_id)
            .order_by(col(m.QuoteItem.position))
        )
    )


def delete_quote(session: Session, quote_id: int) -> list[str]:
    return delete_record(session, RecordRef(RecordType.QUOTE, quote_id))


# The longest text each ticket field takes (``_save_ticket``; forms prefilled from a mail cut to these).
TICKET_MAX_LENGTHS = {"subject": 300, "description": 20000}


@dataclass
class TicketInput:
    subject: str
    description: str | None = None
    status: str = m.TicketStatus.OPEN.value
    contact_id: int | None = None
    organization_id: int | None = None
    owner_id: int | None = None


def _save_ticket(session: Session, ticket: m.Ticket | None, data: TicketInput, *, now: datetime) -> m.Ticket:
    errors = FieldErrors()
    limits = TICKET_MAX_LENGTHS
    subject = check_text(errors, "subject", data.subject, required=True, max_length=limits["subject"])
    description = check_text(errors, "description", data.description, max_length=limits["description"])
    check_choice(errors, "status", data.status, [s.value for s in m.TicketStatus])
    check_exists(session, errors, "contact_id", m.Contact, data.contact_id)
    check_exists(session, errors, "organization_id", m.Organization, data.organization_id)
    check_exists(session, errors, "owner_id", m.User, data.owner_id)
    errors.raise_if_any()
    is_new = ticket is None
    if ticket is None:
        ticket = m.Ticket(subject=subject or "", created_at=now)
    previous = ticket.status
    before = {} if is_new else rule_fields.record_values(session, "ticket", ticket, custom=False)
    ticket.subject = subject or ""
    ticket.description = description
    ticket.status = data.status
    ticket.contact_id = data.contact_id
    ticket.organization_id = data.organization_id
    ticket.owner_id = data.owner_id
    ticket.updated_at = now
    session.add(ticket)
    session.flush()
    if is_new:
        schedule.record_created(session, "ticket", ticket, now=now)
    else:
        after = rule_fields.record_values(session, "ticket", ticket, custom=False)
        schedule.status_changed(session, "ticket", ticket, previous, now=now)
        schedule.fields_changed(
            session, "ticket", ticket, [n for n in before if before[n] != after[n]], now=now
        )
    return ticket


def create_ticket(
    session: Session, data: TicketInput, *, now: datetime, me_id: int | None = None
) -> m.Ticket:
    data = owned_by_default(data, me_id)
    return _save_ticket(session, None, data, now=now)


def update_ticket(
    session: Session,
    ticket_id: int,
    data: TicketInput,
    *,
    now: datetime,
    expected: TicketRecord | None = None,
) -> m.Ticket:
    """Edit a ticket. With ``expected`` (as its form showed it), a ticket changed or deleted since is refused
    (RecordChanged) in this same write."""
    refuse_if_changed(ticket_record(session, ticket_id) if expected else None, expected)
    return _save_ticket(session, get_or_404(session, m.Ticket, ticket_id, "ticket"), data, now=now)


def delete_ticket(session: Session, ticket_id: int) -> list[str]:
    return delete_record(session, RecordRef(RecordType.TICKET, ticket_id))


def _ticket_query(text: str | None, status: str | None) -> Select[m.Ticket]:
    query = (
        select(m.Ticket)
        .outerjoin(m.Contact, col(m.Contact.id) == col(m.Ticket.contact_id))
        .outerjoin(m.Organization, col(m.Organization.id) == col(m.Ticket.organization_id))
    )
    for term in search_terms(text):
        pattern = like_pattern(term)
        query = query.where(
            or_(
                func.lower(col(m.Ticket.subject)).like(pattern, escape="\\"),
                col(m.Contact.search_text).like(pattern, escape="\\"),
                col(m.Organization.search_text).like(pattern, escape="\\"),
            )
        )
    if status:
        query = query.where(col(m.Ticket.status) == status)
    return query


def search_tickets(
    session: Session,
    text: str | None = None,
    *,
    status: str | None = None,
    limit: int | None = 50,
    offset: int = 0,
) -> list[m.Ticket]:
    """Tickets whose subject, contact or organization match every word, most recently changed first."""
    query = (
        _ticket_query(text, status)
        .order_by(col(m.Ticket.updated_at).desc(), col(m.Ticket.id).desc())
        .offset(offset)
    )
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


def count_tickets(session: Session, text: str | None = None, *, status: str | None = None) -> int:
    return int(session.scalar(select(func.count()).select_from(_ticket_query(text, status).subquery())) or 0)


def _quote_query(text: str | None) -> Select[m.Quote]:
    query = select(m.Quote).join(m.Opportunity, col(m.Opportunity.id) == col(m.Quote.opportunity_id))
    for term in search_terms(text):
        pattern = like_pattern(term)
        query = query.where(
            or_(
                func.lower(col(m.Quote.number)).like(pattern, escape="\\"),
                col(m.Opportunity.search_text).like(pattern, escape="\\"),
            )
        )
    return query


def search_quotes(
    session: Session,
    text: str | None = None,
    *,
    status: str | None = None,
    limit: int | None = 50,
    offset: int = 0,
) -> list[m.Quote]:
    """Quotes whose number or deal match every word (in one status if given), newest first."""
    query = _quote_query(text)
    if status:
        query = query.where(col(m.Quote.status) == status)
    query = query.order_by(col(m.Quote.created_at).desc(), col(m.Quote.id).desc()).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


def deal_titles(session: Session, deal_ids: Iterable[int | None]) -> dict[int, str]:
    """The titles of these deals by id (a quote list shows its deal's title)."""
    wanted = {deal_id for deal_id in deal_ids if deal_id is not None}
    if not wanted:
        return {}
    rows = session.execute(
        select(col(m.Opportunity.id), col(m.Opportunity.title)).where(col(m.Opportunity.id).in_(wanted))
    ).all()
    return {deal_id: title for deal_id, title in rows}


def count_quotes(session: Session, text: str | None = None) -> int:
    return int(session.scalar(select(func.count()).select_from(_quote_query(text).subquery())) or 0)


# --- plain records for the lists and forms ---------------------------------------------------------


@dataclass(frozen=True)
class TicketRow:
    """A ticket as its list shows it."""

    id: int
    subject: str
    status: str
    contact_name: str
    updated_at: datetime
    contact_id: int | None
    organization_id: int | None


def ticket_rows(
    session: Session, text: str = "", *, status: str | None = None, limit: int | None = 50, offset: int = 0
) -> list[TicketRow]:
    """One page of the tickets matching every word of ``text`` (in one status if given), most recently changed
    first."""
    tickets = search_tickets(session, text, status=status, limit=limit, offset=offset)
    names = _names(session, m.Contact, (t.contact_id for t in tickets))
    return [
        TicketRow(
            id_of(t),
            t.subject,
            t.status,
            names.get(t.contact_id, ""),
            t.updated_at,
            t.contact_id,
            t.organization_id,
        )
        for t in tickets
    ]


def _names(session: Session, model: type[m.Contact], ids: Iterable[int | None]) -> dict[int | None, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return {row.id: row.name for row in session.scalars(select(model).where(col(model.id).in_(wanted)))}


@dataclass(frozen=True)
class TicketRecord:
    """A ticket as its form shows it (and as an edit expects to find it)."""

    id: int
    subject: str
    description: str | None
    status: str
    contact_id: int | None
    contact_name: str | None
    organization_id: int | None
    organization_name: str | None
    owner_id: int | None
    owner_name: str | None = field(compare=False)  # the detail pane's; a renamed user changes nothing here
    updated_at: datetime


def ticket_record(session: Session, ticket_id: int) -> TicketRecord | None:
    ticket = session.get(m.Ticket, ticket_id)
    if ticket is None:
        return None
    person = session.get(m.Contact, ticket.contact_id) if ticket.contact_id else None
    org = session.get(m.Organization, ticket.organization_id) if ticket.organization_id else None
    owner = session.get(m.User, ticket.owner_id) if ticket.owner_id else None
    return TicketRecord(
        id=ticket_id,
        subject=ticket.subject,
        description=ticket.description,
        status=ticket.status,
        contact_id=ticket.contact_id,
        contact_name=person.name if person else None,
        organization_id=ticket.organization_id,
        organization_name=org.name if org else None,
        owner_id=ticket.owner_id,
        owner_name=owner.name if owner else None,
        updated_at=ticket.updated_at,
    )


@dataclass(frozen=True)
class QuoteRow:
    """A quote as its list shows it."""

    id: int
    number: str
    opportunity_title: str
    status: str
    total_cents: int
    currency: str
    valid_until: date | None
    opportunity_id: int


def quote_rows(
    session: Session, text: str = "", *, status: str | None = None, limit: int | None = 50, offset: int = 0
) -> list[QuoteRow]:
    """One page of the quotes matching every word of ``text`` (in one status if given), newest first."""
    quotes = search_quotes(session, text, status=status, limit=limit, offset=offset)
    titles = deal_titles(session, (q.opportunity_id for q in quotes))
    return [
        QuoteRow(
            id_of(q),
            q.number,
            titles.get(q.opportunity_id, ""),
            q.status,
            q.total_cents,
            q.currency,
            q.valid_until,
            q.opportunity_id,
        )
        for q in quotes
    ]


@dataclass(frozen=True)
class QuoteLine:
    quantity_milli: int
    description: str
    unit_price_cents: int


@dataclass(frozen=True)
class QuoteRecord:
    """A quote as its form shows it (and as an edit expects to find it)."""

    id: int
    number: str
    opportunity_id: int
    opportunity_title: str | None
    status: str
    currency: str
    total_cents: int
    valid_until: date | None
    items: tuple[QuoteLine, ...]
    updated_at: datetime


def quote_record(session: Session, quote_id: int) -> QuoteRecord | None:
    quote = session.get(m.Quote, quote_id)
    if quote is None:
        return None
    deal = session.get(m.Opportunity, quote.opportunity_id)
    return QuoteRecord(
        id=quote_id,
        number=quote.number,
        opportunity_id=quote.opportunity_id,
        opportunity_title=deal.title if deal else None,
        status=quote.status,
        currency=quote.currency,
        total_cents=quote.total_cents,
        valid_until=quote.valid_until,
        items=tuple(
            QuoteLine(i.quantity_milli, i.description, i.unit_price_cents)
            for i in quote_items(session, quote_id)
        ),
        updated_at=quote.updated_at,
    )
