"""Activities carry attachments (issue 24, item 2): the documents of an activity are counted in one query and
the timelines that list the activity (the contact's, the deal's) lead its line with "📎 N"."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from crm_tui.core.db import Database
from crm_tui.core.services import attachments, deal_story, overview
from crm_tui.core.types import RecordRef, RecordType
from tests.utils import factories
from tests.utils.ids import id_of


def test_an_activitys_files_are_counted_and_marked_in_the_contact_and_deal_timelines(
    db: Database, now: datetime, tmp_path: Path
) -> None:
    store = attachments.FileStore(tmp_path / "documents")
    photo, plan = tmp_path / "roof.jpg", tmp_path / "plan.pdf"
    photo.write_bytes(b"a photo")
    plan.write_bytes(b"%PDF-1.4 a plan")
    with db.write() as session:
        person = factories.contact(session, now, "Vogel")
        deal = factories.deal(session, now, factories.pipeline(session), contact_ids=[id_of(person)])
        visit = factories.activity(
            session, now, subject="Site visit", contact_id=id_of(person), opportunity_id=id_of(deal)
        )
        call = factories.activity(
            session,
            now,
            subject="Call back",
            contact_id=id_of(person),
            opportunity_id=id_of(deal),
            start_at=now + timedelta(hours=2),
        )
        visit_ref = RecordRef(RecordType.ACTIVITY, id_of(visit))
        for source in (photo, plan):
            attachments.add_document(session, visit_ref, source, store=store, added_by_id=None, now=now)

    with db.read() as session:
        assert attachments.document_counts(
            session, RecordType.ACTIVITY, [id_of(visit), id_of(call), id_of(visit)]
        ) == {id_of(visit): 2}
        assert attachments.document_counts(session, RecordType.ACTIVITY, []) == {}
        contact_lines = [
            entry.text
            for entry in overview.timeline(session, RecordRef(RecordType.CONTACT, id_of(person)))
            if entry.kind == "activity"
        ]
        assert contact_lines == ["task: Call back", "📎 2 task: Site visit"]
        story = deal_story.deal_story(session, id_of(deal), now=now, me_id=None, today=now.date())
        assert story is not None
        deal_lines = [item.text for item in story.timeline.items if item.kind == "activity"]
        assert deal_lines == ["task: Call back", "📎 2 task: Site visit"]
