"""A pipeline's funnel: per stage the deals in it now, the conversion to the next stage and the time spent in it.

Definitions (the README's "Funnel" says the same for users):

- The funnel's stages are the pipeline's open stages in their order, then its won stages, then its lost ones
  (won and lost at the end, wherever Settings placed them).
- A deal's *stays* come from its stage history (``OpportunityHistory`` rows of kind ``stage``, oldest first): a
  stay in a stage lasts from the move into it to the next move (into any stage, of any pipeline); the stay a
  deal is in now lasts until ``now`` (the clock). A deal without any stage history (never recorded) has one
  stay: its current stage since ``stage_entered_at``.
- *Deals* and *amount* of a stage: the deals in that stage now, and their amounts summed per currency
  (never across currencies).
- *Entered*: how many deals ever had a stay in the stage (a deal counts once, however often it came back).
- *Conversion* from a stage to the next: of the deals that entered it, the share that also entered a later
  step, a step being an open or won stage (a lost stage is an end, not a step forward). Deals that skipped
  the next stage (moved from Qualification straight to Won) count as converted; only open stages have a
  conversion, and the last open stage's is its share of deals that were won.
- *Average days in stage*: over the deals that entered an open stage, the mean of the total time each spent
  in it (all its stays there added up; the stay going on now counts up to ``now``). Won and lost stages are
  ends: they have no days.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlmodel import Session, col

from crm_tui.core import models as m
from crm_tui.core.services.opportunities import partner_filter
from crm_tui.core.services.rows import get_or_404, id_of
from crm_tui.core.services.stages import stages_of

_DAY = 86400.0


@dataclass(frozen=True)
class FunnelStage:
    """One stage of the funnel (see the module's definitions)."""

    stage_id: int
    name: str
    kind: str  # open, won, lost
    probability: int
    count: int  # deals in the stage now
    amounts: dict[str, int]  # their amounts in cents per currency, currencies sorted
    entered: int  # deals that ever entered the stage
    # Of those, the deals that reached a later open or won stage; None for a won or lost stage.
    converted: int | None
    # The mean days a deal that entered it spent in it; None for a won or lost stage, or one no deal entered.
    average_days: float | None

    @property
    def conversion(self) -> float | None:
        """``converted`` / ``entered`` (0..1); None for won and lost stages and a stage no deal entered."""
        if self.converted is None or not self.entered:
            return None
        return self.converted / self.entered


@dataclass(frozen=True)
class Funnel:
    pipeline_id: int
    pipeline_name: str
    stages: tuple[FunnelStage, ...]  # open stages in order, then won, then lost


def funnel(session: Session, pipeline_id: int, *, now: datetime, partner_id: int | None = None) -> Funnel:
    """The funnel of one pipeline as of ``now``; with ``partner_id``, only the deals that partner may see."""
    pipeline = get_or_404(session, m.Pipeline, pipeline_id, "pipeline")
    stages = stages_of(session, pipeline_id)
    order = {m.StageKind.OPEN.value: 0, m.StageKind.WON.value: 1, m.StageKind.LOST.value: 2}
    stages.sort(key=lambda stage: order.get(stage.kind, 0))  # stable: each kind keeps its order
    stage_ids = {id_of(stage) for stage in stages}
    # A step's index in the funnel: open and won stages; a lost stage is no step forward.
    step_of = {
        id_of(stage): index
        for index, stage in enumerate(s for s in stages if s.kind != m.StageKind.LOST.value)
    }

    # The deals this pipeline has had: in it now, or once in one of its stages (moved to another pipeline since).
    touched = select(col(m.OpportunityHistory.opportunity_id)).where(
        col(m.OpportunityHistory.kind) == m.HistoryKind.STAGE.value,
        col(m.OpportunityHistory.to_stage_id).in_(sorted(stage_ids)),
    )
    deal_query = select(
        col(m.Opportunity.id),
        col(m.Opportunity.stage_id),
        col(m.Opportunity.stage_entered_at),
        col(m.Opportunity.amount_cents),
        col(m.Opportunity.currency),
    ).where(or_(col(m.Opportunity.pipeline_id) == pipeline_id, col(m.Opportunity.id).in_(touched)))
    if partner_id is not None:
        deal_query = deal_query.where(partner_filter(partner_id))
    deals = session.execute(deal_query).all()
    deal_ids = {row[0] for row in deals}

    moves: dict[int, list[tuple[int | None, datetime]]] = defaultdict(list)
    history = (
        select(
            col(m.OpportunityHistory.opportunity_id),
            col(m.OpportunityHistory.to_stage_id),
            col(m.OpportunityHistory.changed_at),
        )
        .where(
            col(m.OpportunityHistory.kind) == m.HistoryKind.STAGE.value,
            col(m.OpportunityHistory.opportunity_id).in_(deal_query.with_only_columns(col(m.Opportunity.id))),
        )
        .order_by(
            col(m.OpportunityHistory.opportunity_id),
            col(m.OpportunityHistory.changed_at),
            col(m.OpportunityHistory.id),
        )
    )
    for deal_id, to_stage_id, changed_at in session.execute(history):
        if deal_id in deal_ids:
            moves[deal_id].append((to_stage_id, changed_at))

    count: dict[int, int] = defaultdict(int)
    amounts: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    entered: dict[int, int] = defaultdict(int)
    converted: dict[int, int] = defaultdict(int)
    seconds: dict[int, float] = defaultdict(float)
    for deal_id, stage_id, stage_entered_at, amount_cents, currency in deals:
        if stage_id in stage_ids:  # not a deal moved on to another pipeline
            count[stage_id] += 1
            amounts[stage_id][currency] += amount_cents
        stays = moves.get(deal_id) or [(stage_id, stage_entered_at)]
        spent: dict[int, float] = defaultdict(float)
        for index, (to_stage_id, since) in enumerate(stays):
            until = stays[index + 1][1] if index + 1 < len(stays) else now
            if to_stage_id is not None:
                spent[to_stage_id] += max(0.0, (until - since).total_seconds())
        furthest = max((step_of[sid] for sid in spent if sid in step_of), default=-1)
        for sid, duration in spent.items():
            if sid not in stage_ids:
                continue  # a stage of another pipeline
            entered[sid] += 1
            seconds[sid] += duration
            if sid in step_of and furthest > step_of[sid]:
                converted[sid] += 1

    result = []
    for stage in stages:
        sid = id_of(stage)
        is_open = stage.kind == m.StageKind.OPEN.value
        result.append(
            FunnelStage(
                stage_id=sid,
                name=stage.name,
                kind=stage.kind,
                probability=stage.probability,
                count=count[sid],
                amounts=dict(sorted(amounts[sid].items())),
                entered=entered[sid],
                converted=converted[sid] if is_open else None,
                average_days=seconds[sid] / _DAY / entered[sid] if is_open and entered[sid] else None,
            )
        )
    return Funnel(id_of(pipeline), pipeline.name, tuple(result))
