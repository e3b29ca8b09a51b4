"""The addresses that are "me" or a colleague: mail is never linked to a record through them, and threading
and the inbox's views tell my mail from others' by them."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session, col

from crm_tui.core import models as m


def my_addresses(session: Session) -> set[str]:
    """Every address that is "me" or a colleague: the accounts' own addresses, their logins that are
    addresses, and the users' e-mails."""
    mine: set[str] = set()
    for account in session.scalars(select(m.MailAccount)):
        mine.update(a for a in account.addresses.splitlines() if a)
        if "@" in account.username:
            mine.add(account.username.lower())
    mine.update(e.lower() for e in session.scalars(select(col(m.User.email))) if e)
    return mine
