"""Messages the app's workers post back to the UI: plain data only, never ORM objects."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from crm_tui.core.services.contacts import ContactSummary


@dataclass
class ContactsLoaded(Message):
    query: str
    offset: int
    rows: list[ContactSummary]
    total: int
    has_more: bool
