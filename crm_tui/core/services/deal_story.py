"""A deal's whole story for the deal screen, as plain data: its facts and custom fields, its organization and
people (with their role on the deal and addresses), owner and partners, stage, sub-states and stage history with
how long each stay lasted, the automation still waiting for it, and one timeline, newest first, of its mail
threads, activities, comments, documents (stored reports among them), quotes, stage moves and fired automation.

The timeline comes a page at a time: each source is read newest first through its index with a LIMIT of one
page past a cursor, and the pages are merged here; a deal with thousands of mails shows its first page at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, or_, select
from sqlmodel import Session, col

from crm_tui.core import models as m
from crm_tui.core.automation import actions, preview
from crm_tui.core.automation.events import WaitingForEvent
from crm_tui.core.money import format_money
from crm_tui.core.services import custom_fields, team
from crm_tui.core.services.attachments import attachment_mark, document_counts
from crm_tui.core.services.rows import id_of, matching_every_word
from crm_tui.core.types import RecordRef, RecordType

PAGE = 60  # timeline entries a page


@dataclass(frozen=True)
class Person:
    contact_id: int
    name: str
    role: str | None
    is_primary: bool
    job_title: str | None
    emails: tuple[str, ...]
    phones: tuple[str, ...]
    address: str


@dataclass(frozen=True)
class Party:
    """An organization on the deal: the customer, the installer or the reseller."""

    organization_id: int
    name: str
    role: str  # customer | installer | reseller
    phone: str | None
    website: str | None
    address: str


@dataclass(frozen=True)
class StageStay:
    """One stay of the deal in a stage: entered, left (None: still there), and how long it lasted."""

    stage_name: str
    entered_at: datetime
    left_at: datetime | None
    seconds: int
    note: str | None


@dataclass(frozen=True)
class WaitingAction:
    """An automation action waiting for this deal: when it fires and what it will do."""

    job_id: int
    rule: str
    does: str
    due_at: datetime
    event: str


@dataclass(frozen=True)
class TimelineItem:
    at: datetime
    kind: str  # mail, activity, comment, document, report, quote, stage, substate, automation
    text: str
    ref: RecordRef | None = None  # what Enter opens: a message (its thread), an activity, a document...
    status: str | None = None
    detail: str = ""
    order: int = 0  # ties at the same moment: a stable order (the row's id)


@dataclass(frozen=True)
class TimelineCursor:
    """Where a page ended: the next page lists what comes before it."""

    at: datetime
    kind: str
    order: int


@dataclass(frozen=True)
class TimelinePage:
    items: tuple[TimelineItem, ...]
    next: TimelineCursor | None  # None: this was the last page


@dataclass(frozen=True)
class DealStory:
    id: int
    title: str
    amount: str
    amount_cents: int
    currency: str
    expected_close: date | None
    pipeline_id: int
    pipeline_name: str
    stage_id: int
    stage_name: str
    stage_kind: str
    probability: int
    stage_entered_at: datetime
    lost_reason: str | None
    description: str | None
    owner: str | None
    owner_email: str | None
    custom: tuple[tuple[str, str], ...]  # (label, value as text)
    parties: tuple[Party, ...]
    people: tuple[Person, ...]
    substates: tuple[tuple[str, bool], ...]  # the current stage's sub-states: (name, open)
    history: tuple[StageStay, ...]  # oldest first
    waiting: tuple[WaitingAction, ...]  # soonest first
    timeline: TimelinePage
    copied_from: tuple[int, str] | None = None
    followers: tuple[str, ...] = ()  # the users following the deal (w), by name: with the owner, its team
    # Rules waiting for an event of the deal ("when a quote is accepted: plan task ..."): nothing is scheduled
    # until it happens.
    on_events: tuple[WaitingForEvent, ...] = ()


def _address(*parts: str | None) -> str:
    street, postcode, city, region, country = parts
    town = " ".join(p for p in (postcode, city) if p)
    return ", ".join(p for p in (street, town, region, country) if p)


def _value_text(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, date):
        return value.isoformat()
    return "" if value is None else str(value)


def deal_story(
    session: Session,
    deal_id: int,
    *,
    now: datetime,
    me_id: int | None,
    today: date,
    page: int = PAGE,
) -> DealStory | None:
    """Everything the deal screen shows, with the timeline's first page; None when the deal is gone."""
    deal = session.get(m.Opportunity, deal_id)
    if deal is None:
        return None
    ref = RecordRef(RecordType.OPPORTUNITY, deal_id)
    pipeline = session.get(m.Pipeline, deal.pipeline_id)
    stage = session.get(m.Stage, deal.stage_id)
    owner = session.get(m.User, deal.owner_id) if deal.owner_id else None
    labels = {d.key: d.label for d in custom_fields.definitions_for(session, RecordType.OPPORTUNITY.value)}
    custom = tuple(
        (labels.get(key, key), _value_text(value))
        for key, value in custom_fields.get_values(session, ref).items()
        if value is not None and value != ""
    )
    source = session.get(m.Opportunity, deal.copied_from_id) if deal.copied_from_id else None
    return DealStory(
        id=deal_id,
        title=deal.title,
        amount=format_money(deal.amount_cents, deal.currency),
        amount_cents=deal.amount_cents,
        currency=deal.currency,
        expected_close=deal.expected_close,
        pipeline_id=deal.pipeline_id,
        pipeline_name=pipeline.name if pipeline else "?",
        stage_id=deal.stage_id,
        stage_name=stage.name if stage else "?",
        stage_kind=stage.kind if stage else "open",
        probability=stage.probability if stage else 0,
        stage_entered_at=deal.stage_entered_at,
        lost_reason=deal.lost_reason,
        description=deal.description,
        owner=owner.name if owner else None,
        owner_email=owner.email if owner else None,
        followers=tuple(f.name for f in team.followers(session, deal_id)),
        custom=custom,
        parties=_parties(session, deal),
        people=_people(session, deal_id),
        substates=_substates(session, deal),
        history=stage_history(session, deal_id, now=now),
        waiting=waiting_actions(session, deal_id, me_id=me_id, today=today),
        timeline=timeline_page(session, deal_id, limit=page),
        copied_from=(id_of(source), source.title) if source is not None else None,
        on_events=preview.waiting_for_events(session, deal_id, me_id=me_id, today=today),
    )


