"""The services the screens read through hand out plain data (frozen dataclasses, tuples, ints, strings), never
ORM rows: the inbox's list, count and one mail, the Settings lists, the board's stage-move preview, a saved
draft, a mail's documents, a mass mail's heading."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import SQLModel, col

from crm_tui.core import models as m
from crm_tui.core.automation import preview, rule_views
from crm_tui.core.services import attachments, configuration, drafts, inbox, mail_accounts, mass_mail
from crm_tui.core.services.drafts import DraftFields
from crm_tui.core.types import RecordRef, RecordType
from tests.ui.helpers import make_context
from tests.utils.ids import id_of


@pytest.fixture
def context(demo_home: Path) -> Iterator[Any]:
    made = make_context(demo_home, demo=True)
    yield made
    made.close()


def _plain(value: Any) -> None:
    """Nothing in ``value`` is an ORM row (looked into lists, tuples, dicts and dataclasses)."""
    assert not isinstance(value, SQLModel), f"an ORM row reached the UI: {value!r}"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for item in dataclasses.fields(value):
            _plain(getattr(value, item.name))
    elif isinstance(value, (list, tuple, set)):
        for item in value:
            _plain(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            _plain(key)
            _plain(item)


def test_the_inbox_list_count_and_one_mail_are_plain(context: Any) -> None:
    what = inbox.InboxQuery(zone=context.zone, now=context.clock.now())
    with context.database().read() as session:
        total = inbox.count(session, what)
        page = inbox.page(session, what, offset=0, limit=20)
        collapsed = inbox.page(session, dataclasses.replace(what, collapsed=True), offset=0, limit=20)
        shown = inbox.message_view(session, page.messages[0].id)
        wrong = inbox.count(session, dataclasses.replace(what, query="from:"))  # unfinished: matches nothing
        unread = [message.id for message in page.messages if not message.is_read]
        all_read = inbox.all_marked(session, [message.id for message in page.messages], "read")
        gone = inbox.message_view(session, 10**9)
    assert total >= len(page.messages) > 0 and wrong == 0
    assert all_read is (not unread)
    assert collapsed.sizes and all(size >= 1 for size in collapsed.sizes.values())
    assert shown is not None and shown.id == page.messages[0].id and gone is None
    for value in (page, collapsed, shown):
        _plain(value)


def test_the_settings_lists_are_plain(context: Any) -> None:
    with context.database().read() as session:
        users = configuration.user_views(session, me=context.settings.me)
        pipelines = configuration.pipeline_views(session)
        stages = configuration.stage_views(session, pipelines[0].id)
        bare = configuration.stage_views(session, pipelines[0].id, counted=False)
        accounts = configuration.account_views(session)
        templates = configuration.template_views(session)
        fields = configuration.field_views(session, "contact")
        choices = rule_views.choices(session)
        rows = rule_views.rule_rows(session)
        names = mail_accounts.account_names(session)
        me = configuration.current_user_name(session, context.settings.me)
    assert users and any(user.is_me for user in users) and me in {user.name for user in users}
    assert [s.id for s in stages] == [s.id for s in bare] and sum(s.deals for s in stages) > 0
    assert all(s.deals == 0 and s.substates == () for s in bare)
    assert names == [a.name for a in accounts]
    assert choices.places and choices.stages
    for value in (users, pipelines, stages, accounts, templates, fields, choices, rows):
        _plain(value)


def test_a_stage_moves_preview_and_a_deals_substates_are_plain(context: Any) -> None:
    now = context.clock.now()
    with context.database().read() as session:
        deal = session.scalars(select(m.Opportunity)).first()
        assert deal is not None
        stages = configuration.stage_views(session, deal.pipeline_id, counted=False)
        for stage in stages:
            found = preview.stage_move(session, deal.id, stage.id, now=now, me_id=None, today=context.today())
            _plain(found)
        _plain(configuration.deal_substates(session, deal.id))
        _plain(configuration.adjacent_stage(session, deal.id, 1))


def test_a_saved_draft_comes_back_plain_and_its_removal_says_where_its_copy_was(context: Any) -> None:
    now = context.clock.now()
    with context.database().read() as session:
        account_id = session.scalars(select(col(m.MailAccount.id))).first()
    fields = DraftFields(
        account_id, "me@example.com", "a@example.com", "", "", "Hallo", "Text", None, [], b""
    )
    with context.database().write() as session:
        draft_id = id_of(drafts.save(session, None, fields, now=now))
    with context.database().read() as session:
        saved = drafts.saved_draft(session, draft_id)
        listed = drafts.saved_drafts(session)
    assert (saved.subject, saved.to, saved.references, saved.record) == ("Hallo", "a@example.com", (), None)
    assert draft_id in {d.id for d in listed}
    _plain(listed)
    with context.database().write() as session:
        assert drafts.remove(session, draft_id) is None  # never stored in a Drafts folder
        assert drafts.remove(session, draft_id) is None  # gone


def test_a_mails_documents_and_a_mass_mails_heading_are_plain(context: Any) -> None:
    with context.database().read() as session:
        contact = session.scalars(
            select(m.Contact).where(col(m.Contact.organization_id).is_not(None))
        ).first()
        assert contact is not None
        found = attachments.documents_for_mail(session, [RecordRef(RecordType.CONTACT, contact.id)])
        heading = mass_mail.name_and_pace(session, 10**9)
    _plain(found)
    assert heading == ("", 0)
