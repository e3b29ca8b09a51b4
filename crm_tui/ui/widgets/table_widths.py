"""Textual's DataTable measures its columns when it is idle, after the rows were added; a table drawn in
between (a screen showing rows a worker just loaded: the automation rules on first open and after a form
closed) kept the lines it drew with the columns as wide as their headers ("Sales  Call  on e"), until the
cursor passed over them. Here the lines drawn before the measuring are thrown away once the widths are known.
"""

from __future__ import annotations

from typing import Any

from textual.widgets import DataTable

_installed = False


def _then_redraw(textual_on_idle: Any) -> Any:
    async def _on_idle(self: Any, event: Any) -> None:
        measuring = self._require_update_dimensions
        await textual_on_idle(self, event)
        if measuring:
            self._clear_caches()
            self.refresh()

    return _on_idle


def redraw_tables_when_measured() -> None:
    """Install the redraw on Textual's DataTable (once per process; the app calls this as it starts)."""
    global _installed
    if _installed:
        return
    _installed = True
    DataTable._on_idle = _then_redraw(DataTable._on_idle)  # type: ignore[method-assign]  # patches Textual's class
