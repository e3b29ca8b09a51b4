"""Mail search: one query language for the app and ``crm-tui search``.

words            every word appears (subject, addresses or body; a word matches as a prefix)
"a phrase"       the words in this order
from:anna        sender name or address contains it      to:ben   a To or Cc contains it
subject:offer    the subject contains it                  has:attachment
is:unread  is:read  is:flagged
after:2026-11-01 sent on or after that local day         before:2026-11-20  sent before that local day
linked:contact:42   filed on that record                  unlinked  filed on no record
-term            not this term (any of the above)         a OR b   either (binds tighter than AND)

A query holds at most MAX_WORDS words (each operator term counts as one): a longer one is refused with a
message, the same on every database (SQLite refuses an expression nested 1000 deep).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from sqlalchemy import Integer, and_, exists, false, func, literal_column, not_, or_, select, text
from sqlalchemy import column as sa_column
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col

from crm_tui.core import models as m
from crm_tui.core.clock import local_day_bounds, parse_date
from crm_tui.core.errors import ValidationError
from crm_tui.core.services.mail_copies import copies_of_each
from crm_tui.core.types import RecordRef

_TOKEN = re.compile(r'(-?)(?:(\w+):)?(?:"([^"]*)"|(\S+))')
_PARAMETERS = itertools.count()
FIELDS = ("from", "to", "subject", "has", "is", "before", "after", "linked")
MAX_WORDS = 32


@dataclass(frozen=True)
class Term:
    negated: bool
    field: str | None
    value: str
    phrase: bool = False


def parse_query(query: str) -> list[list[Term]]:
    """The query as AND-ed groups of OR-ed terms. Raises ValidationError naming a malformed term."""
    groups: list[list[Term]] = []
    pending_or = False
    for match in _TOKEN.finditer(query or ""):
        negated, name, quoted, bare = match.groups()
        if name is None and quoted is None and bare == "OR" and not negated:
            pending_or = bool(groups)
            continue
        field = name.lower() if name else None
        value = quoted if quoted is not None else bare or ""
        if field is not None and field not in FIELDS:
            # "word:thing" that is no operator: search it as words.
            value, field = f"{name}:{value}", None
        if field is None and value.lower() == "unlinked" and quoted is None:
            field, value = "unlinked", ""
        term = Term(bool(negated), field, value, phrase=quoted is not None)
        _check(term)
        if pending_or and groups:
            groups[-1].append(term)
        else:
            groups.append([term])
        pending_or = False
    words = sum(
        len(re.findall(r"\w+", term.value)) or 1 if term.field is None else 1
        for group in groups
        for term in group
    )
    if words > MAX_WORDS:
        raise ValidationError.single(
            "query", f"a search takes at most {MAX_WORDS} words (this one has {words}): leave some out"
        )
    return groups


def _check(term: Term) -> None:
    if term.field == "has" and term.value.lower() not in ("attachment", "attachments"):
        raise ValidationError.single("query", f"has:{term.value}: only has:attachment is known")
    if term.field == "is" and term.value.lower() not in ("unread", "read", "flagged"):
        raise ValidationError.single("query", f"is:{term.value}: use is:unread, is:read or is:flagged")
    if term.field in ("before", "after"):
        try:
            parse_date(term.value)
        except ValueError:
            raise ValidationError.single("query", f"{term.field}:{term.value}: use YYYY-MM-DD") from None
    if term.field == "linked":
        try:
            RecordRef.parse(term.value)
        except ValueError as exc:
            raise ValidationError.single("query", f"linked:{term.value}: {exc}") from None


def _fts(session: Session, column: str | None, value: str, phrase: bool) -> ColumnElement[bool]:
    words = re.findall(r"\w+", value)
    if not words:
        return false()
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        return _postgres_fts(words, phrase)
    if bind.dialect.name != "sqlite":
        like = f"%{value}%"
        return or_(col(m.MailMessage.subject).ilike(like), col(m.MailMessage.body_text).ilike(like))
    if phrase:
        expression = '"' + " ".join(words) + '"'
    else:
        expression = " AND ".join(f'"{w}"*' for w in words)
    if column:
        expression = f"{{{column}}} : ({expression})"
    # Each term gets its own parameter name: "a OR b" puts two of these in one statement.
    name = f"fts_{next(_PARAMETERS)}"
    matches = text(f"SELECT rowid FROM mail_search WHERE mail_search MATCH :{name}").bindparams(
        **{name: expression}
    )
    return col(m.MailMessage.id).in_(matches.columns(sa_column("rowid", Integer)))


def postgres_document() -> ColumnElement[Any]:
    """What PostgreSQL's full-text search reads of a message (the same as SQLite's index: subject, addresses,
    body; addresses split at @ and dots into words, as SQLite's tokenizer does). Written with literals only, so
    it is the very expression migration 0010 indexes (GIN) and the planner uses that index."""
    empty: ColumnElement[str] = literal_column("''")
    space: ColumnElement[str] = literal_column("' '")
    text_: ColumnElement[Any] = func.coalesce(col(m.MailMessage.subject), empty)
    for column in (
        col(m.MailMessage.from_name),
        col(m.MailMessage.from_address),
        col(m.MailMessage.to_addresses),
        col(m.MailMessage.cc_addresses),
        col(m.MailMessage.body_text),
    ):
        text_ = text_.op("||")(space).op("||")(func.coalesce(column, empty))
    return func.to_tsvector(
        literal_column("'simple'::regconfig"),
        func.translate(text_, literal_column("'@.'"), literal_column("'  '")),
    )


def _postgres_fts(words: list[str], phrase: bool) -> ColumnElement[bool]:
    """Words as prefixes, all of them (as on SQLite), or the exact phrase."""
    config: ColumnElement[str] = literal_column("'simple'::regconfig")
    if phrase:
        query = func.phraseto_tsquery(config, " ".join(words))
    else:
        query = func.to_tsquery(config, " & ".join(f"{w.lower()}:*" for w in words))
    return postgres_document().bool_op("@@")(query)


def _condition(session: Session, term: Term, zone: tzinfo) -> ColumnElement[bool]:
    value = term.value
    like = f"%{value.lower()}%"
    if term.field is None:
        condition = _fts(session, None, value, term.phrase)
    elif term.field == "from":
        condition = or_(col(m.MailMessage.from_address).like(like), col(m.MailMessage.from_name).ilike(like))
    elif term.field == "to":
        condition = or_(
            col(m.MailMessage.to_addresses).ilike(like), col(m.MailMessage.cc_addresses).ilike(like)
        )
    elif term.field == "subject":
        condition = col(m.MailMessage.subject).ilike(like)
    elif term.field == "has":
        condition = col(m.MailMessage.has_attachments).is_(True)
    elif term.field == "is":
        condition = {
            "unread": col(m.MailMessage.is_read).is_(False),
            "read": col(m.MailMessage.is_read).is_(True),
            "flagged": col(m.MailMessage.is_flagged).is_(True),
        }[value.lower()]
    elif term.field in ("before", "after"):
        start, _end = local_day_bounds(parse_date(value), zone)
        condition = (
            col(m.MailMessage.sent_at) < start
            if term.field == "before"
            else col(m.MailMessage.sent_at) >= start
        )
    elif term.field == "linked":
        ref = RecordRef.parse(value)
        condition = exists().where(
            col(m.MailLink.message_id) == col(m.MailMessage.id),
            col(m.MailLink.record_type) == ref.type.value,
            col(m.MailLink.record_id) == ref.id,
        )
    else:  # unlinked
        condition = ~exists().where(col(m.MailLink.message_id) == col(m.MailMessage.id))
    return not_(condition) if term.negated else condition


def search_condition(session: Session, query: str, zone: tzinfo) -> ColumnElement[bool] | None:
    groups = parse_query(query)
    if not groups:
        return None
    return and_(*(or_(*(_condition(session, term, zone) for term in group)) for group in groups))


def search_ids(
    session: Session, query: str, zone: tzinfo, *, limit: int | None = 200, offset: int = 0
) -> list[int]:
    """Ids of matching messages, newest first."""
    statement = select(col(m.MailMessage.id))
    condition = search_condition(session, query, zone)
    if condition is not None:
        statement = statement.where(condition)
    statement = statement.order_by(col(m.MailMessage.sent_at).desc(), col(m.MailMessage.id).desc()).offset(
        offset
    )
    if limit is not None:
        statement = statement.limit(limit)
    return list(session.scalars(statement))


@dataclass(frozen=True)
class MessageObject:
    """A message as ``mail list --json`` and ``search --json`` print it."""

    id: int
    from_: str
    to: list[str]
    cc: list[str]
    subject: str
    date: datetime | None
    flags: list[str]
    locations: list[dict[str, object]]
    links: list[dict[str, str]]
    has_body: bool
    problems: list[str]
    thread: int | None = None  # the conversation (``core.mail_threads``); mails of one thread share it
    automatic: bool = False  # a bounce, report or automatic reply

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "from": self.from_,
            "to": self.to,
            "cc": self.cc,
            "subject": self.subject,
            "date": self.date,
            "flags": self.flags,
            "locations": self.locations,
            "links": self.links,
            "has_body": self.has_body,
            "problems": self.problems,
            "thread": self.thread,
            "automatic": self.automatic,
        }


def message_objects(session: Session, ids: list[int]) -> list[MessageObject]:
    if not ids:
        return []
    rows = {
        row.id: row
        for row in session.execute(
            select(
                col(m.MailMessage.id),
                col(m.MailMessage.from_name),
                col(m.MailMessage.from_address),
                col(m.MailMessage.to_addresses),
                col(m.MailMessage.cc_addresses),
                col(m.MailMessage.subject),
                col(m.MailMessage.sent_at),
                col(m.MailMessage.is_read),
                col(m.MailMessage.is_flagged),
                col(m.MailMessage.has_body),
                col(m.MailMessage.parse_problems),
                col(m.MailMessage.thread_id),
                col(m.MailMessage.is_automatic),
            ).where(col(m.MailMessage.id).in_(ids))
        )
    }
    locations = {
        message_id: [
            {"account": c.account, "folder": c.folder, "uidvalidity": c.uidvalidity, "uid": c.uid}
            for c in copies
        ]
        for message_id, copies in copies_of_each(session, ids).items()
    }
    links: dict[int, list[dict[str, str]]] = {i: [] for i in ids}
    for message_id, record_type, record_id, reason in session.execute(
        select(
            col(m.MailLink.message_id),
            col(m.MailLink.record_type),
            col(m.MailLink.record_id),
            col(m.MailLink.reason),
        )
        .where(col(m.MailLink.message_id).in_(ids))
        .order_by(col(m.MailLink.id))
    ):
        links[message_id].append({"record": f"{record_type}:{record_id}", "how": reason})
    result = []
    for message_id in ids:
        row = rows.get(message_id)
        if row is None:
            continue
        flags = (["seen"] if row.is_read else ["unseen"]) + (["flagged"] if row.is_flagged else [])
        sender = f"{row.from_name} <{row.from_address}>" if row.from_name else row.from_address
        result.append(
            MessageObject(
                id=message_id,
                from_=sender,
                to=[a for a in row.to_addresses.splitlines() if a],
                cc=[a for a in row.cc_addresses.splitlines() if a],
                subject=row.subject,
                date=row.sent_at,
                flags=flags,
                locations=locations[message_id],
                links=links[message_id],
                has_body=row.has_body,
                problems=[p for p in (row.parse_problems or "").splitlines() if p],
                thread=row.thread_id if row.thread_id is not None else message_id,
                automatic=row.is_automatic,
            )
        )
    return result
