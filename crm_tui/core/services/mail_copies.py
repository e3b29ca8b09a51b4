"""Where a message lies on the servers: its copies (account, folder, UIDVALIDITY and UID), the first stored
first. What mail search shows and what fetching a message's bytes from a server starts from."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlmodel import Session, col

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
            col(m.MailLocation.message_id),
            col(m.MailLocation.id),
            col(m.MailAccount.name),
            col(m.MailFolder.name),
            col(m.MailLocation.uidvalidity),
            col(m.MailLocation.uid),
        )
        .join(m.MailFolder, col(m.MailFolder.id) == col(m.MailLocation.folder_id))
        .join(m.MailAccount, col(m.MailAccount.id) == col(m.MailFolder.account_id))
        .where(col(m.MailLocation.message_id).in_(message_ids))
        .order_by(col(m.MailLocation.id))
    ):
        found[message_id].append(Copy(*copy))
    return found
