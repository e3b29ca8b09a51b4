"""Opportunities (deals): stage moves with history, sub-states, contacts with one primary, totals."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import String, cast, delete, func, insert, or_, select
from sqlmodel import Session, col

from crm_tui.core import models as m
from crm_tui.core.automation import fields as rule_fields
from crm_tui.core.automation import schedule
from crm_tui.core.db import execute_core
from crm_tui.core.errors import FieldErrors, ValidationError
from crm_tui.core.field_checks import check_currency, check_text
from crm_tui.core.search_text import search_blob
from crm_tui.core.services import custom_fields
from crm_tui.core.services.records import delete_record, refuse_if_changed
from crm_tui.core.services.rows import check_exists, get_or_404, id_of, matching_every_word, owned_by_default
from crm_tui.core.services.stages import stages_of, substates_of
from crm_tui.core.types import RecordRef, RecordType


@dataclass
class OpportunityInput:
    title: str
    pipeline_id: int
    stage_id: int | None = None  # None: the pipeline's first open stage
    amount_cents: int = 0
    currency: str = "EUR"
    expected_close: date | None = None
    owner_id: int | None = None
    organization_id: int | None = None
    installer_id: int | None = None
    reseller_id: int | None = None
    contact_ids: list[int] = field(default_factory=list)
    primary_contact_id: int | None = None
    lost_reason: str | None = None
    description: str | None = None
    source_lead_id: int | None = None
    custom: dict[str, Any] | None = None


@dataclass(frozen=True)
class OpportunitySummary:
    id: int
    title: str
    amount_cents: int
    currency: str
    expected_close: date | None
    pipeline_id: int
    pipeline_name: str
    stage_id: int
    stage_name: str
    stage_kind: str
    probability: int
    owner_id: int | None
    owner_name: str | None
    organization_id: int | None
    organization_name: str | None
    primary_contact_id: int | None
    lost_reason: str | None
    open_substates: tuple[str, ...]
    stage_entered_at: datetime
    updated_at: datetime
    installer_id: int | None = None
    reseller_id: int | None = None

    @property
    def weighted_cents(self) -> int:
        return self.amount_cents * self.probability // 100


@dataclass(frozen=True)
class StageTotal:
    """Deals in one stage: how many, and their amounts per currency (never summed across currencies)."""

    stage_id: int
    count: int
    amounts: dict[str, int]


def _check(
    session: Session, data: OpportunityInput, *, partial_custom: bool
) -> tuple[FieldErrors, dict[str, Any]]:
    errors = FieldErrors()
    clean: dict[str, Any] = {"title": check_text(errors, "title", data.title, required=True, max_length=200)}
    if not isinstance(data.amount_cents, int) or data.amount_cents < 0:
        errors.add("amount", "must be zero or more")
    clean["currency"] = check_currency(errors, "currency", data.currency)
    pipeline = check_exists(session, errors, "pipeline_id", m.Pipeline, data.pipeline_id)
    stage = None
    if pipeline is not None:
        stages = stages_of(session, pipeline.id)
        if data.stage_id is None:
            stage = next((s for s in stages if s.kind == m.StageKind.OPEN.value), None)
            if stage is None:
                errors.add("stage_id", "this pipeline has no open stage")
        else:
            stage = next((s for s in stages if s.id == data.stage_id), None)
            if stage is None:
                errors.add("stage_id", f"stage:{data.stage_id} is not a stage of pipeline {pipeline.name!r}")
    clean["stage"] = stage
    check_exists(session, errors, "owner_id", m.User, data.owner_id)
    check_exists(session, errors, "organization_id", m.Organization, data.organization_id)
    for field_name, kind in (("installer_id", "installer"), ("reseller_id", "reseller")):
        partner = check_exists(session, errors, field_name, m.Organization, getattr(data, field_name))
        if partner is not None and partner.kind != kind:
            article = "an" if kind == "installer" else "a"
            errors.add(field_name, f"{partner.name} is not {article} {kind} partner")
    contact_ids = list(dict.fromkeys(data.contact_ids))
    if data.primary_contact_id is not None and data.primary_contact_id not in contact_ids:
        contact_ids.insert(0, data.primary_contact_id)
    for contact_id in contact_ids:
        check_exists(session, errors, "contact_ids", m.Contact, contact_id)
    clean["contact_ids"] = contact_ids
    clean["primary"] = (
        data.primary_contact_id
        if data.primary_contact_id is not None
        else (contact_ids[0] if contact_ids else None)
    )
    clean["lost_reason"] = check_text(errors, "lost_reason", data.lost_reason, max_length=300)
    if stage is not None and stage.kind == m.StageKind.LOST.value and not clean["lost_reason"]:
        errors.add("lost_reason", "a lost deal needs a lost reason")
    clean["description"] = check_text(errors, "description", data.description, max_length=20000)
    check_exists(session, errors, "source_lead_id", m.Lead, data.source_lead_id)
    clean["custom"] = custom_fields.check_values(
        session, RecordType.OPPORTUNITY.value, data.custom, errors=errors, partial=partial_custom
    )
    return errors, clean


def _search_text(session: Session, deal: m.Opportunity) -> str:
    organization = session.get(m.Organization, deal.organization_id) if deal.organization_id else None
    return search_blob(deal.title, organization.name if organization else None)


def _apply(
    session: Session, deal: m.Opportunity, data: OpportunityInput, clean: dict[str, Any], now: datetime
) -> None:
    deal.title = clean["title"]
    deal.amount_cents = data.amount_cents
    deal.currency = clean["currency"]
    deal.expected_close = data.expected_close
    deal.owner_id = data.owner_id
    deal.organization_id = data.organization_id
    deal.installer_id = data.installer_id
    deal.reseller_id = data.reseller_id
    deal.description = clean["description"]
    deal.source_lead_id = data.source_lead_id
    deal.updated_at = now
    deal.search_text = _search_text(session, deal)
    session.add(deal)
    session.flush()
    assert deal.id is not None
    # Each person's role on the deal stays through an edit of the deal (the form does not show roles).
    roles = dict(
        session.execute(
            select(col(m.OpportunityContact.contact_id), col(m.OpportunityContact.role)).where(
                col(m.OpportunityContact.opportunity_id) == deal.id
            )
        ).all()
    )
    session.execute(delete(m.OpportunityContact).where(col(m.OpportunityContact.opportunity_id) == deal.id))
    session.info.get("primary_contacts", {}).pop(deal.id, None)  # email_templates.PRIMARY_CONTACTS
    session.add_all(
        m.OpportunityContact(
            opportunity_id=deal.id, contact_id=cid, is_primary=cid == clean["primary"], role=roles.get(cid)
        )
        for cid in clean["contact_ids"]
    )
    custom_fields.store_values(session, deal.id, clean["custom"])
    session.flush()


def create_opportunity(
    session: Session, data: OpportunityInput, *, now: datetime, user_id: int | None
) -> m.Opportunity:
    data = owned_by_default(data, user_id)
    errors, clean = _check(session, data, partial_custom=False)
    errors.raise_if_any()
    stage: m.Stage = clean["stage"]
    deal = m.Opportunity(
        title=clean["title"],
        pipeline_id=data.pipeline_id,
        stage_id=id_of(stage),
        stage_entered_at=now,
        lost_reason=clean["lost_reason"] if stage.kind == m.StageKind.LOST.value else None,
        created_at=now,
    )
    _apply(session, deal, data, clean, now)
    _history(
        session,
        opportunity_id=deal.id,
        kind=m.HistoryKind.STAGE.value,
        from_stage_id=None,
        to_stage_id=stage.id,
        user_id=user_id,
        changed_at=now,
        note="created",
    )
    session.flush()
    schedule.record_created(session, "opportunity", deal, now=now)
    return deal


def update_opportunity(
    session: Session,
    deal_id: int,
    data: OpportunityInput,
    *,
    now: datetime,
    user_id: int | None,
    expected: OpportunityRecord | None = None,
) -> m.Opportunity:
    """Edit a deal. A changed stage is a stage move (recorded in the history); the pipeline changes with it.
    With ``expected`` (the deal as its form showed it), a deal changed or deleted since is refused
    (RecordChanged) in this same write."""
    refuse_if_changed(opportunity_record(session, deal_id) if expected else None, expected)
    deal = get_or_404(session, m.Opportunity, deal_id, "opportunity")
    errors, clean = _check(session, data, partial_custom=True)
    errors.raise_if_any()
    before = rule_fields.record_values(session, "opportunity", deal, custom=False)
    _apply(session, deal, data, clean, now)
    after = rule_fields.record_values(session, "opportunity", deal, custom=False)
    changed = [name for name in before if before[name] != after[name] and name not in ("stage", "pipeline")]
    stage: m.Stage = clean["stage"]
    if stage.id != deal.stage_id:
        move_to_stage(
            session, deal_id, id_of(stage), now=now, user_id=user_id, lost_reason=clean["lost_reason"]
        )
    elif stage.kind == m.StageKind.LOST.value:
        deal.lost_reason = clean["lost_reason"]
        session.add(deal)
        session.flush()
    schedule.fields_changed(session, "opportunity", deal, changed, now=now)
    return deal


def _history(session: Session, **values: Any) -> None:
    """One row of a deal's history (written directly: nothing reads it back in the same use case)."""
    execute_core(session, insert(m.OpportunityHistory), values)


