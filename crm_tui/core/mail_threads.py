"""Threads from headers, as mutt and aerc build them (Jamie Zawinski's algorithm, JWZ).

A message names its conversation through its Message-ID, In-Reply-To and References. JWZ links each message
to the ids it names (a missing parent becomes an empty container that still joins its children), so a thread is
one connected set of messages and ids: two messages belong together when a chain of shared ids leads from one
to the other, however the mails arrived (a reply before its parent, a parent never seen, a changed subject).
Loops and duplicate Message-IDs cannot break this: a connected set is found by union-find, which ends on any
graph.

The subject is a fallback, for mails that carry no reference at all: such a mail joins a thread of the same
subject (``subject_key``: no Re:/Fwd: prefixes) only when it shares a correspondent with it (an address
besides the user's own), so two customers' mails both titled "Angebot" stay two threads.

Each message row holds its ``thread_id`` (the smallest message id of its thread when the thread began; a
number, no more); ``mail_thread_key`` holds each message's ids, so a later mail finds its thread through one
indexed lookup. ``assign`` threads new messages incrementally (the sync's batches); ``thread_of`` is the pure
form, used by the migration that threads an existing mailbox and by the property tests.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select, update
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from crm_tui.core import bulk
from crm_tui.core import models as m
from crm_tui.core.mail_identity import stored_addresses
from crm_tui.core.services.own_addresses import my_addresses

MAX_KEYS = 40  # ids kept per message: the first of References (the thread's root) and the newest ones
_CHUNK = 500
_PER_SUBJECT = 30  # stored mails of one subject a new mail is compared with (the newest)


@dataclass(frozen=True)
class ThreadInput:
    """What threading needs of one message."""

    id: int
    message_id: str | None = None
    in_reply_to: str | None = None
    references: str | None = None  # one id per line, as stored
    subject_key: str = ""
    reply: bool = False  # the subject says it answers or forwards ("Re:", "AW:", "Fwd:"...)
    sender: str = ""  # From, lower case
    recipients: frozenset[str] = frozenset()  # every address in To and Cc, lower case

    @functools.cached_property
    def referenced(self) -> list[str]:
        """The ids this message names as its ancestors (References, then In-Reply-To), without duplicates."""
        found = [line.strip() for line in (self.references or "").split("\n") if line.strip()]
        if self.in_reply_to and self.in_reply_to.strip():
            found.append(self.in_reply_to.strip())
        found = list(dict.fromkeys(ref for ref in found if ref != self.message_id))
        if len(found) > MAX_KEYS:
            found = found[:1] + found[-(MAX_KEYS - 1) :]
        return found

    @property
    def bare(self) -> bool:
        """Whether the mail carries no reference at all (the subject may then say its thread)."""
        return not (self.in_reply_to or self.references)

    @functools.cached_property
    def keys(self) -> list[str]:
        """Every id that joins this message to others: its own Message-ID and the ones it references."""
        own = [self.message_id] if self.message_id else []
        return own + self.referenced


def replying(subject: str, key: str) -> bool:
    """Whether a subject answers or forwards ("Re:", "AW:", "Fwd:"...): its key lost a prefix."""
    return bool(key) and key != " ".join((subject or "").lower().split())


def correspondents(from_address: str, to_addresses: str, cc_addresses: str) -> dict[str, Any]:
    """``ThreadInput``'s sender and recipients of a stored message."""
    sender = from_address.strip().lower()
    return {
        "sender": sender if "@" in sender else "",
        "recipients": frozenset(stored_addresses(to_addresses) + stored_addresses(cc_addresses)),
    }


class _Union:
    """Union-find over hashable nodes (path halving): ends on any graph, loops included."""

    def __init__(self) -> None:
        self.parent: dict[object, object] = {}

    def find(self, node: object) -> object:
        parent = self.parent.setdefault(node, node)
        while parent != node:
            grand = self.parent[parent]
            self.parent[node] = grand
            node, parent = parent, self.parent.setdefault(grand, grand)
        return node

    def join(self, a: object, b: object) -> None:
        root_a, root_b = self.find(a), self.find(b)
        if root_a != root_b:
            self.parent[root_a] = root_b


