"""What every crm-tui screen shares: failed workers are reported by the app, never as a traceback."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual import on
from textual.screen import Screen
from textual.worker import Worker


class CrmScreen(Screen[Any]):
    def write(self, work: Callable[[Any], Any]) -> tuple[bool, Any]:
        """Run ``work(session)`` as one use case. A failure becomes one notification and (False, None)."""
        from crm_tui.core.errors import CrmError

        try:
            with self.app.context.database().write() as session:  # type: ignore[attr-defined]
                return True, work(session)
        except CrmError as exc:
            self.notify(str(exc), severity="error", timeout=8)
            return False, None

    def on_screen_resume(self) -> None:
        # The status bar belongs to each screen: draw it whenever this one comes to the front.
        self.app.update_status()  # type: ignore[attr-defined]

    @on(Worker.StateChanged)
    def _report_failed_worker(self, event: Worker.StateChanged) -> None:
        # Worker.StateChanged does not bubble: each screen hands failures to the app's one reporter.
        self.app.report_worker_state(event)  # type: ignore[attr-defined]

    def open_form(self, build: Callable[[], Any], *, noun: str, on_saved: Callable[[int], None]) -> None:
        """Build a record form (a failure becomes a notification), show it, and on save report and refresh."""
        from crm_tui.core.errors import CrmError
        from crm_tui.screens.forms import RecordForm

        try:
            spec = build()
        except CrmError as exc:
            self.notify(str(exc), severity="error")
            return

        def saved(new_id: int | None) -> None:
            if new_id is not None:
                self.notify(f"Saved {noun}:{new_id}.")
                on_saved(new_id)

        self.app.push_screen(RecordForm(spec), saved)