def move_to_stage(
    session: Session,
    deal_id: int,
    stage_id: int,
    *,
    now: datetime,
    user_id: int | None,
    lost_reason: str | None = None,
    note: str | None = None,
) -> m.Opportunity:
    """Move a deal to another stage of its pipeline (or of another pipeline, which moves it there too)."""
    deal = get_or_404(session, m.Opportunity, deal_id, "opportunity")
    stage = session.get(m.Stage, stage_id)
    if stage is None:
        raise ValidationError.single("stage_id", f"stage:{stage_id} does not exist")
    if stage.id == deal.stage_id:
        return deal
    reason = (lost_reason or "").strip() or None
    if stage.kind == m.StageKind.LOST.value and not reason:
        raise ValidationError.single("lost_reason", "a lost deal needs a lost reason")
    previous = deal.stage_id
    deal.pipeline_id = stage.pipeline_id
    deal.stage_id = id_of(stage)
    deal.stage_entered_at = now
    deal.lost_reason = reason if stage.kind == m.StageKind.LOST.value else None
    deal.updated_at = now
    session.add(deal)
    _history(
        session,
        opportunity_id=deal_id,
        kind=m.HistoryKind.STAGE.value,
        from_stage_id=previous,
        to_stage_id=stage.id,
        note=note or reason,
        user_id=user_id,
        changed_at=now,
    )
    session.flush()
    old_stage = session.get(m.Stage, previous)
    schedule.stage_changed(
        session, deal, previous, now=now, names=(old_stage.name if old_stage else "?", stage.name)
    )
    return deal


