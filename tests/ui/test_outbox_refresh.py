"""The outbox view follows changes made elsewhere (another crm-tui's flush or compose): it takes part in the
app's change watch like every other screen (it was reloaded only after a delivery this app started)."""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from crm_tui.core import models as m
from crm_tui.core.db import open_database
from crm_tui.core.services import outbox
from crm_tui.ui.screens.outbox import OutboxScreen
from tests.conftest import NOW
from tests.ui.helpers import open_inbox, wait_for


async def test_the_outbox_view_shows_a_mail_another_crm_tui_queued(app: Any, pilot: Any) -> None:
    await open_inbox(app, pilot)
    await pilot.press("o")
    await wait_for(lambda: isinstance(app.screen, OutboxScreen), pilot)
    view = app.screen
    # The watch has looked once (its first look is where it starts counting from).
    await wait_for(lambda: app._change_watch is not None and app._change_watch._version is not None, pilot)
    other = open_database(app.context.database().url)  # another crm-tui on the same database
    try:
        with other.write() as session:
            account = session.scalars(select(m.MailAccount)).first()
            assert account is not None and account.id is not None
            outbox.queue(session, account_id=account.id, message_id="<elsewhere@crm.example>",
                         from_address="anna@crm.example", recipients=["kunde@example.com"],
                         subject="Von nebenan", raw=b"Subject: Von nebenan\r\n\r\nx\r\n", now=NOW)  # fmt: skip
    finally:
        other.dispose()
    table = view.query_one("DataTable")
    await wait_for(lambda: table.row_count and "Von nebenan" in str(table.get_row_at(0)), pilot, timeout=15)
