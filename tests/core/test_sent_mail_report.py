"""The sent-mail report against an outbox history made by hand on a FixedClock, and the bounces and replies
the sync notes (``mail_outcomes.note_arrivals``) on the outbox item and the email activity, once."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, col, select

from crm_tui.core import models as m
from crm_tui.core.clock import FixedClock
from crm_tui.core.db import Database
from crm_tui.core.errors import CrmError, NotFound
from crm_tui.core.mail_data import MessageData
from crm_tui.core.services import mail_outcomes, outbox, users
from crm_tui.core.services.mail_outcomes import report_csv, sent_mail_report
from tests.utils import factories
from tests.utils.ids import id_of

BERLIN = ZoneInfo("Europe/Berlin")
NOVEMBER = (date(2026, 11, 1), date(2026, 11, 30))


def _account(session: Session, user: m.User, name: str) -> int:
    account = m.MailAccount(
        name=name, user_id=id_of(user), imap_host="imap.example.net", imap_port=993, username=user.email,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )  # fmt: skip
    session.add(account)
    session.flush()
    return id_of(account)


def _mail(
    session: Session,
    account: int,
    to: list[str],
    subject: str,
    at: datetime,
    *,
    record: tuple[str, int] | None = None,
) -> tuple[int, str]:
    message_id = f"<{subject.replace(' ', '.')}.{at:%H%M%S}@crm.example.net>"
    item = outbox.queue(
        session, account_id=account, message_id=message_id, from_address="ann@firm.example",
        recipients=to, subject=subject, raw=b"Subject: x\r\n\r\nx\r\n", now=at, record=record,
    )  # fmt: skip
    return id_of(item), message_id


class History:
    """Ann's November (Berlin time) and a mail of Bob's, sent through the outbox as a delivery would."""

    def __init__(self, session: Session, clock: FixedClock) -> None:
        now = clock.now()
        self.ann = users.create_user(session, users.UserInput(name="Ann", email="ann@firm.example"), now=now)
        bob = users.create_user(session, users.UserInput(name="Bob", email="bob@firm.example"), now=now)
        mine, bobs = _account(session, self.ann, "ann"), _account(session, bob, "bob")
        self.contact = id_of(factories.contact(session, now, "Berger"))
        # 1: to two, both taken (an email activity on the contact records it)
        self.offer, self.offer_id = _mail(
            session, mine, ["lea@kunde.example", "Max@Kunde.example"], "Angebot Dach", now,
            record=("contact", self.contact),
        )  # fmt: skip
        outbox.mark_sent(session, self.offer, now=now, accepted=["lea@kunde.example", "Max@Kunde.example"])
        # 2: one taken, one refused for good
        clock.advance(hours=1)
        partial, _ = _mail(session, mine, ["ok@kunde.example", "gone@kunde.example"], "Termin", clock.now())
        outbox.mark_sent(
            session, partial, now=clock.now(), accepted=["ok@kunde.example"],
            refused=[("gone@kunde.example", "550 5.1.1 no such user")],
        )  # fmt: skip
        # 3: failed altogether
        failed, _ = _mail(session, mine, ["down@kunde.example"], "Rechnung", clock.now())
        outbox.mark_failed(session, failed, "554 relay access denied")
        # 4: 1 November 00:30 in Berlin (31 October in UTC): in the period; 5: 1 December 00:30 in Berlin: not
        early = datetime(2026, 10, 31, 23, 30, tzinfo=UTC)
        first, _ = _mail(session, mine, ["early@kunde.example"], "Frueh", early)
        outbox.mark_sent(session, first, now=early, accepted=["early@kunde.example"])
        late = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)
        december, _ = _mail(session, mine, ["late@kunde.example"], "Spaet", late)
        outbox.mark_sent(session, december, now=late, accepted=["late@kunde.example"])
        # 6: counted as sent by the user (no recipient row); 7: still queued: in no number
        counted, _ = _mail(session, mine, ["counted@kunde.example"], "Gezaehlt", clock.now())
        outbox.count_as_sent(session, counted, now=clock.now())
        _mail(session, mine, ["later@kunde.example"], "Wartet", clock.now())
        # 8: Bob's
        bobs_mail, self.bobs_id = _mail(session, bobs, ["lea@kunde.example"], "Von Bob", clock.now())
        outbox.mark_sent(session, bobs_mail, now=clock.now(), accepted=["lea@kunde.example"])


def _bounce(returned: str, failed: list[tuple[str, str]], **kwargs: object) -> MessageData:
    return MessageData(
        raw=b"", from_address="mailer-daemon@mailout.example.net", subject="Undelivered Mail Returned to Sender",
        automatic=True, returned_ids=[returned], bounced=failed,
        sent_at=datetime(2026, 11, 2, 9, 30, tzinfo=UTC), **kwargs,  # type: ignore[arg-type]  # test data: the fields named above
    )  # fmt: skip


def test_counts_and_rows_of_a_hand_made_history(db: Database) -> None:
    clock = FixedClock(datetime(2026, 11, 2, 8, 0, tzinfo=UTC))
    with db.write() as session:
        history = History(session, clock)
        clock.advance(hours=2)
        noted = mail_outcomes.note_arrivals(
            session,
            [
                _bounce(history.offer_id, [("max@kunde.example", "550 No such user here")]),
                MessageData(
                    raw=b"",
                    from_address="lea@kunde.example",
                    in_reply_to=history.offer_id,
                    sent_at=datetime(2026, 11, 2, 11, 0, tzinfo=UTC),
                ),  # fmt: skip
                # from someone the mail did not go to: no reply of a recipient
                MessageData(raw=b"", from_address="stranger@else.example", references=[history.offer_id]),
            ],
            now=clock.now(),
        )
        assert noted.bounced == ((history.offer, "Max@Kunde.example"),)
        assert noted.replied == ((history.offer, "lea@kunde.example"),)
    with db.read() as session:
        report = sent_mail_report(
            session, user_email="ANN@firm.example", start=NOVEMBER[0], end=NOVEMBER[1], zone=BERLIN
        )
    assert report.counts == {"sent": 5, "failed": 1, "refused": 1, "bounced": 1, "replied": 1}
    assert [r.recipient for r in report.rows_of("sent")] == [
        "early@kunde.example", "lea@kunde.example", "Max@Kunde.example", "ok@kunde.example",
        "counted@kunde.example",
    ]  # fmt: skip
    assert [r.detail for r in report.rows_of("sent")][-1] == "counted as sent"
    (refused,) = report.rows_of("refused")
    assert (refused.recipient, refused.subject, refused.detail) == (
        "gone@kunde.example", "Termin", "550 5.1.1 no such user",
    )  # fmt: skip
    (failed,) = report.rows_of("failed")
    assert (failed.recipient, failed.detail) == ("down@kunde.example", "554 relay access denied")
    (bounced,) = report.rows_of("bounced")
    assert (bounced.recipient, bounced.detail, bounced.at) == (
        "Max@Kunde.example", "550 No such user here", datetime(2026, 11, 2, 9, 30, tzinfo=UTC),
    )  # fmt: skip
    (replied,) = report.rows_of("replied")
    assert (replied.recipient, replied.subject) == ("lea@kunde.example", "Angebot Dach")

    # The CSV: a header and one line per row, times in the user's zone.
    lines = list(csv.reader(io.StringIO(report_csv(report, BERLIN))))
    assert lines[0] == ["outcome", "at", "recipient", "subject", "detail", "outbox_item", "message_id"]
    assert len(lines) == 1 + 9
    assert ["bounced", "2026-11-02 10:30", "Max@Kunde.example", "Angebot Dach", "550 No such user here",
            str(history.offer), history.offer_id] in lines  # fmt: skip
    assert [
        line[0] for line in list(csv.reader(io.StringIO(report_csv(report, BERLIN, ["refused"]))))[1:]
    ] == ["refused"]

    # December's mail is in December; Bob's only in Bob's report
    with db.read() as session:
        december = sent_mail_report(
            session,
            user_email="ann@firm.example",
            start=date(2026, 12, 1),
            end=date(2026, 12, 31),
            zone=BERLIN,
        )
        bobs = sent_mail_report(
            session, user_email="bob@firm.example", start=NOVEMBER[0], end=NOVEMBER[1], zone=BERLIN
        )
        in_utc = sent_mail_report(
            session, user_email="ann@firm.example", start=NOVEMBER[0], end=NOVEMBER[1], zone=UTC
        )
        with pytest.raises(NotFound):
            sent_mail_report(
                session, user_email="nobody@firm.example", start=NOVEMBER[0], end=NOVEMBER[1], zone=BERLIN
            )
        with pytest.raises(CrmError):
            sent_mail_report(
                session, user_email="ann@firm.example", start=NOVEMBER[1], end=NOVEMBER[0], zone=BERLIN
            )
    assert [r.subject for r in december.rows_of("sent")] == ["Spaet"]
    assert bobs.counts == {"sent": 1, "failed": 0, "refused": 0, "bounced": 0, "replied": 0}
    # read in UTC, the first of November's mail went on 31 October and the last of the month's in November
    assert {r.subject for r in in_utc.rows_of("sent")} >= {"Spaet"}
    assert "Frueh" not in {r.subject for r in in_utc.rows_of("sent")}


def test_a_bounce_marks_the_item_and_the_activity_once(db: Database) -> None:
    clock = FixedClock(datetime(2026, 11, 2, 8, 0, tzinfo=UTC))
    with db.write() as session:
        history = History(session, clock)
        report = _bounce(history.offer_id, [("max@kunde.example", "550 No such user here")])
        first = mail_outcomes.note_arrivals(session, [report], now=clock.now())
        clock.advance(minutes=5)
        again = mail_outcomes.note_arrivals(
            session, [_bounce(history.offer_id, [("max@kunde.example", "550 another text")])], now=clock.now()
        )
        assert first.bounced and not again.bounced
        row = session.exec(
            select(m.OutboxRecipient).where(
                col(m.OutboxRecipient.item_id) == history.offer,
                col(m.OutboxRecipient.address) == "Max@Kunde.example",
            )
        ).one()
        assert (row.state, row.bounce_reason) == ("accepted", "550 No such user here")
        (activity,) = session.exec(
            select(m.Activity).where(col(m.Activity.outbox_item_id) == history.offer)
        ).all()
        assert activity.contact_id == history.contact
        assert (activity.description or "").count("Bounced Max@Kunde.example: 550 No such user here") == 1
        # The outbox's reading of the mail says it too.
        said = outbox.message_of(session, history.offer, now=clock.now()).outcomes
        assert ("Max@Kunde.example", "bounced", "550 No such user here") in said


def test_what_is_no_bounce_marks_nothing(db: Database) -> None:
    clock = FixedClock(datetime(2026, 11, 2, 8, 0, tzinfo=UTC))
    with db.write() as session:
        history = History(session, clock)
        noted = mail_outcomes.note_arrivals(
            session,
            [
                # a report about a Message-ID we never sent
                _bounce("<someone.else@elsewhere.example>", [("lea@kunde.example", "550 unknown")]),
                # an automatic reply (an out-of-office) in the thread: not a reply of the person
                MessageData(
                    raw=b"", from_address="lea@kunde.example", in_reply_to=history.offer_id, automatic=True
                ),
                # a reply to Bob's mail counts for Bob's mail, not Ann's
                MessageData(raw=b"", from_address="lea@kunde.example", in_reply_to=history.bobs_id),
            ],
            now=clock.now(),
        )
        assert noted.bounced == ()
        assert [address for _, address in noted.replied] == ["lea@kunde.example"]
        marked = session.exec(
            select(m.OutboxRecipient).where(
                col(m.OutboxRecipient.bounced_at).is_not(None)
                | col(m.OutboxRecipient.replied_at).is_not(None)
            )
        ).all()
        assert [(r.item_id, r.address) for r in marked] == [
            (id_of_item(session, history.bobs_id), "lea@kunde.example")
        ]


def test_a_returned_mail_without_a_report_marks_the_recipient_its_text_names(db: Database) -> None:
    clock = FixedClock(datetime(2026, 11, 2, 8, 0, tzinfo=UTC))
    with db.write() as session:
        history = History(session, clock)
        noted = mail_outcomes.note_arrivals(
            session,
            [
                MessageData(
                    raw=b"", from_address="mailer-daemon@relay.example.net", automatic=True,
                    returned_ids=[history.offer_id], subject="failure notice",
                    body_text="I wasn't able to deliver your message.\n\n<lea@kunde.example>: 552 mailbox full\n",
                    sent_at=clock.now() + timedelta(days=3),  # a Date in the future: taken as now
                )
            ],
            now=clock.now(),
        )  # fmt: skip
        assert noted.bounced == ((history.offer, "lea@kunde.example"),)
        row = session.exec(
            select(m.OutboxRecipient).where(col(m.OutboxRecipient.address) == "lea@kunde.example",
                                            col(m.OutboxRecipient.item_id) == history.offer)
        ).one()  # fmt: skip
        assert row.bounce_reason == "<lea@kunde.example>: 552 mailbox full"
        assert row.bounced_at == clock.now()


def id_of_item(session: Session, message_id: str) -> int:
    return id_of(
        session.exec(select(m.OutboxItem).where(col(m.OutboxItem.message_id_header) == message_id)).one()
    )