def _subject_nodes(
    message: ThreadInput, own: frozenset[str]
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The (subject, person) nodes a mail meets other mails of its subject at: as the sender, and as each
    recipient; never the user's own addresses. Two mails are one conversation by subject when one's sender is
    the other's recipient (Lea writes to me, I write to Lea): a shared inbox or a web form's sender that is
    only ever a sender or only ever a recipient joins nothing."""
    subject = message.subject_key
    sent = [(subject, message.sender)] if message.sender and message.sender not in own else []
    received = [(subject, person) for person in message.recipients if person not in own]
    return sent, received


def _join_by_subject(
    union: _Union, messages: Iterable[tuple[object, ThreadInput]], own: frozenset[str]
) -> None:
    """Join mails of one subject whose sender is the other's recipient, at least one of the two without any
    reference (the subject is only a fallback). Linear: per (subject, person), the bare senders join every
    recipient, the bare recipients every sender."""
    nodes: dict[tuple[str, str], tuple[list[object], list[object], list[object], list[object]]] = {}
    for node, message in messages:
        if not message.subject_key:
            continue
        sent, received = _subject_nodes(message, own)
        for key in sent:
            nodes.setdefault(key, ([], [], [], []))[0 if message.bare else 1].append(node)
        for key in received:
            nodes.setdefault(key, ([], [], [], []))[2 if message.bare else 3].append(node)
    for bare_senders, senders, bare_recipients, recipients in nodes.values():
        every_recipient = bare_recipients + recipients
        if bare_senders and every_recipient:  # bare senders x every recipient
            for node in bare_senders[1:] + every_recipient:
                union.join(bare_senders[0], node)
        if bare_recipients and (senders or bare_senders):  # every sender x bare recipients
            for node in senders + bare_senders + bare_recipients[1:]:
                union.join(bare_recipients[0], node)
    # A reply whose headers were lost ("Re: Dachziegel" without References) joins the mails of its subject it
    # shares a correspondent with, whichever side: per (subject, person), a bare reply joins every member, a
    # bare mail every reply.
    shared: dict[tuple[str, str], tuple[list[object], list[object], list[object], list[object]]] = {}
    for node, message in messages:
        if not message.subject_key:
            continue
        sent, received = _subject_nodes(message, own)
        kind = (0 if message.reply else 1) if message.bare else (2 if message.reply else 3)
        for key in {*sent, *received}:
            shared.setdefault(key, ([], [], [], []))[kind].append(node)
    for bare_replies, bare_others, replies, others in shared.values():
        if bare_replies:  # a bare reply x every mail of the node
            for node in bare_replies[1:] + bare_others + replies + others:
                union.join(bare_replies[0], node)
        elif bare_others and replies:  # bare mails x replies with references
            for node in bare_others[1:] + replies:
                union.join(bare_others[0], node)


def thread_of(messages: Sequence[ThreadInput], *, mine: Iterable[str] = ()) -> dict[int, int]:
    """Each message's thread, as the smallest message id in it (a pure function: the whole mailbox at once)."""
    own = frozenset(address.lower() for address in mine)
    union = _Union()
    for message in messages:
        node = ("m", message.id)
        union.find(node)
        for key in message.keys:
            union.join(node, ("k", key))
    _join_by_subject(union, [(("m", message.id), message) for message in messages], own)
    smallest: dict[object, int] = {}
    for message in messages:
        root = union.find(("m", message.id))
        smallest[root] = min(smallest.get(root, message.id), message.id)
    return {message.id: smallest[union.find(("m", message.id))] for message in messages}


def assign(
    session: Session, messages: Sequence[ThreadInput], *, mine: Iterable[str] | None = None
) -> dict[int, int]:
    """Thread newly stored messages: each joins the threads its ids (or, without references, its subject and
    correspondents) lead to; threads it joins together become one. Writes ``thread_id`` and the messages'
    keys. Returns each new message's thread."""
    if not messages:
        return {}
    if mine is None:
        mine = my_addresses(session)
    own = frozenset(address.lower() for address in mine)
    new_ids = {message.id for message in messages}
    # Nodes: a new message is its id, a stored thread ("t", id). Only messages that meet something enter.
    union = _Union()
    keys = sorted({key for message in messages for key in message.keys})
    stored: dict[str, list[int]] = {}
    had: set[tuple[str, int]] = set()  # keys new messages already have (threaded before)
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        for key, key_owner, thread in session.execute(
            select(col(m.MailThreadKey.key), col(m.MailThreadKey.message_id), col(m.MailMessage.thread_id))
            .join(m.MailMessage, col(m.MailMessage.id) == m.MailThreadKey.message_id)
            .where(bulk.among(session, m.MailThreadKey.key, chunk))
        ):
            if key_owner in new_ids:
                had.add((key, key_owner))
            elif thread is not None:
                stored.setdefault(key, []).append(thread)
    owner: dict[str, int] = {}
    for message in messages:
        for key in message.keys:
            for thread in stored.get(key, ()):
                union.join(message.id, ("t", thread))
            first = owner.setdefault(key, message.id)
            if first != message.id:
                union.join(message.id, first)
    # The fallback: a mail without references follows the subject, between the same correspondents. The stored
    # mails of each subject it may meet: the newest _PER_SUBJECT threaded ones of that subject (for subjects
    # only mails with references bring, only those without any: the pairs the fallback joins).
    bare_subjects = {message.subject_key for message in messages if message.subject_key and message.bare}
    other_subjects = {message.subject_key for message in messages if message.subject_key} - bare_subjects
    stored_mail: list[tuple[object, ThreadInput]] = []
    for subjects, only_bare in ((sorted(bare_subjects), False), (sorted(other_subjects), True)):
        for start in range(0, len(subjects), _CHUNK):
            conditions = [
                bulk.among(session, m.MailMessage.subject_key, subjects[start : start + _CHUNK]),
                col(m.MailMessage.thread_id).is_not(None),
            ]
            if only_bare:
                conditions += [
                    col(m.MailMessage.in_reply_to).is_(None),
                    col(m.MailMessage.references).is_(None),
                ]
            ranked = (
                select(
                    col(m.MailMessage.id),
                    col(m.MailMessage.thread_id),
                    col(m.MailMessage.subject_key),
                    col(m.MailMessage.subject),
                    col(m.MailMessage.from_address),
                    col(m.MailMessage.to_addresses),
                    col(m.MailMessage.cc_addresses),
                    col(m.MailMessage.in_reply_to),
                    col(m.MailMessage.references),
                    func.row_number()
                    .over(partition_by=m.MailMessage.subject_key, order_by=col(m.MailMessage.id).desc())
                    .label("rank"),
                )
                .where(*conditions)
                .subquery()
            )
            for row in session.execute(select(ranked).where(ranked.c.rank <= _PER_SUBJECT)):
                if row.id in new_ids:
                    continue
                stored_mail.append(
                    (
                        ("t", row.thread_id),
                        ThreadInput(
                            row.id,
                            in_reply_to=row.in_reply_to,
                            references=row.references,
                            subject_key=row.subject_key,
                            reply=replying(row.subject, row.subject_key),
                            **correspondents(row.from_address, row.to_addresses, row.cc_addresses),
                        ),
                    )
                )
    _join_by_subject(union, [*stored_mail, *((message.id, message) for message in messages)], own)
    # Each new message's thread: the thread it met with the smallest id, else its own set's smallest id.
    threads: dict[object, set[int]] = {}
    firsts: dict[object, int] = {}
    for node in list(union.parent):
        root = union.find(node)
        if isinstance(node, tuple):
            threads.setdefault(root, set()).add(node[1])
        else:
            assert isinstance(node, int)  # a new message's id
            firsts[root] = min(firsts.get(root, node), node)
    result: dict[int, int] = {}
    merges: dict[int, int] = {}
    for message in messages:
        if message.id not in union.parent:  # met nothing: a thread of its own
            result[message.id] = message.id
            continue
        root = union.find(message.id)
        met = threads.get(root, set())
        target = min(met) if met else firsts[root]
        result[message.id] = target
        for other in met - {target}:
            merges[other] = target
    # A new thread is named by a new message's id. SQLite gives a deleted message's id to the next one: a thread
    # still named by a deleted message takes the id of its first member, so no new mail joins it by its name.
    fresh = sorted({thread for thread in result.values() if thread in new_ids})
    outside = col(m.MailMessage.id).not_in(sorted(new_ids))
    for start in range(0, len(fresh), _CHUNK):
        for label in list(
            session.scalars(
                select(col(m.MailMessage.thread_id))
                .where(bulk.among(session, m.MailMessage.thread_id, fresh[start : start + _CHUNK]), outside)
                .distinct()
            )
        ):
            first = session.scalar(
                select(func.min(m.MailMessage.id)).where(col(m.MailMessage.thread_id) == label, outside)
            )
            session.execute(
                update(m.MailMessage)
                .where(col(m.MailMessage.thread_id) == label, outside)
                .values(thread_id=first)
            )
    bulk.update_rows(
        session,
        bulk.table_of(m.MailMessage),
        [{"id": message_id, "thread_id": thread} for message_id, thread in result.items()],
    )
    for old, new in sorted(merges.items()):
        session.execute(
            update(m.MailMessage).where(col(m.MailMessage.thread_id) == old).values(thread_id=new)
        )
    # A message threaded before (a provisional one a migration threaded, say) keeps the keys it has.
    bulk.insert_plain(
        session,
        bulk.table_of(m.MailThreadKey),
        ("key", "message_id"),
        [
            (key, message.id)
            for message in messages
            for key in dict.fromkeys(message.keys)
            if (key, message.id) not in had
        ],
    )
    return result


def thread_input(message: m.MailMessage) -> ThreadInput:
    """A stored message as threading sees it."""
    assert message.id is not None  # stored: it has its id
    return ThreadInput(
        id=message.id,
        message_id=message.message_id_header,
        in_reply_to=message.in_reply_to,
        references=message.references,
        subject_key=message.subject_key,
        reply=replying(message.subject, message.subject_key),
        **correspondents(message.from_address, message.to_addresses, message.cc_addresses),
    )


def close_answered_follow_ups(session: Session, *, now: datetime) -> list[int]:
    """Mark done the planned follow-ups whose mail's thread has an answer: a later mail of the thread, written
    by a person (no bounce or automatic reply), going the other way (their reply to my mail, my reply to
    theirs). The activity's description says which mail answered. Returns the activities closed."""
    watched = aliased(m.MailMessage)
    answer = aliased(m.MailMessage)
    rows = session.execute(
        select(
            col(m.Activity.id),
            col(answer.id),
            col(answer.subject),
            col(answer.from_address),
            col(answer.sent_at),
        )
        .join(watched, col(watched.id) == m.Activity.follow_up_of)
        .join(
            answer,
            and_(
                col(answer.thread_id) == watched.thread_id,
                col(answer.id) != watched.id,
                col(answer.is_outgoing) != watched.is_outgoing,
                col(answer.is_automatic).is_(False),
                col(answer.has_body).is_(True),
                col(answer.sent_at) >= watched.sent_at,
            ),
        )
        .where(
            col(m.Activity.status) == m.ActivityStatus.PLANNED.value,
            col(m.Activity.follow_up_of).is_not(None),
        )
        .order_by(col(m.Activity.id), col(answer.sent_at))
    ).all()
    closed: dict[int, tuple[int, str, str, datetime | None]] = {}
    for activity_id, answer_id, subject, sender, sent in rows:
        closed.setdefault(activity_id, (answer_id, subject, sender, sent))
    for activity_id, (answer_id, subject, sender, sent) in closed.items():
        activity = session.get(m.Activity, activity_id)
        if activity is None:
            continue
        when = f" on {sent:%Y-%m-%d %H:%M}" if sent else ""
        note = f"Answered by mail {answer_id} from {sender}{when}: {subject}"
        activity.description = f"{activity.description}\n\n{note}" if activity.description else note
        activity.status = m.ActivityStatus.DONE.value
        activity.completed_at = now
        activity.updated_at = now
    session.flush()
    return sorted(closed)
