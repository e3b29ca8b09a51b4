"""Delivering the outbox over SMTP: yagmail makes the connection (SSL or STARTTLS, login), the message is the
one ``mail.compose`` built, sent with smtplib's own steps so we know how far it got.

Exactly once, as far as a client can: an item is marked ``sending`` (committed) before MAIL FROM; a refusal
before DATA (4xx: later again; 5xx: failed with the reason) or no connection leaves it queued; a cut during
DATA is uncertain, decided by the Sent folder. At the start of each delivery, items still ``sending`` (the
process was killed) are looked up in the account's Sent folder by Message-ID: there means sent, else
uncertain and shown to the user. After delivery a copy goes into the Sent folder, unless the provider files
sent mail itself (Gmail).
"""

from __future__ import annotations

import contextlib
import smtplib
import ssl
from dataclasses import dataclass, field
from typing import Any

from crm_tui.core import models as m
from crm_tui.core.clock import Clock
from crm_tui.core.db import Database
from crm_tui.core.errors import NotFound
from crm_tui.core.services import mail_accounts, mailbox, outbox
from crm_tui.mail.imap import MailConnectionError, connect, login_of, logout

PROVIDER_FILES_SENT = {"gmail"}  # these providers put what their SMTP sends into Sent themselves
TIMEOUT = 30.0


@dataclass
class FlushReport:
    sent: int = 0
    retry: int = 0
    failed: int = 0
    uncertain: int = 0
    recovered: int = 0
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{self.sent} sent"]
        for count, label in (
            (self.retry, "to retry"),
            (self.failed, "failed"),
            (self.uncertain, "uncertain"),
        ):
            if count:
                parts.append(f"{count} {label}")
        if self.recovered:
            parts.append(f"{self.recovered} found in Sent after a cut-off send")
        text = ", ".join(parts)
        return text + (f"; {self.problems[0]}" if self.problems else "")


def smtp_connection(account: m.MailAccount, password: str) -> Any:
    """A connected, logged-in smtplib connection through yagmail (login only where the server offers AUTH)."""
    import yagmail

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


def _in_sent(account: m.MailAccount, password: str, message_id: str, sent_folder: str) -> bool:
    client = connect(login_of(account).endpoint, password)
    try:
        client.select_folder(sent_folder, readonly=True)
        return bool(client.search(["HEADER", "Message-ID", message_id]))
    finally:
        logout(client)


def _file_in_sent(account: m.MailAccount, password: str, raw: bytes, sent_folder: str) -> None:
    client = connect(login_of(account).endpoint, password)
    try:
        if sent_folder not in {str(name) for _, _, name in client.list_folders()}:
            client.create_folder(sent_folder)
        client.append(sent_folder, raw, flags=[b"\\Seen"])
    finally:
        logout(client)


def _sent_folder(db: Database, account_id: int) -> str:
    with db.read() as session:
        folder = mailbox.folder_by_role(session, account_id, "sent")
        return folder.name if folder is not None else "Sent"


def flush(db: Database, *, clock: Clock, account_name: str | None = None) -> FlushReport:
    """Deliver what is due, per account; first settle items a cut-off delivery left ``sending``."""
    report = FlushReport()
    with db.read() as session:
        accounts = [
            a for a in mail_accounts.list_accounts(session) if account_name is None or a.name == account_name
        ]
        if account_name is not None and not accounts:
            raise NotFound(f"no account {account_name!r}")
    for account in accounts:
        with db.read() as session:
            stuck = outbox.cut_off(session, account_id=account.id)
            waiting = outbox.due(session, now=clock.now(), account_id=account.id)
        if not stuck and not waiting:
            continue
        try:
            password = login_of(account).password()
        except Exception as exc:  # noqa: BLE001 - a missing password is the user's to fix; the mail waits
            report.problems.append(f"{account.name}: {exc}")
            continue
        sent_folder = _sent_folder(db, account.id)  # type: ignore[arg-type]
        for item_id in stuck:
            _settle(db, account, password, item_id, sent_folder, clock, report)
        if waiting:
            _deliver(db, account, password, waiting, sent_folder, clock, report)
    return report


