"""Delivering the outbox over SMTP: yagmail makes the connection (SSL or STARTTLS, login), the message is the
one ``mail.compose`` built, sent with smtplib's own steps so we know how far it got.

Exactly once, as far as a client can: an item is marked ``sending`` (committed) before MAIL FROM; a refusal
before DATA (4xx: later again; 5xx: failed with the reason) or no connection leaves it queued; a cut during
DATA is uncertain, decided by the Sent folder. At the start of each delivery, items still ``sending`` (the
process was killed) are looked up in the account's Sent folder by Message-ID: there means sent, else
uncertain and shown to the user. After delivery a copy goes into the Sent folder, unless the provider files
sent mail itself (Gmail).

Each recipient's RCPT answer is kept: the server taking the mail for some and refusing others makes the item
partly sent, naming whom and why; it goes again only to the recipients the server has not accepted.

The Sent folder is the one the server marks ``\\Sent`` (RFC 6154), else one named so ("Sent", "Sent Items"...),
else a "Sent" made for the copy; or the folder chosen for the account, or none (``sent_copy``). Nothing about one item stops the queue: an error while settling or filing
one leaves that item for the user to decide (or sent, with "no copy saved" and why) and the rest go on.
"""

from __future__ import annotations

import contextlib
import logging
import re
import smtplib
import ssl
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from crm_tui.core import models as m
from crm_tui.core.clock import Clock
from crm_tui.core.db import Database
from crm_tui.core.errors import NotFound
from crm_tui.core.services import mail_accounts, mailbox, outbox
from crm_tui.mail.imap import MailConnectionError, connect, login_of, logout
from crm_tui.mail.imap_session import ImapSession

log = logging.getLogger(__name__)

PROVIDER_FILES_SENT = {"gmail"}  # these providers put what their SMTP sends into Sent themselves
TIMEOUT = 30.0


@dataclass
class FlushReport:
    sent: int = 0
    retry: int = 0
    failed: int = 0
    uncertain: int = 0
    recovered: int = 0
    partial: int = 0
    problems: list[str] = field(default_factory=list)
    waiting: outbox.Waiting = field(default_factory=outbox.Waiting)  # queued mail not due yet, after it
    now: datetime | None = None

    def summary(self, zone: Any = None) -> str:
        """How it went, in words; what waits for a later time says until when (in ``zone``, else UTC)."""
        parts = [f"{self.sent} sent"]
        for count, label in (
            (self.partial, "partly sent"),
            (self.retry, "to retry"),
            (self.failed, "failed"),
            (self.uncertain, "uncertain"),
        ):
            if count:
                parts.append(f"{count} {label}")
        if self.recovered:
            parts.append(f"{self.recovered} found in Sent after a cut-off send")
        text = ", ".join(parts)
        text += f"; {self.problems[0]}" if self.problems else ""
        waiting = self.waiting
        if waiting.retry:
            text += (
                f"; {_mails(waiting.retry)} {'waits' if waiting.retry == 1 else 'wait'} for the next try, the first "
                f"at {self._at(waiting.next_retry, zone)} (x in the outbox view or outbox flush --at-once "
                "tries at once)"
            )
            if waiting.reason and not self.problems:
                text += f"; the last try: {waiting.reason}"
        if waiting.held:
            text += (
                f"; {_mails(waiting.held)} {'is' if waiting.held == 1 else 'are'} in the send delay, going out "
                f"from {self._at(waiting.next_held, zone)}"
            )
        return text

    @property
    def held_back(self) -> bool:
        """Mail could not go out: a failure, an uncertain or partial send, or a try that waits for later."""
        return bool(self.failed or self.uncertain or self.retry or self.partial or self.problems)

    def _at(self, when: datetime | None, zone: Any) -> str:
        if when is None:
            return "soon"
        local = when.astimezone(zone) if zone is not None else when
        now = self.now.astimezone(zone) if self.now is not None and zone is not None else self.now
        same_day = now is not None and local.date() == now.date()
        return f"{local:%H:%M}" if same_day else f"{local:%d.%m.%Y %H:%M}"


def _mails(count: int) -> str:
    return "1 mail" if count == 1 else f"{count} mails"