def _parties(session: Session, deal: m.Opportunity) -> tuple[Party, ...]:
    wanted = [
        (deal.organization_id, "customer"),
        (deal.installer_id, "installer"),
        (deal.reseller_id, "reseller"),
    ]
    ids = [org_id for org_id, _ in wanted if org_id]
    if not ids:
        return ()
    rows = {
        id_of(o): o for o in session.scalars(select(m.Organization).where(col(m.Organization.id).in_(ids)))
    }
    out = []
    for org_id, role in wanted:
        o = rows.get(org_id) if org_id else None
        if o is not None:
            out.append(
                Party(id_of(o), o.name, role, o.phone, o.website,
                      _address(o.street, o.postcode, o.city, o.region, o.country))
            )  # fmt: skip
    return tuple(out)


def _people(session: Session, deal_id: int) -> tuple[Person, ...]:
    rows = session.execute(
        select(m.Contact, col(m.OpportunityContact.role), col(m.OpportunityContact.is_primary))
        .join(m.OpportunityContact, col(m.OpportunityContact.contact_id) == col(m.Contact.id))
        .where(col(m.OpportunityContact.opportunity_id) == deal_id)
        .order_by(col(m.OpportunityContact.is_primary).desc(), col(m.Contact.last_name), col(m.Contact.id))
    ).all()
    ids = [id_of(contact) for contact, _, _ in rows]
    emails: dict[int, list[str]] = {i: [] for i in ids}
    phones: dict[int, list[str]] = {i: [] for i in ids}
    if ids:
        for contact_id, address in session.execute(
            select(col(m.ContactEmail.contact_id), col(m.ContactEmail.address))
            .where(col(m.ContactEmail.contact_id).in_(ids))
            .order_by(col(m.ContactEmail.position), col(m.ContactEmail.id))
        ):
            emails[contact_id].append(address)
        for contact_id, number in session.execute(
            select(col(m.ContactPhone.contact_id), col(m.ContactPhone.number))
            .where(col(m.ContactPhone.contact_id).in_(ids))
            .order_by(col(m.ContactPhone.position), col(m.ContactPhone.id))
        ):
            phones[contact_id].append(number)
    return tuple(
        Person(
            id_of(c),
            c.name,
            role,
            bool(primary),
            c.job_title,
            tuple(emails[id_of(c)]),
            tuple(phones[id_of(c)]),
            _address(c.street, c.postcode, c.city, c.region, c.country),
        )  # fmt: skip
        for c, role, primary in rows
    )


