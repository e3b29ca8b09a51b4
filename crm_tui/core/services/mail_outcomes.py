"""What became of the mail we sent, after the server took it, and the sent-mail report.

The sync hands every message it stores to ``note_arrivals`` (in the transaction that stores it):

- mail coming back (a delivery report, RFC 3464, or a bounce quoting the mail it returns: ``MessageData
  .returned_ids``) that names a Message-ID we sent marks the recipients it says failed as bounced, with the
  diagnostic, on the outbox item (``OutboxRecipient.bounced_at``/``bounce_reason``) and on the mail's email
  activity (a line in its description);
- a message whose In-Reply-To or References names a Message-ID we sent, from one of that mail's recipients,
  marks that recipient as having replied (``replied_at``).

Each is marked once: a second copy of the same report, or a second reply, changes nothing.

``sent_mail_report`` counts, for one user (the owner of the mail accounts it went out from) and a period of
days in the user's zone, what was sent, failed, refused, bounced and replied, one row per recipient of a mail,
with the rows behind each number (``report_csv`` writes them)."""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path

from sqlalchemy import func, or_, select
from sqlmodel import Session, col

from crm_tui.core import models as m
from crm_tui.core.errors import CrmError, NotFound
from crm_tui.core.mail_data import MessageData
from crm_tui.core.private_files import open_private

KINDS = ("sent", "failed", "refused", "bounced", "replied")
KIND_MEANING = {
    "sent": "the server took the mail for this recipient (or the user counted it as sent)",
    "failed": "the mail never went out (the server refused it, or it could not be delivered)",
    "refused": "the server refused this recipient",
    "bounced": "a delivery report or a returned mail said it never arrived",
    "replied": "this recipient answered the mail",
}


@dataclass(frozen=True)
class Noted:
    """What ``note_arrivals`` marked: (outbox item id, address) pairs."""

    bounced: tuple[tuple[int, str], ...] = ()
    replied: tuple[tuple[int, str], ...] = ()


def _ids(values: Iterable[str | None]) -> set[str]:
    return {value.strip() for value in values if value and value.strip()}


def note_arrivals(session: Session, arrivals: Sequence[MessageData], *, now: datetime) -> Noted:
    """Mark bounces and replies of sent mail found in newly stored messages (see the module)."""
    wanted: set[str] = set()
    for data in arrivals:
        if data.returned_ids:
            wanted |= _ids(data.returned_ids)
        elif not data.automatic:
            wanted |= _ids([data.in_reply_to, *data.references])
    if not wanted:
        return Noted()
    items: dict[str, list[m.OutboxItem]] = {}
    ordered = sorted(wanted)
    for start in range(0, len(ordered), 500):
        for item in session.scalars(
            select(m.OutboxItem).where(
                col(m.OutboxItem.message_id_header).in_(ordered[start : start + 500]),
                col(m.OutboxItem.sent_at).is_not(None),
            )
        ):
            items.setdefault(item.message_id_header, []).append(item)
    if not items:
        return Noted()
    bounced: list[tuple[int, str]] = []
    replied: list[tuple[int, str]] = []
    for data in arrivals:
        when = _when(data, now)
        if data.returned_ids:
            for message_id in _ids(data.returned_ids):
                for item in items.get(message_id, []):
                    for address, reason in _bounced_recipients(item, data):
                        if _mark_bounced(session, item, address, reason, when, now):
                            bounced.append((_item_id(item), address))
        elif not data.automatic:
            sender = data.from_address.strip().lower()
            for message_id in _ids([data.in_reply_to, *data.references]):
                for item in items.get(message_id, []):
                    replier = _recipients(item).get(sender)
                    if replier is not None and _mark_replied(session, item, replier, when, now):
                        replied.append((_item_id(item), replier))
    session.flush()
    return Noted(tuple(bounced), tuple(replied))


def _item_id(item: m.OutboxItem) -> int:
    if item.id is None:  # a stored item always has one
        raise NotFound("an outbox item without an id")
    return item.id


def _when(data: MessageData, now: datetime) -> datetime:
    """When the bounce or reply happened: its Date, unless that is missing or later than now."""
    sent = data.sent_at
    if sent is None or sent.tzinfo is None or sent > now:
        return now
    return sent.astimezone(UTC)


def _recipients(item: m.OutboxItem) -> dict[str, str]:
    """The item's envelope recipients by lower-case address, as written on it."""
    return {line.strip().lower(): line.strip() for line in item.recipients.splitlines() if line.strip()}


