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

from sqlalchemy import and_, select, update
from sqlmodel import Session

from crm_tui.core import bulk
from crm_tui.core import models as m

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
    people: frozenset[str] = frozenset()  # every address in From, To and Cc, lower case

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


def people_of(from_address: str, to_addresses: str, cc_addresses: str) -> frozenset[str]:
    """The addresses of a stored message's From, To and Cc (To and Cc: one per line, "Name <a@b>" or "a@b"),
    lower case."""
    found = {from_address.strip().lower()} if from_address.strip() else set()
    for text in (to_addresses, cc_addresses):
        for line in (text or "").split("\n"):
            line = line.strip()
            if line.endswith(">") and "<" in line:
                line = line[line.rindex("<") + 1 : -1].strip()
            if line:
                found.add(line.lower())
    return frozenset(found)


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


def _same_people(a: frozenset[str], b: frozenset[str], mine: frozenset[str]) -> bool:
    """Whether two mails are between the same correspondents: they share an address that is not the user's."""
    return bool((a - mine) & (b - mine))


def thread_of(messages: Sequence[ThreadInput], *, mine: Iterable[str] = ()) -> dict[int, int]:
    """Each message's thread, as the smallest message id in it (a pure function: the whole mailbox at once)."""
    own = frozenset(address.lower() for address in mine)
    union = _Union()
    for message in messages:
        node = ("m", message.id)
        union.find(node)
        for key in message.keys:
            union.join(node, ("k", key))
    by_subject: dict[str, list[ThreadInput]] = {}
    for message in sorted(messages, key=lambda item: item.id):
        if not message.bare or not message.subject_key:
            continue
        for other in by_subject.get(message.subject_key, ()):
            if _same_people(message.people, other.people, own):
                union.join(("m", message.id), ("m", other.id))
        by_subject.setdefault(message.subject_key, []).append(message)
    for message in messages:  # a message with references may be the one a reference-less mail follows
        if not message.bare and message.subject_key in by_subject:
            for other in by_subject[message.subject_key]:
                if _same_people(message.people, other.people, own):
                    union.join(("m", message.id), ("m", other.id))
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
        from crm_tui.core.services.mail_accounts import my_addresses

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
        for key, owner, thread in session.execute(
            select(m.MailThreadKey.key, m.MailThreadKey.message_id, m.MailMessage.thread_id)
            .join(m.MailMessage, m.MailMessage.id == m.MailThreadKey.message_id)
            .where(bulk.among(session, m.MailThreadKey.key, chunk))
        ):
            if owner in new_ids:
                had.add((key, owner))
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
    # The fallback: a mail without references follows the subject, among the same correspondents.
    # Subjects of new mails without references: any stored mail of that subject may be its thread; subjects of
    # new mails with references: only stored mails without any (the pairs the fallback joins).
    bare_subjects = {message.subject_key for message in messages if message.subject_key and message.bare}
    other_subjects = {message.subject_key for message in messages if message.subject_key} - bare_subjects
    # Per subject: (thread, without references) -> the correspondents of those stored mails.
    known: dict[str, dict[tuple[object, bool], set[str]]] = {}
    for subjects, only_bare in ((sorted(bare_subjects), False), (sorted(other_subjects), True)):
        for start in range(0, len(subjects), _CHUNK):
            query = (
                select(
                    m.MailMessage.id,
                    m.MailMessage.thread_id,
                    m.MailMessage.subject_key,
                    m.MailMessage.from_address,
                    m.MailMessage.to_addresses,
                    m.MailMessage.cc_addresses,
                    m.MailMessage.in_reply_to,
                    m.MailMessage.references,
                )
                .where(bulk.among(session, m.MailMessage.subject_key, subjects[start : start + _CHUNK]))
                .order_by(m.MailMessage.id.desc())  # type: ignore[union-attr]
                .limit(5000)
            )
            if only_bare:
                query = query.where(m.MailMessage.in_reply_to.is_(None), m.MailMessage.references.is_(None))  # type: ignore[union-attr]
            seen: dict[str, int] = {}
            for row in session.execute(query):
                if row.id in new_ids or seen.get(row.subject_key, 0) >= _PER_SUBJECT:
                    continue
                seen[row.subject_key] = seen.get(row.subject_key, 0) + 1
                others = people_of(row.from_address, row.to_addresses, row.cc_addresses) - own
                if others:
                    node = ("t", row.thread_id if row.thread_id is not None else row.id)
                    bare = not (row.in_reply_to or row.references)
                    known.setdefault(row.subject_key, {}).setdefault((node, bare), set()).update(others)
    batch: dict[str, list[tuple[int, frozenset[str], bool]]] = {}
    for message in sorted(messages, key=lambda item: item.id):
        if not message.subject_key:
            continue
        mine_out = message.people - own
        if not mine_out:
            continue
        for (node, other_bare), people in known.get(message.subject_key, {}).items():
            if (message.bare or other_bare) and not mine_out.isdisjoint(people):
                union.join(message.id, node)
        for other_id, people, other_bare in batch.get(message.subject_key, ()):
            if (message.bare or other_bare) and not mine_out.isdisjoint(people):
                union.join(message.id, other_id)
        batch.setdefault(message.subject_key, []).append((message.id, mine_out, message.bare))
    # Each new message's thread: the thread it met with the smallest id, else its own set's smallest id.
    threads: dict[object, set[int]] = {}
    firsts: dict[object, int] = {}
    for node in list(union.parent):
        root = union.find(node)
        if isinstance(node, tuple):
            threads.setdefault(root, set()).add(node[1])
        else:
            firsts[root] = min(firsts.get(root, node), node)  # type: ignore[call-overload]
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
    bulk.update_rows(
        session,
        m.MailMessage.__table__,  # type: ignore[attr-defined]
        [{"id": message_id, "thread_id": thread} for message_id, thread in result.items()],
    )
    for old, new in sorted(merges.items()):
        session.execute(update(m.MailMessage).where(m.MailMessage.thread_id == old).values(thread_id=new))  # type: ignore[arg-type]
    # A message threaded before (a provisional one a migration threaded, say) keeps the keys it has.
    bulk.insert_plain(
        session,
        m.MailThreadKey.__table__,  # type: ignore[attr-defined]
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
    return ThreadInput(
        id=message.id,  # type: ignore[arg-type]
        message_id=message.message_id_header,
        in_reply_to=message.in_reply_to,
        references=message.references,
        subject_key=message.subject_key,
        people=people_of(message.from_address, message.to_addresses, message.cc_addresses),
    )


def watch_follow_up(session: Session, activity_id: int, message_id: int) -> None:
    """Make a planned activity the follow-up of a mail: it is done once the thread is answered."""
    session.execute(update(m.Activity).where(m.Activity.id == activity_id).values(follow_up_of=message_id))  # type: ignore[arg-type]


def close_answered_follow_ups(session: Session, *, now: datetime) -> list[int]:
    """Mark done the planned follow-ups whose mail's thread has an answer: a later mail of the thread, written
    by a person (no bounce or automatic reply), going the other way (their reply to my mail, my reply to
    theirs). The activity's description says which mail answered. Returns the activities closed."""
    from sqlalchemy.orm import aliased

    watched = aliased(m.MailMessage)
    answer = aliased(m.MailMessage)
    rows = session.execute(
        select(m.Activity.id, answer.id, answer.subject, answer.from_address, answer.sent_at)
        .join(watched, watched.id == m.Activity.follow_up_of)
        .join(
            answer,
            and_(
                answer.thread_id == watched.thread_id,
                answer.id != watched.id,
                answer.is_outgoing != watched.is_outgoing,
                answer.is_automatic.is_(False),  # type: ignore[attr-defined]
                answer.has_body.is_(True),  # type: ignore[attr-defined]
                answer.sent_at >= watched.sent_at,  # type: ignore[operator]
            ),
        )
        .where(m.Activity.status == m.ActivityStatus.PLANNED.value, m.Activity.follow_up_of.is_not(None))  # type: ignore[union-attr]
        .order_by(m.Activity.id, answer.sent_at)
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