def _substates(session: Session, deal: m.Opportunity) -> tuple[tuple[str, bool], ...]:
    open_ids = set(
        session.scalars(
            select(col(m.OpportunitySubstate.substate_id)).where(
                col(m.OpportunitySubstate.opportunity_id) == deal.id,
                col(m.OpportunitySubstate.is_open).is_(True),
            )
        )
    )
    return tuple(
        (d.name, id_of(d) in open_ids)
        for d in session.scalars(
            select(m.SubstateDefinition)
            .where(col(m.SubstateDefinition.stage_id) == deal.stage_id)
            .order_by(col(m.SubstateDefinition.position), col(m.SubstateDefinition.id))
        )
    )


def stage_history(session: Session, deal_id: int, *, now: datetime) -> tuple[StageStay, ...]:
    """Each stay of the deal in a stage, oldest first: a stay lasts from its move in to the next move (the
    current one until ``now``)."""
    names = dict(session.execute(select(col(m.Stage.id), col(m.Stage.name))).all())
    moves = session.execute(
        select(
            col(m.OpportunityHistory.to_stage_id),
            col(m.OpportunityHistory.changed_at),
            col(m.OpportunityHistory.note),
        )
        .where(
            col(m.OpportunityHistory.opportunity_id) == deal_id,
            col(m.OpportunityHistory.kind) == m.HistoryKind.STAGE.value,
        )
        .order_by(col(m.OpportunityHistory.changed_at), col(m.OpportunityHistory.id))
    ).all()
    stays = []
    for index, (stage_id, entered, note) in enumerate(moves):
        left = moves[index + 1][1] if index + 1 < len(moves) else None
        end = left if left is not None else now
        stays.append(
            StageStay(
                names.get(stage_id, "?") if stage_id is not None else "?",
                entered,
                left,
                max(0, int((end - entered).total_seconds())),
                note if note and note != "created" else None,
            )
        )
    return tuple(stays)


def waiting_actions(
    session: Session, deal_id: int, *, me_id: int | None, today: date
) -> tuple[WaitingAction, ...]:
    """The automation jobs pending for this deal, soonest first, each with what it will do (filled in)."""
    ref = RecordRef(RecordType.OPPORTUNITY, deal_id)
    rows = session.execute(
        select(m.AutomationJob, m.AutomationRule)
        .join(m.AutomationRule, col(m.AutomationRule.id) == col(m.AutomationJob.rule_id))
        .where(
            col(m.AutomationJob.state) == "pending",
            col(m.AutomationJob.record_type) == RecordType.OPPORTUNITY.value,
            col(m.AutomationJob.record_id) == deal_id,
        )
        .order_by(col(m.AutomationJob.due_at), col(m.AutomationJob.id))
        .limit(50)
    ).all()
    return tuple(
        WaitingAction(
            id_of(job),
            rule.name,
            actions.describe_for(session, rule, ref, me_id=me_id, today=today),
            job.due_at,
            job.event,
        )  # fmt: skip
        for job, rule in rows
    )


# --- the timeline ---------------------------------------------------------------------------------------

_RANK = {"automation": 0, "stage": 1, "substate": 2, "quote": 3, "document": 4, "report": 4, "comment": 5,
         "activity": 6, "mail": 7}  # fmt: skip


def _key(item: TimelineItem) -> tuple[datetime, int, int]:
    return (item.at, _RANK.get(item.kind, 9), item.order)


