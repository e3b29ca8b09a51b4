"""The mail side of automation: building the messages rules send (the core queues them in the outbox)."""

from __future__ import annotations

from crm_tui.core.automation.actions import MailBuilder
from crm_tui.core.clock import Clock
from crm_tui.mail import compose


def builder(clock: Clock) -> MailBuilder:
    def build(
        from_name: str,
        from_address: str,
        to: list[str],
        subject: str,
        body: str,
        attachments: list[tuple[str, str, bytes]],
    ) -> tuple[bytes, str, list[str]]:
        draft = compose.Draft(from_name, from_address, to=list(to), subject=subject, body=body)
        draft.attachments = list(attachments)
        return compose.build(draft, now=clock.now())

    return build