def _bounced_recipients(item: m.OutboxItem, data: MessageData) -> list[tuple[str, str]]:
    """Whom of the item's recipients the returned mail says the mail never reached, with why. A report names
    them (``Final-Recipient``); a recipient it names under another address (an alias the mail was forwarded
    to) is the item's only recipient, if it has one. A bounce without a report: the recipients its text
    names (the line naming one is the reason), or the only recipient."""
    recipients = _recipients(item)
    found: dict[str, str] = {}
    if data.bounced:
        for address, reason in data.bounced:
            own = recipients.get(address.strip().lower())
            if own is not None:
                found.setdefault(own, reason)
        if not found and len(recipients) == 1:
            found[next(iter(recipients.values()))] = data.bounced[0][1]
        return list(found.items())
    text = data.body_text
    lowered = text.lower()
    for address, own in recipients.items():
        if address in lowered:
            found[own] = _line_naming(text, address) or _returned_reason(data)
    if not found and len(recipients) == 1:
        found[next(iter(recipients.values()))] = _returned_reason(data)
    return list(found.items())


def _line_naming(text: str, address: str) -> str | None:
    for line in text.splitlines():
        if address in line.lower():
            cleaned = " ".join(line.split())
            return cleaned[:400] if len(cleaned) > len(address) + 4 else None
    return None


def _returned_reason(data: MessageData) -> str:
    subject = " ".join(data.subject.split())
    return f"returned: {subject}"[:400] if subject else "returned to the sender"


def _row(session: Session, item: m.OutboxItem, address: str, now: datetime) -> m.OutboxRecipient:
    row = session.scalars(
        select(m.OutboxRecipient).where(
            col(m.OutboxRecipient.item_id) == item.id, col(m.OutboxRecipient.address) == address
        )
    ).first()
    if row is None:  # counted as sent by the user: the server took it, as the report shows
        row = m.OutboxRecipient(item_id=_item_id(item), address=address, state="accepted", at=now)
        session.add(row)
    return row


def _mark_bounced(
    session: Session, item: m.OutboxItem, address: str, reason: str, when: datetime, now: datetime
) -> bool:
    row = _row(session, item, address, now)
    if row.bounced_at is not None:
        return False
    row.bounced_at, row.bounce_reason = when, reason[:400]
    activity = session.scalars(
        select(m.Activity).where(col(m.Activity.outbox_item_id) == item.id).order_by(col(m.Activity.id))
    ).first()
    if activity is not None:
        note = f"Bounced {address}: {reason}"[:500]
        activity.description = f"{activity.description}\n{note}" if activity.description else note
        activity.updated_at = now
    return True


def _mark_replied(session: Session, item: m.OutboxItem, address: str, when: datetime, now: datetime) -> bool:
    row = _row(session, item, address, now)
    if row.replied_at is not None:
        return False
    row.replied_at = when
    return True


# --- the report ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportRow:
    """One recipient of one mail under one of the report's numbers."""

    kind: str  # one of KINDS
    at: datetime  # when it happened (sent, failed, bounced, replied), UTC
    recipient: str
    subject: str
    detail: str  # the server's reply, the report's diagnostic, the error
    item_id: int
    message_id: str


@dataclass(frozen=True)
class SentMailReport:
    user_email: str
    user_name: str
    start: date
    end: date
    rows: tuple[ReportRow, ...]

    def rows_of(self, kind: str) -> tuple[ReportRow, ...]:
        return tuple(row for row in self.rows if row.kind == kind)

    @property
    def counts(self) -> dict[str, int]:
        return {kind: len(self.rows_of(kind)) for kind in KINDS}

    def as_json(self) -> dict[str, object]:
        return {
            "user": self.user_email,
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "counts": self.counts,
            "rows": {
                kind: [
                    {
                        "at": row.at.isoformat(),
                        "recipient": row.recipient,
                        "subject": row.subject,
                        "detail": row.detail,
                        "outbox_item": row.item_id,
                        "message_id": row.message_id,
                    }
                    for row in self.rows_of(kind)
                ]
                for kind in KINDS
            },
        }


@dataclass(frozen=True)
class ReportUser:
    id: int
    name: str
    email: str


def report_users(session: Session) -> list[ReportUser]:
    """The users who can have sent mail (those with a mail account), by name."""
    query = (
        select(col(m.User.id), col(m.User.name), col(m.User.email))
        .where(col(m.User.id).in_(select(col(m.MailAccount.user_id))))
        .order_by(col(m.User.name), col(m.User.id))
    )
    return [ReportUser(user_id, name, email) for user_id, name, email in session.execute(query)]


def period_bounds(start: date, end: date, zone: tzinfo) -> tuple[datetime, datetime]:
    """The instants of a period of days in ``zone``: from ``start``'s midnight up to the end of ``end``."""
    if end < start:
        raise CrmError(f"the period ends ({end:%Y-%m-%d}) before it starts ({start:%Y-%m-%d})")
    first = datetime.combine(start, time(), tzinfo=zone).astimezone(UTC)
    after = datetime.combine(end + timedelta(days=1), time(), tzinfo=zone).astimezone(UTC)
    return first, after