def copy_to_stage(
    session: Session, deal_id: int, stage_id: int, *, now: datetime, user_id: int | None
) -> m.Opportunity:
    """A copy of the deal (its facts, people with their roles, custom fields) in ``stage_id`` of any pipeline,
    titled "... (Copy)" and remembering where it comes from (``copied_from_id``): ``C`` on a deal."""
    deal = get_or_404(session, m.Opportunity, deal_id, "opportunity")
    stage = session.get(m.Stage, stage_id)
    if stage is None:
        raise ValidationError.single("stage_id", f"stage:{stage_id} does not exist")
    people = contacts_of(session, deal_id)
    copy = create_opportunity(
        session,
        OpportunityInput(
            title=f"{deal.title} (Copy)"[:200],
            pipeline_id=stage.pipeline_id,
            stage_id=stage.id,
            amount_cents=deal.amount_cents,
            currency=deal.currency,
            expected_close=deal.expected_close,
            owner_id=deal.owner_id,
            organization_id=deal.organization_id,
            installer_id=deal.installer_id,
            reseller_id=deal.reseller_id,
            contact_ids=[c for c, _ in people],
            primary_contact_id=next((c for c, primary in people if primary), None),
            lost_reason=deal.lost_reason if stage.kind == m.StageKind.LOST.value else None,
            description=deal.description,
            source_lead_id=deal.source_lead_id,
            custom=custom_fields.get_values(session, RecordRef(RecordType.OPPORTUNITY, deal_id)) or None,
        ),
        now=now,
        user_id=user_id,
    )
    copy.copied_from_id = deal_id
    session.add(copy)
    roles = dict(
        session.execute(
            select(col(m.OpportunityContact.contact_id), col(m.OpportunityContact.role)).where(
                col(m.OpportunityContact.opportunity_id) == deal_id
            )
        ).all()
    )
    for row in session.scalars(
        select(m.OpportunityContact).where(col(m.OpportunityContact.opportunity_id) == copy.id)
    ):
        row.role = roles.get(row.contact_id)
        session.add(row)
    session.flush()
    return copy


