"""CrmApp: the Textual application. One mode per area; data work in thread workers; errors as notifications."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from functools import partial
from typing import Any

from textual import on
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from crm_tui.context import AppContext
from crm_tui.resources import assets_dir
from crm_tui.screens.board import OpportunitiesScreen
from crm_tui.screens.calendar import CalendarScreen
from crm_tui.screens.inbox import InboxScreen
from crm_tui.screens.records import RecordsScreen
from crm_tui.screens.settings import SettingsScreen
from crm_tui.widgets.status_bar import StatusBar

MODE_TITLES = {
    "inbox": "Inbox",
    "contacts": "Contacts",
    "opportunities": "Opportunities",
    "calendar": "Calendar",
    "settings": "Settings",
}
REMINDER_INTERVAL = 30.0


class CrmApp(App[None]):
    TITLE = "crm-tui"
    MODES = {
        "inbox": InboxScreen,
        "contacts": RecordsScreen,
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
    ]

    def __init__(self, context: AppContext, *, start_mode: str = "contacts", **kwargs: Any):
        super().__init__(css_path=str(assets_dir() / "styles" / "app.tcss"), **kwargs)
        self.context = context
        self.start_mode = start_mode
        self.user_name: str | None = None
        self._reminders_checked: datetime | None = None
        if context.settings.keymap:
            self.set_keymap(dict(context.settings.keymap))

    def on_mount(self) -> None:
        from crm_tui.core.services.users import current_user

        with self.context.database().read() as session:
            user = current_user(session, self.context.settings.me)
            self.user_name = user.name if user else None
        self.switch_mode(self.start_mode)
        self._reminders_checked = self.context.clock.now()
        self.set_timer(1.0, self._freeze_startup_heap)
        self.set_interval(REMINDER_INTERVAL, self.check_reminders)

    def _freeze_startup_heap(self) -> None:
        """Move what start-up built (styles, ORM mappings, the first screen) out of the garbage collector's
        sight: a full collection over it paused typing for ~300 ms at the benchmark's scale."""
        import gc

        gc.collect()
        gc.freeze()
        # Pages arrive as bursts of a few thousand objects; collect young objects less often than every 700.
        gc.set_threshold(20_000, 20, 20)

    def action_go(self, mode: str) -> None:
        self.switch_mode(mode)

    def update_status(self, activity: str = "") -> None:
        label = "demo database" if self.context.demo else self.context.database_url.rsplit("/", 1)[-1]
        for bar in self.screen.query(StatusBar):
            bar.show(user=self.user_name, database=label, activity=activity, mode=self.current_mode)

    def open_opportunity(self, deal_id: int) -> None:
        """Switch to the board and open the deal (after a lead conversion)."""
        self.switch_mode("opportunities")
        screen = self.screen
        if isinstance(screen, OpportunitiesScreen):
            self.call_after_refresh(screen.reload, deal_id)
            self.call_after_refresh(screen.open_deal, deal_id)

    def check_reminders(self) -> None:
        """Reminders that came due since the last look show as notifications."""
        from crm_tui.core.services.activities import due_reminders

        now = self.context.clock.now()
        since = self._reminders_checked or now
        self._reminders_checked = now
        try:
            with self.context.database().read() as session:
                due = [(a.subject, a.start_at) for a in due_reminders(session, since=since, now=now)]
        except Exception as exc:  # noqa: BLE001 - a reminder check must never take the app down
            self.notify(f"Reminders could not be checked: {exc}", severity="warning")
            return
        from crm_tui.core.sanitize import terminal_safe

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
        for mode, title in MODE_TITLES.items():
            titles.add(f"Go to {title}")
            yield SystemCommand(
                f"Go to {title}", f"switch to the {title} mode", partial(self.switch_mode, mode)
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
            yield SystemCommand(
                binding.description,
                f"{binding.tooltip or binding.description} (key: {self.get_key_display(binding) or key})",
                partial(self._run_bound_action, active.node, binding.action),
            )

    async def _run_bound_action(self, node: Any, action: str) -> None:
        await self.run_action(action, node)

    def action_show_keys(self) -> None:
        if self.screen.query("HelpPanel"):
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()

    @on(Worker.StateChanged)
    def worker_failed(self, event: Worker.StateChanged) -> None:
        self.report_worker_state(event)

    def report_worker_state(self, event: Worker.StateChanged) -> None:
        """A failed worker becomes a notification with one clear line, never a traceback."""
        if event.state != WorkerState.ERROR or event.worker.error is None:
            return
        from crm_tui.core.errors import CrmError

        error = event.worker.error
        message = str(error) if isinstance(error, CrmError) else f"{type(error).__name__}: {error}"
        self.notify(message, title="Something went wrong", severity="error", timeout=10)


def run_app(context: AppContext) -> int:
    context.database()  # open, migrate (and build the demo) before the screen takes over the terminal
    CrmApp(context).run()
    return 0
