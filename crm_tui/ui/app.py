"""CrmApp: the Textual application. One mode per area; data work in thread workers; errors as notifications."""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime
from functools import partial
from typing import Any

from rich.text import Text
from textual import events, on
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Input, TextArea
from textual.worker import Worker, WorkerState

from crm_tui.core.assets import assets_dir
from crm_tui.core.db import ChangeWatch
from crm_tui.core.errors import CrmError
from crm_tui.core.sanitize import terminal_safe
from crm_tui.core.services import mail_accounts, outbox
from crm_tui.core.services.activities import reminders_due
from crm_tui.core.services.configuration import current_user_name
from crm_tui.runtime.automation import run_due
from crm_tui.runtime.context import AppContext
from crm_tui.runtime.logs import log_error, open_log
from crm_tui.ui.collector import Collector
from crm_tui.ui.messages import BackgroundEvent, BackgroundStopped, MailAccountsListed
from crm_tui.ui.screens.calendar import CalendarScreen
from crm_tui.ui.screens.compose import take_back_queued
from crm_tui.ui.screens.contacts import ContactsScreen
from crm_tui.ui.screens.deal import pick_and_open_deal
from crm_tui.ui.screens.inbox import InboxScreen
from crm_tui.ui.screens.mail_report import SentReportScreen
from crm_tui.ui.screens.opportunities import OpportunitiesScreen
from crm_tui.ui.screens.settings import SettingsScreen
from crm_tui.ui.screens.typeahead import MAX_REDELIVERIES, typed_again
from crm_tui.ui.supervisor import Supervisor
from crm_tui.ui.sync_status import TICK_SECONDS, MailSyncStatus
from crm_tui.ui.widgets.guard import ReportsErrors
from crm_tui.ui.widgets.option_list import page_drop_downs_when_laid_out
from crm_tui.ui.widgets.status_bar import StatusBar
from crm_tui.ui.widgets.table_widths import redraw_tables_when_measured
from crm_tui.ui.widgets.typing_order import keep_typing_in_order

MODE_TITLES = {
    "inbox": "Inbox",
    "contacts": "Contacts",
    "opportunities": "Opportunities",
    "calendar": "Calendar",
    "settings": "Settings",
}
ERROR_SHOWN = 10  # seconds an error notification shows; the same error within them is not shown again
CHANGE_CHECK_SECONDS = 2.0  # how often the app looks whether another crm-tui (or a headless command) wrote
AUTOMATION_SECONDS = 30  # due automation actions are fired this often (and at once after a stage move)
REMINDER_INTERVAL = 30.0
BUSY_MARK_DELAY = 0.3  # seconds a worker runs before the status bar says "working"


