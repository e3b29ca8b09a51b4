"""Pipelines, stages, sub-states and opportunities."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from crm_tui.core import models as m
from crm_tui.core.db import Database
from crm_tui.core.errors import ValidationError
from crm_tui.core.services import opportunities as deals
from crm_tui.core.services import pipelines
from crm_tui.core.services.pipelines import StageInput
from tests.utils import factories


def test_pipeline_rules(db: Database) -> None:
    with pytest.raises(ValidationError) as excinfo, db.write() as session:
        pipelines.create_pipeline(
            session,
            "",
            [StageInput("Won", "won", 100), StageInput("Won", "won", 140), StageInput("X", "maybe", 0)],
        )
    errors = excinfo.value.errors
    assert {"name", "stages", "stages[1].name", "stages[1].probability", "stages[2].kind"} <= set(errors)
    with db.write() as session:
        factories.pipeline(session, "Sales")
        with pytest.raises(ValidationError, match="exists already"):
            factories.pipeline(session, "Sales")


def test_a_stage_must_belong_to_the_deals_pipeline(db: Database, now: datetime) -> None:
    with db.write() as session:
        sales, service = factories.pipeline(session), factories.pipeline(session)
        foreign_stage = pipelines.stages_of(session, service.id)[0]  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="is not a stage of pipeline"):
            factories.deal(session, now, sales, stage_id=foreign_stage.id)
        deal = factories.deal(session, now, sales)
        assert deal.stage_id == pipelines.stages_of(session, sales.id)[0].id, "default: the first open stage"  # type: ignore[arg-type]


def test_deal_field_rules(db: Database, now: datetime) -> None:
    with db.write() as session:
        pipe = factories.pipeline(session)
        customer = factories.organization(session, now, kind="customer")
        with pytest.raises(ValidationError) as excinfo:
            factories.deal(
                session,
                now,
                pipe,
                title=" ",
                amount_cents=-5,
                currency="euro",
                installer_id=customer.id,
                reseller_id=customer.id,
                contact_ids=[12345],
            )
        assert set(excinfo.value.errors) == {
            "title",
            "amount",
            "currency",
            "installer_id",
            "reseller_id",
            "contact_ids",
        }
        assert "is not an installer partner" in excinfo.value.errors["installer_id"]


def test_moving_stages_records_history_and_lost_needs_a_reason(db: Database, now: datetime) -> None:
    with db.write() as session:
        pipe = factories.pipeline(session)
        lead_in, proposal, won, lost = pipelines.stages_of(session, pipe.id)  # type: ignore[arg-type]
        deal = factories.deal(session, now, pipe)
        later = now + timedelta(days=2)
        deals.move_to_stage(session, deal.id, proposal.id, now=later, user_id=None)  # type: ignore[arg-type]
        assert deal.stage_entered_at == later
        with pytest.raises(ValidationError, match="lost_reason: a lost deal needs a lost reason"):
            deals.move_to_stage(session, deal.id, lost.id, now=later, user_id=None)  # type: ignore[arg-type]
        deals.move_to_stage(session, deal.id, lost.id, now=later, user_id=None, lost_reason="too expensive")  # type: ignore[arg-type]
        assert deal.lost_reason == "too expensive"
        deals.move_to_stage(session, deal.id, proposal.id, now=later, user_id=None)  # type: ignore[arg-type]
        assert deal.lost_reason is None, "reopening a lost deal clears its reason"
        moves = [(h.from_stage_id, h.to_stage_id) for h in deals.history(session, deal.id)]  # type: ignore[arg-type]
        assert moves == [
            (None, lead_in.id),
            (lead_in.id, proposal.id),
            (proposal.id, lost.id),
            (lost.id, proposal.id),
        ]
        assert deals.adjacent_stage(session, deal.id, +1).id == won.id  # type: ignore[arg-type,union-attr]
        assert deals.adjacent_stage(session, deal.id, -1).id == lead_in.id  # type: ignore[arg-type,union-attr]


def test_substates_belong_to_the_current_stage_and_are_recorded(db: Database, now: datetime) -> None:
    with db.write() as session:
        pipe = factories.pipeline(session)
        lead_in, proposal, *_ = pipelines.stages_of(session, pipe.id)  # type: ignore[arg-type]
        deal = factories.deal(session, now, pipe)
        offer_sent = pipelines.substates_of(session, proposal.id)[0]  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="not a sub-state of the deal's current stage"):
            deals.set_substate(session, deal.id, offer_sent.id, True, now=now, user_id=None)  # type: ignore[arg-type]
        deals.move_to_stage(session, deal.id, proposal.id, now=now, user_id=None)  # type: ignore[arg-type]
        assert deals.set_substate(session, deal.id, offer_sent.id, True, now=now, user_id=None)  # type: ignore[arg-type]
        assert not deals.set_substate(session, deal.id, offer_sent.id, True, now=now, user_id=None), (
            "no change"
        )  # type: ignore[arg-type]
        assert [s.name for s in deals.open_substates(session, deal.id)] == ["Offer sent"]  # type: ignore[arg-type]
        deals.set_substate(session, deal.id, offer_sent.id, False, now=now, user_id=None)  # type: ignore[arg-type]
        assert deals.open_substates(session, deal.id) == []  # type: ignore[arg-type]
        kinds = [(h.kind, h.substate_open) for h in deals.history(session, deal.id) if h.kind == "substate"]  # type: ignore[arg-type]
        assert kinds == [("substate", True), ("substate", False)]


def test_totals_per_stage_never_mix_currencies(db: Database, now: datetime) -> None:
    with db.write() as session:
        pipe = factories.pipeline(session)
        factories.deal(session, now, pipe, amount_cents=100_00, currency="EUR")
        factories.deal(session, now, pipe, amount_cents=250_50, currency="EUR")
        factories.deal(session, now, pipe, amount_cents=99_00, currency="CHF")
        totals = deals.stage_totals(session, pipe.id)  # type: ignore[arg-type]
    assert totals[0].count == 3
    assert totals[0].amounts == {"CHF": 99_00, "EUR": 350_50}
    assert totals[1].count == 0 and totals[1].amounts == {}


def test_primary_contact_and_listing(db: Database, now: datetime) -> None:
    with db.write() as session:
        pipe = factories.pipeline(session, "Main")
        a, b = factories.contact(session, now), factories.contact(session, now)
        deal = factories.deal(
            session, now, pipe, contact_ids=[a.id], primary_contact_id=b.id, amount_cents=1000_00
        )
        assert deals.contacts_of(session, deal.id) == [(b.id, True), (a.id, False)]  # type: ignore[arg-type]
        rows = deals.list_opportunities(session, pipeline_id=pipe.id)
    assert [(r.title, r.primary_contact_id, r.stage_name, r.weighted_cents) for r in rows] == [
        (deal.title, b.id, "Lead in", 100_00)
    ]


def test_a_stage_in_use_cannot_be_deleted_without_moving_its_deals(db: Database, now: datetime) -> None:
    with db.write() as session:
        pipe = factories.pipeline(session)
        lead_in, proposal, _, lost = pipelines.stages_of(session, pipe.id)  # type: ignore[arg-type]
        deal = factories.deal(session, now, pipe)
        with pytest.raises(ValidationError, match="1 deals are in stage 'Lead in'"):
            pipelines.delete_stage(session, lead_in.id, now=now, user_id=None)  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="lost stage"):
            pipelines.delete_stage(session, lead_in.id, move_deals_to=lost.id, now=now, user_id=None)  # type: ignore[arg-type]
        pipelines.delete_stage(session, lead_in.id, move_deals_to=proposal.id, now=now, user_id=None)  # type: ignore[arg-type]
        assert session.get(m.Opportunity, deal.id).stage_id == proposal.id  # type: ignore[union-attr]
        assert [s.name for s in pipelines.stages_of(session, pipe.id)] == ["Proposal", "Won", "Lost"]  # type: ignore[arg-type]
        assert [s.position for s in pipelines.stages_of(session, pipe.id)] == [0, 1, 2]  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="at least one open stage"):
            pipelines.delete_stage(session, proposal.id, move_deals_to=None, now=now, user_id=None)  # type: ignore[arg-type]


def test_stages_can_be_added_renamed_and_reordered(db: Database) -> None:
    with db.write() as session:
        pipe = factories.pipeline(session)
        pipelines.add_stage(session, pipe.id, StageInput("Negotiation", "open", 75), position=2)  # type: ignore[arg-type]
        names = [s.name for s in pipelines.stages_of(session, pipe.id)]  # type: ignore[arg-type]
        assert names == ["Lead in", "Proposal", "Negotiation", "Won", "Lost"]
        negotiation = pipelines.stages_of(session, pipe.id)[2]  # type: ignore[arg-type]
        pipelines.move_stage_position(session, negotiation.id, 0)  # type: ignore[arg-type]
        assert pipelines.stages_of(session, pipe.id)[0].name == "Negotiation"  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="has a stage 'Won' already"):
            pipelines.update_stage(session, negotiation.id, name="won", kind="open", probability=10)  # type: ignore[arg-type]


def test_substates_can_be_renamed_and_removed(db: Database, now: datetime) -> None:
    with db.write() as session:
        pipe = factories.pipeline(session)
        _, proposal, *_ = pipelines.stages_of(session, pipe.id)  # type: ignore[arg-type]
        offer_sent, visit_done = pipelines.substates_of(session, proposal.id)  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="has a sub-state 'Visit done' already"):
            pipelines.rename_substate(session, offer_sent.id, "visit DONE")  # type: ignore[arg-type]
        pipelines.rename_substate(session, offer_sent.id, "Offer mailed")  # type: ignore[arg-type]
        deal = factories.deal(session, now, pipe, stage_id=proposal.id)
        deals.set_substate(session, deal.id, visit_done.id, True, now=now, user_id=None)  # type: ignore[arg-type]
        assert pipelines.delete_substate(session, visit_done.id) == 1  # type: ignore[arg-type]
        assert [s.name for s in pipelines.substates_of(session, proposal.id)] == ["Offer mailed"]  # type: ignore[arg-type]
        assert deals.open_substates(session, deal.id) == []  # type: ignore[arg-type]
        assert [h.substate_id for h in deals.history(session, deal.id) if h.kind == "substate"] == [None], (
            "history kept"
        )  # type: ignore[arg-type]


def test_a_new_open_stage_goes_before_won_and_lost(db: Database) -> None:
    from crm_tui.core.services import pipelines

    with db.write() as session:
        pipeline = pipelines.create_pipeline(
            session,
            "Vertrieb",
            [
                pipelines.StageInput("Neu", "open", 10),
                pipelines.StageInput("Gewonnen", "won", 100),
                pipelines.StageInput("Verloren", "lost", 0),
            ],
        )
        pipelines.add_stage(session, pipeline.id, pipelines.StageInput("Angebot", "open", 40))
        names = [stage.name for stage in pipelines.stages_of(session, pipeline.id)]
    assert names == ["Neu", "Angebot", "Gewonnen", "Verloren"]
