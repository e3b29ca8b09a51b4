"""Threads from headers (JWZ): Message-ID, In-Reply-To and References make the conversation; the subject only
joins mails without references, and only between the same correspondents. Reply tracking ("Awaiting my
reply", "No reply to me", follow-ups) follows the threads; automatic mail never awaits a reply."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select
from sqlmodel import Session, col

from crm_tui.core import mail_threads
from crm_tui.core import models as m
from crm_tui.core.db import Database, open_database, sqlite_url
from crm_tui.core.services import mail_accounts, mail_store, triage, users
from crm_tui.core.services.mail_search import message_objects
from crm_tui.core.services.rows import get_or_404
from crm_tui.mail.parse import parse_message
from tests.utils import factories
from tests.utils.ids import column_ids, id_of

ME = "anna@crm.example"


def _mail(
    sender: str,
    to: str,
    subject: str,
    sent: datetime,
    *,
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: str | None = None,
    extra: dict[str, str] | None = None,
    content_type: str | None = None,
) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(sent)
    if message_id:
        message["Message-ID"] = message_id
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
    if references:
        message["References"] = references
    for name, value in (extra or {}).items():
        message[name] = value
    message.set_content("Hallo,\n\nText.\n")
    raw = message.as_bytes()
    if content_type:
        raw = raw.replace(
            b'Content-Type: text/plain; charset="utf-8"', f"Content-Type: {content_type}".encode()
        )
    return raw


def _store(session: Session, raw: bytes, now: datetime, *, outgoing: bool = False) -> m.MailMessage:
    return mail_store.store_message(session, parse_message(raw), now=now, outgoing=outgoing)


def _me(session: Session, now: datetime) -> None:
    users.create_user(session, users.UserInput(name="Anna Berg", email=ME), now=now)


def _view(session: Session, view: str, now: datetime) -> list[int]:
    condition = triage.view_condition(view, now=now)
    assert condition is not None, f"{view!r} is all mail, not a view"
    return sorted(column_ids(session.scalars(select(col(m.MailMessage.id)).where(condition))))


def test_two_customers_same_subject_are_two_threads_and_both_await_a_reply(
    db: Database, now: datetime
) -> None:
    with db.write() as session:
        _me(session, now)
        first = _store(session, _mail("lea@nordwind.example", ME, "Angebot", now, message_id="<a@x>"), now)
        second = _store(
            session,
            _mail("paul@sued.example", ME, "Angebot", now + timedelta(hours=1), message_id="<b@y>"),
            now,
        )
        assert first.thread_id != second.thread_id
        assert _view(session, "awaiting", now) == sorted([id_of(first), id_of(second)])


def test_a_reply_with_a_changed_subject_stays_in_its_thread_and_answers_it(
    db: Database, now: datetime
) -> None:
    with db.write() as session:
        _me(session, now)
        asked = _store(session, _mail("lea@nordwind.example", ME, "Angebot", now, message_id="<q@n>"), now)
        answer = _store(
            session,
            _mail(
                ME,
                "lea@nordwind.example",
                "Ihr Termin am Montag",
                now + timedelta(hours=2),
                message_id="<r@crm>",
                in_reply_to="<q@n>",
                references="<q@n>",
            ),
            now,
            outgoing=True,
        )
        assert answer.thread_id == asked.thread_id
        assert _view(session, "awaiting", now + timedelta(days=1)) == []
        # Four days on, no answer from Lea: my mail is in "No reply to me".
        assert _view(session, "no-reply", now + timedelta(days=4)) == [answer.id]


def test_a_reply_that_arrives_before_its_parent_joins_it_and_missing_parents_join_siblings(
    db: Database, now: datetime
) -> None:
    with db.write() as session:
        _me(session, now)
        child = _store(
            session,
            _mail(
                "a@x.example",
                ME,
                "Re: Plan",
                now,
                message_id="<c@x>",
                in_reply_to="<p@x>",
                references="<root@x> <p@x>",
            ),
            now,
        )
        sibling = _store(
            session,
            _mail("b@y.example", ME, "Re: Plan", now, message_id="<s@y>", references="<root@x>"),
            now,
        )  # its parent <root@x> never arrives: it still joins through it
        parent = _store(session, _mail("c@z.example", ME, "Plan", now, message_id="<p@x>"), now)
        assert child.thread_id == sibling.thread_id
        session.refresh(child)
        session.refresh(sibling)
        assert child.thread_id == sibling.thread_id == parent.thread_id
        members = triage.thread_members(session, [id_of(parent)], None)
        assert members[id_of(parent)] == sorted([id_of(child), id_of(sibling), id_of(parent)])


def test_without_references_the_subject_joins_only_the_same_correspondents(
    db: Database, now: datetime
) -> None:
    with db.write() as session:
        _me(session, now)
        mine = _store(
            session,
            _mail(ME, "lea@nordwind.example", "Termin", now, message_id="<1@crm>"),
            now,
            outgoing=True,
        )
        her = _store(session, _mail("lea@nordwind.example", ME, "Re: Termin", now + timedelta(hours=1)), now)
        other = _store(session, _mail("paul@sued.example", ME, "Re: Termin", now + timedelta(hours=2)), now)
        assert her.thread_id == mine.thread_id  # Lea's reply lost its headers: her address joins it
        assert other.thread_id != mine.thread_id  # Paul is not in that conversation


def test_automatic_replies_and_bounces_never_await_a_reply_nor_answer_mine(
    db: Database, now: datetime
) -> None:
    with db.write() as session:
        _me(session, now)
        mine = _store(
            session,
            _mail(ME, "lea@nordwind.example", "Angebot", now, message_id="<o@crm>"),
            now,
            outgoing=True,
        )
        away = _store(
            session,
            _mail(
                "lea@nordwind.example",
                ME,
                "Abwesenheitsnotiz: Angebot",
                now + timedelta(minutes=1),
                message_id="<auto@n>",
                in_reply_to="<o@crm>",
                extra={"Auto-Submitted": "auto-replied"},
            ),
            now,
        )
        bounce = _store(
            session,
            _mail(
                "MAILER-DAEMON@mx.example",
                ME,
                "Undelivered Mail Returned to Sender",
                now + timedelta(minutes=2),
                message_id="<dsn@mx>",
                content_type='multipart/report; report-type=delivery-status; boundary="b"',
            ),
            now,
        )
        assert away.is_automatic and bounce.is_automatic and not mine.is_automatic
        assert away.thread_id == mine.thread_id
        assert _view(session, "awaiting", now + timedelta(days=1)) == []
        assert _view(session, "no-reply", now + timedelta(days=4)) == [mine.id]
        objects = {
            o.id: o.as_json() for o in message_objects(session, [id_of(mine), id_of(away), id_of(bounce)])
        }
        assert (
            objects[id_of(mine)]["thread"]
            == objects[id_of(away)]["thread"]
            != objects[id_of(bounce)]["thread"]
        )
        assert objects[id_of(bounce)]["automatic"] is True


def test_a_follow_up_is_done_when_the_thread_is_answered_by_a_person(db: Database, now: datetime) -> None:
    with db.write() as session:
        _me(session, now)
        mine = _store(
            session,
            _mail(ME, "lea@nordwind.example", "Angebot", now, message_id="<f@crm>"),
            now,
            outgoing=True,
        )
        lea = factories.contact(session, now, emails=["lea@nordwind.example"])
        task = factories.activity(
            session, now, subject="Follow up: Angebot", contact_id=lea.id, follow_up_of=mine.id
        )
        _store(
            session,
            _mail(
                "lea@nordwind.example",
                ME,
                "Abwesenheit",
                now + timedelta(minutes=1),
                in_reply_to="<f@crm>",
                extra={"Auto-Submitted": "auto-replied"},
            ),
            now,
        )
        session.refresh(task)
        assert task.status == "planned"  # an out-of-office reply answers nothing
        _store(
            session,
            _mail("lea@nordwind.example", ME, "Frage", now + timedelta(hours=3), in_reply_to="<f@crm>"),
            now + timedelta(hours=3),
        )
        session.refresh(task)
        assert task.status == "done"
        assert "Answered by mail" in (task.description or "") and "lea@nordwind.example" in (
            task.description or ""
        )


def test_my_own_addresses_never_make_a_subject_thread(db: Database, now: datetime) -> None:
    with db.write() as session:
        _me(session, now)
        assert ME in mail_accounts.my_addresses(session)
        a = _store(
            session,
            _mail(f"Anna Berg <{ME}>", "Lea Schulz <lea@nordwind.example>", "Angebot", now),
            now,
            outgoing=True,
        )
        b = _store(
            session,
            _mail(f"Anna Berg <{ME}>", "Paul <paul@sued.example>", "Angebot", now),
            now,
            outgoing=True,
        )
        c = _store(session, _mail("Farid <farid@rhein.example>", f"Anna Berg <{ME}>", "Angebot", now), now)
        d = _store(
            session, _mail("Lea Schulz <lea@nordwind.example>", f"Anna Berg <{ME}>", "Re: Angebot", now), now
        )
        assert len({a.thread_id, b.thread_id, c.thread_id}) == 3  # only I am in all three: three threads
        assert d.thread_id == a.thread_id  # Lea answers my mail (its headers lost): named, she joins it


# Thread graphs: ids drawn from a small pool so that loops, shared Message-IDs and missing parents are common.
_IDS = st.sampled_from([f"<{n}@t>" for n in range(8)])
_GRAPH = st.lists(
    st.tuples(
        st.one_of(st.none(), _IDS),
        st.one_of(st.none(), _IDS),
        st.lists(_IDS, max_size=5),
        st.sampled_from(["", "angebot", "termin"]),
        st.booleans(),  # "Re: ..."
        st.sets(st.sampled_from(["a@x", "b@y", "c@z", ME]), max_size=3),
    ),
    max_size=25,
)
_Graph = list[tuple[str | None, str | None, list[str], str, bool, set[str]]]  # what _GRAPH draws


def _inputs(graph: _Graph) -> list[mail_threads.ThreadInput]:
    return [
        mail_threads.ThreadInput(
            id=index + 1,
            message_id=own,
            in_reply_to=parent,
            references="\n".join(refs) or None,
            subject_key=subject,
            reply=reply and bool(subject),
            sender=sorted(people)[0] if people else "",
            recipients=frozenset(sorted(people)[1:]),
        )
        for index, (own, parent, refs, subject, reply, people) in enumerate(graph)
    ]


@given(_GRAPH)
@settings(max_examples=300, deadline=None)
def test_threading_any_graph_terminates_and_messages_that_share_an_id_share_a_thread(graph: _Graph) -> None:
    inputs = _inputs(graph)
    threads = mail_threads.thread_of(inputs, mine=[ME])
    assert set(threads) == {i.id for i in inputs}
    for a in inputs:
        for b in inputs:
            if set(a.keys) & set(b.keys):
                assert threads[a.id] == threads[b.id]
        assert threads[a.id] <= a.id  # a thread is named by its first message


@given(_GRAPH)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_threading_one_by_one_in_the_database_equals_the_whole_at_once(
    tmp_path: Path, now: datetime, graph: _Graph
) -> None:
    """The sync threads mail batch by batch as it arrives; the result is the same threads as threading the
    whole mailbox at once (the migration's way)."""
    inputs = _inputs(graph)
    database = _DATABASES.get(tmp_path)
    if database is None:
        database = _DATABASES[tmp_path] = open_database(sqlite_url(tmp_path / "threads.sqlite3"))
        with database.write() as session:
            _me(session, now)
    with database.write() as session:
        session.execute(delete(m.MailMessage))
        for item in inputs:
            session.add(
                m.MailMessage(
                    id=item.id,
                    message_id_header=item.message_id,
                    in_reply_to=item.in_reply_to,
                    references=item.references,
                    subject_key=item.subject_key,
                    subject=f"Re: {item.subject_key}" if item.reply else item.subject_key,
                    from_address=item.sender,
                    to_addresses="\n".join(sorted(item.recipients)),
                    received_at=now,
                )
            )
        session.flush()
        stored = [mail_threads.thread_input(get_or_404(session, m.MailMessage, item.id)) for item in inputs]
        for item in stored:
            mail_threads.assign(session, [item], mine={ME})
        got = dict(session.execute(select(col(m.MailMessage.id), col(m.MailMessage.thread_id))).all())
    whole = mail_threads.thread_of(stored, mine=[ME])
    same_db = {(a, b) for a in got for b in got if got[a] == got[b]}
    same_whole = {(a, b) for a in whole for b in whole if whole[a] == whole[b]}
    assert same_db == same_whole


_DATABASES: dict[object, Database] = {}


def test_a_web_forms_enquiries_stay_apart(db: Database, now: datetime) -> None:
    """Three people's enquiries through one web form: the same sender (the form), the same inbox, the same
    subject and no references. Neither address is a person on the other side of a conversation: three
    threads, each awaiting a reply."""
    with db.write() as session:
        _me(session, now)
        sent = [
            _store(
                session,
                _mail("Website <wordpress@solar.example>", "info@solar.example", "Neue Kontaktanfrage",
                      now + timedelta(minutes=n), extra={"Reply-To": f"person{n}@example.org"}),
                now,
            )
            for n in range(3)
        ]  # fmt: skip
        assert len({message.thread_id for message in sent}) == 3
        assert _view(session, "awaiting", now + timedelta(hours=1)) == sorted(id_of(m) for m in sent)


def test_a_thread_named_by_a_deleted_message_never_takes_in_the_next_mail(
    db: Database, now: datetime
) -> None:
    """SQLite gives a deleted message's id to the next message: a thread still named by it must not take in
    that stranger (its follow-up would be closed by it, its mail leave "Awaiting my reply")."""
    from crm_tui.core.services import mailbox

    with db.write() as session:
        _me(session, now)
        first = _store(session, _mail("lea@nordwind.example", ME, "Angebot", now, message_id="<1@n>"), now)
        second = _store(
            session,
            _mail("lea@nordwind.example", ME, "Re: Angebot", now + timedelta(minutes=5), message_id="<2@n>",
                  in_reply_to="<1@n>"),
            now,
        )  # fmt: skip
        thread = first.thread_id
        assert thread is not None and second.thread_id == thread
        # The thread's name is the first message's id; the first message goes (deleted on the phone, say).
        session.execute(delete(m.MailThreadKey).where(col(m.MailThreadKey.message_id) == first.id))
        mailbox.drop_orphans(session, [id_of(first)])
        session.execute(delete(m.MailMessage).where(col(m.MailMessage.id) == first.id))
        session.flush()
        stranger = mail_threads.ThreadInput(id=thread, message_id="<x@paul>", subject_key="rechnung",
                                            sender="paul@sued.example", recipients=frozenset({ME}))  # fmt: skip
        session.add(m.MailMessage(id=thread, message_id_header="<x@paul>", subject="Rechnung", subject_key="rechnung",
                                  from_address="paul@sued.example", to_addresses=ME, received_at=now))  # fmt: skip
        session.flush()
        mail_threads.assign(session, [stranger], mine={ME})
        session.refresh(second)
        paul = get_or_404(session, m.MailMessage, thread)
        assert paul.thread_id != second.thread_id


def test_what_counts_as_automatic() -> None:
    """RFC 3834's Auto-Submitted (not "no"), reports, out-of-office markers that say yes, bounce senders;
    a person's mail, or one whose marker says no, is not."""
    from crm_tui.core.mail_identity import is_automatic

    def headers(**values: str) -> Callable[[str], str | None]:
        named = {name.replace("_", "-").lower(): value for name, value in values.items()}
        return lambda name: named.get(name.lower())

    assert is_automatic(headers(Auto_Submitted="auto-replied"))
    assert not is_automatic(headers(Auto_Submitted="no"))
    assert is_automatic(headers(Content_Type="multipart/report; report-type=delivery-status"))
    assert is_automatic(headers(X_Autoreply="yes")) and not is_automatic(headers(X_Autoreply="no"))
    assert is_automatic(headers(Precedence="auto_reply")) and not is_automatic(headers(Precedence="list"))
    assert is_automatic(headers(), "MAILER-DAEMON@mx.example")
    assert not is_automatic(headers(Subject="Angebot"), "lea@nordwind.example")