def adjacent_stage(session: Session, deal_id: int, step: int) -> m.Stage | None:
    """The stage ``step`` places after (or before, if negative) the deal's current one; None at either end."""
    deal = get_or_404(session, m.Opportunity, deal_id, "opportunity")
    stages = stages_of(session, deal.pipeline_id)
    index = next(i for i, s in enumerate(stages) if s.id == deal.stage_id)
    target = index + step
    return stages[target] if 0 <= target < len(stages) else None


def set_substate(
    session: Session, deal_id: int, substate_id: int, is_open: bool, *, now: datetime, user_id: int | None
) -> bool:
    """Open or close a sub-state of the deal's current stage. Returns whether anything changed."""
    deal = get_or_404(session, m.Opportunity, deal_id, "opportunity")
    definition = session.get(m.SubstateDefinition, substate_id)
    if definition is None or definition.stage_id != deal.stage_id:
        raise ValidationError.single("substate_id", "not a sub-state of the deal's current stage")
    known = execute_core(
        session,
        select(col(m.OpportunitySubstate.is_open)).where(
            col(m.OpportunitySubstate.opportunity_id) == deal_id,
            col(m.OpportunitySubstate.substate_id) == substate_id,
        ),
    ).first()
    row = session.get(m.OpportunitySubstate, (deal_id, substate_id)) if known is not None else None
    if row is not None and row.is_open == is_open:
        return False
    if row is None:
        if not is_open:
            return False
        execute_core(
            session,
            insert(m.OpportunitySubstate),
            {"opportunity_id": deal_id, "substate_id": substate_id, "is_open": True, "changed_at": now},
        )
    else:
        row.is_open = is_open
        row.changed_at = now
        session.add(row)
    _history(
        session,
        opportunity_id=deal_id,
        kind=m.HistoryKind.SUBSTATE.value,
        substate_id=substate_id,
        substate_open=is_open,
        user_id=user_id,
        changed_at=now,
    )
    session.flush()
    schedule.substate_changed(session, deal, substate_id, is_open, now=now, name=definition.name)
    return True


def open_substates(session: Session, deal_id: int) -> list[m.SubstateDefinition]:
    deal = get_or_404(session, m.Opportunity, deal_id, "opportunity")
    open_ids = set(
        session.scalars(
            select(col(m.OpportunitySubstate.substate_id)).where(
                col(m.OpportunitySubstate.opportunity_id) == deal_id,
                col(m.OpportunitySubstate.is_open).is_(True),
            )
        )
    )
    return [s for s in substates_of(session, deal.stage_id) if s.id in open_ids]