def timeline_page(
    session: Session, deal_id: int, *, before: TimelineCursor | None = None, limit: int = PAGE
) -> TimelinePage:
    """One page of the deal's timeline, newest first, after ``before`` (None: the newest page)."""
    take = limit + 1
    items: list[TimelineItem] = []
    items += _mail_threads(session, deal_id, before, take)
    items += _activities(session, deal_id, before, take)
    items += _comments(session, deal_id, before, take)
    items += _documents(session, deal_id, before, take)
    items += _quotes(session, deal_id, before, take)
    items += _moves(session, deal_id, before, take)
    items += _fired(session, deal_id, before, take)
    if before is not None:
        bound = (before.at, _RANK.get(before.kind, 9), before.order)
        items = [item for item in items if _key(item) < bound]
    items.sort(key=_key, reverse=True)
    shown = items[:limit]
    more = len(items) > limit
    last = shown[-1] if shown else None
    cursor = TimelineCursor(last.at, last.kind, last.order) if more and last is not None else None
    return TimelinePage(tuple(shown), cursor)


def _mail_threads(
    session: Session, deal_id: int, before: TimelineCursor | None, take: int
) -> list[TimelineItem]:
    """One entry per thread of the mail filed on the deal, at its newest message (whose id Enter opens)."""
    linked = (
        select(col(m.MailLink.message_id))
        .where(
            col(m.MailLink.record_type) == RecordType.OPPORTUNITY.value,
            col(m.MailLink.record_id) == deal_id,
        )
        .scalar_subquery()
    )
    thread = func.coalesce(col(m.MailMessage.thread_id), col(m.MailMessage.id))  # as triage keys threads
    sent = func.coalesce(col(m.MailMessage.sent_at), col(m.MailMessage.received_at))
    newest = func.max(sent)
    grouped = (
        select(
            thread.label("thread"),
            newest.label("newest"),
            func.count().label("n"),
            func.max(col(m.MailMessage.id)),
        )
        .where(col(m.MailMessage.id).in_(linked))
        .group_by(thread)
    )
    if before is not None:
        grouped = grouped.having(newest <= before.at)
    groups = session.execute(grouped.order_by(newest.desc()).limit(take)).all()
    if not groups:
        return []
    # The newest message of each thread: its subject and sender (one query for the page, plain rows).
    threads = [g[0] for g in groups]
    latest: dict[int, tuple[int, str, str, str, bool]] = {}
    for message_id, thread_key, subject, from_name, from_address, is_outgoing in session.execute(
        select(
            col(m.MailMessage.id),
            thread,
            col(m.MailMessage.subject),
            col(m.MailMessage.from_name),
            col(m.MailMessage.from_address),
            col(m.MailMessage.is_outgoing),
        )  # fmt: skip
        .where(col(m.MailMessage.id).in_(linked), thread.in_(threads))
        .order_by(sent, col(m.MailMessage.id))
    ):
        latest[thread_key] = (message_id, subject, from_name, from_address, is_outgoing)
    items = []
    for thread_key, at, count, _top in groups:
        newest_mail = latest.get(thread_key)
        if newest_mail is None or at is None:
            continue
        message_id, subject, from_name, from_address, is_outgoing = newest_mail
        who = "me" if is_outgoing else (from_name or from_address)
        items.append(
            TimelineItem(
                at,
                "mail",
                f"{who}: {subject or '(no subject)'}",
                RecordRef(RecordType.MESSAGE, message_id),
                detail=f"{count} mails" if count > 1 else "",
                order=message_id,
            )  # fmt: skip
        )
    return items


def _activities(
    session: Session, deal_id: int, before: TimelineCursor | None, take: int
) -> list[TimelineItem]:
    query = (
        select(
            col(m.Activity.id),
            col(m.Activity.type),
            col(m.Activity.subject),
            col(m.Activity.status),
            col(m.Activity.start_at),
            col(m.User.name),
        )  # fmt: skip
        .outerjoin(m.User, col(m.User.id) == col(m.Activity.owner_id))
        .where(col(m.Activity.opportunity_id) == deal_id)
    )
    if before is not None:
        query = query.where(col(m.Activity.start_at) <= before.at)
    rows = list(
        session.execute(
            query.order_by(col(m.Activity.start_at).desc(), col(m.Activity.id).desc()).limit(take)
        )
    )
    # The files an activity carries (A on it) lead its line: "📎 2 call: ...".
    carried = document_counts(session, RecordType.ACTIVITY, (row[0] for row in rows))
    return [
        TimelineItem(
            start,
            "activity",
            f"{attachment_mark(carried[activity_id]) + ' ' if activity_id in carried else ''}{kind}: {subject}",
            RecordRef(RecordType.ACTIVITY, activity_id),
            status,
            owner or "",
            activity_id,
        )  # fmt: skip
        for activity_id, kind, subject, status, start, owner in rows
    ]


