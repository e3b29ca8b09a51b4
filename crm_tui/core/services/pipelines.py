"""Pipelines, their ordered stages (open / won / lost, with a win probability) and per-stage sub-states."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlmodel import Session, col

from crm_tui.core import models as m
from crm_tui.core.errors import CrmError, FieldErrors, NotFound, ValidationError
from crm_tui.core.field_checks import check_choice, check_text
from crm_tui.core.services.opportunities import move_to_stage
from crm_tui.core.services.rows import get_or_404, id_of
from crm_tui.core.services.stages import stages_of as stages_of  # re-exported: pipelines.stages_of reads on
from crm_tui.core.services.stages import substates_of as substates_of


@dataclass
class StageInput:
    name: str
    kind: str = m.StageKind.OPEN.value
    probability: int = 0
    substates: list[str] = field(default_factory=list)


def _check_stage(errors: FieldErrors, prefix: str, data: StageInput) -> None:
    check_text(errors, f"{prefix}name", data.name, required=True, max_length=80)
    check_choice(errors, f"{prefix}kind", data.kind, [k.value for k in m.StageKind])
    if not isinstance(data.probability, int) or not 0 <= data.probability <= 100:
        errors.add(f"{prefix}probability", "must be a whole number from 0 to 100")
    names = [s.strip() for s in data.substates if s.strip()]
    if len(set(names)) != len(names):
        errors.add(f"{prefix}substates", "sub-state names must differ within a stage")


def create_pipeline(session: Session, name: str, stages: list[StageInput]) -> m.Pipeline:
    errors = FieldErrors()
    clean_name = check_text(errors, "name", name, required=True, max_length=80)
    if clean_name and session.scalars(select(m.Pipeline).where(col(m.Pipeline.name) == clean_name)).first():
        errors.add("name", f"a pipeline named {clean_name!r} exists already")
    if not any(stage.kind == m.StageKind.OPEN.value for stage in stages):
        errors.add("stages", "a pipeline needs at least one open stage")
    seen: set[str] = set()
    for index, stage in enumerate(stages):
        _check_stage(errors, f"stages[{index}].", stage)
        if stage.name.strip().lower() in seen:
            errors.add(f"stages[{index}].name", f"stage {stage.name!r} is listed twice")
        seen.add(stage.name.strip().lower())
    errors.raise_if_any()
    position = int(session.scalar(select(func.coalesce(func.max(col(m.Pipeline.position)), -1))) or 0) + 1
    pipeline = m.Pipeline(name=clean_name or "", position=position)
    session.add(pipeline)
    session.flush()
    for index, stage in enumerate(stages):
        _insert_stage(session, id_of(pipeline), stage, index)
    session.flush()
    return pipeline


def _insert_stage(session: Session, pipeline_id: int, data: StageInput, position: int) -> m.Stage:
    stage = m.Stage(
        pipeline_id=pipeline_id,
        name=data.name.strip(),
        kind=data.kind,
        probability=data.probability,
        position=position,
    )
    session.add(stage)
    session.flush()
    for index, name in enumerate(s.strip() for s in data.substates if s.strip()):
        session.add(m.SubstateDefinition(stage_id=id_of(stage), name=name, position=index))
    session.flush()
    return stage


def add_stage(
    session: Session, pipeline_id: int, data: StageInput, *, position: int | None = None
) -> m.Stage:
    get_or_404(session, m.Pipeline, pipeline_id, "pipeline")
    errors = FieldErrors()
    _check_stage(errors, "", data)
    clash = next(
        (s for s in stages_of(session, pipeline_id) if s.name.lower() == data.name.strip().lower()), None
    )
    if clash is not None:
        errors.add("name", f"this pipeline has a stage {clash.name!r} already")
    errors.raise_if_any()
    existing = stages_of(session, pipeline_id)
    if position is None:
        # An open stage goes before the closing ones (Won, Lost): after them, > would close a deal in one key.
        closing = [i for i, stage in enumerate(existing) if stage.kind != m.StageKind.OPEN.value]
        position = closing[0] if data.kind == m.StageKind.OPEN.value and closing else len(existing)
    position = max(0, min(position, len(existing)))
    for stage in existing[position:]:
        stage.position += 1
        session.add(stage)
    return _insert_stage(session, pipeline_id, data, position)


def update_stage(session: Session, stage_id: int, *, name: str, kind: str, probability: int) -> m.Stage:
    stage = get_or_404(session, m.Stage, stage_id, "stage")
    errors = FieldErrors()
    _check_stage(errors, "", StageInput(name=name, kind=kind, probability=probability))
    clash = next(
        (
            s
            for s in stages_of(session, stage.pipeline_id)
            if s.id != stage_id and s.name.lower() == name.strip().lower()
        ),
        None,
    )
    if clash is not None:
        errors.add("name", f"this pipeline has a stage {clash.name!r} already")
    if kind != m.StageKind.OPEN.value and stage.kind == m.StageKind.OPEN.value:
        others_open = [
            s for s in stages_of(session, stage.pipeline_id) if s.id != stage_id and s.kind == "open"
        ]
        if not others_open:
            errors.add("kind", "a pipeline needs at least one open stage")
    errors.raise_if_any()
    stage.name, stage.kind, stage.probability = name.strip(), kind, probability
    session.add(stage)
    session.flush()
    return stage


def move_stage_position(session: Session, stage_id: int, new_position: int) -> None:
    stage = get_or_404(session, m.Stage, stage_id, "stage")
    stages = [s for s in stages_of(session, stage.pipeline_id) if s.id != stage_id]
    new_position = max(0, min(new_position, len(stages)))
    stages.insert(new_position, stage)
    for index, item in enumerate(stages):
        item.position = index
        session.add(item)
    session.flush()


def delete_stage(
    session: Session, stage_id: int, *, move_deals_to: int | None = None, now: datetime, user_id: int | None
) -> None:
    """Delete a stage. Deals in it must be moved: to ``move_deals_to`` (same pipeline), else it is refused."""
    stage = get_or_404(session, m.Stage, stage_id, "stage")
    in_use = list(session.scalars(select(m.Opportunity).where(col(m.Opportunity.stage_id) == stage_id)))
    remaining_open = [
        s for s in stages_of(session, stage.pipeline_id) if s.id != stage_id and s.kind == "open"
    ]
    if not remaining_open:
        raise ValidationError.single("stage", "a pipeline needs at least one open stage")
    if in_use:
        if move_deals_to is None:
            raise ValidationError.single(
                "stage",
                f"{len(in_use)} deals are in stage {stage.name!r}; choose a stage to move them to first",
            )
        target = session.get(m.Stage, move_deals_to)
        if target is None or target.pipeline_id != stage.pipeline_id or target.id == stage_id:
            raise ValidationError.single("move_deals_to", "must be another stage of the same pipeline")
        if target.kind == m.StageKind.LOST.value:
            raise ValidationError.single("move_deals_to", "deals cannot be moved in bulk to a lost stage")
        for deal in in_use:
            move_to_stage(
                session,
                id_of(deal),
                id_of(target),
                now=now,
                user_id=user_id,
                note=f"stage {stage.name} deleted",
            )
    session.delete(stage)
    session.flush()
    for index, item in enumerate(stages_of(session, stage.pipeline_id)):
        item.position = index
        session.add(item)
    session.flush()


def add_substate(session: Session, stage_id: int, name: str) -> m.SubstateDefinition:
    get_or_404(session, m.Stage, stage_id, "stage")
    errors = FieldErrors()
    clean = check_text(errors, "name", name, required=True, max_length=80)
    clash = next(
        (s for s in substates_of(session, stage_id) if clean and s.name.lower() == clean.lower()), None
    )
    if clash is not None:
        errors.add("name", f"this stage has a sub-state {clash.name!r} already")
    errors.raise_if_any()
    substate = m.SubstateDefinition(
        stage_id=stage_id, name=clean or "", position=len(substates_of(session, stage_id))
    )
    session.add(substate)
    session.flush()
    return substate


def pipelines(session: Session) -> list[m.Pipeline]:
    return list(session.scalars(select(m.Pipeline).order_by(col(m.Pipeline.position), col(m.Pipeline.id))))


def pipeline_by_name(session: Session, name: str) -> m.Pipeline:
    pipeline = session.scalars(
        select(m.Pipeline).where(func.lower(col(m.Pipeline.name)) == name.strip().lower())
    ).first()
    if pipeline is None:
        known = ", ".join(p.name for p in pipelines(session)) or "none"
        raise NotFound(f"no pipeline named {name!r} (pipelines: {known})")
    return pipeline


def stage_by_name(session: Session, name: str, *, pipeline_id: int | None = None) -> int:
    """The id of the stage with that name (any case), in that pipeline if given. NotFound when there is none;
    a name several pipelines use, without a pipeline, is an error naming them."""
    query = (
        select(col(m.Stage.id), col(m.Pipeline.name))
        .join(m.Pipeline, col(m.Pipeline.id) == col(m.Stage.pipeline_id))
        .where(func.lower(col(m.Stage.name)) == name.strip().lower())
        .order_by(col(m.Pipeline.position), col(m.Pipeline.id))
    )
    if pipeline_id is not None:
        query = query.where(col(m.Stage.pipeline_id) == pipeline_id)
    found = session.execute(query).all()
    if not found:
        raise NotFound(f"no stage named {name!r}" + (" in this pipeline" if pipeline_id is not None else ""))
    if len(found) > 1:
        names = ", ".join(pipeline for _, pipeline in found)
        raise CrmError(f"the pipelines {names} each have a stage {name!r}: name one with --pipeline")
    return int(found[0][0])


def first_open_stage(session: Session, pipeline_id: int) -> m.Stage:
    for stage in stages_of(session, pipeline_id):
        if stage.kind == m.StageKind.OPEN.value:
            return stage
    raise ValidationError.single("pipeline_id", "this pipeline has no open stage")


def rename_substate(session: Session, substate_id: int, name: str) -> m.SubstateDefinition:
    substate = get_or_404(session, m.SubstateDefinition, substate_id, "sub-state")
    errors = FieldErrors()
    clean = check_text(errors, "name", name, required=True, max_length=80)
    others = [s for s in substates_of(session, substate.stage_id) if s.id != substate_id]
    clash = next((s for s in others if clean and s.name.lower() == clean.lower()), None)
    if clash is not None:
        errors.add("name", f"this stage has a sub-state {clash.name!r} already")
    errors.raise_if_any()
    substate.name = clean or substate.name
    session.add(substate)
    session.flush()
    return substate


def delete_substate(session: Session, substate_id: int) -> int:
    """Remove a sub-state from its stage; deals lose it (their history keeps the change, unnamed).
    Returns how many deals had it open."""
    substate = get_or_404(session, m.SubstateDefinition, substate_id, "sub-state")
    open_count = int(
        session.scalar(
            select(func.count())
            .select_from(m.OpportunitySubstate)
            .where(
                col(m.OpportunitySubstate.substate_id) == substate_id,
                col(m.OpportunitySubstate.is_open).is_(True),
            )
        )
        or 0
    )
    stage_id = substate.stage_id
    session.delete(substate)
    session.flush()
    for index, item in enumerate(substates_of(session, stage_id)):
        item.position = index
        session.add(item)
    session.flush()
    return open_count


def pipeline_choices(session: Session) -> list[tuple[int, str]]:
    """(id, name) of every pipeline in its order."""
    return [(id_of(p), p.name) for p in pipelines(session)]


def stage_choices(session: Session) -> list[tuple[int, str]]:
    """(stage id, "Pipeline › Stage") of every stage, pipelines and stages in their order."""
    rows = session.execute(
        select(col(m.Stage.id), col(m.Pipeline.name), col(m.Stage.name))
        .join(m.Pipeline, col(m.Pipeline.id) == col(m.Stage.pipeline_id))
        .order_by(col(m.Pipeline.position), col(m.Pipeline.id), col(m.Stage.position), col(m.Stage.id))
    )
    return [(stage_id, f"{pipeline} › {stage}") for stage_id, pipeline, stage in rows]


def first_open_stage_id(session: Session) -> int | None:
    """The first open stage of the first pipeline (a new deal's stage), None without pipelines."""
    first = next(iter(pipelines(session)), None)
    return first_open_stage(session, id_of(first)).id if first is not None else None


def pipeline_of_stage(session: Session, stage_id: int) -> int | None:
    """The pipeline a stage belongs to (None: no such stage)."""
    return session.scalar(select(col(m.Stage.pipeline_id)).where(col(m.Stage.id) == stage_id))