def history(session: Session, deal_id: int) -> list[m.OpportunityHistory]:
    return list(
        session.scalars(
            select(m.OpportunityHistory)
            .where(col(m.OpportunityHistory.opportunity_id) == deal_id)
            .order_by(col(m.OpportunityHistory.changed_at), col(m.OpportunityHistory.id))
        )
    )


def contacts_of(session: Session, deal_id: int) -> list[tuple[int, bool]]:
    """(contact id, is primary) for every contact of the deal, the primary first."""
    return [
        (row.contact_id, row.is_primary)
        for row in session.scalars(
            select(m.OpportunityContact)
            .where(col(m.OpportunityContact.opportunity_id) == deal_id)
            .order_by(col(m.OpportunityContact.is_primary).desc(), col(m.OpportunityContact.contact_id))
        )
    ]


CONTACT_ROLES = ("decision maker", "technical", "billing", "user", "influencer", "other")


def set_contact_role(session: Session, deal_id: int, contact_id: int, role: str | None) -> None:
    """A person's role on the deal (one of CONTACT_ROLES, or None: no role)."""
    if role is not None and role not in CONTACT_ROLES:
        raise ValidationError.single("role", f"the role is one of: {', '.join(CONTACT_ROLES)}")
    row = session.get(m.OpportunityContact, (deal_id, contact_id))
    if row is None:
        raise ValidationError.single("contact_id", f"contact:{contact_id} is not on this deal")
    row.role = role
    session.add(row)
    session.flush()


def delete_opportunity(session: Session, deal_id: int) -> list[str]:
    return delete_record(session, RecordRef(RecordType.OPPORTUNITY, deal_id))


def list_opportunities(
    session: Session,
    *,
    pipeline_id: int | None = None,
    stage_id: int | None = None,
    owner_id: int | None = None,
    text: str | None = None,
    limit: int | None = 50,
    offset: int = 0,
    partner_id: int | None = None,
) -> list[OpportunitySummary]:
    """One page of deals, by pipeline, stage order, then expected close date."""
    query = (
        select(m.Opportunity, col(m.Pipeline.name), m.Stage, col(m.User.name), col(m.Organization.name))
        .join(m.Pipeline, col(m.Pipeline.id) == col(m.Opportunity.pipeline_id))
        .join(m.Stage, col(m.Stage.id) == col(m.Opportunity.stage_id))
        .outerjoin(m.User, col(m.User.id) == col(m.Opportunity.owner_id))
        .outerjoin(m.Organization, col(m.Organization.id) == col(m.Opportunity.organization_id))
    )
    if pipeline_id is not None:
        query = query.where(col(m.Opportunity.pipeline_id) == pipeline_id)
    if stage_id is not None:
        query = query.where(col(m.Opportunity.stage_id) == stage_id)
    if owner_id is not None:
        query = query.where(col(m.Opportunity.owner_id) == owner_id)
    if partner_id is not None:  # a partner's user sees the deals their organization installs or resells
        query = query.where(partner_filter(partner_id))
    query = matching_every_word(query, col(m.Opportunity.search_text), text)
    query = query.order_by(
        col(m.Pipeline.position),
        col(m.Pipeline.id),
        col(m.Stage.position),
        col(m.Opportunity.expected_close),
        col(m.Opportunity.id),
    ).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    rows = session.execute(query).all()
    ids = [deal.id for deal, *_ in rows]
    primary: dict[int, int] = {}
    open_names: dict[int, list[tuple[str, int]]] = defaultdict(list)
    if ids:
        for deal_id, contact_id in session.execute(
            select(col(m.OpportunityContact.opportunity_id), col(m.OpportunityContact.contact_id)).where(
                col(m.OpportunityContact.opportunity_id).in_(ids),
                col(m.OpportunityContact.is_primary).is_(True),
            )
        ):
            primary[deal_id] = contact_id
        for deal_id, name, stage_id_ in session.execute(
            select(
                col(m.OpportunitySubstate.opportunity_id),
                col(m.SubstateDefinition.name),
                col(m.SubstateDefinition.stage_id),
            )
            .join(
                m.SubstateDefinition, col(m.SubstateDefinition.id) == col(m.OpportunitySubstate.substate_id)
            )
            .where(
                col(m.OpportunitySubstate.opportunity_id).in_(ids),
                col(m.OpportunitySubstate.is_open).is_(True),
            )
            .order_by(col(m.SubstateDefinition.position))
        ):
            open_names[deal_id].append((name, stage_id_))
    result = []
    for deal, pipeline_name, stage, owner_name, organization_name in rows:
        result.append(
            OpportunitySummary(
                id=deal.id,
                title=deal.title,
                amount_cents=deal.amount_cents,
                currency=deal.currency,
                expected_close=deal.expected_close,
                pipeline_id=deal.pipeline_id,
                pipeline_name=pipeline_name,
                stage_id=stage.id,
                stage_name=stage.name,
                stage_kind=stage.kind,
                probability=stage.probability,
                owner_id=deal.owner_id,
                owner_name=owner_name,
                organization_id=deal.organization_id,
                organization_name=organization_name,
                primary_contact_id=primary.get(deal.id),
                lost_reason=deal.lost_reason,
                installer_id=deal.installer_id,
                reseller_id=deal.reseller_id,
                # Sub-states belong to a stage: only those of the current stage count.
                open_substates=tuple(name for name, sid in open_names[deal.id] if sid == stage.id),
                stage_entered_at=deal.stage_entered_at,
                updated_at=deal.updated_at,
            )
        )
    return result