def _comments(session: Session, deal_id: int, before: TimelineCursor | None, take: int) -> list[TimelineItem]:
    query = (
        select(col(m.Comment.id), col(m.Comment.body), col(m.Comment.created_at), col(m.User.name))
        .outerjoin(m.User, col(m.User.id) == col(m.Comment.author_id))
        .where(
            col(m.Comment.record_type) == RecordType.OPPORTUNITY.value, col(m.Comment.record_id) == deal_id
        )
    )
    if before is not None:
        query = query.where(col(m.Comment.created_at) <= before.at)
    rows = session.execute(
        query.order_by(col(m.Comment.created_at).desc(), col(m.Comment.id).desc()).limit(take)
    )
    return [
        TimelineItem(
            at,
            "comment",
            body,
            RecordRef(RecordType.COMMENT, comment_id),
            detail=author or "",
            order=comment_id,
        )  # fmt: skip
        for comment_id, body, at, author in rows
    ]


def _documents(
    session: Session, deal_id: int, before: TimelineCursor | None, take: int
) -> list[TimelineItem]:
    query = select(
        col(m.Document.id), col(m.Document.filename), col(m.Document.created_at), col(m.Document.added_by_id),
        col(m.Document.content_type),
    ).where(col(m.Document.record_type) == RecordType.OPPORTUNITY.value, col(m.Document.record_id) == deal_id)  # fmt: skip
    if before is not None:
        query = query.where(col(m.Document.created_at) <= before.at)
    rows = session.execute(
        query.order_by(col(m.Document.created_at).desc(), col(m.Document.id).desc()).limit(take)
    )
    # A document nobody added, a PDF: a report an automation rule stored.
    return [
        TimelineItem(
            at,
            "report" if added_by is None and (kind or "").endswith("pdf") else "document",
            filename,
            RecordRef(RecordType.DOCUMENT, document_id),
            order=document_id,
        )  # fmt: skip
        for document_id, filename, at, added_by, kind in rows
    ]


def _quotes(session: Session, deal_id: int, before: TimelineCursor | None, take: int) -> list[TimelineItem]:
    query = select(
        col(m.Quote.id), col(m.Quote.number), col(m.Quote.status), col(m.Quote.total_cents), col(m.Quote.currency),
        col(m.Quote.updated_at),
    ).where(col(m.Quote.opportunity_id) == deal_id)  # fmt: skip
    if before is not None:
        query = query.where(col(m.Quote.updated_at) <= before.at)
    rows = session.execute(query.order_by(col(m.Quote.updated_at).desc(), col(m.Quote.id).desc()).limit(take))
    return [
        TimelineItem(
            at,
            "quote",
            f"quote {number} {format_money(total, currency)}",
            RecordRef(RecordType.QUOTE, quote_id),
            status,
            order=quote_id,
        )  # fmt: skip
        for quote_id, number, status, total, currency, at in rows
    ]


def _moves(session: Session, deal_id: int, before: TimelineCursor | None, take: int) -> list[TimelineItem]:
    query = select(m.OpportunityHistory).where(col(m.OpportunityHistory.opportunity_id) == deal_id)
    if before is not None:
        query = query.where(col(m.OpportunityHistory.changed_at) <= before.at)
    rows = list(
        session.scalars(
            query.order_by(
                col(m.OpportunityHistory.changed_at).desc(), col(m.OpportunityHistory.id).desc()
            ).limit(take)
        )
    )
    if not rows:
        return []
    stage_ids = {i for row in rows for i in (row.from_stage_id, row.to_stage_id) if i}
    substate_ids = {row.substate_id for row in rows if row.substate_id}
    stages = dict(
        session.execute(
            select(col(m.Stage.id), col(m.Stage.name)).where(col(m.Stage.id).in_(stage_ids))
        ).all()
    )
    substates = dict(
        session.execute(
            select(col(m.SubstateDefinition.id), col(m.SubstateDefinition.name)).where(
                col(m.SubstateDefinition.id).in_(substate_ids)
            )
        ).all()
    )
    items = []
    for row in rows:
        if row.kind == m.HistoryKind.STAGE.value:
            if row.from_stage_id is None:
                text = f"created in {stages.get(row.to_stage_id, '?')}"
            else:
                text = f"stage {stages.get(row.from_stage_id, '?')} → {stages.get(row.to_stage_id, '?')}"
            if row.note and row.note != "created":
                text += f" ({row.note})"
            items.append(TimelineItem(row.changed_at, "stage", text, order=id_of(row)))
        else:
            state = "opened" if row.substate_open else "closed"
            text = f"{substates.get(row.substate_id, '?')} {state}"
            items.append(TimelineItem(row.changed_at, "substate", text, order=id_of(row)))
    return items


