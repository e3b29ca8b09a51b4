"""A sent-mail history added to a database (the demo's, for the CLI and UI tests): from its first mail
account, a day before ``now``: an offer to two (one bounced, one replied), a mail partly refused, one failed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import col, select

from crm_tui.core import models as m
from crm_tui.core.db import Database
from crm_tui.core.mail_data import MessageData
from crm_tui.core.services import mail_outcomes, outbox
from tests.utils.ids import id_of


@dataclass(frozen=True)
class SentHistory:
    user_email: str
    offer_id: str  # the offer's Message-ID
    sent_at: datetime


def add_sent_history(db: Database, now: datetime) -> SentHistory:
    at = now - timedelta(days=1)
    with db.write() as session:
        account = session.exec(select(m.MailAccount).order_by(col(m.MailAccount.id))).first()
        assert account is not None, "the database has a mail account"
        user = session.get(m.User, account.user_id)
        assert user is not None

        def mail(to: list[str], subject: str, message_id: str) -> int:
            item = outbox.queue(
                session, account_id=id_of(account), message_id=message_id, from_address=user.email,
                recipients=to, subject=subject, raw=b"Subject: x\r\n\r\nx\r\n", now=at,
            )  # fmt: skip
            return id_of(item)

        offer = mail(["lea@kunde.example", "max@kunde.example"], "Angebot Dach", "<offer.1@crm.example>")
        outbox.mark_sent(session, offer, now=at, accepted=["lea@kunde.example", "max@kunde.example"])
        partial = mail(["ok@kunde.example", "gone@kunde.example"], "Termin", "<termin.1@crm.example>")
        outbox.mark_sent(
            session, partial, now=at, accepted=["ok@kunde.example"],
            refused=[("gone@kunde.example", "550 5.1.1 no such user")],
        )  # fmt: skip
        failed = mail(["down@kunde.example"], "=Rechnung", "<rechnung.1@crm.example>")
        outbox.mark_failed(session, failed, "554 relay access denied")
        mail_outcomes.note_arrivals(
            session,
            [
                MessageData(
                    raw=b"", from_address="mailer-daemon@mx.kunde.example", automatic=True,
                    returned_ids=["<offer.1@crm.example>"], bounced=[("max@kunde.example", "550 No such user here")],
                ),
                MessageData(raw=b"", from_address="lea@kunde.example", in_reply_to="<offer.1@crm.example>"),
            ],
            now=at + timedelta(hours=2),
        )  # fmt: skip
        return SentHistory(user.email, "<offer.1@crm.example>", at)
