"""The background work of an installation, headless: what ``crm-tui sync --watch`` runs until it is stopped,
and what the app runs as its child process (ui/supervisor.py).

- every mail account is synced on its refresh interval (and at once when asked: a ``sync [NAME]`` line on
  stdin, or IMAP IDLE news); a pass per account at a time, accounts side by side;
- IMAP IDLE per account after a good pass (RFC 2177: renewed before the server's 30-minute timeout);
- after a network failure the next try waits 1, 2, 4, 8, then 15 minutes; a refused password pauses the
  account for 30 minutes (providers lock accounts that retry);
- the outbox delivers what is due every minute (never in the demo: there the outbox holds);
- with ``automations`` (``sync --watch`` on its own; the app fires them itself, with its notifications), the
  automation actions that are due fire every 30 seconds.

What happens is told through ``emit`` as plain dictionaries (one JSON line each on stdout for the app):
``accounts`` (names), ``syncing`` (account, asked), ``progress`` (account, what, done, total), ``finished``
(account, new, summary, error, kind, changed, failures, retry_minutes, asked, again), ``idle`` (account,
ready), ``outbox`` (summary), ``automation`` (summary, failed: "rule on record: message" lines). The stored mail itself reaches the app through the database (its change watch).

The sync's helper processes and its process-wide settings (the collector, the switch interval, the allocator)
live in this process, never in the app's.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from crm_tui.runtime.context import AppContext
from crm_tui.runtime.logs import log_error

TICK_SECONDS = 15.0  # how often the loop looks for accounts that are due
OUTBOX_SECONDS = 60.0  # queued mail is tried this often
AUTOMATION_SECONDS = 30.0  # due automation actions are fired this often (with ``automations``)
IDLE_RENEW_SECONDS = 25 * 60  # RFC 2177: re-issue IDLE before the server's 30-minute timeout
BACKOFF_MINUTES = (1, 2, 4, 8, 15)  # after network failures
PASSWORD_RETRY_MINUTES = 30  # a refused password is not retried sooner (providers lock accounts)
NETWORK_KINDS = ("host", "port", "timeout", "dropped", "protocol")
STOP_GRACE_SECONDS = 10.0  # a pass under way gets this long to end when the loop stops
PARENT_ENV = "CRM_TUI_PARENT_PID"  # set by the app's supervisor: the loop ends when that process is gone

Emit = Callable[[dict[str, Any]], None]


class Stopped(BaseException):
    """The loop is stopping: a pass under way ends at its next progress report (a BaseException, like
    KeyboardInterrupt: no ``except Exception`` inside the sync takes it for a folder's failure)."""


@dataclass
class AccountState:
    next_at: float = 0.0  # time.monotonic() when due
    running: bool = False
    again: bool = False  # asked for (or IDLE news) during a pass: another one right after it
    asked: bool = False  # the user asked for this pass: the app says its outcome, whatever it is
    failures: int = 0


@dataclass
class Outcome:
    """One pass's end, as the loop schedules it and the app shows it."""

    new: int = 0
    summary: str = ""
    error: str | None = None
    # For an error: host, port, timeout, certificate, tls, password, protocol, dropped, busy, disk, config,
    # demo, internal.
    kind: str | None = None
    changed: bool = False  # anything the inbox shows changed (new mail, bodies, flags, removals)
    refresh_minutes: int = 5


def next_delay_minutes(outcome: Outcome, failures: int) -> float:
    """When the account is due again after ``outcome`` (``failures``: in a row, this one included)."""
    if outcome.error is None or outcome.kind in ("disk", "demo", "config", "internal", None):
        return outcome.refresh_minutes
    if outcome.kind == "password":
        return PASSWORD_RETRY_MINUTES
    if outcome.kind in NETWORK_KINDS:
        return BACKOFF_MINUTES[min(failures, len(BACKOFF_MINUTES)) - 1]
    if outcome.kind == "busy":
        return 1
    return outcome.refresh_minutes


def sync_once(context: AppContext, name: str, progress: Callable[[str, int, int], None]) -> Outcome:
    """One pass of one account; every failure becomes an Outcome (never an exception, but Stopped)."""
    # Imported here, like every sync and transport module below: the app imports this module (PARENT_ENV)
    # and must not load the sync.
    from crm_tui.core.errors import CrmError
    from crm_tui.core.services import mail_accounts
    from crm_tui.core.services.mailbox import SyncBusy
    from crm_tui.mail.imap import MailConnectionError
    from crm_tui.mail.sync import SyncDiskFull, sync_account

    minutes = 5
    try:
        with context.database().read() as session:
            minutes = mail_accounts.get_account(session, name).refresh_minutes
        report = sync_account(context.database(), name, clock=context.clock, progress=progress)
    except Stopped:
        raise
    except MailConnectionError as exc:
        return Outcome(error=str(exc), kind=exc.kind, refresh_minutes=minutes)
    except SyncBusy as exc:
        return Outcome(error=str(exc), kind="busy", refresh_minutes=minutes)
    except SyncDiskFull as exc:
        kept = exc.report  # what was saved before the disk filled up shows; the message says how much
        changed = bool(kept.new or kept.bodies or kept.flag_changes or kept.removed)
        return Outcome(kept.new, "", str(exc), "disk", changed, minutes)
    except CrmError as exc:
        return Outcome(error=str(exc), kind="config", refresh_minutes=minutes)
    except Exception as exc:  # noqa: BLE001 - the state must never stay "syncing"; the log has details
        log_error(exc, "mail sync")
        return Outcome(error=f"{type(exc).__name__}: {exc}", kind="internal", refresh_minutes=minutes)
    changed = bool(report.new or report.bodies or report.flag_changes or report.removed)
    return Outcome(report.new, report.summary(), changed=changed, refresh_minutes=minutes)


class BackgroundWork:
    """The loop: ``run`` until ``stop()`` (a signal, the parent gone, the end of stdin)."""

    def __init__(
        self,
        context: AppContext,
        emit: Emit,
        *,
        automations: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.context = context
        self.emit = emit
        self.automations = automations
        self.clock = clock
        self.states: dict[str, AccountState] = {}
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.stopping = threading.Event()
        self.passes: dict[str, threading.Thread] = {}
        self.idling: dict[str, threading.Thread] = {}
        self._outbox: threading.Thread | None = None
        self._outbox_at = 0.0
        self._automation: threading.Thread | None = None
        self._automation_at = 0.0 if automations else float("inf")

    # --- from other threads (signal handlers, the stdin reader, the parent watch) ---

    def stop(self) -> None:
        self.stopping.set()
        self.events.put(("stop", None))

    def sync_now(self, name: str | None = None) -> None:
        """A pass of ``name`` (every account if None) at once, said as asked for."""
        self.events.put(("asked", name))

    # --- the loop ---

    def run(self) -> None:
        next_tick = 0.0
        try:
            while not self.stopping.is_set():
                now = self.clock()
                if now >= next_tick:
                    self._tick()
                    next_tick = self.clock() + TICK_SECONDS
                if now >= self._outbox_at:
                    self._flush_outbox()
                    self._outbox_at = self.clock() + OUTBOX_SECONDS
                if now >= self._automation_at:
                    self._fire_automations()
                    self._automation_at = self.clock() + AUTOMATION_SECONDS
                wait = max(0.05, min(next_tick, self._outbox_at, self._automation_at) - self.clock())
                try:
                    event, value = self.events.get(timeout=wait)
                except queue.Empty:
                    continue
                self._handle(event, value)
        finally:
            self._wind_down()

    def _handle(self, event: str, value: Any) -> None:
        if event == "asked":
            names = [value] if value else self._account_names()
            if names is None:
                return
            for name in names:
                self._start(name, asked=True)
        elif event == "news":
            self._start(value)
        elif event == "finished":
            name, outcome = value
            self._finished(name, outcome)

    def _account_names(self) -> list[str] | None:
        from crm_tui.core.services import mail_accounts  # (the app must not load it: see sync_once)

        try:
            with self.context.database().read() as session:
                return [a.name for a in mail_accounts.list_accounts(session)]
        except Exception as exc:  # noqa: BLE001 - a locked or broken database: the next tick tries again
            log_error(exc, "background: listing the mail accounts")
            return None

    def _tick(self) -> None:
        """Start a pass for every account that is due; forget removed accounts (and end their IDLE)."""
        names = self._account_names()
        if names is None:
            return
        self.emit({"type": "accounts", "names": names})
        for name in list(self.states):
            if name not in names:
                del self.states[name]
        now = self.clock()
        for name in names:
            state = self.states.setdefault(name, AccountState())
            if not state.running and now >= state.next_at:
                self._start(name)

    def _start(self, name: str, *, asked: bool = False) -> None:
        if self.stopping.is_set():
            return
        state = self.states.setdefault(name, AccountState())
        state.asked = state.asked or asked
        if state.running:
            state.again = True
            return
        state.running = True
        self.emit({"type": "syncing", "account": name, "asked": state.asked})
        thread = threading.Thread(target=self._pass, args=(name,), name=f"crm-tui sync {name}", daemon=True)
        self.passes[name] = thread
        thread.start()

    def _pass(self, name: str) -> None:
        """In the account's thread: one pass; its outcome goes back to the loop."""

        def progress(what: str, done: int, total: int) -> None:
            if self.stopping.is_set():
                raise Stopped()
            self.emit({"type": "progress", "account": name, "what": what, "done": done, "total": total})

        try:
            outcome = sync_once(self.context, name, progress)
        except Stopped:
            return
        self.events.put(("finished", (name, outcome)))

    def _finished(self, name: str, outcome: Outcome) -> None:
        state = self.states.setdefault(name, AccountState())
        state.running = False
        state.failures = 0 if outcome.error is None else state.failures + 1
        delay = next_delay_minutes(outcome, state.failures)
        state.next_at = self.clock() + delay * 60
        again = state.again and not self.stopping.is_set()
        self.emit(
            {
                "type": "finished",
                "account": name,
                "new": outcome.new,
                "summary": outcome.summary,
                "error": outcome.error,
                "kind": outcome.kind,
                "changed": outcome.changed,
                "failures": state.failures,
                "retry_minutes": delay,
                "asked": state.asked,
                "again": again,
            }
        )
        state.asked = False
        state.again = False
        if outcome.error is None:
            self._start_idle(name)
        if again:
            self._start(name)

    # --- IMAP IDLE: new mail at once instead of at the next interval ---

    def _start_idle(self, name: str) -> None:
        thread = self.idling.get(name)
        if (thread is not None and thread.is_alive()) or self.stopping.is_set():
            return
        thread = threading.Thread(target=self._idle, args=(name,), name=f"crm-tui idle {name}", daemon=True)
        self.idling[name] = thread
        thread.start()

    def _idle(self, name: str) -> None:
        """One connection in IDLE on the account's INBOX; a change asks for a pass. Any failure ends it quietly
        (the interval sync goes on, and the next good pass starts IDLE again)."""
        # (The app must not load these: see sync_once.)
        from crm_tui.core.services import mail_accounts, mailbox
        from crm_tui.core.types import stored_id
        from crm_tui.mail.imap import connect_login, login_of, logout

        client = None
        ready = False
        try:
            with self.context.database().read() as session:
                account = mail_accounts.get_account(session, name)
                account_id, login = stored_id(account.id), login_of(account)
            client = connect_login(login)
            if b"IDLE" not in {c.upper() for c in client.capabilities()}:
                return
            selected = client.select_folder("INBOX", readonly=True)
            client.idle()
            renewed = time.monotonic()
            ready = True
            self.emit({"type": "idle", "account": name, "ready": True})
            # Mail that came between the last pass and this IDLE: the server will not announce it again.
            with self.context.database().read() as session:
                inbox = mailbox.folder_by_role(session, account_id, "inbox")
                known = inbox.uidnext if inbox is not None else None
            if known is not None and selected.get(b"UIDNEXT") not in (None, known):
                self.events.put(("news", name))
            while not self.stopping.is_set() and name in self.states:
                responses = client.idle_check(timeout=1)
                if any(len(r) > 1 and r[1] in (b"EXISTS", b"EXPUNGE", b"FETCH") for r in responses):
                    self.events.put(("news", name))
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
            if ready:
                self.emit({"type": "idle", "account": name, "ready": False})

    # --- the outbox ---

    def _flush_outbox(self) -> None:
        if self.context.demo or (self._outbox is not None and self._outbox.is_alive()):
            return
        self._outbox = threading.Thread(target=self._deliver, name="crm-tui outbox", daemon=True)
        self._outbox.start()

    def _deliver(self) -> None:
        from crm_tui.core.services import outbox  # (the app must not load them: see sync_once)
        from crm_tui.mail.outbox import flush

        try:
            database = self.context.database()
            with database.read() as session:
                now = self.context.clock.now()
                waiting = outbox.due(session, now=now) or outbox.cut_off(session, now=now)
            if not waiting:
                return
            report = flush(database, clock=self.context.clock)
        except Exception as exc:  # noqa: BLE001 - the next minute tries again; the log has details
            log_error(exc, "background: outbox delivery")
            return
        self.emit({"type": "outbox", "summary": f"outbox: {report.summary(self.context.zone)}"})

    # --- automation ---

    def _fire_automations(self) -> None:
        if self._automation is not None and self._automation.is_alive():
            return
        self._automation = threading.Thread(target=self._fire, name="crm-tui automation", daemon=True)
        self._automation.start()

    def _fire(self) -> None:
        # (Imported here: the automation engine and its mail builder load only where automation runs.)
        from crm_tui.runtime.automation import run_due

        try:
            report = run_due(self.context)
        except Exception as exc:  # noqa: BLE001 - the next round tries again; the log has details
            log_error(exc, "background: automation")
            return
        if not report.items:
            return
        failed = [f"{i.rule} on {i.record}: {i.message}" for i in report.items if i.outcome == "failed"]
        self.emit({"type": "automation", "summary": f"automation: {report.summary()}", "failed": failed})
        if any(item.action in ("send_email", "report") for item in report.items):
            self._flush_outbox()  # what the rules queued goes out now

    # --- the end ---

    def _wind_down(self) -> None:
        """IDLE connections end within a second (they look every second); a pass under way ends at its next
        progress report, or is left to the process's end after STOP_GRACE_SECONDS (its helpers watch it)."""
        self.stopping.set()
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for thread in [*self.idling.values(), *self.passes.values(), self._outbox, self._automation]:
            if thread is not None:
                thread.join(max(0.0, deadline - time.monotonic()))


def watch_parent(parent: int, work: BackgroundWork) -> None:
    """End the loop when the process that started this one is gone (the app killed with SIGKILL cannot say)."""

    def look() -> None:
        while not work.stopping.is_set():
            if os.getppid() != parent:
                work.stop()
                return
            time.sleep(0.5)

    threading.Thread(target=look, name="crm-tui parent watch", daemon=True).start()


def read_commands(stream: Any, work: BackgroundWork, *, stop_at_end: bool) -> None:
    """Lines on ``stream`` (the app's pipe): ``sync`` (every account) or ``sync NAME`` syncs now, ``stop``
    stops; the end of the stream stops the loop when ``stop_at_end`` (the app closed its end)."""

    def read() -> None:
        with contextlib.suppress(OSError, ValueError):
            for line in stream:
                words = line.split(maxsplit=1)
                if words and words[0] == "sync":
                    work.sync_now(words[1].strip() if len(words) > 1 else None)
                elif words and words[0] == "stop":
                    break
        if stop_at_end:
            work.stop()

    threading.Thread(target=read, name="crm-tui commands", daemon=True).start()
