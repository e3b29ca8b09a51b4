"""Triage in three keys (issue 20, item 8), counted from the highlighted mail until the result is stored, free
text not counted: file on the suggested deal (e Enter), a lead from an unknown sender (L ctrl+s), a follow-up
task (A ctrl+s). Each on the demo."""

from __future__ import annotations

import email
import email.policy
from typing import Any

from sqlalchemy import func, select
from sqlmodel import col
from textual.widgets import TextArea

from crm_tui.core import models as m
from crm_tui.ui.app import CrmApp
from crm_tui.ui.screens.pickers import RecordPicker
from crm_tui.ui.screens.record_form import RecordForm
from tests.ui.helpers import open_inbox, pick_view, wait_for


def count(app: CrmApp, query: Any) -> int:
    with app.context.database().read() as session:
        return int(session.scalar(query) or 0)


async def test_file_on_the_suggested_deal_in_two_keys(app: CrmApp, pilot: Any) -> None:
    screen, table = await open_inbox(app, pilot)
    await pick_view(app, pilot, screen, "open deals")
    message_id = int(table.loaded_rows[0].key)
    on_deal = (
        select(func.count())
        .select_from(m.MailLink)
        .where(col(m.MailLink.message_id) == message_id, col(m.MailLink.record_type) == "opportunity")
    )
    before = count(app, on_deal)
    await pilot.press("e")
    await wait_for(lambda: isinstance(app.screen, RecordPicker), pilot)
    await pilot.press("enter")
    await wait_for(lambda: count(app, on_deal) == before + 1, pilot)


async def test_a_lead_from_an_unknown_sender_in_two_keys(app: CrmApp, pilot: Any) -> None:
    screen, table = await open_inbox(app, pilot)
    await pick_view(app, pilot, screen, "unlinked")
    leads = select(func.count()).select_from(m.Lead)
    before = count(app, leads)
    await pilot.press("L")
    await wait_for(lambda: isinstance(app.screen, RecordForm), pilot)
    await pilot.press("ctrl+s")
    await wait_for(lambda: count(app, leads) == before + 1, pilot)
    await wait_for(lambda: app.screen is screen, pilot)


async def test_a_follow_up_task_in_two_keys(app: CrmApp, pilot: Any) -> None:
    """A mail from a customer: the task is on their deal and contact (an unknown sender's needs a person first:
    L makes the lead)."""
    screen, table = await open_inbox(app, pilot)
    await pick_view(app, pilot, screen, "open deals")
    message_id = int(table.loaded_rows[0].key)
    tasks = select(func.count()).select_from(m.Activity).where(col(m.Activity.follow_up_of) == message_id)
    await pilot.press("A")
    await wait_for(lambda: isinstance(app.screen, RecordForm), pilot)
    await pilot.press("ctrl+s")
    await wait_for(lambda: count(app, tasks) == 1, pilot)


async def test_a_reply_with_a_fitting_template_in_three_keys_and_u_takes_it_back(
    app: CrmApp, pilot: Any
) -> None:
    """T opens the reply in the template picker (the templates this mail fills first), Enter applies the first,
    ctrl+s queues without asking: "Re:" and the threading stay. u in the inbox takes the mail back until it
    goes out: out of the outbox, a draft again."""
    from crm_tui.ui.screens.compose import ComposeScreen
    from crm_tui.ui.screens.template_picker import TemplatePicker

    screen, table = await open_inbox(app, pilot)
    await pick_view(app, pilot, screen, "open deals")  # a customer's mail (an unknown sender's fits none)
    message_id = int(table.loaded_rows[0].key)
    with app.context.database().read() as session:
        original = session.get_one(m.MailMessage, message_id)
        subject, header = original.subject, original.message_id_header
    queued = select(func.count()).select_from(m.OutboxItem)
    drafts = select(func.count()).select_from(m.MailDraft)
    before, drafts_before = count(app, queued), count(app, drafts)
    await pilot.press("T")
    await wait_for(lambda: isinstance(app.screen, TemplatePicker), pilot)
    await pilot.press("enter")
    await wait_for(lambda: isinstance(app.screen, ComposeScreen), pilot)
    compose = app.screen
    await wait_for(
        lambda: (
            "> " in compose.query_one("#c-body", TextArea).text
            and not compose.query_one("#c-body", TextArea).text.startswith(">")
        ),
        pilot,
    )
    await pilot.press("ctrl+s")
    await wait_for(lambda: app.screen is screen and count(app, queued) == before + 1, pilot)
    with app.context.database().read() as session:
        item = session.scalars(select(m.OutboxItem).order_by(col(m.OutboxItem.id).desc())).first()
        assert item is not None
        raw = item.raw
    sent = email.message_from_bytes(raw, policy=email.policy.default)
    assert sent["Subject"] == (subject if subject.lower().startswith("re:") else f"Re: {subject}")
    assert sent["In-Reply-To"] == header and header in sent["References"]  # the thread is kept
    await pilot.press("u")
    await wait_for(lambda: count(app, queued) == before and count(app, drafts) == drafts_before + 1, pilot)