def smtp_connection(account: m.MailAccount, password: str) -> Any:
    """A connected, logged-in smtplib connection through yagmail (login only where the server offers AUTH)."""
    import yagmail  # loaded when a mail goes out, not at start

    host = account.smtp_host or account.imap_host
    security = account.smtp_security or "ssl"
    port = account.smtp_port or (465 if security == "ssl" else 587)
    context = (
        ssl.create_default_context(cafile=account.ca_cert)
        if account.ca_cert
        else ssl.create_default_context()
    )
    options: dict[str, Any] = {"timeout": TIMEOUT}
    if security == "ssl":
        options["context"] = context
    client = yagmail.SMTP(
        user=account.username,
        password=password,
        host=host,
        port=port,
        smtp_ssl=security == "ssl",
        smtp_starttls={"context": context} if security == "starttls" else False,
        smtp_skip_login=True,
        soft_email_validation=False,
        **options,
    )
    try:
        client.login()
        smtp = client.smtp
        smtp.ehlo_or_helo_if_needed()
        if smtp.has_extn("auth"):
            smtp.login(account.username, password)
    except smtplib.SMTPAuthenticationError:
        raise MailConnectionError(
            f"{account.name}: the SMTP server refused the user name or password", "password"
        ) from None
    except (OSError, smtplib.SMTPException) as exc:
        raise MailConnectionError(
            f"{account.name}: cannot reach SMTP {host}:{port} ({exc})", "host"
        ) from None
    smtp.crm_tui_keeper = (
        client  # yagmail closes the connection when its object goes: keep it with the connection
    )
    return smtp


NEW_SENT = "Sent"  # made for the copies when the server has no Sent folder


def sent_folder_of(client: Any) -> str | None:
    r"""The server's Sent folder: marked ``\Sent`` (RFC 6154), else named as one; None when it has none."""
    named = None
    for flags, _delimiter, name in _folders_with_roles(client):
        flag_names = {(f.decode() if isinstance(f, bytes) else str(f)).lower() for f in flags}
        if "\\noselect" in flag_names or "\\nonexistent" in flag_names:
            continue
        if "\\sent" in flag_names:
            return str(name)
        if named is None and mailbox.folder_role(str(name), []) == "sent":
            named = str(name)
    return named


def _folders_with_roles(client: Any) -> list[Any]:
    """``list_folders()``, asking for the special-use flags where the server offers them (RFC 6154: some
    servers name them only when asked, with LIST ... RETURN (SPECIAL-USE))."""
    if b"SPECIAL-USE" in {c.upper() for c in client.capabilities()}:
        try:
            listing, _statuses = ImapSession(client).list_returning("SPECIAL-USE")
            return list(listing)
        except Exception:  # noqa: BLE001 - a server that says it can but cannot: the plain listing
            # (or imapclient's internals changed): the marked Sent folder may then go unseen, so say so
            log.warning(
                "LIST RETURN (SPECIAL-USE) failed; listing the plain way (a Sent folder marked only when "
                "asked will not be found)",
                exc_info=True,
            )
    return list(client.list_folders())


def copies_folder_of(account: m.MailAccount, client: Any) -> str | None:
    """Where the account keeps its sent copies: the folder chosen for it, else the server's Sent folder."""
    if account.sent_copy == "folder" and account.sent_copy_folder:
        return account.sent_copy_folder
    return sent_folder_of(client)


def _in_sent(account: m.MailAccount, password: str, message_id: str) -> bool | None:
    """Whether the mail is where the account's sent copies go (None: the server has no Sent folder)."""
    client = connect(login_of(account).endpoint, password)
    try:
        folder = copies_folder_of(account, client)
        if folder is None:
            return None
        client.select_folder(folder, readonly=True)
        return bool(client.search(["HEADER", "Message-ID", message_id]))
    finally:
        logout(client)


def _file_in_sent(account: m.MailAccount, password: str, raw: bytes) -> str:
    """Put the copy of a sent mail in the folder chosen for the account, else the Sent folder (made when there
    is none); the folder's name."""
    client = connect(login_of(account).endpoint, password)
    try:
        folder = copies_folder_of(account, client)
        if folder is None:
            folder = NEW_SENT
            try:
                client.create_folder(folder)
            except Exception as exc:  # noqa: BLE001 - the server's words go to the user
                raise CopyNotSaved(
                    f"the server has no Sent folder and did not let us make one: {_said(exc)}"
                ) from None
        try:
            client.append(folder, raw, flags=[b"\\Seen"])
        except Exception as exc:  # noqa: BLE001
            raise CopyNotSaved(f"{folder} did not take it: {_said(exc)}") from None
        return folder
    finally:
        logout(client)


