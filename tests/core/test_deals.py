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
from crm_tui.core.services.rows import get_or_404
from tests.utils import factories
from tests.utils.ids import id_of


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
        foreign_stage = pipelines.stages_of(session, id_of(service))[0]
        with pytest.raises(ValidationError, match="is not a stage of pipeline"):
            factories.deal(session, now, sales, stage_id=foreign_stage.id)
        deal = factories.deal(session, now, sales)
        assert deal.stage_id == pipelines.stages_of(session, id_of(sales))[0].id, (
            "default: the first open stage"
        )


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
        lead_in, proposal, won, lost = pipelines.stages_of(session, id_of(pipe))
        deal = factories.deal(session, now, pipe)
        later = now + timedelta(days=2)
        deals.move_to_stage(session, id_of(deal), id_of(proposal), now=later, user_id=None)
        assert deal.stage_entered_at == later
        with pytest.raises(ValidationError, match="lost_reason: a lost deal needs a lost reason"):
            deals.move_to_stage(session, id_of(deal), id_of(lost), now=later, user_id=None)
        deals.move_to_stage(
            session, id_of(deal), id_of(lost), now=later, user_id=None, lost_reason="too expensive"
        )
        assert deal.lost_reason == "too expensive"
        deals.move_to_stage(session, id_of(deal), id_of(proposal), now=later, user_id=None)
        assert deal.lost_reason is None, "reopening a lost deal clears its reason"
        moves = [(h.from_stage_id, h.to_stage_id) for h in deals.history(session, deal.id)]
        assert moves == [
            (None, lead_in.id),
            (lead_in.id, proposal.id),
            (proposal.id, lost.id),
            (lost.id, proposal.id),
        ]
        assert deals.adjacent_stage(session, deal.id, +1).id == won.id
        assert deals.adjacent_stage(session, deal.id, -1).id == lead_in.id


def test_substates_belong_to_the_current_stage_and_are_recorded(db: Database, now: datetime) -> None:
    with db.write() as session:
        pipe = factories.pipeline(session)
        lead_in, proposal, *_ = pipelines.stages_of(session, id_of(pipe))
        deal = factories.deal(session, now, pipe)
        offer_sent = pipelines.substates_of(session, id_of(proposal))[0]
        with pytest.raises(ValidationError, match="not a sub-state of the deal's current stage"):
            deals.set_substate(session, id_of(deal), id_of(offer_sent), True, now=now, user_id=None)
        deals.move_to_stage(session, id_of(deal), id_of(proposal), now=now, user_id=None)
        assert deals.set_substate(session, id_of(deal), id_of(offer_sent), True, now=now, user_id=None)
        assert not deals.set_substate(session, id_of(deal), id_of(offer_sent), True, now=now, user_id=None), (
            "no change"
        )
        assert [s.name for s in deals.open_substates(session, id_of(deal))] == ["Offer sent"]
        deals.set_substate(session, id_of(deal), id_of(offer_sent), False, now=now, user_id=None)
        assert deals.open_substates(session, id_of(deal)) == []
        kinds = [
            (h.kind, h.substate_open) for h in deals.history(session, id_of(deal)) if h.kind == "substate"
        ]
        assert kinds == [("substate", True), ("substate", False)]


def test_totals_per_stage_never_mix_currencies(db: Database, now: datetime) -> None:
    with db.write() as session:
        pipe = factories.pipeline(session)
        factories.deal(session, now, pipe, amount_cents=100_00, currency="EUR")
        factories.deal(session, now, pipe, amount_cents=250_50, currency="EUR")
        factories.deal(session, now, pipe, amount_cents=99_00, currency="CHF")
        totals = deals.stage_totals(session, id_of(pipe))
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
        assert deals.contacts_of(session, id_of(deal)) == [(b.id, True), (a.id, False)]
        rows = deals.list_opportunities(session, pipeline_id=pipe.id)
    assert [(r.title, r.primary_contact_id, r.stage_name, r.weighted_cents) for r in rows] == [
        (deal.title, b.id, "Lead in", 100_00)
    ]


def test_a_stage_in_use_cannot_be_deleted_without_moving_its_deals(db: Database, now: datetime) -> None:
    with db.write() as session:
        pipe = factories.pipeline(session)
        lead_in, proposal, _, lost = pipelines.stages_of(session, id_of(pipe))
        deal = factories.deal(session, now, pipe)
        with pytest.raises(ValidationError, match="1 deals are in stage 'Lead in'"):
            pipelines.delete_stage(session, id_of(lead_in), now=now, user_id=None)
        with pytest.raises(ValidationError, match="lost stage"):
            pipelines.delete_stage(session, id_of(lead_in), move_deals_to=lost.id, now=now, user_id=None)
        pipelines.delete_stage(session, id_of(lead_in), move_deals_to=proposal.id, now=now, user_id=None)
        assert get_or_404(session, m.Opportunity, deal.id).stage_id == proposal.id
        assert [s.name for s in pipelines.stages_of(session, id_of(pipe))] == ["Proposal", "Won", "Lost"]
        assert [s.position for s in pipelines.stages_of(session, id_of(pipe))] == [0, 1, 2]
        with pytest.raises(ValidationError, match="at least one open stage"):
            pipelines.delete_stage(session, id_of(proposal), move_deals_to=None, now=now, user_id=None)


def test_stages_can_be_added_renamed_and_reordered(db: Database) -> None:
    with db.write() as session:
        pipe = factories.pipeline(session)
        pipelines.add_stage(session, id_of(pipe), StageInput("Negotiation", "open", 75), position=2)
        names = [s.name for s in pipelines.stages_of(session, id_of(pipe))]
        assert names == ["Lead in", "Proposal", "Negotiation", "Won", "Lost"]
        negotiation = pipelines.stages_of(session, id_of(pipe))[2]
        pipelines.move_stage_position(session, id_of(negotiation), 0)
        assert pipelines.stages_of(session, id_of(pipe))[0].name == "Negotiation"
        with pytest.raises(ValidationError, match="has a stage 'Won' already"):
            pipelines.update_stage(session, id_of(negotiation), name="won", kind="open", probability=10)


def test_substates_can_be_renamed_and_removed(db: Database, now: datetime) -> None:
    with db.write() as session:
        pipe = factories.pipeline(session)
        _, proposal, *_ = pipelines.stages_of(session, id_of(pipe))
        offer_sent, visit_done = pipelines.substates_of(session, id_of(proposal))
        with pytest.raises(ValidationError, match="has a sub-state 'Visit done' already"):
            pipelines.rename_substate(session, id_of(offer_sent), "visit DONE")
        pipelines.rename_substate(session, id_of(offer_sent), "Offer mailed")
        deal = factories.deal(session, now, pipe, stage_id=proposal.id)
        deals.set_substate(session, id_of(deal), id_of(visit_done), True, now=now, user_id=None)
        assert pipelines.delete_substate(session, id_of(visit_done)) == 1
        assert [s.name for s in pipelines.substates_of(session, id_of(proposal))] == ["Offer mailed"]
        assert deals.open_substates(session, id_of(deal)) == []
        assert [h.substate_id for h in deals.history(session, id_of(deal)) if h.kind == "substate"] == [
            None
        ], "history kept"


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
        pipelines.add_stage(session, id_of(pipeline), pipelines.StageInput("Angebot", "open", 40))
        names = [stage.name for stage in pipelines.stages_of(session, id_of(pipeline))]
    assert names == ["Neu", "Angebot", "Gewonnen", "Verloren"]
