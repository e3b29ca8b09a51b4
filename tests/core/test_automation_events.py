"""Record events as automation triggers (issue 24, item 3): a rule on "a quote is accepted" (or declined, or a
document signed / declined / expired) is scheduled through the same schedule as stage triggers and fires
exactly once, however often the event is recorded, across a restart and with two runners."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import col

from crm_tui.core import models as m
from crm_tui.core.automation import engine, events, preview
from crm_tui.core.clock import FixedClock
from crm_tui.core.db import Database, open_database
from crm_tui.core.errors import CrmError, NotFound, ValidationError
from crm_tui.core.services import sales_documents
from crm_tui.core.services.sales_documents import QuoteInput, QuoteItemInput
from crm_tui.core.types import RecordRef, RecordType
from tests.core.test_automation import START, World
from tests.utils.ids import id_of


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def world(db: Database, clock: FixedClock, tmp_path: Path) -> World:
    return World(db, clock, tmp_path)


def _quote(world: World, deal: int, status: str = "draft") -> int:
    with world.db.write() as s:
        data = QuoteInput(deal, [QuoteItemInput("Wallbox", 1, 99_000)], status=status)
        return id_of(sales_documents.create_quote(s, data, now=world.clock.now()))


def _set_status(world: World, quote_id: int, status: str) -> None:
    with world.db.write() as s:
        quote = s.get(m.Quote, quote_id)
        assert quote is not None
        data = QuoteInput(quote.opportunity_id, [QuoteItemInput("Wallbox", 1, 99_000)], status=status)
        sales_documents.update_quote(s, quote_id, data, now=world.clock.now())


def _on_accepted(world: World, **kwargs: object) -> int:
    values: dict[str, object] = {
        "name": "thank on acceptance", "scope": "record", "trigger": "event", "record_event": "quote_accepted",
        "action": "plan_activity", "params": {"subject": "Thank {{ deal.title }} for the order"},
    }  # fmt: skip
    values.update(kwargs)
    return world.rule(**values)


def _activities(world: World) -> list[tuple[int | None, str]]:
    with world.db.read() as s:
        return [
            (a.opportunity_id, a.subject) for a in s.scalars(select(m.Activity).order_by(col(m.Activity.id)))
        ]


def test_a_quote_accepted_fires_its_rule_once_however_often_it_is_accepted(world: World) -> None:
    _on_accepted(world)
    deal = world.deal(title="Roof Nordwind")
    quote = _quote(world, deal)
    assert world.jobs() == []  # a draft is no event
    _set_status(world, quote, "sent")
    assert world.jobs() == []
    _set_status(world, quote, "accepted")
    [job] = world.jobs("pending")
    assert (job.record_type, job.record_id, job.due_at) == ("opportunity", deal, START)
    assert job.event.startswith("quote Q-") and job.event.endswith(" accepted")
    _set_status(world, quote, "accepted")  # saved again (its lines edited): no second event
    _set_status(world, quote, "sent")
    _set_status(world, quote, "accepted")  # taken back and accepted again: the same quote's acceptance
    assert len(world.jobs()) == 1
    report = world.run()
    assert [(i.outcome, i.action) for i in report.items] == [("done", "plan_activity")]
    assert _activities(world) == [(deal, "Thank Roof Nordwind for the order")]
    _set_status(world, quote, "accepted")
    assert world.run().items == []
    assert len(_activities(world)) == 1


def test_a_quote_created_accepted_is_an_acceptance_and_a_second_quote_another(world: World) -> None:
    _on_accepted(world)
    deal = world.deal()
    _quote(world, deal, "accepted")
    assert len(world.jobs("pending")) == 1
    _quote(world, deal, "accepted")  # another quote of the deal accepted: its own event
    assert len(world.jobs("pending")) == 2
    assert [i.outcome for i in world.run().items] == ["done", "done"]


def test_an_event_fires_only_on_its_own_deal_and_in_the_rules_pipeline(world: World) -> None:
    _on_accepted(world)
    only_install = _on_accepted(world, name="installation only", pipeline_id=id_of(world.install))
    declined = world.rule(name="on declined", scope="record", trigger="event", record_event="quote_declined",
                          action="plan_activity", params={"subject": "Ask why"})  # fmt: skip
    deal, other = world.deal(title="A"), world.deal(title="B")
    _quote(world, other)  # the other deal's quote stays a draft
    _set_status(world, _quote(world, deal), "accepted")
    [job] = world.jobs()
    assert job.record_id == deal and job.rule_id not in (only_install, declined)
    _set_status(world, _quote(world, other), "rejected")
    assert [(j.record_id, j.rule_id) for j in world.jobs()][1:] == [(other, declined)]
    world.run()
    assert sorted(_activities(world)) == [(deal, "Thank A for the order"), (other, "Ask why")]


def test_a_delayed_event_rule_waits_and_survives_an_edit_of_the_quote(world: World) -> None:
    _on_accepted(world, delay_value=2, delay_unit="days")
    deal = world.deal()
    _set_status(world, _quote(world, deal), "accepted")
    [job] = world.jobs("pending")
    assert job.due_at == START + timedelta(days=2)
    world.clock.advance(days=1)
    assert world.run().items == []
    world.clock.advance(days=1)
    assert [i.outcome for i in world.run().items] == ["done"]
    assert world.run().items == []


def test_accepted_then_the_app_restarts_fires_once(world: World, db: Database) -> None:
    _on_accepted(world)
    deal = world.deal()
    quote = _quote(world, deal)
    _set_status(world, quote, "accepted")
    url = db.engine.url.render_as_string(hide_password=False)
    db.dispose()  # the app quits before anything fired
    world.db = open_database(url)  # and starts again on the same database
    try:
        _set_status(world, quote, "accepted")  # the same acceptance saved again after the restart
        assert [i.outcome for i in world.run().items] == ["done"]
        assert world.run().items == []
        assert len(world.jobs()) == 1 and len(_activities(world)) == 1
    finally:
        world.db.dispose()


def test_two_runners_fire_an_accepted_quotes_rule_once(world: World, db: Database) -> None:
    _on_accepted(world)
    deal = world.deal()
    _set_status(world, _quote(world, deal), "accepted")
    second = open_database(db.engine.url.render_as_string(hide_password=False))
    reports: list[engine.RunReport] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def run(database: Database) -> None:
        try:
            barrier.wait()
            reports.append(engine.run_due(database, world.context))
        except BaseException as exc:  # noqa: BLE001 - the test asserts there is none
            errors.append(exc)

    runners = [threading.Thread(target=run, args=(d,)) for d in (db, second)]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join()
    second.dispose()
    assert errors == []
    assert sorted(len(r.items) for r in reports) == [0, 1]
    assert len(_activities(world)) == 1


def test_recording_an_event_twice_schedules_once(world: World) -> None:
    """A retry of the same event (or a second process recording it) finds the job already there."""
    _on_accepted(world)
    deal = world.deal()
    quote = RecordRef(RecordType.QUOTE, _quote(world, deal))
    for _ in range(2):
        with world.db.write() as s:
            [job] = events.record_event(s, deal, "quote_accepted", quote, now=world.clock.now())
    assert len(world.jobs()) == 1


def test_document_events_through_the_event_api(world: World) -> None:
    """Documents have no signature state yet (e-signature comes with issue 27): their events are recorded by
    ``record_event``, which that work calls."""
    signed = world.rule(name="signed", scope="record", trigger="event", record_event="document_signed",
                        action="plan_activity", params={"subject": "Order the panels"})  # fmt: skip
    world.rule(name="expired", scope="record", trigger="event", record_event="document_expired",
               delay_value=1, delay_unit="days", action="plan_activity", params={"subject": "Call again"})  # fmt: skip
    deal = world.deal()
    with world.db.write() as s:
        doc = m.Document(record_type="opportunity", record_id=deal, filename="contract.pdf", stored_name="x",
                         size=1, sha256="0" * 64, created_at=START)  # fmt: skip
        s.add(doc)
        s.flush()
        ref = RecordRef(RecordType.DOCUMENT, id_of(doc))
        [job] = events.record_event(s, deal, "document_signed", ref, now=START)
        assert job.rule_id == signed and job.event == "document contract.pdf signed"
        assert events.record_event(s, deal, "document_declined", ref, now=START) == []  # no rule waits
        [later] = events.record_event(s, deal, "document_expired", ref, now=START)
        assert later.due_at == START + timedelta(days=1)
        with pytest.raises(CrmError, match="happens to a document"):
            events.record_event(s, deal, "document_signed", RecordRef(RecordType.QUOTE, 1), now=START)
        with pytest.raises(CrmError, match="unknown record event"):
            events.record_event(s, deal, "document_shredded", ref, now=START)
        with pytest.raises(NotFound):
            events.record_event(s, deal + 100, "document_signed", ref, now=START)
    assert [(i.rule, i.outcome) for i in world.run().items] == [("signed", "done")]


def test_event_rules_are_checked_and_said_in_words(world: World) -> None:
    with pytest.raises(ValidationError) as caught:
        world.rule(name="x", entity="lead", scope="record", trigger="event", record_event="quote_accepted",
                   action="plan_activity", params={"subject": "x"})  # fmt: skip
    assert "trigger" in caught.value.errors
    with pytest.raises(ValidationError) as caught:
        world.rule(name="x", scope="record", trigger="event", record_event="quote_signed",
                   action="plan_activity", params={"subject": "x"})  # fmt: skip
    assert "record_event" in caught.value.errors
    with pytest.raises(ValidationError) as caught:
        world.rule(name="x", stage_id=world.stages["Won"].id, trigger="event", record_event="quote_accepted",
                   action="plan_activity", params={"subject": "x"})  # fmt: skip
    assert "trigger" in caught.value.errors
    assert events.words(None) == "a record event"  # the rule editor's side panel before an event is chosen
    rule_id = _on_accepted(world, delay_value=2, delay_unit="days", at_time="09:00")
    with world.db.read() as s:
        from crm_tui.core.automation import rules

        rule = rules.get_rule(s, rule_id)
        assert rules.when(rule) == "2 days after a quote is accepted at 09:00"
        assert rules.rule_input(rule).record_event == "quote_accepted"
        assert rules.place(s, rule) == "every opportunity"


def test_a_waiting_event_rule_shows_in_the_deals_automation_and_the_move_preview(world: World) -> None:
    _on_accepted(world)
    world.rule(name="enter won", stage_id=world.stages["Won"].id, trigger="enter", action="plan_activity",
               params={"subject": "Kick-off"})  # fmt: skip
    deal = world.deal(title="Roof C")
    with world.db.read() as s:
        [waiting] = preview.waiting_for_events(s, deal, me_id=world.me, today=START.date())
        assert waiting.text() == "when a quote is accepted: plan task 'Thank Roof C for the order'"
        found = preview.stage_move(s, deal, id_of(world.stages["Won"]), now=START, me_id=world.me,
                                   today=START.date())  # fmt: skip
        assert found is not None
        assert [w.text() for w in found.on_events] == [waiting.text()]
    _set_status(world, _quote(world, deal), "accepted")
    with world.db.read() as s:
        [pending] = engine.pending(s, record=("opportunity", deal))
        assert pending.rule == "thank on acceptance" and pending.event.endswith("accepted")


def test_a_database_from_before_event_triggers_keeps_its_rules(tmp_path: Path) -> None:
    """A 0020 database: its rules come through the upgrade unchanged (no event: record_event NULL), an event
    rule can then be written, and the way back drops only the column."""
    import sqlite3

    from crm_tui.core.automation import rules
    from crm_tui.core.db import sqlite_url
    from tests.core.test_migrations import _database_at, _migrate

    path = _database_at(tmp_path, "0020")
    with sqlite3.connect(path) as connection:
        connection.execute(
            "INSERT INTO automation_rule (id, name, enabled, entity, scope, trigger, delay_value, delay_unit, "
            "zone, conditions, action, params, late_policy, late_limit_hours, survives_exit, cursor, created_at, "
            "updated_at) VALUES (1, 'Welcome', 1, 'opportunity', 'record', 'create', 2, 'days', 'UTC', '[]', "
            "'plan_activity', '{\"subject\": \"Hello\"}', 'fire', 72, 0, 0, '2026-11-21 08:00:00.000000', "
            "'2026-11-21 08:00:00.000000')"
        )
    db = open_database(sqlite_url(path), backup_dir=tmp_path / "backups")
    try:
        with db.read() as s:
            [old] = rules.list_rules(s)
            assert (old.name, old.trigger, old.record_event, rules.when(old)) == (
                "Welcome", "create", None, "2 days after create",
            )  # fmt: skip
        with db.write() as s:
            data = rules.RuleInput(name="On acceptance", action="plan_activity", scope="record", trigger="event",
                                   record_event="quote_accepted", params={"subject": "Thanks"})  # fmt: skip
            new = rules.create_rule(s, data, now=START)
            assert rules.when(new) == "when a quote is accepted"
        _migrate(db, "0020", down=True)
    finally:
        db.dispose()
    with sqlite3.connect(path) as connection:
        columns = [row[1] for row in connection.execute("PRAGMA table_info(automation_rule)")]
        names = [row[0] for row in connection.execute("SELECT name FROM automation_rule ORDER BY id")]
    assert "record_event" not in columns and names == ["Welcome", "On acceptance"]