class CopyNotSaved(Exception):
    pass


def _said(exc: BaseException) -> str:
    """An IMAP error in the server's own words, without imaplib's 'create failed: ' and the like."""
    text = " ".join(str(exc).split())
    text = re.sub(r"^(error: )?[a-z]+ failed: ", "", text)
    return f"the server said: {text}"[:300] if text else "no reason given"


def _what(exc: BaseException) -> str:
    """Any other error, in its own words (not its class name)."""
    return " ".join(str(exc).split())[:300] or "no reason given"


def flush(
    db: Database, *, clock: Clock, account_name: str | None = None, at_once: bool = False
) -> FlushReport:
    """Deliver what is due, per account; first settle items a cut-off delivery left ``sending``. ``at_once``
    (the user's "deliver now"): also what waits for its next try or the end of its send delay. The report
    says what still waits for a later time, and until when."""
    report = FlushReport()
    try:
        _flush(db, clock, account_name, at_once, report)
    finally:
        with contextlib.suppress(Exception), db.read() as session:
            account_id = None
            if account_name is not None:
                account_id = mail_accounts.get_account(session, account_name).id
            report.now = clock.now()
            report.waiting = outbox.waiting_later(session, now=report.now, account_id=account_id)
    return report


def _flush(db: Database, clock: Clock, account_name: str | None, at_once: bool, report: FlushReport) -> None:
    with db.read() as session:
        accounts = [
            a for a in mail_accounts.list_accounts(session) if account_name is None or a.name == account_name
        ]
        if account_name is not None and not accounts:
            raise NotFound(f"no account {account_name!r}")
    for account in accounts:
        with db.read() as session:
            stuck = outbox.cut_off(session, now=clock.now(), account_id=account.id)
            waiting = outbox.due(session, now=clock.now(), account_id=account.id, at_once=at_once)
        if not stuck and not waiting:
            continue
        try:
            password = login_of(account).password()
        except Exception as exc:  # noqa: BLE001 - a missing password is the user's to fix; the mail waits
            said = str(exc)  # the password's source names the account already ("account work: ...")
            report.problems.append(said if account.name in said else f"{account.name}: {said}")
            continue
        for item_id in stuck:
            _settle(db, account, password, item_id, clock, report)
        if waiting:
            _deliver(db, account, password, waiting, clock, report)


def _settle(
    db: Database,
    account: Any,
    password: str,
    item_id: int,
    clock: Clock,
    report: FlushReport,
) -> None:
    """An item a delivery left ``sending``: sent if its Message-ID is in Sent, else uncertain for the user.
    One that had gone out before (partly sent, sent again to the refused or put-off addresses) is uncertain
    at once: its first copy is in Sent whether or not the addresses it was sent again to got it.
    Never raises: an error leaves the item for the user to decide and the queue goes on."""
    try:
        with db.read() as session:
            item = session.get(m.OutboxItem, item_id)
            assert item is not None  # the queue's item (an error here leaves it, as any)
            message_id, sent_before = item.message_id_header, item.sent_at is not None
            again_to = outbox.pending_recipients(session, item_id) if sent_before else []
        if sent_before:
            reason = (
                f"sending it again to {', '.join(again_to) or 'the refused addresses'} was cut off; it went to "
                "the others before, so the Sent folder cannot tell whether they got it: send it again to "
                "them, or count it as sent"
            )
            with db.write() as session:
                if outbox.still_cut_off(session, item_id, now=clock.now()):
                    outbox.mark_uncertain(session, item_id, reason)
                    report.uncertain += 1
                    report.problems.append(f"outbox item {item_id}: {reason}")
            return
        try:
            found = _in_sent(account, password, message_id)
        except MailConnectionError as exc:
            # Still "sending" (its process is gone, so the user can decide it): checked again next time.
            report.problems.append(f"cannot check the Sent folder of {account.name}: {exc}")
            return
        except Exception as exc:  # noqa: BLE001 - any other answer of the server: the user decides
            reason = (
                "the send was cut off and the Sent folder could not be searched "
                f"({_said(exc)}): send it again, or count it as sent"
            )
            found = False
        else:
            if found:
                reason = ""
            elif found is None:
                reason = (
                    f"the send was cut off and {account.name} has no Sent folder to look in: "
                    "send it again, or count it as sent"
                )
            else:
                reason = (
                    "the send was cut off and the mail is not in Sent: send it again, or count it as sent"
                )
        with db.write() as session:
            if not outbox.still_cut_off(session, item_id, now=clock.now()):
                return  # settled by another flush, or its delivery was not over after all
            if found:
                outbox.mark_sent(session, item_id, now=clock.now())
                report.recovered += 1
            else:
                outbox.mark_uncertain(session, item_id, reason)
                report.uncertain += 1
                report.problems.append(f"outbox item {item_id}: {reason}")
    except Exception as exc:  # noqa: BLE001 - one item's fault never stops the queue
        log.exception("settling outbox item %s", item_id)
        report.problems.append(
            f"outbox item {item_id} could not be settled ({_what(exc)}): decide it yourself"
        )


