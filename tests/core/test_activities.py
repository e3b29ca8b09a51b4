"""Activities: the rules, done and cancelled (cancelling keeps the record), range queries."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from crm_tui.core.db import Database
from crm_tui.core.errors import ValidationError
from crm_tui.core.services import activities
from crm_tui.core.services.activities import ActivityInput
from crm_tui.core.types import RecordRef, RecordType
from tests.utils import factories
from tests.utils.ids import id_of


def test_an_activity_needs_a_subject_and_a_person(db: Database, now: datetime) -> None:
    with pytest.raises(ValidationError) as excinfo, db.write() as session:
        activities.create_activity(session, ActivityInput(subject="  ", start_at=now, type="fax"), now=now)
    assert set(excinfo.value.errors) == {"subject", "person", "type"}


def test_times_must_be_aware_and_in_order(db: Database, now: datetime) -> None:
    with db.write() as session:
        person = factories.contact(session, now)
        with pytest.raises(ValidationError) as excinfo:
            activities.create_activity(
                session,
                ActivityInput(
                    subject="Visit", contact_id=person.id, start_at=now, end_at=now - timedelta(minutes=1)
                ),
                now=now,
            )
        assert excinfo.value.errors == {"end_at": "ends before it starts"}
        with pytest.raises(ValidationError, match="at most 31 days"):
            activities.create_activity(
                session,
                ActivityInput(
                    subject="Trip", contact_id=person.id, start_at=now, end_at=now + timedelta(days=32)
                ),
                now=now,
            )
        with pytest.raises(ValidationError, match="start_at: needs a time zone"):
            activities.create_activity(
                session,
                ActivityInput(subject="Visit", contact_id=person.id, start_at=now.replace(tzinfo=None)),
                now=now,
            )


def test_done_and_cancelled(db: Database, now: datetime) -> None:
    with db.write() as session:
        person = factories.contact(session, now)
        call = factories.activity(session, now, contact_id=person.id, reminder_at=now + timedelta(minutes=30))
        activities.cancel_activity(session, id_of(call), now=now)
        assert call.status == "cancelled" and call.reminder_at is None
        with pytest.raises(ValidationError, match="cancelled activity cannot be marked done"):
            activities.complete_activity(session, id_of(call), now=now)
        with pytest.raises(ValidationError, match="reopen it to edit"):
            activities.update_activity(
                session, id_of(call), ActivityInput(subject="x", contact_id=person.id, start_at=now), now=now
            )
        activities.reopen_activity(session, id_of(call), now=now)
        activities.complete_activity(session, id_of(call), now=now + timedelta(hours=1))
        assert call.status == "done" and call.completed_at == now + timedelta(hours=1)
        with pytest.raises(ValidationError, match="done activity cannot be cancelled"):
            activities.cancel_activity(session, id_of(call), now=now)
    with db.read() as session:
        assert [a.status for a in activities.list_activities(session)] == ["done"], "the record is kept"


def test_type_can_change_on_edit_and_attendees_are_kept(db: Database, now: datetime) -> None:
    with db.write() as session:
        person, other = factories.contact(session, now), factories.contact(session, now)
        act = factories.activity(session, now, contact_id=person.id, type="call")
        activities.update_activity(
            session,
            id_of(act),
            ActivityInput(
                subject="Meet",
                type="meeting",
                contact_id=person.id,
                start_at=now,
                attendee_contact_ids=[id_of(other)],
                attendee_emails=["Guest@Example.org"],
            ),
            now=now,
        )
        assert act.type == "meeting"
        listed = activities.list_activities(session, record=RecordRef(RecordType.CONTACT, id_of(other)))
        assert [a.id for a in listed] == [act.id], "an attendee sees the meeting"


def test_range_query_finds_overlapping_activities(db: Database, now: datetime) -> None:
    with db.write() as session:
        person = factories.contact(session, now)
        before = factories.activity(
            session, now, contact_id=person.id, subject="before", start_at=now - timedelta(days=2)
        )
        spanning = factories.activity(
            session,
            now,
            contact_id=person.id,
            subject="spanning",
            start_at=now - timedelta(hours=2),
            end_at=now + timedelta(hours=2),
        )
        inside = factories.activity(
            session, now, contact_id=person.id, subject="inside", start_at=now + timedelta(minutes=30)
        )
        factories.activity(
            session, now, contact_id=person.id, subject="after", start_at=now + timedelta(days=2)
        )
        rows = activities.list_activities(session, start=now, end=now + timedelta(hours=1))
    assert [r.subject for r in rows] == ["spanning", "inside"]
    assert before.id not in [r.id for r in rows] and spanning.id and inside.id


def test_reminders_due_in_a_window(db: Database, now: datetime) -> None:
    with db.write() as session:
        person = factories.contact(session, now)
        due = factories.activity(session, now, contact_id=person.id, reminder_at=now + timedelta(minutes=5))
        factories.activity(session, now, contact_id=person.id, reminder_at=now + timedelta(hours=5))
        found = activities.due_reminders(session, since=now, now=now + timedelta(minutes=10))
        assert [a.id for a in found] == [due.id]