class CrmApp(ReportsErrors, App[None]):
    TITLE = "crm-tui"
    MODES = {
        "inbox": InboxScreen,
        "contacts": ContactsScreen,
        "opportunities": OpportunitiesScreen,
        "calendar": CalendarScreen,
        "settings": SettingsScreen,
    }
    BINDINGS = [
        Binding("1", "go('inbox')", "Inbox", show=False, id="app.inbox"),
        Binding("2", "go('contacts')", "Contacts", show=False, id="app.contacts"),
        Binding("3", "go('opportunities')", "Deals", show=False, id="app.opportunities"),
        Binding("4", "go('calendar')", "Calendar", show=False, id="app.calendar"),
        Binding("5", "go('settings')", "Settings", show=False, id="app.settings"),
        Binding("ctrl+q", "quit", "Quit", id="app.quit"),
        Binding("question_mark", "show_keys", "Keys", id="app.keys"),
        Binding("ctrl+r", "sync_mail", "Sync mail now", show=False, id="app.sync_mail"),
        # The mail just queued (from a record, the inbox, anywhere): a draft again until it goes out.
        Binding("u", "take_back", "Take back the mail", show=False, id="app.take_back"),
    ]
    # How often the app looks for changes made elsewhere; tests set it short instead of waiting seconds.
    change_check_seconds: float = CHANGE_CHECK_SECONDS

    def __init__(
        self,
        context: AppContext,
        *,
        start_mode: str = "contacts",
        manage_gc: bool = False,
        sync_mail: bool = True,
        run_automations: bool = True,
        **kwargs: Any,
    ):
        # Fixes of Textual's own widgets, for every field, drop-down and table of the app.
        keep_typing_in_order()
        page_drop_downs_when_laid_out()
        redraw_tables_when_measured()
        super().__init__(css_path=str(assets_dir() / "styles" / "app.tcss"), **kwargs)
        self.context = context
        self.start_mode = start_mode
        self.user_name: str | None = None
        self._reminders_checked: datetime | None = None
        self._busy_shown = False
        self._busy_timer: Any = None
        self._status_activity: dict[str, str] = {}  # what each mode's screen last reported
        # Garbage collection is the process's; the app takes it over only when it owns the process (run_app).
        self.manage_gc = manage_gc
        self.collector = Collector()
        self.sync_mail = sync_mail
        self.run_automations = run_automations
        self._change_watch: Any = None  # core.db.ChangeWatch, made on the first look
        self._change_look_running = False
        self._automation_started = False
        # Mail sync, IMAP IDLE and the outbox's timer run in a background process the app supervises
        # (``sync_mail``); the app shows what it reports.
        self.mail_sync = MailSyncStatus()
        self.background = Supervisor(self, context)
        self._reported: tuple[str, float] | None = None  # the last error shown, against repeats
        self.just_queued: Any = None  # the mail queued last (screens.compose.Queued): u takes it back
        if context.settings.keymap:
            self.set_keymap(dict(context.settings.keymap))

    def on_mount(self) -> None:
        open_log(self.context.paths)
        self.refresh_me()
        self.switch_mode(self.start_mode)
        self._reminders_checked = self.context.clock.now()
        if self.manage_gc:
            self.set_timer(1.0, lambda: self.collector.take_over(self))
        self.set_interval(REMINDER_INTERVAL, self.check_reminders)
        self.set_interval(self.change_check_seconds, self.check_for_changes)
        if self.sync_mail:
            self.set_timer(1.0, self.look_for_accounts)
            self.set_interval(TICK_SECONDS, self.look_for_accounts)
        if self.run_automations:
            # At start: what came due while the app was closed (the laptop was off) is caught up, and said.
            self.set_timer(0.5, lambda: self.fire_automations(startup=True))
            self.set_interval(AUTOMATION_SECONDS, self.fire_automations)

    # --- changes made elsewhere ---

    def check_for_changes(self) -> None:
        """Another crm-tui on the same database (or a headless command, a sync, a rule) committed: the screen
        in front shows the data again. SQLite tells by its data_version, PostgreSQL by the notices its triggers
        send at commit (core.db.ChangeWatch): either way well under a millisecond a look."""
        if self._change_watch is None:
            self._change_watch = ChangeWatch(self.context.database())
        if self._change_watch.db.is_sqlite:
            if self._change_watch.changed():
                self._show_changes()
        elif not self._change_look_running:
            # A round trip to a server (and a reconnect when it was away): never on the UI thread.
            self._change_look_running = True
            self.run_worker(self._look_for_changes, thread=True, group="changes", exit_on_error=False)

    def _look_for_changes(self) -> None:
        try:
            if self._change_watch.changed():
                self.call_from_thread(self._show_changes)
        finally:
            self._change_look_running = False

    def _show_changes(self) -> None:
        refresh = getattr(self.screen, "refresh_data", None)
        if refresh is not None:
            refresh()

    # --- automation ---

    def fire_automations(self, then: Any = None, *, startup: bool = False) -> None:
        """Fire the automation actions due now, in a worker; ``then`` runs on the UI thread afterwards."""
        self.run_worker(
            partial(self._fire_automations, then, startup),
            thread=True,
            group="automation",
            exit_on_error=False,
        )

    def _fire_automations(self, then: Any, startup: bool) -> None:
        try:
            report = run_due(self.context)
        finally:
            if then is not None:
                self.call_from_thread(then)
        if report.items:
            self.call_from_thread(self._automations_fired, report, startup)
            if any(item.action in ("send_email", "report") for item in report.items):
                self.call_from_thread(self.flush_outbox)

    def _automations_fired(self, report: Any, startup: bool) -> None:
        late = report.late
        failed = [i for i in report.items if i.outcome == "failed"]
        if late:
            skipped = sum(1 for i in late if i.outcome == "skipped")
            fired = sum(1 for i in late if i.outcome == "done")
            self.notify(
                f"{fired} action{'s' if fired != 1 else ''} fired late, {skipped} skipped as too late "
                "(details: Automation log).",
                title="Caught up after a break",
                timeout=15,
            )
        else:
            self.notify(f"Automation: {report.summary()}", timeout=6)
        for item in failed[:3]:
            self.notify(
                terminal_safe(f"{item.rule} on {item.record}: {item.message}", max_length=200),
                title="Automation failed",
                severity="error",
                timeout=12,
            )
        self.update_status(f"automation: {report.summary()}")

    def action_automation(self, view: str = "rules") -> None:
        from crm_tui.ui.screens.automation import AutomationScreen  # opened on demand: not loaded at start

        self.push_screen(AutomationScreen(view))

    def action_open_deal(self) -> None:
        """The palette's "Open deal...": a picker over the deals, then the deal's screen."""
        pick_and_open_deal(self)

    # --- the outbox ---

    def action_sent_report(self) -> None:
        """The palette's "Sent-mail report" (r in the outbox)."""
        self.push_screen(SentReportScreen())

    def action_take_back(self) -> None:
        """u where it means nothing else: the mail queued last is a draft again (screens.compose)."""
        if not take_back_queued(self):
            self.update_status("no mail to take back (u takes back the mail just queued)")

    def flush_outbox(self) -> None:
        """Deliver what is due in the outbox, in a worker (never in demo mode: there the outbox holds)."""
        if self.context.demo:
            return
        self.run_worker(self._flush_outbox, thread=True, exclusive=True, group="outbox", exit_on_error=False)

    def _flush_outbox(self) -> None:
        # The delivery code (smtplib, the IMAP copy to Sent) loads on the first delivery, not at start.
        from crm_tui.mail.outbox import flush

        database = self.context.database()
        with database.read() as session:
            now = self.context.clock.now()
            waiting = outbox.due(session, now=now) or outbox.cut_off(session, now=now)
        if not waiting:
            return
        report = flush(database, clock=self.context.clock)
        self.call_from_thread(self._outbox_flushed, f"outbox: {report.summary(self.context.zone)}")

    def _outbox_flushed(self, summary: str) -> None:
        """A delivery is over: the status bar says how it went; the screen shows what changed."""
        self.update_status(summary)
        self._show_changes()

    # --- background mail sync (in the background process: ui/supervisor.py, runtime/background.py) ---

    def look_for_accounts(self) -> None:
        """In a worker (no database work on the UI thread): are there accounts, and so work for the background
        process? It starts with the first account and then runs as long as the app."""
        self.run_worker(
            self._list_accounts, thread=True, group="mail-tick", exclusive=True, exit_on_error=False
        )

    def _list_accounts(self) -> None:
        try:
            with self.context.database().read() as session:
                names = mail_accounts.account_names(session)
        except Exception:  # noqa: BLE001 - a locked or broken database is reported by the screens
            return
        self.post_message(MailAccountsListed(names))

    @on(MailAccountsListed)
    def _mail_accounts_listed(self, message: MailAccountsListed) -> None:
        self.mail_sync.accounts(message.names)
        if message.names and self.sync_mail:
            self.background.start()
        self.update_mail_status()

    def action_sync_mail(self) -> None:
        """Sync every account now (in the background process; the status bar follows it)."""
        with self.context.database().read() as session:
            names = mail_accounts.account_names(session)
        if not names:
            self.notify(
                "No mail account yet: add one in Settings > Mail accounts (5, then n), "
                "or with 'crm-tui account add NAME --preset ...'.",
                severity="warning",
            )
            return
        self.mail_sync.asked(names)
        self.background.sync_now()
        self.update_mail_status()

    @on(BackgroundEvent)
    def _background_event(self, message: BackgroundEvent) -> None:
        if not self.screen_stack:  # the app is ending
            return
        event = message.event
        kind = event.get("type")
        if kind == "accounts":
            self.mail_sync.accounts(list(event.get("names") or []))
        elif kind == "syncing":
            self.mail_sync.syncing(event)
        elif kind == "progress":
            self.mail_sync.progress(event)
        elif kind == "finished":
            self._mail_finished(event)
        elif kind == "idle":
            self.mail_sync.idle(event)
        elif kind == "outbox":
            self._outbox_flushed(str(event.get("summary", "")))
            return
        else:
            return
        self.update_mail_status()

    def _mail_finished(self, event: dict[str, Any]) -> None:
        wall = self.context.clock.now().astimezone(self.context.zone).strftime("%H:%M")
        name = event["account"]
        state = self.mail_sync.states.get(name)
        asked = bool(event.get("asked")) or (state is not None and state.asked)
        self.mail_sync.finished(event, wall_clock=wall)
        error, kind = event.get("error"), event.get("kind")
        if kind == "demo":
            if asked:  # the demo's account never connects: said when the user asks for a sync
                self.notify(error or "", title="Mail")
        elif error is not None and (event.get("failures") == 1 or kind == "password"):
            self.notify(str(error), title="Mail", severity="warning", timeout=10)
        if isinstance(self.screen, InboxScreen):
            if event.get("changed"):
                self.screen.reload()
            elif error is None:
                self.screen.reload_folders()  # a folder made on the server, even an empty one, shows

    @on(BackgroundStopped)
    def _background_stopped(self, message: BackgroundStopped) -> None:
        if not self.screen_stack:  # the app is ending
            return
        if message.pid == getattr(self.background.process, "pid", None):
            self.mail_sync.stopped()
            self.update_mail_status()
        self.background.exited(message.pid, message.code)

    def update_mail_status(self) -> None:
        if self.screen_stack:  # (not while the app ends)
            self.update_status()

    def refresh_me(self) -> None:
        """Who "me" is (the config's user, else the first): again whenever users change."""
        with self.context.database().read() as session:
            self.user_name = current_user_name(session, self.context.settings.me)

    async def _shutdown(self) -> None:
        # Every way out (quit, an error, the end of a test) passes here: the background process ends with the app.
        self.background.stop()
        self.collector.give_back()
        if self._change_watch is not None:
            self._change_watch.close()
            self._change_watch = None
        await super()._shutdown()

    async def on_event(self, event: events.Event) -> None:
        # Every key reaches the app first (a focused input consumes it before on_key would see it).
        if isinstance(event, events.Key):
            self.collector.key_pressed()
        await super().on_event(event)

    def action_go(self, mode: str) -> None:
        self.switch_mode(mode)

    def switch_mode(self, mode: str) -> Any:
        """A mode shown again shows the data again: what was done in another mode (a pipeline made in
        Settings, a deal saved from a mail) is there. (Another process's changes come by check_for_changes.)"""
        came_back = mode != self.current_mode and mode in self._screen_stacks
        shown = super().switch_mode(mode)
        if came_back:
            self.call_after_refresh(self._show_changes)
        return shown

    def update_status(self, activity: str | None = None) -> None:
        """Redraw the status bar; ``activity`` (what the screen shows) is kept until the screen says otherwise."""
        if activity is not None:
            self._status_activity[self.current_mode] = activity
        label = "demo database" if self.context.demo else self.context.database_url.rsplit("/", 1)[-1]
        busy = self._busy_shown = self._working()
        for bar in self.screen.query(StatusBar):
            bar.show(
                user=self.user_name,
                database=label,
                activity=self._status_activity.get(self.current_mode, ""),
                mode=self.current_mode,
                busy=busy,
                mail=self.mail_sync.status_text(),
            )

    def end_status(self, activity: str) -> None:
        """Work that said ``activity`` in the status bar is over: no mode goes on showing it."""
        for mode, shown in list(self._status_activity.items()):
            if shown == activity:
                self._status_activity[mode] = ""
        self.update_status()

    def _working(self) -> bool:
        """Work the user waits for is running (the background process's work is not: the mail part of the
        status bar tells its state)."""
        return any(worker.is_running and worker.group != "mail-tick" for worker in self.workers)

    def _mark_busy(self) -> None:
        self._busy_timer = None
        if self._working():
            self.update_status()

    def open_opportunity(self, deal_id: int) -> None:
        """Switch to the board and open the deal (after a lead conversion)."""
        self.switch_mode("opportunities")
        screen = self.screen
        if isinstance(screen, OpportunitiesScreen):
            self.call_after_refresh(screen.reload, deal_id)
            self.call_after_refresh(screen.open_deal, deal_id)

    def check_reminders(self) -> None:
        """Reminders that came due since the last look show as notifications."""
        now = self.context.clock.now()
        since = self._reminders_checked or now
        self._reminders_checked = now
        try:
            with self.context.database().read() as session:
                due = reminders_due(session, since=since, now=now)
        except Exception as exc:  # noqa: BLE001 - a reminder check must never take the app down
            self.notify(f"Reminders could not be checked: {exc}", severity="warning")
            return
        for subject, start in due:
            self.notify(
                f"{terminal_safe(subject)} at {start.astimezone(self.context.zone):%H:%M}",
                title="Reminder",
                timeout=30,
            )

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """The palette offers every mode, every action of the current screen and the app, beside Textual's own."""
        textual_commands = list(super().get_system_commands(screen))
        yield from textual_commands
        titles = {command.title for command in textual_commands}
        titles.add("Open deal...")
        yield SystemCommand(
            "Open deal...", "a deal's screen: its people, timeline and moves (type part of its title)",
            self.action_open_deal,
        )  # fmt: skip
        titles.add("Sent-mail report")
        yield SystemCommand(
            "Sent-mail report", "what the mail sent became: sent, failed, refused, bounced, replied, per user and "
            "period (key: r in the outbox)", self.action_sent_report,
        )  # fmt: skip
        for view, title in (("rules", "rules"), ("pending", "pending actions"), ("log", "log")):
            titles.add(f"Automation {title}")
            yield SystemCommand(
                f"Automation {title}", f"automation: the {title}", partial(self.action_automation, view)
            )
        # The binding's id is what the config's [keymap] remaps: the palette is where a user finds it.
        mode_keys = {
            active.binding.action: (key, active.binding)
            for key, active in screen.active_bindings.items()
            if active.binding.action.startswith("go(")
        }
        for mode, title in MODE_TITLES.items():
            titles.add(f"Go to {title}")
            key, mode_binding = mode_keys.get(f"go('{mode}')", ("", None))
            shown = (
                f" (key: {self.get_key_display(mode_binding) or key}, id: {mode_binding.id})"
                if mode_binding is not None and mode_binding.id
                else ""
            )
            yield SystemCommand(
                f"Go to {title}", f"switch to the {title} mode{shown}", partial(self.switch_mode, mode)
            )
        seen: set[str] = set()
        for key, active in screen.active_bindings.items():
            binding = active.binding
            if not binding.description or binding.action in seen or binding.description in titles:
                continue
            if binding.action.startswith("go("):
                continue
            seen.add(binding.action)
            titles.add(binding.description)
            named = f", id: {binding.id}" if binding.id else ""
            yield SystemCommand(
                binding.description,
                f"{binding.tooltip or binding.description} (key: {self.get_key_display(binding) or key}{named})",
                partial(self._run_bound_action, active.node, binding.action),
            )

    async def _run_bound_action(self, node: Any, action: str) -> None:
        await self.run_action(action, node)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # A picker's ctrl+p moves up its list (ctrl+n down), as fuzzy finders do: the palette's priority key
        # would take it first.
        return not (action == "command_palette" and getattr(self.screen, "MOVES_ON_CTRL_P", False))

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: Any = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """Every notification is plain text: names, subjects and file names in them come from mail and files,
        and Textual would read ``[...]`` in them as markup (even ``[@click=...]`` actions). Ours use none."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=False)

    def action_show_keys(self) -> None:
        if self.screen.query("HelpPanel"):
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()

    @on(Worker.StateChanged)
    def worker_failed(self, event: Worker.StateChanged) -> None:
        self.report_worker_state(event)

    async def _on_key(self, event: events.Key) -> None:
        # Runs before Textual's App._on_key (handlers are called along the class hierarchy).
        # A key that passed through a screen which has since left the front (its binding opened a form,
        # say) belongs to the screen now in front: deliver it again (see screens.typeahead.FollowsTypeahead).
        # Likewise a printable key that reaches the app while a text field has the focus: the field would
        # have taken it, so it was sent to what had the focus before ("/from:anna" in one burst: "/" moved the
        # focus to the search box after "from:anna" had gone to the list). Hand it to the field.
        if getattr(event, "tries", 0) >= MAX_REDELIVERIES:
            return
        passed = getattr(event, "crm_screen", None)
        moved_on = passed is not None and passed is not self.screen
        missed = event.is_printable and isinstance(self.focused, Input | TextArea)
        if moved_on or missed:
            event.prevent_default()  # Textual then skips App._on_key (the binding lookup) for this copy
            self.post_message(typed_again(event, self))

    def report_worker_state(self, event: Worker.StateChanged) -> None:
        """Every worker's state passes here: the status bar shows background work; a failure becomes a
        notification with one clear line, never a traceback."""
        busy = self._working()
        if busy and not self._busy_shown and self._busy_timer is None:
            # Only work that takes a while is worth a mark (a keystroke's page load is over before this fires).
            self._busy_timer = self.set_timer(BUSY_MARK_DELAY, self._mark_busy)
        elif not busy and self._busy_shown:
            self.update_status()
        if event.state != WorkerState.ERROR or event.worker.error is None:
            return
        self.report_error(event.worker.error, f"worker {event.worker.name or event.worker.group}")

    def report_error(self, error: BaseException, what: str = "the app") -> None:
        """An error nobody handled: one error notification (plain text, one line, no traceback) and, unless it
            is one of ours with a message for the user (a ``CrmError``), an ERROR entry with the traceback in the
            log file. The same error again while its notification still shows (ERROR_SHOWN seconds) is not shown twice:
        a key held down or pressed again stacks no copies."""
        if isinstance(error, CrmError):
            message = str(error)
        else:
            log_error(error, what)
            what_failed = terminal_safe(f"{type(error).__name__}: {error}", max_length=200)
            message = f"{what_failed} (details in {terminal_safe(str(self.context.paths.log_file))})"
        message = terminal_safe(message, max_length=600)
        now = time.monotonic()
        if (
            self._reported is not None
            and self._reported[0] == message
            and now - self._reported[1] < ERROR_SHOWN
        ):
            return
        self._reported = (message, now)
        if isinstance(error, CrmError):  # a refusal or a problem with its reason: the user's to act on
            self.notify(message, severity="warning", timeout=ERROR_SHOWN)
        else:
            self.notify(message, title="Something went wrong", severity="error", timeout=ERROR_SHOWN)

    def _handle_exception(self, error: Exception) -> None:
        """Textual's last resort (an error while building a screen, or outside any handler we guard): the app
        ends, but with one line and exit status 1 instead of a traceback holding local variables."""
        log_error(error, "the app stopped")
        self._return_code = 1
        if self._exception is None:
            self._exception = error  # a Pilot test raises it again
            self._exception_event.set()
        line = terminal_safe(f"{type(error).__name__}: {error}", max_length=300)
        self._exit_renderables.append(
            Text(
                f"crm-tui stopped after an internal error: {line} (details in {self.context.paths.log_file})"
            )
        )
        self._close_messages_no_wait()


def run_app(context: AppContext) -> int:
    context.database()  # open, migrate (and build the demo) before the screen takes over the terminal
    app = CrmApp(context, manage_gc=True)
    app.run()
    return app.return_code or 0
