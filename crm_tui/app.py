"""CrmApp: the Textual application. Data work happens in thread workers; failures become notifications."""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import Any

from textual import on
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from crm_tui.context import AppContext
from crm_tui.resources import assets_dir
from crm_tui.screens.contacts import ContactsScreen
from crm_tui.widgets.status_bar import StatusBar


class CrmApp(App[None]):
    TITLE = "crm-tui"
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", id="app.quit"),
        Binding("question_mark", "show_keys", "Keys", id="app.keys"),
    ]

    def __init__(self, context: AppContext, **kwargs: Any):
        super().__init__(css_path=str(assets_dir() / "styles" / "app.tcss"), **kwargs)
        self.context = context
        self.user_name: str | None = None
        if context.settings.keymap:
            self.set_keymap(dict(context.settings.keymap))

    def on_mount(self) -> None:
        from crm_tui.core.services.users import current_user

        with self.context.database().read() as session:
            user = current_user(session, self.context.settings.me)
            self.user_name = user.name if user else None
        self.push_screen(ContactsScreen())

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """The palette offers every action of the current screen and the app, beside Textual's own."""
        textual_commands = list(super().get_system_commands(screen))
        yield from textual_commands
        titles = {command.title for command in textual_commands}
        seen: set[str] = set()
        for key, active in screen.active_bindings.items():
            binding = active.binding
            if not binding.description or binding.action in seen or binding.description in titles:
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

    def update_status(self, activity: str = "") -> None:
        label = "demo database" if self.context.demo else self.context.database_url.rsplit("/", 1)[-1]
        for bar in self.screen.query(StatusBar):
            bar.show(user=self.user_name, database=label, activity=activity)

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
