"""What the inbox shows, as plain data: a page of its list and its count (the folder or view chosen, the search,
threads collapsed or not), one mail whole for the preview and the reader, the marks of the tagged mail.

The list's condition (folder, view, search) is built here from plain arguments, so the screen holds no SQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Literal, cast

from sqlalchemy import and_, false, select
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col

from crm_tui.core import models as m
from crm_tui.core.errors import CrmError, ValidationError
from crm_tui.core.services import triage
from crm_tui.core.services.mail_search import search_condition
from crm_tui.core.services.mail_store import MessageSummary, count_messages, list_messages
from crm_tui.core.types import RecordRef, RecordType


@dataclass(frozen=True)
class InboxQuery:
    """What the list shows: ``scope`` is ("folder", folder id) or ("view", a name of ``triage.VIEWS``);
    ``query`` the search as typed; ``collapsed``: one row per conversation (its newest mail)."""

    query: str = ""
    scope: tuple[str, object] = ("view", "all")
    zone: tzinfo | None = None
    now: datetime | None = None
    days: int = triage.NO_REPLY_DAYS
    collapsed: bool = False


@dataclass(frozen=True)
class InboxPage:
    messages: list[MessageSummary]
    threads: dict[int, list[int]] = field(default_factory=dict)  # a row's mail -> its conversation's shown
    sizes: dict[int, int] = field(
        default_factory=dict
    )  # a row's mail -> how many mails its conversation holds


@dataclass(frozen=True)
class MessageView:
    """One stored mail as the preview, the reader and a reply read it (no raw bytes)."""

    id: int
    subject: str
    from_name: str
    from_address: str
    to_addresses: str
    cc_addresses: str
    sent_at: datetime | None
    is_flagged: bool
    is_read: bool
    parse_problems: str | None
    attachments: str
    has_body: bool
    body_text: str
    message_id_header: str | None
    references: str | None


def _condition(session: Session, what: InboxQuery) -> ColumnElement[bool] | None:
    """The list's condition: the folder or view chosen, and the search; an unfinished or wrong query (typed so
    far) matches nothing."""
    parts: list[ColumnElement[bool]] = []
    scope = what.scope
    # The inbox always gives both; a query without them reads the mail in UTC, as of now.
    zone = what.zone if what.zone is not None else UTC
    now = what.now if what.now is not None else datetime.now(UTC)
    try:
        if scope[0] == "folder":
            parts.append(triage.folder_condition(session, int(cast("int | str", scope[1]))))  # a folder's id
        elif scope[1] != "all":
            # Archived or deleted: done, out of the view at once (the cheap test first: it spares the view's
            # thread look-ups for every mail put away).
            parts.append(triage.not_put_away())
            view = triage.view_condition(str(scope[1]), now=now, days=what.days)
            if view is not None:  # None: all mail, handled above
                parts.append(view)
    except CrmError:
        parts.append(false())
    if what.query.strip():
        try:
            condition = search_condition(session, what.query, zone)
            # No condition parsed from a query typed: nothing matches (as the NULL it was once added as).
            parts.append(condition if condition is not None else false())
        except ValidationError:
            parts.append(false())
    return and_(*parts) if parts else None


def page(session: Session, what: InboxQuery, *, offset: int, limit: int) -> InboxPage:
    """A page of the list, newest first; collapsed, each row is a conversation's newest mail."""
    scope = _condition(session, what)
    where = triage.newest_of_threads(scope) if what.collapsed else scope
    messages = list_messages(session, limit=limit, offset=offset, where=where)
    if not what.collapsed:
        return InboxPage(messages)
    ids = [message.id for message in messages]
    # A collapsed row shows how many mails its whole conversation holds, not only those in this view
    # ("Awaiting my reply" holds one of each thread).
    return InboxPage(messages, triage.thread_members(session, ids, scope), triage.thread_sizes(session, ids))


def count(session: Session, what: InboxQuery, *, cap: int | None = None) -> int:
    """How many rows the list holds (counting stops just past ``cap``)."""
    where = _condition(session, what)
    if what.collapsed:
        where = triage.newest_of_threads(where)
    return count_messages(session, where=where, cap=cap)


def message_view(session: Session, message_id: int) -> MessageView | None:
    """One mail whole (None: gone)."""
    row = session.get(m.MailMessage, message_id)
    if row is None:
        return None
    return MessageView(
        id=message_id,
        subject=row.subject,
        from_name=row.from_name,
        from_address=row.from_address,
        to_addresses=row.to_addresses,
        cc_addresses=row.cc_addresses,
        sent_at=row.sent_at,
        is_flagged=row.is_flagged,
        is_read=row.is_read,
        parse_problems=row.parse_problems,
        attachments=row.attachments,
        has_body=row.has_body,
        body_text=row.body_text,
        message_id_header=row.message_id_header,
        references=row.references,
    )


def all_marked(session: Session, message_ids: list[int], mark: Literal["read", "flagged"]) -> bool:
    """Whether every one of the mails is read (or flagged); a mail gone counts as not."""
    column = col(m.MailMessage.is_read) if mark == "read" else col(m.MailMessage.is_flagged)
    marked = session.scalars(
        select(col(m.MailMessage.id)).where(col(m.MailMessage.id).in_(message_ids), column.is_(True))
    )
    return set(marked) >= set(message_ids)


def filed_on(session: Session, message_id: int) -> list[RecordRef]:
    """The records a mail is filed on, in the order it was filed."""
    rows = session.execute(
        select(col(m.MailLink.record_type), col(m.MailLink.record_id))
        .where(col(m.MailLink.message_id) == message_id)
        .order_by(col(m.MailLink.id))
    )
    return [RecordRef(RecordType(record_type), record_id) for record_type, record_id in rows]