def partner_filter(partner_id: int) -> Any:
    """The deals a partner organization's users see: those it is the installer or the reseller of."""
    return or_(col(m.Opportunity.installer_id) == partner_id, col(m.Opportunity.reseller_id) == partner_id)


def stage_totals(
    session: Session, pipeline_id: int, *, partner_id: int | None = None, text: str | None = None
) -> list[StageTotal]:
    """Count and amount per currency of each stage of the pipeline, in stage order; with ``text``, of the
    deals that filter finds (as ``list_opportunities`` does)."""
    counts: dict[int, int] = defaultdict(int)
    amounts: dict[int, dict[str, int]] = defaultdict(dict)
    query = (
        select(
            col(m.Opportunity.stage_id),
            col(m.Opportunity.currency),
            func.count(),
            func.sum(col(m.Opportunity.amount_cents)),
        )
        .where(col(m.Opportunity.pipeline_id) == pipeline_id)
        .group_by(col(m.Opportunity.stage_id), col(m.Opportunity.currency))
    )
    if partner_id is not None:
        query = query.where(partner_filter(partner_id))
    query = matching_every_word(query, col(m.Opportunity.search_text), text)
    for stage_id, currency, count, total in session.execute(query):
        counts[stage_id] += count
        amounts[stage_id][currency] = int(total or 0)
    return [
        StageTotal(stage_id=sid, count=counts[sid], amounts=dict(sorted(amounts[sid].items())))
        for sid in (id_of(stage) for stage in stages_of(session, pipeline_id))
    ]


@dataclass(frozen=True)
class ForecastMonth:
    month: str  # YYYY-MM
    currency: str
    weighted_cents: int
    total_cents: int
    count: int
    overdue: bool = False  # a month before today's: these deals are still open past their expected close


