"""The deal screen's data (core/services/deal_story.py): one timeline newest first across every source, paged
without losing or repeating an entry, mail as one entry per thread, and each stage stay's length."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session

from crm_tui.core.db import Database
from crm_tui.core.mail_data import MessageData
from crm_tui.core.services import attachments, deal_story, mail_store
from crm_tui.core.services import opportunities as deals
from crm_tui.core.services.pipelines import stages_of
from crm_tui.core.types import RecordRef, RecordType
from tests.utils import factories
from tests.utils.ids import id_of


def _mail(
    session: Session, now: datetime, subject: str, sent: datetime, *, replying_to: str | None = None
) -> int:
    message_id = f"<{subject.replace(' ', '.')}.{sent.timestamp()}@example.com>"
    message = mail_store.store_message(
        session,
        MessageData(
            raw=f"Subject: {subject}\r\n\r\nhello".encode(),
            message_id=message_id,
            subject=subject,
            from_name="Lena Vogel",
            from_address="lena@example.com",
            sent_at=sent,
            in_reply_to=replying_to,
            references=[replying_to] if replying_to else [],
        ),
        now=now,
    )
    return id_of(message)


def test_the_timeline_is_newest_first_across_sources_and_its_pages_add_up(
    db: Database, now: datetime
) -> None:
    t0 = now - timedelta(days=30)
    with db.write() as session:
        pipe = factories.pipeline(session)
        lead_in, proposal, won, _lost = stages_of(session, id_of(pipe))
        person = factories.contact(session, t0, "Vogel")
        deal = factories.deal(
            session, t0, pipe, contact_ids=[id_of(person)], primary_contact_id=id_of(person)
        )
        deal_id = id_of(deal)
        ref = RecordRef(RecordType.OPPORTUNITY, deal_id)
        deals.move_to_stage(
            session, deal_id, id_of(proposal), now=t0 + timedelta(days=3, hours=4), user_id=None
        )
        deals.move_to_stage(session, deal_id, id_of(won), now=t0 + timedelta(days=10), user_id=None)
        attachments.add_comment(
            session, ref, "called, they want a visit", author_id=None, now=t0 + timedelta(days=1)
        )
        factories.activity(
            session,
            t0,
            subject="Site visit",
            opportunity_id=deal_id,
            contact_id=id_of(person),
            start_at=t0 + timedelta(days=2),
        )
        first = _mail(session, t0, "Offer", t0 + timedelta(days=4))
        first_header = f"<Offer.{(t0 + timedelta(days=4)).timestamp()}@example.com>"
        answer = _mail(session, t0, "Re: Offer", t0 + timedelta(days=5), replying_to=first_header)
        other = _mail(session, t0, "Invoice", t0 + timedelta(days=6))
        for message_id in (first, answer, other):
            mail_store.link_message(session, message_id, ref, reason="manual", now=t0)
        deals.set_contact_role(session, deal_id, id_of(person), "decision maker")

    with db.read() as session:
        story = deal_story.deal_story(session, deal_id, now=now, me_id=None, today=now.date())
        assert story is not None
        kinds = [(item.kind, item.text) for item in story.timeline.items]
        assert kinds == [
            ("stage", f"stage {proposal.name} → {won.name}"),
            ("mail", "Lena Vogel: Invoice"),
            ("mail", "Lena Vogel: Re: Offer"),  # the thread of two, at its newest mail
            ("stage", f"stage {lead_in.name} → {proposal.name}"),
            ("activity", "task: Site visit"),
            ("comment", "called, they want a visit"),
            ("stage", f"created in {lead_in.name}"),
        ]
        thread = story.timeline.items[2]
        assert thread.detail == "2 mails" and thread.ref == RecordRef(RecordType.MESSAGE, answer)
        assert story.timeline.next is None
        # Each stay: from its move in to the next move; the current one up to now.
        assert [(stay.stage_name, stay.seconds) for stay in story.history] == [
            (lead_in.name, int(timedelta(days=3, hours=4).total_seconds())),
            (proposal.name, int(timedelta(days=6, hours=20).total_seconds())),
            (won.name, int((now - (t0 + timedelta(days=10))).total_seconds())),
        ]
        assert story.history[-1].left_at is None
        assert [(p.name, p.role, p.is_primary) for p in story.people] == [
            (person.name, "decision maker", True)
        ]

        # Pages of two: together the same entries in the same order, none twice.
        paged: list[deal_story.TimelineItem] = []
        cursor: deal_story.TimelineCursor | None = None
        for _ in range(10):
            page = deal_story.timeline_page(session, deal_id, before=cursor, limit=2)
            paged.extend(page.items)
            cursor = page.next
            if cursor is None:
                break
        assert [(i.kind, i.text) for i in paged] == kinds


def test_a_role_survives_an_edit_and_a_copy_takes_the_people_with_their_roles(
    db: Database, now: datetime
) -> None:
    with db.write() as session:
        pipe, other = factories.pipeline(session), factories.pipeline(session)
        person = factories.contact(session, now)
        deal = factories.deal(session, now, pipe, contact_ids=[id_of(person)])
        deal_id = id_of(deal)
        deals.set_contact_role(session, deal_id, id_of(person), "billing")
        record = deals.opportunity_record(session, deal_id)
        assert record is not None
        deals.update_opportunity(
            session,
            deal_id,
            deals.OpportunityInput(title="Renamed", pipeline_id=id_of(pipe), stage_id=deal.stage_id,
                                   contact_ids=[id_of(person)]),
            now=now,
            user_id=None,
        )  # fmt: skip
        target = stages_of(session, id_of(other))[1]
        copy = deals.copy_to_stage(session, deal_id, id_of(target), now=now, user_id=None)
        copy_id = id_of(copy)
    with db.read() as session:
        assert [p.role for p in deal_story._people(session, deal_id)] == ["billing"]
        copied = deal_story.deal_story(session, copy_id, now=now, me_id=None, today=now.date())
        assert copied is not None
        assert copied.title == "Renamed (Copy)" and copied.stage_name == target.name
        assert copied.copied_from == (deal_id, "Renamed")
        assert [(p.name, p.role) for p in copied.people] == [(person.name, "billing")]
