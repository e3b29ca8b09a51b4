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
from typing import Literal, overload

from sqlalchemy import and_, case, exists, func, not_, or_, select, true
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import Exists
from sqlmodel import Session, col

from crm_tui.core import models as m
from crm_tui.core.errors import CrmError, NotFound
from crm_tui.core.services import mailbox
from crm_tui.core.services.rows import id_of
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
            (location.id, folder_name, location.pending_move)
            for location, folder_name in session.execute(
                select(m.MailLocation, col(m.MailFolder.name))
                .join(m.MailFolder, col(m.MailFolder.id) == col(m.MailLocation.folder_id))
                .where(col(m.MailLocation.message_id) == message_id)
            ).all()
        ]
        change = mailbox.queue_change(session, message_id, action, argument, now=now)
        entry.changes.append(id_of(change))
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


def folder_condition(session: Session, folder_id: int) -> Exists:
    """Messages with a copy in this folder, as it will be once queued moves are done."""
    folder = session.get(m.MailFolder, folder_id)
    if folder is None:
        raise NotFound(f"no folder {folder_id}")
    same_account = select(col(m.MailFolder.id)).where(col(m.MailFolder.account_id) == folder.account_id)
    return exists().where(
        col(m.MailLocation.message_id) == col(m.MailMessage.id),
        or_(
            and_(col(m.MailLocation.folder_id) == folder_id, col(m.MailLocation.pending_move).is_(None)),
            and_(
                col(m.MailLocation.pending_move) == folder.name,
                col(m.MailLocation.folder_id).in_(same_account),
            ),
        ),
    )


def _later_in_thread() -> Exists:
    """A condition: a later message of the same thread, written by a person (not a bounce or automatic reply),
    exists. "Later" by the date sent, then by arrival (the id) for mails sent in the same second."""
    later = aliased(m.MailMessage)
    return exists().where(
        col(later.thread_id)
        == col(m.MailMessage.thread_id),  # indexed (NULL, not threaded yet: matches nothing)
        col(later.id) != col(m.MailMessage.id),
        col(later.is_automatic).is_(False),
        or_(
            col(later.sent_at) > col(m.MailMessage.sent_at),
            and_(col(later.sent_at) == col(m.MailMessage.sent_at), col(later.id) > col(m.MailMessage.id)),
        ),
    )


def _open_deal_of_record() -> ColumnElement[bool]:
    """A condition on a mail link: the record it names is an open deal, or a contact or organization that
    has one (as the deal's contact, or its organization, installer or reseller)."""
    open_deal = and_(col(m.Stage.id) == col(m.Opportunity.stage_id), col(m.Stage.kind) == "open")
    link_type, link_id = col(m.MailLink.record_type), col(m.MailLink.record_id)
    return or_(
        and_(
            link_type == "opportunity",
            exists().where(col(m.Opportunity.id) == link_id, open_deal),
        ),
        and_(
            link_type == "contact",
            exists().where(
                col(m.OpportunityContact.contact_id) == link_id,
                col(m.Opportunity.id) == col(m.OpportunityContact.opportunity_id),
                open_deal,
            ),
        ),
        and_(
            link_type == "organization",
            exists().where(
                or_(
                    col(m.Opportunity.organization_id) == link_id,
                    col(m.Opportunity.installer_id) == link_id,
                    col(m.Opportunity.reseller_id) == link_id,
                ),
                open_deal,
            ),
        ),
    )


@overload
def view_condition(
    view: Literal["unlinked", "deals", "awaiting", "no-reply"], *, now: datetime, days: int = NO_REPLY_DAYS
) -> ColumnElement[bool]: ...
@overload
def view_condition(view: str, *, now: datetime, days: int = NO_REPLY_DAYS) -> ColumnElement[bool] | None: ...
def view_condition(view: str, *, now: datetime, days: int = NO_REPLY_DAYS) -> ColumnElement[bool] | None:
    """The condition of a view (see VIEWS), or None for all mail.

    Reply tracking follows the threads (``core.mail_threads``: Message-ID, In-Reply-To, References): a mail
    awaits my reply while no later mail of its thread was written by a person; bounces and automatic replies
    never await one, nor count as an answer to mine."""
    if view == "all":
        return None
    if view == "unlinked":
        return and_(
            col(m.MailMessage.is_outgoing).is_(False),
            not_(exists().where(col(m.MailLink.message_id) == col(m.MailMessage.id))),
        )
    if view == "deals":
        return exists().where(col(m.MailLink.message_id) == col(m.MailMessage.id), _open_deal_of_record())
    if view == "awaiting":
        return and_(
            col(m.MailMessage.is_outgoing).is_(False),
            col(m.MailMessage.is_automatic).is_(False),
            not_(_later_in_thread()),
        )
    if view == "no-reply":
        return and_(
            col(m.MailMessage.is_outgoing).is_(True),
            col(m.MailMessage.sent_at) < now - timedelta(days=days),
            not_(_later_in_thread()),
        )
    raise CrmError(f"unknown view {view!r}; views: {', '.join(VIEWS)}")