def forecast(
    session: Session,
    *,
    pipeline_id: int | None = None,
    owner_id: int | None = None,
    today: date | None = None,
) -> list[ForecastMonth]:
    """Open deals by expected close month and currency: amount weighted by the stage's probability. With
    ``today``, the months before today's are marked ``overdue``."""
    month = func.substr(cast(col(m.Opportunity.expected_close), String), 1, 7)
    query = (
        select(
            month,
            col(m.Opportunity.currency),
            func.sum(col(m.Opportunity.amount_cents) * col(m.Stage.probability)),
            func.sum(col(m.Opportunity.amount_cents)),
            func.count(),
        )
        .join(m.Stage, col(m.Stage.id) == col(m.Opportunity.stage_id))
        .where(col(m.Stage.kind) == m.StageKind.OPEN.value, col(m.Opportunity.expected_close).is_not(None))
        .group_by(month, col(m.Opportunity.currency))
        .order_by(month, col(m.Opportunity.currency))
    )
    if pipeline_id is not None:
        query = query.where(col(m.Opportunity.pipeline_id) == pipeline_id)
    if owner_id is not None:
        query = query.where(col(m.Opportunity.owner_id) == owner_id)
    return [
        ForecastMonth(
            month=row[0],
            currency=row[1],
            weighted_cents=int(row[2] or 0) // 100,
            total_cents=int(row[3] or 0),
            count=row[4],
            overdue=today is not None and row[0] < f"{today:%Y-%m}",
        )
        for row in session.execute(query)
    ]


def count_in_stage(session: Session, stage_id: int) -> int:
    return int(
        session.scalar(
            select(func.count()).select_from(m.Opportunity).where(col(m.Opportunity.stage_id) == stage_id)
        )
        or 0
    )


@dataclass(frozen=True)
class OpportunityRecord:
    """A deal as its form shows it (and as an edit expects to find it). ``contacts``: (id, name), the
    primary contact first when there is one (``primary_contact_id``)."""

    id: int
    title: str
    pipeline_id: int
    pipeline_name: str = field(compare=False)
    stage_id: int
    stage_name: str = field(compare=False)
    amount_cents: int
    currency: str
    expected_close: date | None
    owner_id: int | None
    owner_name: str | None = field(compare=False)
    organization_id: int | None
    organization_name: str | None
    installer_id: int | None
    installer_name: str | None
    reseller_id: int | None
    reseller_name: str | None
    primary_contact_id: int | None
    contacts: tuple[tuple[int, str], ...]
    lost_reason: str | None
    description: str | None
    custom: tuple[tuple[str, Any], ...]
    updated_at: datetime


def opportunity_record(session: Session, deal_id: int) -> OpportunityRecord | None:
    deal = session.get(m.Opportunity, deal_id)
    if deal is None:
        return None

    def name(model: Any, record_id: int | None) -> str | None:
        row = session.get(model, record_id) if record_id else None
        return row.name if row is not None else None

    people = contacts_of(session, deal_id)
    stage = session.get(m.Stage, deal.stage_id)
    return OpportunityRecord(
        id=deal_id,
        title=deal.title,
        pipeline_id=deal.pipeline_id,
        pipeline_name=name(m.Pipeline, deal.pipeline_id) or "",
        stage_id=deal.stage_id,
        stage_name=stage.name if stage else "",
        amount_cents=deal.amount_cents,
        currency=deal.currency,
        expected_close=deal.expected_close,
        owner_id=deal.owner_id,
        owner_name=name(m.User, deal.owner_id),
        organization_id=deal.organization_id,
        organization_name=name(m.Organization, deal.organization_id),
        installer_id=deal.installer_id,
        installer_name=name(m.Organization, deal.installer_id),
        reseller_id=deal.reseller_id,
        reseller_name=name(m.Organization, deal.reseller_id),
        primary_contact_id=next((cid for cid, primary in people if primary), None),
        contacts=tuple((cid, name(m.Contact, cid) or "") for cid, _ in people),
        lost_reason=deal.lost_reason,
        description=deal.description,
        custom=custom_fields.values_of(session, RecordRef(RecordType.OPPORTUNITY, deal_id)),
        updated_at=deal.updated_at,
    )
