"""Inbox triage: the actions a salesperson clears mail with (one message or many at once), their undo, and
the views and folders the inbox lists.

Actions go through ``mailbox.queue_change``: they apply here at once and the next sync replays them on the
server. Undo takes back a whole action: a change the server has not seen yet is simply withdrawn (it never
reaches the server); one already replayed is answered by the inverse change (a move back to where each copy
was, the flag set back).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, case, exists, func, not_, or_, select, true
from sqlalchemy.orm import aliased
from sqlmodel import Session

from crm_tui.core import models as m
from crm_tui.core.errors import CrmError, NotFound
from crm_tui.core.services import mailbox
from crm_tui.core.wording import plural

ACTIONS = ("read", "unread", "flag", "unflag", "archive", "delete", "move")
INVERSE = {"read": "unread", "unread": "read", "flag": "unflag", "unflag": "flag"}
DONE = {
    "read": "marked read",
    "unread": "marked unread",
    "flag": "flagged",
    "unflag": "unflagged",
    "archive": "archived",
    "delete": "moved to the trash",
}
VIEWS = {
    "all": "All mail",
    "unlinked": "Unlinked (unknown senders)",
    "deals": "Linked to open deals",
    "awaiting": "Awaiting my reply",
    "no-reply": "No reply to me",
}
NO_REPLY_DAYS = 3


@dataclass
class Undo:
    """What one triage action changed, to take it back."""

    description: str
    action: str
    changes: list[int] = field(default_factory=list)  # the queued changes (ids)
    marks: dict[int, tuple[bool, bool]] = field(default_factory=dict)  # message -> (read, flagged) before
    places: dict[int, list[tuple[int, str, str | None]]] = field(default_factory=dict)
    # message -> [(location id, folder name, its pending move before)]


def apply(
    session: Session, message_ids: list[int], action: str, argument: str | None = None, *, now: datetime
) -> Undo:
    """Apply ``action`` to the messages (here at once; queued for the server) and say how to undo it."""
    if action not in ACTIONS:
        raise CrmError(f"unknown triage action {action!r}")
    if not message_ids:
        raise CrmError("no message chosen")
    if action == "move" and not (argument or "").strip():
        raise CrmError("a move needs the folder to move to")
    count = len(message_ids)
    what = DONE.get(action) or f"moved to {argument}"
    entry = Undo(f"{plural(count, 'message')} {what}", action)
    for message_id in message_ids:
        message = session.get(m.MailMessage, message_id)
        if message is None:
            raise NotFound(f"no message {message_id}")
        entry.marks[message_id] = (message.is_read, message.is_flagged)
        entry.places[message_id] = [
            (location.id, folder_name, location.pending_move)  # type: ignore[misc]
            for location, folder_name in session.execute(
                select(m.MailLocation, m.MailFolder.name)
                .join(m.MailFolder, m.MailFolder.id == m.MailLocation.folder_id)
                .where(m.MailLocation.message_id == message_id)
            ).all()
        ]
        change = mailbox.queue_change(session, message_id, action, argument, now=now)
        entry.changes.append(change.id)  # type: ignore[arg-type]
    return entry


def undo(session: Session, entry: Undo, *, now: datetime) -> str:
    """Take back a triage action. Returns what was undone, for the status line."""
    for change_id in entry.changes:
        change = session.get(m.MailChange, change_id)
        if change is None:
            continue
        message_id = change.message_id
        if change.done_at is None:
            session.delete(change)  # the server never saw it
        elif change.action in INVERSE:
            mailbox.queue_change(session, message_id, INVERSE[change.action], now=now)
        else:
            # The server moved the copies: move each back to the folder it was in.
            for folder_name in sorted({name for _, name, _ in entry.places.get(message_id, [])}):
                mailbox.queue_change(session, message_id, "move", folder_name, now=now)
        message = session.get(m.MailMessage, message_id)
        if message is not None and message_id in entry.marks:
            message.is_read, message.is_flagged = entry.marks[message_id]
        if change.done_at is None:
            for location_id, _, pending in entry.places.get(message_id, []):
                location = session.get(m.MailLocation, location_id)
                if location is not None:
                    location.pending_move = pending
    session.flush()
    return f"undone: {entry.description}"


def folder_condition(session: Session, folder_id: int):  # type: ignore[no-untyped-def]
    """Messages with a copy in this folder, as it will be once queued moves are done."""
    folder = session.get(m.MailFolder, folder_id)
    if folder is None:
        raise NotFound(f"no folder {folder_id}")
    same_account = select(m.MailFolder.id).where(m.MailFolder.account_id == folder.account_id)
    return exists().where(
        m.MailLocation.message_id == m.MailMessage.id,
        or_(
            and_(m.MailLocation.folder_id == folder_id, m.MailLocation.pending_move.is_(None)),  # type: ignore[union-attr]
            and_(m.MailLocation.pending_move == folder.name, m.MailLocation.folder_id.in_(same_account)),  # type: ignore[attr-defined]
        ),
    )


def _later_in_thread():  # type: ignore[no-untyped-def]
    """A condition: a later message of the same thread, written by a person (not a bounce or automatic reply),
    exists. "Later" by the date sent, then by arrival (the id) for mails sent in the same second."""
    later = aliased(m.MailMessage)
    return exists().where(
        later.thread_id == m.MailMessage.thread_id,  # indexed (NULL, not threaded yet: matches nothing)
        later.id != m.MailMessage.id,
        later.is_automatic.is_(False),  # type: ignore[attr-defined]
        or_(
            later.sent_at > m.MailMessage.sent_at,  # type: ignore[operator]
            and_(later.sent_at == m.MailMessage.sent_at, later.id > m.MailMessage.id),  # type: ignore[operator]
        ),
    )


def _open_deal_of_record():  # type: ignore[no-untyped-def]
    """A condition on a mail link: the record it names is an open deal, or a contact or organization that
    has one (as the deal's contact, or its organization, installer or reseller)."""
    open_deal = and_(m.Stage.id == m.Opportunity.stage_id, m.Stage.kind == "open")
    link = m.MailLink
    return or_(
        and_(
            link.record_type == "opportunity", exists().where(m.Opportunity.id == link.record_id, open_deal)
        ),
        and_(
            link.record_type == "contact",
            exists().where(
                m.OpportunityContact.contact_id == link.record_id,
                m.Opportunity.id == m.OpportunityContact.opportunity_id,
                open_deal,
            ),
        ),
        and_(
            link.record_type == "organization",
            exists().where(
                or_(
                    m.Opportunity.organization_id == link.record_id,
                    m.Opportunity.installer_id == link.record_id,
                    m.Opportunity.reseller_id == link.record_id,
                ),
                open_deal,
            ),
        ),
    )


def view_condition(view: str, *, now: datetime, days: int = NO_REPLY_DAYS):  # type: ignore[no-untyped-def]
    """The condition of a view (see VIEWS), or None for all mail.

    Reply tracking follows the threads (``core.mail_threads``: Message-ID, In-Reply-To, References): a mail
    awaits my reply while no later mail of its thread was written by a person; bounces and automatic replies
    never await one, nor count as an answer to mine."""
    if view == "all":
        return None
    if view == "unlinked":
        return and_(
            m.MailMessage.is_outgoing.is_(False),  # type: ignore[attr-defined]
            not_(exists().where(m.MailLink.message_id == m.MailMessage.id)),
        )
    if view == "deals":
        return exists().where(m.MailLink.message_id == m.MailMessage.id, _open_deal_of_record())
    if view == "awaiting":
        return and_(
            m.MailMessage.is_outgoing.is_(False),  # type: ignore[attr-defined]
            m.MailMessage.is_automatic.is_(False),  # type: ignore[attr-defined]
            not_(_later_in_thread()),
        )
    if view == "no-reply":
        return and_(
            m.MailMessage.is_outgoing.is_(True),  # type: ignore[attr-defined]
            m.MailMessage.sent_at < now - timedelta(days=days),  # type: ignore[operator]
            not_(_later_in_thread()),
        )
    raise CrmError(f"unknown view {view!r}; views: {', '.join(VIEWS)}")


def folders(session: Session) -> list[tuple[int, str, str, str | None]]:
    """(folder id, account name, folder name, role) of every folder, inbox first per account."""
    rows = session.execute(
        select(m.MailFolder.id, m.MailAccount.name, m.MailFolder.name, m.MailFolder.role)
        .join(m.MailAccount, m.MailAccount.id == m.MailFolder.account_id)
        .order_by(m.MailAccount.name, func.coalesce(m.MailFolder.role, "") != "inbox", m.MailFolder.name)
    ).all()
    return [(row[0], row[1], row[2], row[3]) for row in rows]


def _thread_key():  # type: ignore[no-untyped-def]
    """A message's thread (``mail_threads``); a message not threaded yet is its own."""
    return func.coalesce(m.MailMessage.thread_id, m.MailMessage.id)


def _in_threads(keys: set[int]):  # type: ignore[no-untyped-def]
    """A condition: the message belongs to one of these threads (``_thread_key`` values), written so both
    indexes serve it (a coalesce() cannot use the thread_id index: a scan of every message)."""
    return or_(
        m.MailMessage.thread_id.in_(keys),  # type: ignore[union-attr]
        and_(m.MailMessage.thread_id.is_(None), m.MailMessage.id.in_(keys)),  # type: ignore[union-attr]
    )


def newest_of_threads(condition):  # type: ignore[no-untyped-def]
    """A condition: the message stands for its thread among the messages matching ``condition`` (a collapsed
    thread's row): the newest a person wrote, not an automatic reply (an out-of-office after my answer), or
    the newest when a person wrote none of them."""
    by_a_person = func.max(case((m.MailMessage.is_automatic.is_(False), m.MailMessage.id)))  # type: ignore[attr-defined]
    newest = (
        select(func.coalesce(by_a_person, func.max(m.MailMessage.id)))
        .where(condition if condition is not None else true())
        .group_by(_thread_key())
        .correlate_except(m.MailMessage)
    )
    return m.MailMessage.id.in_(newest)  # type: ignore[union-attr]


def thread_members(session: Session, message_ids: list[int], condition) -> dict[int, list[int]]:  # type: ignore[no-untyped-def]
    """For each message, the ids of its thread's messages that match ``condition`` (the list's scope)."""
    if not message_ids:
        return {}
    keys = dict(
        session.execute(
            select(m.MailMessage.id, _thread_key()).where(m.MailMessage.id.in_(message_ids))
        ).all()
    )  # type: ignore[union-attr]
    members: dict[str, list[int]] = {}
    for message_id, key in session.execute(
        select(m.MailMessage.id, _thread_key()).where(
            _in_threads(set(keys.values())), condition if condition is not None else true()
        )
    ):
        members.setdefault(key, []).append(message_id)
    return {message_id: sorted(members.get(key, [message_id])) for message_id, key in keys.items()}


def thread_sizes(session: Session, message_ids: list[int]) -> dict[int, int]:
    """For each message, how many messages its whole thread holds (in any folder or view)."""
    if not message_ids:
        return {}
    keys = dict(
        session.execute(
            select(m.MailMessage.id, _thread_key()).where(m.MailMessage.id.in_(message_ids))  # type: ignore[union-attr]
        ).all()
    )
    sizes = dict(
        session.execute(
            select(_thread_key(), func.count()).where(_in_threads(set(keys.values()))).group_by(_thread_key())
        ).all()
    )
    return {message_id: int(sizes.get(key, 1)) for message_id, key in keys.items()}


# --- reading, and mail that is done ---

PUT_AWAY_ROLES = ("archive", "trash", "all")  # "all": Gmail's All Mail holds every mail, archived or not
_PUT_AWAY_NAMES = ("Archive", "Trash")  # where an archive or delete goes on an account without such a folder


def not_put_away():  # type: ignore[no-untyped-def]
    """A condition: the mail is not archived or deleted, so it still belongs in a view ("Awaiting my reply",
    "Unlinked"...): a copy of it stays outside the archive and the trash (as it will be once queued moves are
    done). A mail with no copy on a server (the demo's: it never syncs) goes by its last archive, delete or
    move."""
    copy = aliased(m.MailLocation)
    folder = aliased(m.MailFolder)
    away = select(m.MailFolder.name).where(
        m.MailFolder.account_id == folder.account_id,
        m.MailFolder.role.in_(PUT_AWAY_ROLES),  # type: ignore[union-attr]
    )
    stays = exists().where(
        copy.message_id == m.MailMessage.id,
        folder.id == copy.folder_id,
        or_(
            and_(
                copy.pending_move.is_(None),  # type: ignore[union-attr]
                or_(folder.role.is_(None), folder.role.not_in(PUT_AWAY_ROLES)),  # type: ignore[union-attr]
            ),
            and_(
                copy.pending_move.is_not(None),  # type: ignore[union-attr]
                copy.pending_move.not_in(away),  # type: ignore[union-attr]
                copy.pending_move.not_in(_PUT_AWAY_NAMES),  # type: ignore[union-attr]
            ),
        ),
    )
    last_move = (
        select(m.MailChange.action)
        .where(
            m.MailChange.message_id == m.MailMessage.id,
            m.MailChange.action.in_(("move", "archive", "delete")),  # type: ignore[attr-defined]
        )
        .order_by(m.MailChange.id.desc())  # type: ignore[union-attr]
        .limit(1)
        .scalar_subquery()
    )
    has_copy = exists().where(m.MailLocation.message_id == m.MailMessage.id)
    return or_(stays, and_(not_(has_copy), func.coalesce(last_move, "").not_in(("archive", "delete"))))


def opened(session: Session, message_id: int, *, now: datetime) -> bool:
    """The mail was opened to be read (Enter): it is read from now on, on the server too after the next sync
    (as ``N`` does). Moving the highlight over a mail does not read it. Whether it was unread."""
    message = session.get(m.MailMessage, message_id)
    if message is None:
        raise NotFound(f"no message {message_id}")
    if message.is_read:
        return False
    mailbox.queue_change(session, message_id, "read", now=now)
    return True
