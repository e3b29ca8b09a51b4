"""What every crm-tui screen shares: failed workers are reported by the app, never as a traceback."""

from __future__ import annotations

from typing import Any

from textual import on
from textual.screen import Screen
from textual.worker import Worker


class CrmScreen(Screen[Any]):
    @on(Worker.StateChanged)
    def _report_failed_worker(self, event: Worker.StateChanged) -> None:
        # Worker.StateChanged does not bubble: each screen hands failures to the app's one reporter.
        self.app.report_worker_state(event)  # type: ignore[attr-defined]
