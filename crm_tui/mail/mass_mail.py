"""Running a mass mail: recipient by recipient into the outbox (``core.services.mass_mail``), each delivered
at once, at the campaign's pace. A stop (from the app or another process) is seen before the next recipient."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date

from crm_tui.core.clock import Clock
from crm_tui.core.db import Database
from crm_tui.core.services import mass_mail
from crm_tui.mail import compose
from crm_tui.mail.outbox import flush


def builder(clock: Clock) -> mass_mail.Builder:
    def build(
        from_name: str, from_address: str, to: str, subject: str, body: str
    ) -> tuple[bytes, str, list[str]]:
        draft = compose.Draft(from_name, from_address, to=compose.addresses(to), subject=subject, body=body)
        return compose.build(draft, now=clock.now())

    return build


def run(
    db: Database,
    campaign_id: int,
    *,
    clock: Clock,
    me_id: int | None,
    today: date,
    deliver: bool = True,
    sleep: Callable[[float], None] = time.sleep,
    on_progress: Callable[[mass_mail.Progress], None] | None = None,
) -> mass_mail.Progress:
    """Start or resume the campaign and work through its pending recipients until done or stopped."""
    with db.write() as session:
        campaign = mass_mail.set_state(session, campaign_id, "running")
        pause = 60.0 / max(campaign.per_minute, 1)
    build = builder(clock)
    while True:
        with db.write() as session:
            recipient = mass_mail.queue_next(
                session, campaign_id, build=build, now=clock.now(), me_id=me_id, today=today
            )
        if recipient is None:
            break
        if deliver and recipient.state == "queued":
            flush(db, clock=clock)
        with db.read() as session:
            now_at = mass_mail.progress(session, campaign_id)
        if on_progress is not None:
            on_progress(now_at)
        sleep(pause)
    with db.read() as session:
        return mass_mail.progress(session, campaign_id)