def folders(session: Session) -> list[tuple[int, str, str, str | None]]:
    """(folder id, account name, folder name, role) of every folder, inbox first per account."""
    rows = session.execute(
        select(col(m.MailFolder.id), col(m.MailAccount.name), col(m.MailFolder.name), col(m.MailFolder.role))
        .join(m.MailAccount, col(m.MailAccount.id) == col(m.MailFolder.account_id))
        .order_by(
            col(m.MailAccount.name),
            func.coalesce(col(m.MailFolder.role), "") != "inbox",
            col(m.MailFolder.name),
        )
    ).all()
    return [(row[0], row[1], row[2], row[3]) for row in rows]


def _thread_key() -> ColumnElement[int]:
    """A message's thread (``mail_threads``); a message not threaded yet is its own."""
    return func.coalesce(col(m.MailMessage.thread_id), col(m.MailMessage.id))


def _in_threads(keys: set[int]) -> ColumnElement[bool]:
    """A condition: the message belongs to one of these threads (``_thread_key`` values), written so both
    indexes serve it (a coalesce() cannot use the thread_id index: a scan of every message)."""
    return or_(
        col(m.MailMessage.thread_id).in_(keys),
        and_(col(m.MailMessage.thread_id).is_(None), col(m.MailMessage.id).in_(keys)),
    )


def newest_of_threads(condition: ColumnElement[bool] | None) -> ColumnElement[bool]:
    """A condition: the message stands for its thread among the messages matching ``condition`` (a collapsed
    thread's row): the newest a person wrote, not an automatic reply (an out-of-office after my answer), or
    the newest when a person wrote none of them."""
    by_a_person = func.max(case((col(m.MailMessage.is_automatic).is_(False), col(m.MailMessage.id))))
    newest = (
        select(func.coalesce(by_a_person, func.max(col(m.MailMessage.id))))
        .where(condition if condition is not None else true())
        .group_by(_thread_key())
        .correlate_except(m.MailMessage)
    )
    return col(m.MailMessage.id).in_(newest)


def thread_members(
    session: Session, message_ids: list[int], condition: ColumnElement[bool] | None
) -> dict[int, list[int]]:
    """For each message, the ids of its thread's messages that match ``condition`` (the list's scope)."""
    if not message_ids:
        return {}
    keys: dict[int, int] = dict(
        session.execute(
            select(col(m.MailMessage.id), _thread_key()).where(col(m.MailMessage.id).in_(message_ids))
        ).all()
    )
    members: dict[int, list[int]] = {}
    for message_id, key in session.execute(
        select(col(m.MailMessage.id), _thread_key()).where(
            _in_threads(set(keys.values())), condition if condition is not None else true()
        )
    ):
        members.setdefault(key, []).append(message_id)
    return {message_id: sorted(members.get(key, [message_id])) for message_id, key in keys.items()}


def thread_sizes(session: Session, message_ids: list[int]) -> dict[int, int]:
    """For each message, how many messages its whole thread holds (in any folder or view)."""
    if not message_ids:
        return {}
    keys: dict[int, int] = dict(
        session.execute(
            select(col(m.MailMessage.id), _thread_key()).where(col(m.MailMessage.id).in_(message_ids))
        ).all()
    )
    sizes: dict[int, int] = dict(
        session.execute(
            select(_thread_key(), func.count()).where(_in_threads(set(keys.values()))).group_by(_thread_key())
        ).all()
    )
    return {message_id: int(sizes.get(key, 1)) for message_id, key in keys.items()}


# --- reading, and mail that is done ---

PUT_AWAY_ROLES = ("archive", "trash", "all")  # "all": Gmail's All Mail holds every mail, archived or not
_PUT_AWAY_NAMES = ("Archive", "Trash")  # where an archive or delete goes on an account without such a folder


def not_put_away() -> ColumnElement[bool]:
    """A condition: the mail is not archived or deleted, so it still belongs in a view ("Awaiting my reply",
    "Unlinked"...): a copy of it stays outside the archive and the trash (as it will be once queued moves are
    done). A mail with no copy on a server (the demo's: it never syncs) goes by its last archive, delete or
    move."""
    copy = aliased(m.MailLocation)
    folder = aliased(m.MailFolder)
    away = select(col(m.MailFolder.name)).where(
        col(m.MailFolder.account_id) == col(folder.account_id),
        col(m.MailFolder.role).in_(PUT_AWAY_ROLES),
    )
    stays = exists().where(
        col(copy.message_id) == col(m.MailMessage.id),
        col(folder.id) == col(copy.folder_id),
        or_(
            and_(
                col(copy.pending_move).is_(None),
                or_(col(folder.role).is_(None), col(folder.role).not_in(PUT_AWAY_ROLES)),
            ),
            and_(
                col(copy.pending_move).is_not(None),
                col(copy.pending_move).not_in(away),
                col(copy.pending_move).not_in(_PUT_AWAY_NAMES),
            ),
        ),
    )
    last_move = (
        select(col(m.MailChange.action))
        .where(
            col(m.MailChange.message_id) == col(m.MailMessage.id),
            col(m.MailChange.action).in_(("move", "archive", "delete")),
        )
        .order_by(col(m.MailChange.id).desc())
        .limit(1)
        .scalar_subquery()
    )
    has_copy = exists().where(col(m.MailLocation.message_id) == col(m.MailMessage.id))
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
