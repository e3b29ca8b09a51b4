"""Threads and links on the demo, as the inbox shows them: "Awaiting my reply" lists the newest mail of each
thread a customer wrote last (never an out-of-office reply), "Linked to open deals" holds mail of people and
organizations with open deals, no organization has a free-mail domain, and different customers' mails with the
same subject are different threads."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlmodel import col

from crm_tui.core import models as m
from crm_tui.core.free_mail import free_domains
from crm_tui.ui.app import CrmApp
from crm_tui.ui.screens.inbox import InboxScreen
from crm_tui.ui.screens.pickers import FolderPicker
from crm_tui.ui.widgets.paged_table import PagedTable
from tests.ui.helpers import wait_for


def keys(table: PagedTable) -> set[int]:
    return {int(row.key) for row in table.loaded_rows}


async def test_the_demos_views_show_what_they_promise(app: CrmApp, pilot: Any) -> None:
    await pilot.press("1")
    await wait_for(lambda: isinstance(app.screen, InboxScreen), pilot)
    screen = app.screen
    table = screen.query_one(PagedTable)
    await wait_for(lambda: table.row_count > 0, pilot)
    all_mail = keys(table)

    async def view(typed: str) -> set[int]:
        await pilot.press("c")
        await wait_for(lambda: isinstance(app.screen, FolderPicker), pilot)
        await pilot.press(*typed, "enter")
        await wait_for(lambda: app.screen is screen and keys(table) != all_mail, pilot)
        return keys(table)

    with app.context.database().read() as session:
        rows = {
            row.id: row
            for row in session.execute(
                select(
                    col(m.MailMessage.id),
                    col(m.MailMessage.thread_id),
                    col(m.MailMessage.is_outgoing),
                    col(m.MailMessage.is_automatic),
                    col(m.MailMessage.from_address),
                    col(m.MailMessage.subject_key),
                    col(m.MailMessage.sent_at),
                )
            )
        }
        domains = set(session.scalars(select(col(m.OrganizationDomain.domain))))
    assert not domains & free_domains(), "no organization of the demo has a free-mail domain"
    assert any(row.is_automatic for row in rows.values()), "the demo has out-of-office replies"
    # Two customers wrote with the same subject: two threads.
    by_subject: dict[str, set[str]] = {}
    for row in rows.values():
        if not row.is_outgoing:
            by_subject.setdefault(row.subject_key, set()).add(row.from_address)
    shared = [subject for subject, senders in by_subject.items() if len(senders) > 1]
    assert shared, "the demo has one subject from two customers"
    for subject in shared:
        threads = {
            row.thread_id for row in rows.values() if row.subject_key == subject and not row.is_outgoing
        }
        assert len(threads) > 1

    awaiting = await view("awaiting")
    assert awaiting
    for message_id in awaiting:
        row = rows[message_id]
        assert not row.is_outgoing and not row.is_automatic
        later = [
            other
            for other in rows.values()
            if other.thread_id == row.thread_id and not other.is_automatic and other.sent_at > row.sent_at
        ]
        assert later == [], "the newest mail of its thread a person wrote"
    threads_awaiting = {rows[i].thread_id for i in awaiting}
    assert len(threads_awaiting) == len(awaiting), "one row per thread"

    await pilot.press("c")
    await wait_for(lambda: isinstance(app.screen, FolderPicker), pilot)
    await pilot.press(*"open deals", "enter")
    await wait_for(lambda: app.screen is screen and keys(table) not in (all_mail, awaiting), pilot)
    assert keys(table), "mail of contacts and organizations with open deals"
