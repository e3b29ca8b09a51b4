"""What moving a deal to another stage would make automation do, in plain data for the board to show before
the move: the jobs it would plan (and when), the pending jobs it would cancel, the activities it would complete.
Nothing is written."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlmodel import Session

from crm_tui.core import models as m
from crm_tui.core.automation import actions, events, rules, schedule
from crm_tui.core.automation.events import WaitingForEvent
from crm_tui.core.types import RecordRef, RecordType


@dataclass(frozen=True)
class PlannedStep:
    rule: str  # the rule's name
    does: str  # what it does to this deal, its merge fields filled
    due_at: datetime | None  # None: its conditions do not hold now, or it has no date
    event: str


@dataclass(frozen=True)
class CancelledStep:
    rule: str
    does: str
    was_due: datetime


@dataclass(frozen=True)
class StageMovePreview:
    deal_title: str
    stage_name: str
    planned: tuple[PlannedStep, ...]
    cancelled: tuple[CancelledStep, ...]
    completes: tuple[tuple[str, str], ...]  # (activity type, subject)
    # Rules that keep waiting for an event of the deal wherever it is ("when a quote is accepted: ...").
    on_events: tuple[WaitingForEvent, ...] = ()


def stage_move(
    session: Session, deal_id: int, stage_id: int, *, now: datetime, me_id: int | None, today: date
) -> StageMovePreview | None:
    """The preview, or None when the deal or stage is gone or no rule is involved."""
    deal = session.get(m.Opportunity, deal_id)
    stage = session.get(m.Stage, stage_id)
    if deal is None or stage is None:
        return None
    planned, cancelled = schedule.preview_stage_move(session, deal, stage_id, now=now)
    completes = schedule.completed_on_exit(session, "opportunity", deal_id)
    if not planned and not cancelled and not completes:
        return None
    ref = RecordRef(RecordType.OPPORTUNITY, deal_id)

    def does_for(rule: m.AutomationRule) -> str:
        return actions.describe_for(session, rule, ref, me_id=me_id, today=today)

    return StageMovePreview(
        deal.title,
        stage.name,
        tuple(PlannedStep(item.rule.name, does_for(item.rule), item.due_at, item.event) for item in planned),
        tuple(CancelledStep(rule.name, does_for(rule), job.due_at) for rule, job in cancelled),
        tuple((activity.type, activity.subject) for activity in completes),
        _waiting(session, deal, me_id=me_id, today=today),
    )


def waiting_for_events(
    session: Session, deal_id: int, *, me_id: int | None, today: date
) -> tuple[WaitingForEvent, ...]:
    """The rules waiting for an event of this deal (a quote accepted, a document signed) whose conditions hold
    now, each with what it will do to the deal: "when a quote is accepted: mail 'Thanks' to the primary
    contact". Nothing is scheduled until the event happens."""
    deal = session.get(m.Opportunity, deal_id)
    return () if deal is None else _waiting(session, deal, me_id=me_id, today=today)


def _waiting(
    session: Session, deal: m.Opportunity, *, me_id: int | None, today: date
) -> tuple[WaitingForEvent, ...]:
    assert deal.id is not None  # read from the database
    ref = RecordRef(RecordType.OPPORTUNITY, deal.id)
    return tuple(
        WaitingForEvent(
            rule.name, rules.when(rule), actions.describe_for(session, rule, ref, me_id=me_id, today=today)
        )
        for rule in schedule.event_rules(session, "opportunity")
        if rule.record_event in events.EVENTS
        and schedule.applies_to(rule, deal)
        and schedule.conditions_hold(session, rule, deal)
    )
