"""A pipeline's stages and a stage's sub-states, in their order: what the deals read (a stage move, the open
sub-states) and the pipelines' settings change."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session, col

from crm_tui.core import models as m


def stages_of(session: Session, pipeline_id: int) -> list[m.Stage]:
    return list(
        session.scalars(
            select(m.Stage)
            .where(col(m.Stage.pipeline_id) == pipeline_id)
            .order_by(col(m.Stage.position), col(m.Stage.id))
        )
    )


def substates_of(session: Session, stage_id: int) -> list[m.SubstateDefinition]:
    return list(
        session.scalars(
            select(m.SubstateDefinition)
            .where(col(m.SubstateDefinition.stage_id) == stage_id)
            .order_by(col(m.SubstateDefinition.position), col(m.SubstateDefinition.id))
        )
    )
