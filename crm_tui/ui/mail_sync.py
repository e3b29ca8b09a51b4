"""The app's background mail sync: each account every refresh interval, in a thread worker, never on the UI.

The worker posts plain messages (account names, counts, one-line texts), never ORM objects. State per account
is what the status bar shows: "syncing 120/400", "12 new · 09:41", "offline, retrying in 2 min",
"wrong password".
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from textual.message import Message

TICK_SECONDS = 15.0  # how often the scheduler looks for accounts that are due
IDLE_RENEW_SECONDS = 25 * 60  # RFC 2177: re-issue IDLE before the server's 30-minute timeout
BACKOFF_MINUTES = (1, 2, 4, 8, 15)  # after network failures
PASSWORD_RETRY_MINUTES = 30  # a refused password is not retried sooner (providers lock accounts)


@dataclass
class MailSyncProgress(Message):
    account: str
    what: str
    done: int
    total: int


@dataclass
class MailSyncFinished(Message):
    account: str
    new: int
    summary: str
    error: str | None = None
    # For an error: host, port, timeout, certificate, tls, password, protocol, dropped, busy, disk, config,
    # internal.
    kind: str | None = None
    changed: bool = False  # anything the inbox shows changed (new mail, bodies, flags, removals)
    refresh_minutes: int = 5  # the account's interval, read in the worker


@dataclass
class MailAccountsListed(Message):
    names: list[str]


@dataclass
class MailIdleNews(Message):
    """The server said (IMAP IDLE) that the inbox changed: sync that account now."""

    account: str


@dataclass
class AccountState:
    next_at: float = 0.0  # time.monotonic() when due
    running: bool = False
    again: bool = False  # news arrived during a pass: run another right after it
    failures: int = 0
    text: str = ""
    asked: bool = False  # the user asked for this pass (ctrl+r): its outcome is said, whatever it is


@dataclass
class MailSyncScheduler:
    app: Any
    states: dict[str, AccountState] = field(default_factory=dict)
    clock: Any = time.monotonic
    idling: dict[str, Any] = field(default_factory=dict)  # account -> threading.Event that stops its IDLE
    idle_ready: set[str] = field(default_factory=set)  # accounts whose IDLE command is in place

    def tick(self) -> None:
        """Look (in a worker: no database work on the UI thread) for accounts that are due."""
        self.app.run_worker(
            self._list_accounts, thread=True, group="mail-tick", exclusive=True, exit_on_error=False
        )

    def _list_accounts(self) -> None:
        from crm_tui.core.services import mail_accounts

        try:
            with self.app.context.database().read() as session:
                names = [a.name for a in mail_accounts.list_accounts(session)]
        except Exception:  # noqa: BLE001 - a locked or broken database is reported by the screens
            return
        self.app.post_message(MailAccountsListed(names))

    def start_due(self, names: list[str]) -> None:
        """Start a sync for every account that is due (and not running); forget removed accounts."""
        now = self.clock()
        for name in list(self.states):
            if name not in names:
                del self.states[name]
        for name in names:
            state = self.states.setdefault(name, AccountState())
            if not state.running and now >= state.next_at:
                self.start(name)

    def start(self, name: str, *, asked: bool = False) -> None:
        state = self.states.setdefault(name, AccountState())
        state.asked = state.asked or asked
        if state.running:
            state.again = True
            return
        state.running = True
        state.text = "syncing…"
        self.app.run_worker(
            lambda: self._sync(name),
            thread=True,
            group=f"mail-sync-{name}",
            exit_on_error=False,
            name=f"sync {name}",
        )
        self.app.update_mail_status()

    def _sync(self, name: str) -> None:
        """In the worker thread: one pass; the outcome goes back as a message."""
        from crm_tui.core.errors import CrmError
        from crm_tui.core.services import mail_accounts
        from crm_tui.core.services.mailbox import SyncBusy
        from crm_tui.mail.imap import MailConnectionError
        from crm_tui.mail.sync import SyncDiskFull, sync_account

        def progress(what: str, done: int, total: int) -> None:
            self.app.post_message(MailSyncProgress(name, what, done, total))

        minutes = 5
        try:
            with self.app.context.database().read() as session:
                minutes = mail_accounts.get_account(session, name).refresh_minutes
            report = sync_account(
                self.app.context.database(), name, clock=self.app.context.clock, progress=progress
            )
        except MailConnectionError as exc:
            self.app.post_message(MailSyncFinished(name, 0, "", str(exc), exc.kind, refresh_minutes=minutes))
            return
        except SyncBusy as exc:
            self.app.post_message(MailSyncFinished(name, 0, "", str(exc), "busy", refresh_minutes=minutes))
            return
        except SyncDiskFull as exc:
            kept = exc.report  # what was saved before the disk filled up shows; the message says how much
            self.app.post_message(
                MailSyncFinished(
                    name,
                    kept.new,
                    "",
                    str(exc),
                    "disk",
                    changed=bool(kept.new or kept.bodies or kept.flag_changes or kept.removed),
                    refresh_minutes=minutes,
                )
            )
            return
        except CrmError as exc:
            self.app.post_message(MailSyncFinished(name, 0, "", str(exc), "config", refresh_minutes=minutes))
            return
        except Exception as exc:  # noqa: BLE001 - the state must never stay "syncing"; the log has details
            self._log(exc)
            self.app.post_message(
                MailSyncFinished(
                    name, 0, "", f"{type(exc).__name__}: {exc}", "internal", refresh_minutes=minutes
                )
            )
            return
        changed = bool(report.new or report.bodies or report.flag_changes or report.removed)
        self.app.post_message(
            MailSyncFinished(name, report.new, report.summary(), changed=changed, refresh_minutes=minutes)
        )

    def _log(self, exc: BaseException) -> None:
        from crm_tui.runtime.logs import log_error

        log_error(exc, "mail sync")

    # --- IMAP IDLE: new mail at once instead of at the next interval ---

    def start_idle(self, name: str) -> None:
        """After a good pass: watch the account's INBOX with IDLE (where the server offers it)."""
        import threading

        if name in self.idling:
            return
        stop = threading.Event()
        self.idling[name] = stop
        self.app.run_worker(
            lambda: self._idle(name, stop),
            thread=True,
            group=f"mail-idle-{name}",
            exit_on_error=False,
            name=f"idle {name}",
        )

    def stop_idle(self) -> None:
        for stop in self.idling.values():
            stop.set()
        self.idling.clear()

    def _idle(self, name: str, stop: Any) -> None:
        """In a worker thread: one connection in IDLE on INBOX; a change posts MailIdleNews. Any failure ends
        it quietly (the interval sync goes on, and the next good pass starts IDLE again)."""
        from crm_tui.core.services import mail_accounts, mailbox
        from crm_tui.mail.imap import connect_login, login_of, logout

        client = None
        try:
            with self.app.context.database().read() as session:
                a = mail_accounts.get_account(session, name)
                account_id, login = a.id, login_of(a)
            client = connect_login(login)
            if b"IDLE" not in {c.upper() for c in client.capabilities()}:
                return
            state = client.select_folder("INBOX", readonly=True)
            client.idle()
            renewed = time.monotonic()
            self.idle_ready.add(name)
            # Mail that came between the last pass and this IDLE: the server will not announce it again.
            with self.app.context.database().read() as session:
                inbox = mailbox.folder_by_role(session, account_id, "inbox")
                known = inbox.uidnext if inbox is not None else None
            if known is not None and state.get(b"UIDNEXT") not in (None, known):
                self.app.post_message(MailIdleNews(name))
            while not stop.is_set():
                responses = client.idle_check(timeout=1)
                if any(len(r) > 1 and r[1] in (b"EXISTS", b"EXPUNGE", b"FETCH") for r in responses):
                    self.app.post_message(MailIdleNews(name))
                if time.monotonic() - renewed > IDLE_RENEW_SECONDS:
                    client.idle_done()
                    client.idle()
                    renewed = time.monotonic()
            client.idle_done()
        except Exception:  # noqa: BLE001 - IDLE is a bonus; the interval sync carries on without it
            pass
        finally:
            if client is not None:
                logout(client)
            if self.idling.get(name) is stop:
                self.idling.pop(name, None)
                self.idle_ready.discard(name)

    def progress(self, message: MailSyncProgress) -> None:
        state = self.states.setdefault(message.account, AccountState())
        phase = "bodies" if message.what == "bodies" else "headers"
        state.text = f"syncing {phase} {message.done}/{message.total}"

    def finished(self, message: MailSyncFinished, *, refresh_minutes: int, wall_clock: str) -> None:
        state = self.states.setdefault(message.account, AccountState())
        state.running = False
        state.asked = False
        now = self.clock()
        if message.error is None:
            state.failures = 0
            state.next_at = now + refresh_minutes * 60
            state.text = (f"{message.new} new · " if message.new else "up to date · ") + wall_clock
            return
        state.failures += 1
        if message.kind == "password":
            state.next_at = now + PASSWORD_RETRY_MINUTES * 60
            state.text = "wrong password (crm-tui account edit)"
        elif message.kind in ("host", "port", "timeout", "dropped", "protocol"):
            minutes = BACKOFF_MINUTES[min(state.failures, len(BACKOFF_MINUTES)) - 1]
            state.next_at = now + minutes * 60
            state.text = f"offline, retrying in {minutes} min"
        elif message.kind == "disk":  # the notification says what was saved; the interval tries again
            state.next_at = now + refresh_minutes * 60
            state.text = "the disk is full (free some space)"
        elif message.kind == "demo":
            state.next_at = now + refresh_minutes * 60
            state.text = "not connected"
        elif message.kind == "busy":
            state.next_at = now + 60
            state.text = "another sync is running"
        else:
            state.next_at = now + refresh_minutes * 60
            state.text = "failed: " + message.error.split(": ", 1)[-1][:60]

    def status_text(self) -> str:
        from crm_tui.core.sanitize import terminal_safe

        parts = [f"{name}: {state.text}" for name, state in sorted(self.states.items()) if state.text]
        return terminal_safe(" · ".join(parts), max_length=120)
