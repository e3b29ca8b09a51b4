"""What every crm-tui screen shares: failed workers are reported by the app, never as a traceback."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from textual import on
from textual.app import App
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Input
from textual.worker import Worker

from crm_tui.core.errors import CrmError
from crm_tui.core.sanitize import terminal_safe
from crm_tui.core.services.records import record_named
from crm_tui.core.types import RecordRef, RecordType
from crm_tui.ui.app_access import crm_app
from crm_tui.ui.screens.record_form import RecordForm
from crm_tui.ui.screens.typeahead import FollowsTypeahead
from crm_tui.ui.widgets.paged_table import PagedTable

if TYPE_CHECKING:
    from crm_tui.runtime.context import AppContext
    from crm_tui.ui.app import CrmApp

# The writes asked for from the screens, oldest first, and the lock that runs them one at a time: each worker
# runs the oldest waiting write, so they commit in the order asked (a key pressed twice archives in that order).
_WRITES: deque[Callable[[], None]] = deque()
_ONE_WRITE_AT_A_TIME = threading.Lock()


def record_name(context: AppContext, ref: RecordRef) -> str:
    """A record as messages name it: its kind and name ('lead “Wärmepumpe für den Neubau”', 'deal “Solar
    roof”'), never its id; terminal-safe (names can come from mail); a record gone meanwhile by its reference."""

    try:
        with context.database().read() as session:
            return terminal_safe(record_named(session, ref))
    except CrmError:
        return str(ref)


def write_in_worker(
    owner: Widget | App[Any],
    work: Callable[[Any], Any],
    then: Callable[[Any], None] | None = None,
    *,
    refused: Callable[[str], None] | None = None,
    settled: Callable[[], None] | None = None,
) -> None:
    """Run ``work(session)`` as one use case in a thread worker of the app: a database write never runs on the
    UI thread. Once it is committed, ``then(result)`` runs on the UI thread. A refusal (a ``CrmError``: a rule of
    the data, a bad value) goes to ``refused(reason)``, by default one warning notification from ``owner`` (a
    screen or the app); any other error is the worker's failure, which the app reports. ``settled()`` runs on
    the UI thread after any of these, whatever the outcome."""

    app = crm_app(owner)
    database = app.context.database()

    def refuse(reason: str) -> None:
        if refused is not None:
            refused(reason)
        else:
            owner.notify(reason, severity="warning", timeout=8)

    def job() -> None:
        try:
            try:
                with database.write() as session:
                    result = work(session)
            except CrmError as exc:
                app.call_from_thread(refuse, str(exc))
                return
            if then is not None:
                app.call_from_thread(then, result)
        finally:
            if settled is not None:
                app.call_from_thread(settled)

    def run() -> None:
        with _ONE_WRITE_AT_A_TIME:
            _WRITES.popleft()()

    _WRITES.append(job)
    # The app's worker, not the screen's: the write completes even when the screen closes meanwhile.
    app.run_worker(run, thread=True, group="write", name="write", exit_on_error=False)


class CrmScreen(FollowsTypeahead, Screen[Any]):
    @property
    def crm_app(self) -> CrmApp:
        """The app this screen runs in, typed (Textual's ``self.app`` is an ``App[object]``)."""
        return crm_app(self)

    @property
    def context(self) -> AppContext:
        """The app's ``AppContext``: settings, clock, time zone, database."""
        return self.crm_app.context

    def write_in_worker(
        self,
        work: Callable[[Any], Any],
        then: Callable[[Any], None] | None = None,
        *,
        refused: Callable[[str], None] | None = None,
        settled: Callable[[], None] | None = None,
    ) -> None:
        """``write_in_worker`` from this screen: ``then(result)`` on the UI thread once committed."""
        write_in_worker(self, work, then, refused=refused, settled=settled)

    def attempt(self, work: Callable[[Any], Any]) -> tuple[str | None, Any]:
        """One use case for a dialog's save, which runs in the dialog's worker (``PromptDialog``): (None, result),
        or (why not, None) unnotified, the dialog keeping what was typed. On the UI thread: ``write_in_worker``."""

        try:
            with self.context.database().write() as session:
                return None, work(session)
        except CrmError as exc:
            return str(exc), None

    def record_name(self, ref: RecordRef) -> str:
        """A record as messages name it (``record_name``): 'lead “Wärmepumpe für den Neubau”'."""
        return record_name(self.context, ref)

    def on_screen_resume(self) -> None:
        # The status bar belongs to each screen: draw it whenever this one comes to the front.
        self.crm_app.update_status()

    @on(Worker.StateChanged)
    def _report_failed_worker(self, event: Worker.StateChanged) -> None:
        # Worker.StateChanged does not bubble: each screen hands failures to the app's one reporter.
        self.crm_app.report_worker_state(event)

    def open_form(self, build: Callable[[], Any], *, noun: str, on_saved: Callable[[int], None]) -> None:
        """Build a record form (a failure becomes a notification), show it, and on save report and refresh."""

        try:
            spec = build()
        except CrmError as exc:
            self.notify(str(exc), severity="warning")
            return

        def saved(new_id: int | None) -> None:
            if new_id is not None:
                kinds = {kind.value for kind in RecordType}
                named = self.record_name(RecordRef(RecordType(noun), new_id)) if noun in kinds else noun
                self.notify(f"Saved {named}.")
                on_saved(new_id)
                if getattr(self.app, "run_automations", False):
                    # A save may have made automation actions due now (a stage, a status, a field changed).
                    self.crm_app.fire_automations()

        self.app.push_screen(RecordForm(spec), saved)


if TYPE_CHECKING:
    # The type checker sees the mixin as the screen it always sits on.
    _ListScreen = Screen[Any]
else:
    _ListScreen = object


class SearchesItsList(_ListScreen):
    """Screen mixin: an ``Input#search`` above a ``PagedTable``: typing re-queries the list, Enter goes back to
    the list, ``/`` focuses the search (action ``focus_search``) and Esc clears it (``clear_search``)."""

    def _search_table(self) -> PagedTable:
        return self.query_one(PagedTable)

    # Named handlers (not @on): Textual collects @on handlers only from its own classes, not from a mixin.
    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "search":
            table = self._search_table()
            if event.value.strip() != table.query_text:
                table.reload(event.value.strip())

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "search":
            self._search_table().focus()

    def action_focus_search(self) -> None:
        # At once, not after a refresh as widget.focus() does: keys typed right after "/" go to the field.
        self.set_focus(self.query_one("#search", Input))

    def action_clear_search(self) -> None:
        search = self.query_one("#search", Input)
        if search.value:
            search.value = ""
        self._search_table().focus()