def sent_mail_report(
    session: Session, *, user_email: str, start: date, end: date, zone: tzinfo
) -> SentMailReport:
    """What the user's mail of the period became, one row per recipient (see ``KINDS``). A mail belongs to the
    period by when it went out (sent), or was given up (failed); mail still waiting to go is in no number.

    sent: every recipient the server took it for (or the user counted as sent); refused: a recipient the
    server refused (of a mail that went out to the others, or that failed); failed: a recipient of a mail
    that failed otherwise; bounced and replied: of the sent ones."""
    user = session.scalars(
        select(m.User).where(func.lower(col(m.User.email)) == user_email.strip().lower())
    ).first()
    if user is None:
        raise NotFound(f"no user with the e-mail {user_email.strip()}")
    first, after = period_bounds(start, end, zone)
    query = (
        select(m.OutboxItem)
        .join(m.MailAccount, col(m.MailAccount.id) == col(m.OutboxItem.account_id))
        .where(
            col(m.MailAccount.user_id) == user.id,
            or_(
                (col(m.OutboxItem.sent_at) >= first) & (col(m.OutboxItem.sent_at) < after),
                col(m.OutboxItem.sent_at).is_(None)
                & (col(m.OutboxItem.state) == "failed")
                & (col(m.OutboxItem.created_at) >= first)
                & (col(m.OutboxItem.created_at) < after),
            ),
        )
        .order_by(col(m.OutboxItem.sent_at), col(m.OutboxItem.created_at), col(m.OutboxItem.id))
    )
    items = list(session.scalars(query))
    outcomes: dict[tuple[int, str], m.OutboxRecipient] = {}
    ids = [item.id for item in items]
    for start_at in range(0, len(ids), 500):
        for row in session.scalars(
            select(m.OutboxRecipient).where(
                col(m.OutboxRecipient.item_id).in_(ids[start_at : start_at + 500])
            )
        ):
            outcomes[(row.item_id, row.address.lower())] = row
    rows: list[ReportRow] = []
    for item in items:
        item_id = _item_id(item)
        subject = item.subject or "(no subject)"
        for address in _recipients(item).values():
            outcome = outcomes.get((item_id, address.lower()))
            found: list[tuple[str, datetime, str]] = []  # (kind, when, detail)
            if outcome is not None and outcome.state == "refused":
                found.append(("refused", outcome.at, outcome.reason or ""))
            elif item.sent_at is None:
                found.append(("failed", item.created_at, item.last_error or ""))
            else:
                accepted = outcome is not None and outcome.state == "accepted"
                found.append(("sent", item.sent_at, "" if accepted else "counted as sent"))
                if outcome is not None and outcome.bounced_at is not None:
                    found.append(("bounced", outcome.bounced_at, outcome.bounce_reason or ""))
                if outcome is not None and outcome.replied_at is not None:
                    found.append(("replied", outcome.replied_at, ""))
            rows.extend(
                ReportRow(kind, at, address, subject, detail, item_id, item.message_id_header)
                for kind, at, detail in found
            )
    rows.sort(key=lambda r: (KINDS.index(r.kind), r.at, r.item_id))  # stable: recipients in their order
    return SentMailReport(user.email, user.name, start, end, tuple(rows))


CSV_COLUMNS = ("outcome", "at", "recipient", "subject", "detail", "outbox_item", "message_id")
_FORMULA = re.compile(r"^[=+\-@\t\r]")


def _cell(text: str) -> str:
    """A cell a spreadsheet shows as text (a leading =, +, - or @ would make it a formula)."""
    return "'" + text if _FORMULA.match(text) else text


def report_csv(report: SentMailReport, zone: tzinfo, kinds: Sequence[str] = KINDS) -> str:
    """The rows behind the numbers (those of ``kinds``) as CSV with a header row; times in ``zone``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in report.rows:
        if row.kind not in kinds:
            continue
        writer.writerow(
            (
                row.kind,
                row.at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
                _cell(row.recipient),
                _cell(row.subject),
                _cell(row.detail),
                row.item_id,
                row.message_id,
            )
        )
    return out.getvalue()


def write_report_csv(report: SentMailReport, path: Path, zone: tzinfo) -> Path:
    """The report's rows as CSV in a new file readable by its owner only (0600). An existing file is left
    alone (the user names another); a folder that is missing or not writable is said in words."""
    target = path.expanduser()
    if target.is_dir():
        raise CrmError(f"{target} is a folder: type the name of the file to write")
    try:
        fd = open_private(target, exclusive=True)
    except FileExistsError:
        raise CrmError(f"{target} already exists: type another name") from None
    except OSError as exc:
        raise CrmError(f"cannot write {target}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            out.write(report_csv(report, zone))
    except OSError as exc:
        target.unlink(missing_ok=True)
        raise CrmError(f"cannot write {target}: {exc.strerror or exc}") from None
    return target
