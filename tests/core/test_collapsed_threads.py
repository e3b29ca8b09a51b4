"""A collapsed thread (the inbox's V): its row is the newest mail a person wrote, never an out-of-office reply
that came after it (the newest mail only when no person wrote one), and it counts the whole thread."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlmodel import col

from crm_tui.core import models as m
from crm_tui.core.db import Database
from crm_tui.core.services import triage
from tests.mail.test_threads import ME, _mail, _me, _store
from tests.utils.ids import id_of


def test_a_thread_stands_by_a_persons_newest_mail_and_counts_all_its_mails(
    db: Database, now: datetime
) -> None:
    with db.write() as session:
        _me(session, now)
        asked = _store(session, _mail("lea@nordwind.example", ME, "Angebot", now, message_id="<a@n>"), now)
        answer = _store(
            session,
            _mail(ME, "lea@nordwind.example", "Re: Angebot", now + timedelta(hours=1), message_id="<b@crm>",
                  in_reply_to="<a@n>", references="<a@n>"),
            now,
            outgoing=True,
        )  # fmt: skip
        away = _store(
            session,
            _mail("lea@nordwind.example", ME, "Abwesenheitsnotiz: Re: Angebot", now + timedelta(hours=2),
                  message_id="<c@n>", in_reply_to="<b@crm>", extra={"Auto-Submitted": "auto-replied"}),
            now,
        )  # fmt: skip
        robot_only = _store(
            session,
            _mail("noreply@shop.example", ME, "Ihre Bestellung", now, message_id="<d@shop>",
                  extra={"Auto-Submitted": "auto-generated"}),
            now,
        )  # fmt: skip
        assert away.is_automatic and away.thread_id == asked.thread_id and robot_only.is_automatic
        rows = set(session.scalars(select(col(m.MailMessage.id)).where(triage.newest_of_threads(None))))
        assert rows == {answer.id, robot_only.id}
        sizes = triage.thread_sizes(session, [id_of(answer), id_of(robot_only)])
        assert sizes == {answer.id: 3, robot_only.id: 1}
        # Within a view the thread still counts all its mails.
        incoming = col(m.MailMessage.is_outgoing).is_(False)
        rows = set(session.scalars(select(col(m.MailMessage.id)).where(triage.newest_of_threads(incoming))))
        assert rows == {asked.id, robot_only.id}
        assert triage.thread_sizes(session, [id_of(asked)])[id_of(asked)] == 3