def _settle(
    db: Database,
    account: Any,
    password: str,
    item_id: int,
    sent_folder: str,
    clock: Clock,
    report: FlushReport,
) -> None:
    with db.read() as session:
        message_id = session.get(m.OutboxItem, item_id).message_id_header  # type: ignore[union-attr]
    try:
        found = _in_sent(account, password, message_id, sent_folder)
    except MailConnectionError as exc:
        report.problems.append(f"cannot check the Sent folder of {account.name}: {exc}")
        return  # still sending: checked again next time, never sent blindly
    with db.write() as session:
        if found:
            outbox.mark_sent(session, item_id, now=clock.now())
            report.recovered += 1
        else:
            outbox.mark_uncertain(
                session,
                item_id,
                "the send was cut off and the mail is not in Sent: send it again, or count it as sent",
            )
            report.uncertain += 1


def _deliver(
    db: Database,
    account: Any,
    password: str,
    waiting: list[int],
    sent_folder: str,
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
            with db.write() as session:
                if not outbox.mark_sending(session, item_id, now=clock.now()):
                    continue  # another delivery has it
                item = session.get(m.OutboxItem, item_id)
                raw, sender, recipients = bytes(item.raw), item.from_address, item.recipients.splitlines()  # type: ignore[union-attr]
            outcome, reason = _send_one(smtp, sender, recipients, raw)
            with db.write() as session:
                if outcome != "sent":
                    report.problems.append(reason)
                if outcome == "sent":
                    outbox.mark_sent(session, item_id, now=clock.now())
                    report.sent += 1
                elif outcome == "retry":
                    outbox.retry_later(session, item_id, reason, now=clock.now())
                    report.retry += 1
                elif outcome == "failed":
                    outbox.mark_failed(session, item_id, reason)
                    report.failed += 1
                else:
                    outbox.mark_uncertain(session, item_id, reason)
                    report.uncertain += 1
            if outcome == "sent" and account.preset not in PROVIDER_FILES_SENT:
                try:
                    _file_in_sent(account, password, raw, sent_folder)
                except MailConnectionError as exc:
                    report.problems.append(f"sent, but the copy for {sent_folder} failed: {exc}")
            if outcome in ("retry", "uncertain") and reason.startswith("connection"):
                break  # the server is gone: the rest wait for the next delivery
    finally:
        with contextlib.suppress(OSError, smtplib.SMTPException):
            smtp.quit()
    # Items claimed by this run but not reached stay queued (a break above left them untouched).


def _send_one(smtp: Any, sender: str, recipients: list[str], raw: bytes) -> tuple[str, str]:
    """(outcome, reason): sent, retry (nothing delivered), failed (refused for good), uncertain (cut in DATA)."""
    try:
        code, answer = smtp.mail(sender)
        if code >= 400:
            return _refused(code, answer, "sender")
        accepted = 0
        refusals = []
        for recipient in recipients:
            code, answer = smtp.rcpt(recipient)
            if code < 400:
                accepted += 1
            else:
                refusals.append((code, answer, recipient))
        if not accepted:
            smtp.rset()
            code, answer, recipient = refusals[0]
            return _refused(code, answer, recipient)
    except (TimeoutError, smtplib.SMTPServerDisconnected, OSError) as exc:
        return "retry", f"connection lost before the mail was handed over ({exc})"
    try:
        code, answer = smtp.data(raw)
    except smtplib.SMTPDataError as exc:
        return _refused(exc.smtp_code, exc.smtp_error, "message")
    except (TimeoutError, smtplib.SMTPServerDisconnected, OSError) as exc:
        return "uncertain", f"connection lost while handing the mail over ({exc}): it may have gone out"
    if code >= 400:
        return _refused(code, answer, "message")
    if refusals:
        return "sent", ""  # to the others; the refused addresses are reported by the server's bounce
    return "sent", ""


def _refused(code: int, answer: bytes | str, what: str) -> tuple[str, str]:
    text = answer.decode("utf-8", "replace") if isinstance(answer, bytes) else str(answer)
    reason = f"the server refused the {what}: {code} {' '.join(text.split())}"[:400]
    return ("retry" if 400 <= code < 500 else "failed"), reason
