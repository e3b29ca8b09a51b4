"""A mail waiting for its next try after a connection failure (issue 21): outbox flush says that it waits and
until when (exit 1: it could not go out), the outbox view says "queued, next try HH:MM", x delivers it at once
through the real SMTP server and says so, and Enter reads it with each recipient's outcome."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.integration.conftest import Mailbox, point_smtp_at
from tests.integration.dovecot import free_port
from tests.integration.smtp import SmtpServer
from tests.integration.test_outbox import BODY, queue_mail


async def read_mail(app: Any, pilot: Any, words: str) -> str:
    """Enter on the outbox's list: the mail's text, once it says ``words``."""
    from crm_tui.ui.screens.outbox import OutboxMailScreen
    from tests.ui.helpers import wait_for

    await pilot.press("enter")
    await wait_for(lambda: isinstance(app.screen, OutboxMailScreen), pilot)
    reader = app.screen
    await wait_for(lambda: words in str(reader.query_one("#outbox-mail-text").render()), pilot)
    return str(reader.query_one("#outbox-mail-text").render())


async def test_a_mail_waiting_for_its_next_try_is_named_by_flush_shown_with_its_time_and_x_delivers_it(
    mailbox: Mailbox, capsys: pytest.CaptureFixture[str]
) -> None:
    from crm_tui.ui.app import CrmApp
    from tests.ui.helpers import make_context, outbox_from_inbox, wait_for

    point_smtp_at(mailbox, free_port())  # nobody listens there: the connection is refused
    queue_mail(mailbox, subject="Angebot Dach")
    capsys.readouterr()
    assert mailbox.cli("outbox", "flush") == 1
    out = capsys.readouterr().out
    assert "0 sent, 1 to retry" in out and "1 mail waits for the next try, the first at" in out
    assert mailbox.cli("outbox", "flush") == 1  # still waiting: said, and not a success
    out = capsys.readouterr().out
    assert re.search(
        r"^0 sent; 1 mail waits for the next try, the first at \d\d:\d\d \(x in the outbox", out
    ), out
    assert "the last try: " in out

    smtp = SmtpServer().start()
    try:
        point_smtp_at(mailbox, smtp.port)
        shown: dict[str, str] = {}

        app = CrmApp(make_context(mailbox.home, demo=False), start_mode="inbox", sync_mail=False)
        async with app.run_test(size=(160, 48)) as pilot:
            view, grid = await outbox_from_inbox(app, pilot, rows=1)
            shown["state"] = str(grid.get_row_at(0)[0])
            shown["before"] = await read_mail(app, pilot, "Angebot Dach")
            await pilot.press("escape")
            await wait_for(lambda: app.screen is view, pilot)
            await pilot.press("x")  # deliver now, the wait notwithstanding
            await wait_for(lambda: len(smtp.received) == 1, pilot, timeout=20)
            await wait_for(
                lambda: "Outbox: 1 sent" in " ".join(str(n.message) for n in app._notifications), pilot
            )
            await wait_for(lambda: str(grid.get_row_at(0)[0]) == "sent", pilot)
            shown["after"] = await read_mail(app, pilot, "delivered")
    finally:
        smtp.stop()
    assert re.fullmatch(r"queued, next try \d\d:\d\d", shown["state"]), shown["state"]
    before = shown["before"]
    assert "Subject: Angebot Dach" in before and "jana.roth@neu-solar.example  not sent yet" in before
    assert "To:      Jana Roth <jana.roth@neu-solar.example>" in before
    assert "Guten Tag Frau Roth," in before and "anbei <unser> Angebot & die Preise:" in before
    assert "jana.roth@neu-solar.example  delivered" in shown["after"]
    assert BODY.splitlines()[0] in shown["after"]
