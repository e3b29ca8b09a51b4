"""Where a message lies on the servers: its copies (account, folder, UIDVALIDITY and UID), the first stored
first. What mail search shows and what fetching a message's bytes from a server starts from."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlmodel import Session

from crm_tui.core import models as m


@dataclass
class Copy:
    """One copy of a message on a server."""

    location_id: int
    account: str
    folder: str
    uidvalidity: int
    uid: int


def copies_of(session: Session, message_id: int) -> list[Copy]:
    """The message's copies on the servers, the first stored first."""
    return copies_of_each(session, [message_id])[message_id]


def copies_of_each(session: Session, message_ids: list[int]) -> dict[int, list[Copy]]:
    """Each message's copies on the servers, the first stored first (an empty list for one with none)."""
    found: dict[int, list[Copy]] = {i: [] for i in message_ids}
    for message_id, *copy in session.execute(
        select(
            m.MailLocation.message_id,
            m.MailLocation.id,
            m.MailAccount.name,
            m.MailFolder.name,
            m.MailLocation.uidvalidity,
            m.MailLocation.uid,
        )
        .join(m.MailFolder, m.MailFolder.id == m.MailLocation.folder_id)
        .join(m.MailAccount, m.MailAccount.id == m.MailFolder.account_id)
        .where(m.MailLocation.message_id.in_(message_ids))  # type: ignore[attr-defined]
        .order_by(m.MailLocation.id)
    ):
        found[message_id].append(Copy(*copy))
    return found
