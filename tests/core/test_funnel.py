"""A pipeline's funnel and the forecast's overdue months, against a pipeline built by hand on a FixedClock."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import delete
from sqlmodel import col

from crm_tui.core import models as m
from crm_tui.core.clock import FixedClock
from crm_tui.core.db import Database
from crm_tui.core.services import opportunities as deals
from crm_tui.core.services import pipelines
from crm_tui.core.services.funnel import funnel
from crm_tui.core.services.pipelines import StageInput
from tests.utils import factories
from tests.utils.ids import id_of

START = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def test_the_funnel_of_a_hand_made_pipeline(db: Database) -> None:
    clock = FixedClock(START)
    with db.write() as session:
        # Settings placed Lost in the middle: the funnel still lists the open stages first, won and lost last.
        sales = pipelines.create_pipeline(
            session,
            "Roofs",
            [
                StageInput("Qualification", "open", 10),
                StageInput("Lost", "lost", 0),
                StageInput("Proposal", "open", 40),
                StageInput("Negotiation", "open", 70),
                StageInput("Won", "won", 100),
            ],
        )
        other = factories.pipeline(session, "Service")
        qualification, lost, proposal, negotiation, won = (
            id_of(s) for s in pipelines.stages_of(session, id_of(sales))
        )
        intake = id_of(pipelines.stages_of(session, id_of(other))[0])
        made: dict[str, int] = {}

        def at_day(day: int) -> None:
            clock.advance(seconds=(START - clock.now()).total_seconds() + day * 86400)

        def create(name: str, stage: int, cents: int, currency: str = "EUR", **kwargs: object) -> None:
            pipe = other if stage == intake else sales
            made[name] = id_of(
                factories.deal(
                    session, clock.now(), pipe, title=name, stage_id=stage, amount_cents=cents,
                    currency=currency, **kwargs,
                )
            )  # fmt: skip

        def move(name: str, stage: int) -> None:
            reason = "too expensive" if stage == lost else None
            deals.move_to_stage(session, made[name], stage, now=clock.now(), user_id=None, lost_reason=reason)

        at_day(0)
        create("A", qualification, 100_000)
        create("B", qualification, 200_000)
        create("F", qualification, 10_000)
        create("H", intake, 25_000, "CHF")  # starts in the other pipeline
        at_day(1)
        create("C", qualification, 50_000, expected_close=date(2026, 10, 15))
        create("I", qualification, 80_000, expected_close=date(2026, 12, 10))
        at_day(2)
        move("A", proposal)
        create("D", qualification, 30_000, "CHF")
        at_day(3)
        move("F", lost)
        create("E", proposal, 400_000, expected_close=date(2026, 11, 30))  # skips Qualification
        move("I", proposal)
        at_day(4)
        move("B", proposal)
        at_day(5)
        move("A", negotiation)
        create("G", qualification, 70_000)
        at_day(6)
        move("D", won)  # straight from Qualification
        move("I", negotiation)
        at_day(7)
        move("G", intake)  # leaves for the other pipeline
        at_day(8)
        move("E", negotiation)
        at_day(9)
        move("A", won)
        at_day(10)
        move("B", lost)
        move("H", proposal)  # comes over from the other pipeline
        at_day(12)
        move("E", proposal)  # back a stage
        at_day(20)

    with db.read() as session:
        shown = funnel(session, id_of(sales), now=clock.now())
    assert shown.pipeline_name == "Roofs"
    by_name = {stage.name: stage for stage in shown.stages}
    assert [stage.name for stage in shown.stages] == [
        "Qualification",
        "Proposal",
        "Negotiation",
        "Won",
        "Lost",
    ]

    # In each stage now: C | E, H | I | A, D | B, F (G is in the other pipeline now).
    assert [(s.count, s.amounts) for s in shown.stages] == [
        (1, {"EUR": 50_000}),
        (2, {"CHF": 25_000, "EUR": 400_000}),
        (1, {"EUR": 80_000}),
        (2, {"CHF": 30_000, "EUR": 100_000}),
        (2, {"EUR": 210_000}),
    ]
    # Qualification: A B C D F G I entered; A, B (Proposal), D (Won), I went on; C stays, F lost, G left.
    q = by_name["Qualification"]
    assert (q.entered, q.converted) == (7, 4)
    assert q.conversion == pytest.approx(4 / 7)
    # Days in it: A 2, B 4, C 19 (1 to 20, still there), D 4, F 3, G 2 (until it left), I 2.
    assert q.average_days == pytest.approx((2 + 4 + 19 + 4 + 3 + 2 + 2) / 7)
    # Proposal: A B E H I entered; A and I went on, E too (Negotiation, though it came back); B lost, H stays.
    p = by_name["Proposal"]
    assert (p.entered, p.converted) == (5, 3)
    assert p.conversion == pytest.approx(3 / 5)
    # A 3, B 6, E 5 + 8 (two stays: 3 to 8, and 12 to 20), H 10, I 3.
    assert p.average_days == pytest.approx((3 + 6 + (5 + 8) + 10 + 3) / 5)
    # Negotiation: A E I entered; only A was won (E went back, I is still there).
    n = by_name["Negotiation"]
    assert (n.entered, n.converted) == (3, 1)
    assert n.conversion == pytest.approx(1 / 3)
    assert n.average_days == pytest.approx((4 + 4 + 14) / 3)
    # Won and lost are ends: how many ended there, no conversion and no days.
    for end, entered in (("Won", 2), ("Lost", 2)):
        stage = by_name[end]
        assert (stage.entered, stage.converted, stage.conversion, stage.average_days) == (
            entered,
            None,
            None,
            None,
        )

    with db.read() as session:
        other_funnel = funnel(session, id_of(other), now=clock.now())
    # The other pipeline: H and G each entered Intake; H left for Roofs (no step of Intake's pipeline after).
    intake_row = other_funnel.stages[0]
    assert (intake_row.count, intake_row.entered, intake_row.converted) == (1, 2, 0)
    # H: 10 days (0 to 10), G: 13 days (7 to 20, still there).
    assert intake_row.average_days == pytest.approx((10 + 13) / 2)

    # The forecast: open deals by expected close month; months before today's (November) are overdue.
    with db.read() as session:
        months = deals.forecast(session, pipeline_id=id_of(sales), today=clock.now().date())
    assert [(row.month, row.count, row.total_cents, row.overdue) for row in months] == [
        ("2026-10", 1, 50_000, True),  # C: still in Qualification, expected in October
        ("2026-11", 1, 400_000, False),  # E: this month is not overdue yet
        ("2026-12", 1, 80_000, False),  # I
    ]
    with db.read() as session:
        unmarked = deals.forecast(session, pipeline_id=id_of(sales))
    assert not any(row.overdue for row in unmarked), "no today given: nothing marked"


def test_a_deal_without_stage_history_counts_in_its_stage_since_it_entered_it(db: Database) -> None:
    clock = FixedClock(START)
    with db.write() as session:
        pipe = factories.pipeline(session)
        lead_in, proposal, _won, _lost = pipelines.stages_of(session, id_of(pipe))
        deal = factories.deal(session, clock.now(), pipe, amount_cents=90_000)
        clock.advance(days=2)
        deals.move_to_stage(session, id_of(deal), id_of(proposal), now=clock.now(), user_id=None)
        # As a database from before the history was kept: no stage rows for the deal.
        session.execute(
            delete(m.OpportunityHistory).where(col(m.OpportunityHistory.opportunity_id) == id_of(deal))
        )
    clock.advance(days=3, hours=12)
    with db.read() as session:
        first, second, *_ = funnel(session, id_of(pipe), now=clock.now()).stages
    assert (first.name, first.count, first.entered, first.conversion, first.average_days) == (
        lead_in.name,
        0,
        0,
        None,
        None,
    ), "no deal known to have entered it: no share and no days, rather than 0%"
    assert (second.count, second.amounts, second.entered, second.converted) == (1, {"EUR": 90_000}, 1, 0)
    assert second.average_days == pytest.approx(3.5), "in Proposal since its stage_entered_at, 3.5 days ago"