def _fired(session: Session, deal_id: int, before: TimelineCursor | None, take: int) -> list[TimelineItem]:
    query = select(
        col(m.AutomationLog.id), col(m.AutomationLog.rule_name), col(m.AutomationLog.outcome),
        col(m.AutomationLog.message), col(m.AutomationLog.at),
    ).where(
        col(m.AutomationLog.record_type) == RecordType.OPPORTUNITY.value, col(m.AutomationLog.record_id) == deal_id
    )  # fmt: skip
    if before is not None:
        query = query.where(col(m.AutomationLog.at) <= before.at)
    rows = session.execute(
        query.order_by(col(m.AutomationLog.at).desc(), col(m.AutomationLog.id).desc()).limit(take)
    )
    return [
        TimelineItem(
            at, "automation", f"{rule}: {message}" if message else rule, status=outcome, order=log_id
        )
        for log_id, rule, outcome, message, at in rows
    ]


# --- choices for the deal screen's keys -------------------------------------------------------------


@dataclass(frozen=True)
class StageChoice:
    stage_id: int
    pipeline_name: str
    name: str
    kind: str
    current: bool


def stage_choices(session: Session, deal_id: int, *, every_pipeline: bool = False) -> list[StageChoice]:
    """The stages a deal can go to (its pipeline's, in order), or with ``every_pipeline`` every stage of every
    pipeline (to copy it into): the deal's own stage marked ``current``."""
    deal = session.get(m.Opportunity, deal_id)
    if deal is None:
        return []
    query = (
        select(m.Stage, col(m.Pipeline.name))
        .join(m.Pipeline, col(m.Pipeline.id) == col(m.Stage.pipeline_id))
        .order_by(col(m.Pipeline.position), col(m.Pipeline.id), col(m.Stage.position), col(m.Stage.id))
    )
    if not every_pipeline:
        query = query.where(col(m.Stage.pipeline_id) == deal.pipeline_id)
    return [
        StageChoice(id_of(stage), pipeline_name, stage.name, stage.kind, stage.id == deal.stage_id)
        for stage, pipeline_name in session.execute(query)
    ]


def deal_choices(
    session: Session, text: str, *, limit: int = 30, partner_id: int | None = None
) -> list[tuple[int, str]]:
    """Deals whose title or customer holds every word of ``text`` (all deals, newest first, when empty):
    (id, "title · customer · stage") for the "Open deal..." picker."""
    query = (
        select(col(m.Opportunity.id), col(m.Opportunity.title), col(m.Organization.name), col(m.Stage.name))
        .join(m.Stage, col(m.Stage.id) == col(m.Opportunity.stage_id))
        .outerjoin(m.Organization, col(m.Organization.id) == col(m.Opportunity.organization_id))
    )
    query = matching_every_word(query, col(m.Opportunity.search_text), text or None)
    if partner_id is not None:
        query = query.where(
            or_(col(m.Opportunity.installer_id) == partner_id, col(m.Opportunity.reseller_id) == partner_id)
        )
    rows = session.execute(
        query.order_by(col(m.Opportunity.updated_at).desc(), col(m.Opportunity.id).desc()).limit(limit)
    )
    return [
        (deal_id, " · ".join(p for p in (title, organization, stage) if p))
        for deal_id, title, organization, stage in rows
    ]


def current_stage(session: Session, deal_id: int) -> tuple[int, str | None] | None:
    """The deal's stage and lost reason now (what an undo of a move goes back to); None: the deal is gone."""
    deal = session.get(m.Opportunity, deal_id)
    return (deal.stage_id, deal.lost_reason) if deal is not None else None