@dataclass
class SendResult:
    outcome: str  # sent, retry (nothing delivered), failed (refused for good), uncertain (cut in DATA)
    reason: str = ""
    accepted: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (address, the server's reply)


def _deliver(
    db: Database,
    account: Any,
    password: str,
    waiting: list[int],
    clock: Clock,
    report: FlushReport,
) -> None:
    try:
        smtp = smtp_connection(account, password)
    except MailConnectionError as exc:
        with db.write() as session:
            for item_id in waiting:
                if outbox.mark_sending(session, item_id, now=clock.now()):
                    outbox.retry_later(session, item_id, str(exc), now=clock.now())
                    report.retry += 1
        report.problems.append(str(exc))
        return
    try:
        for item_id in waiting:
            try:
                with outbox.delivering(item_id):
                    going_on = _deliver_one(db, account, password, smtp, item_id, clock, report)
                if not going_on:
                    break  # the server is gone: the rest wait for the next delivery
            except Exception as exc:  # noqa: BLE001 - one item's fault never stops the queue
                log.exception("delivering outbox item %s", item_id)
                _leave_for_the_user(db, item_id, exc, report)
    finally:
        with contextlib.suppress(Exception):
            smtp.quit()
    # Items claimed by this run but not reached stay queued (a break above left them untouched).


def _leave_for_the_user(db: Database, item_id: int, exc: BaseException, report: FlushReport) -> None:
    """An unforeseen error with one item: uncertain (it may have gone out), for the user to decide."""
    reason = f"the delivery stopped on an error ({_what(exc)}): it may have gone out; send it again, or count it as sent"
    report.problems.append(f"outbox item {item_id}: {reason}")
    # The database itself may be what failed: then the item stays cut off, which the user can decide too.
    with contextlib.suppress(Exception), db.write() as session:
        item = session.get(m.OutboxItem, item_id)
        if item is not None and item.state == "sending":
            outbox.mark_uncertain(session, item_id, reason)
            report.uncertain += 1


def _deliver_one(
    db: Database, account: Any, password: str, smtp: Any, item_id: int, clock: Clock, report: FlushReport
) -> bool:
    """Send one item and record how it went; False when the connection is gone."""
    with db.write() as session:
        if not outbox.mark_sending(session, item_id, now=clock.now()):
            return True  # another delivery has it
        item = session.get(m.OutboxItem, item_id)
        assert item is not None  # mark_sending found it
        raw, sender, subject = bytes(item.raw), item.from_address, item.subject
        recipients = outbox.pending_recipients(session, item_id)
    result = _send_one(smtp, sender, recipients, raw)
    first = False
    with db.write() as session:
        if result.outcome == "sent":
            first = outbox.mark_sent(
                session, item_id, now=clock.now(), accepted=result.accepted, refused=result.refused
            )
            if result.refused:
                report.partial += 1
                refused = "; ".join(f"{a}: {r}" for a, r in result.refused)
                later = (
                    " (put off by the server: tried again by itself)"
                    if any(r.startswith("4") for _, r in result.refused)
                    else ""
                )
                report.problems.append(f"{subject or '(no subject)'}: not delivered to {refused}{later}")
            else:
                report.sent += 1
        elif result.outcome == "retry":
            report.problems.append(result.reason)
            outbox.retry_later(session, item_id, result.reason, now=clock.now())
            report.retry += 1
        elif result.outcome == "failed":
            report.problems.append(result.reason)
            outbox.mark_failed(session, item_id, result.reason, refused=result.refused, now=clock.now())
            report.failed += 1
        else:
            report.problems.append(result.reason)
            outbox.mark_uncertain(session, item_id, result.reason)
            report.uncertain += 1
    if first and _saves_a_copy(account):
        _copy_to_sent(db, account, password, item_id, raw, report)
    return not (result.outcome in ("retry", "uncertain") and result.reason.startswith("connection"))


def _saves_a_copy(account: m.MailAccount) -> bool:
    """Whether a copy of what the account sends is saved: not when the user said none, nor to the Sent folder
    of a provider that files sent mail itself (a folder chosen there gets it)."""
    if account.sent_copy == "none":
        return False
    return account.sent_copy == "folder" or account.preset not in PROVIDER_FILES_SENT


def _copy_to_sent(
    db: Database, account: Any, password: str, item_id: int, raw: bytes, report: FlushReport
) -> None:
    """The copy in Sent; when it cannot be saved the item says so (it stays sent) and the queue goes on."""
    try:
        _file_in_sent(account, password, raw)
        return
    except CopyNotSaved as exc:
        reason = str(exc)
    except MailConnectionError as exc:
        reason = str(exc)
    except Exception as exc:  # noqa: BLE001 - the copy is a courtesy: the mail is out
        log.exception("copying outbox item %s to Sent", item_id)
        reason = _what(exc)
    report.problems.append(f"sent, but {outbox.NO_COPY} ({reason})")
    with contextlib.suppress(Exception), db.write() as session:
        outbox.note_no_copy(session, item_id, reason)


def _send_one(smtp: Any, sender: str, recipients: list[str], raw: bytes) -> SendResult:
    """Sent (to ``accepted``; ``refused`` with the server's replies), retry (nothing delivered), failed
    (refused for good), uncertain (cut in DATA)."""
    accepted: list[str] = []
    refusals: list[tuple[int, bytes | str, str]] = []
    try:
        code, answer = smtp.mail(sender)
        if code >= 400:
            return SendResult(*_refused(code, answer, "sender"))
        for recipient in recipients:
            code, answer = smtp.rcpt(recipient)
            if code < 400:
                accepted.append(recipient)
            else:
                refusals.append((code, answer, recipient))
        if not accepted:
            smtp.rset()
            refused = [(address, _reply(code, answer)) for code, answer, address in refusals]
            if any(400 <= code < 500 for code, _, _ in refusals):
                code, answer, address = next(r for r in refusals if 400 <= r[0] < 500)
                return SendResult(*_refused(code, answer, address))
            code, answer, address = refusals[0]
            outcome, reason = _refused(code, answer, address)
            if len(refusals) > 1:
                reason = "the server refused every recipient: " + "; ".join(f"{a}: {r}" for a, r in refused)
            return SendResult(outcome, reason[:400], refused=refused)
    except (TimeoutError, smtplib.SMTPServerDisconnected, OSError) as exc:
        return SendResult("retry", f"connection lost before the mail was handed over ({exc})")
    try:
        code, answer = smtp.data(raw)
    except smtplib.SMTPDataError as exc:
        return SendResult(*_refused(exc.smtp_code, exc.smtp_error, "message"))
    except (TimeoutError, smtplib.SMTPServerDisconnected, OSError) as exc:
        return SendResult(
            "uncertain", f"connection lost while handing the mail over ({exc}): it may have gone out"
        )
    if code >= 400:
        return SendResult(*_refused(code, answer, "message"))
    refused = [(address, _reply(code, answer)) for code, answer, address in refusals]
    return SendResult("sent", "", accepted=accepted, refused=refused)


def _reply(code: int, answer: bytes | str) -> str:
    text = answer.decode("utf-8", "replace") if isinstance(answer, bytes) else str(answer)
    return f"{code} {' '.join(text.split())}"[:300]


def _refused(code: int, answer: bytes | str, what: str) -> tuple[str, str]:
    text = answer.decode("utf-8", "replace") if isinstance(answer, bytes) else str(answer)
    reason = f"the server refused the {what}: {code} {' '.join(text.split())}"[:400]
    return ("retry" if 400 <= code < 500 else "failed"), reason
