"""A DataTable that shows a window of rows fetched from the database, a page at a time.

FACTS.md: a DataTable with 100k rows takes seconds to paint, so nothing loads a whole table. The owner gives a
``fetch(session, query, offset, limit)`` returning plain rows and a ``count(session, query)``; loading runs in a
thread worker and the next page is fetched as the cursor nears the end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import on, work
from textual.message import Message
from textual.widgets import DataTable
from textual.worker import Worker, WorkerState

from crm_tui.core.sanitize import terminal_safe

COUNT_CAP = 1000  # lists say "1000+" rather than count every match on every keystroke
PAGE_SIZE = 100  # more than two screenfuls; the next page loads as the cursor nears the end


@dataclass(frozen=True)
class Row:
    key: str
    cells: tuple[str, ...]
    style: str = ""


Fetch = Callable[[Any, str, int, int], list[Row]]
Count = Callable[[Any, str], int]


class PagedTable(DataTable[Text]):
    @dataclass
    class PageLoaded(Message):
        table: PagedTable
        generation: int
        offset: int
        rows: list[Row]
        total: int
        has_more: bool

    @dataclass
    class Counted(Message):
        """The number of rows matching the current query (for a status line)."""

        table: PagedTable
        total: int
        query: str

        @property
        def total_text(self) -> str:
            return f"{COUNT_CAP}+" if self.total > COUNT_CAP else str(self.total)

    def __init__(self, columns: list[tuple[str, int]], fetch: Fetch, count: Count, **kwargs: Any):
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self._columns = columns
        self._fetch = fetch
        self._count = count
        self.query_text = ""
        self._generation = 0
        self._rows: list[Row] = []
        self._has_more = False
        self._loading = False

    def on_mount(self) -> None:
        for label, width in self._columns:
            self.add_column(label, width=width, key=label.lower())

    def set_source(self, columns: list[tuple[str, int]], fetch: Fetch, count: Count) -> None:
        self._columns, self._fetch, self._count = columns, fetch, count
        self.clear(columns=True)
        for label, width in columns:
            self.add_column(label, width=width, key=label.lower())
        self.reload(self.query_text)

    def reload(self, query: str | None = None) -> None:
        if query is not None:
            self.query_text = query
        self._generation += 1
        self._loading = True
        self._load(self._generation, self.query_text, 0)

    @work(thread=True, exclusive=True, group="paged-table", exit_on_error=False)
    def _load(self, generation: int, query: str, offset: int) -> None:
        with self.app.context.database().read() as session:  # type: ignore[attr-defined]
            rows = self._fetch(session, query, offset, PAGE_SIZE + 1)
            total = self._count(session, query) if offset == 0 else -1
        self.post_message(
            self.PageLoaded(self, generation, offset, rows[:PAGE_SIZE], total, len(rows) > PAGE_SIZE)
        )

    @on(PageLoaded)
    def _show_page(self, message: PageLoaded) -> None:
        message.stop()
        if message.generation != self._generation:
            return
        keep_key = self.selected_key if message.offset == 0 else None
        if message.offset == 0:
            self.clear()
            self._rows = []
        self._rows.extend(message.rows)
        self._has_more = message.has_more
        self._loading = False
        # One batch: much cheaper than a refresh per row. Rows are found by index in self._rows.
        self.add_rows(
            [
                tuple(Text(terminal_safe(cell, max_length=80), style=row.style) for cell in row.cells)
                for row in message.rows
            ]
        )
        if message.offset == 0:
            self.post_message(self.Counted(self, message.total, self.query_text))
            if keep_key is not None:
                self.select_key(keep_key)
            self.post_message(self.RowHighlighted(self, self.cursor_row, self._row_key_at(self.cursor_row)))  # type: ignore[arg-type]

    def _row_key_at(self, index: int) -> Any:
        try:
            return self.coordinate_to_cell_key((index, 0)).row_key
        except Exception:  # noqa: BLE001 - an empty table has no key
            return None

    @on(Worker.StateChanged)
    def _report_failed_worker(self, event: Worker.StateChanged) -> None:
        # Worker.StateChanged does not bubble: hand failures to the app's one reporter.
        report = getattr(self.app, "report_worker_state", None)
        if report is not None:
            report(event)
        if event.state == WorkerState.ERROR:
            self._loading = False

    @on(DataTable.RowHighlighted)
    def _maybe_load_more(self, event: DataTable.RowHighlighted) -> None:
        if self._has_more and not self._loading and event.cursor_row >= len(self._rows) - 20:
            self._loading = True
            self._load(self._generation, self.query_text, len(self._rows))

    @property
    def selected_key(self) -> str | None:
        if not self._rows or not 0 <= self.cursor_row < len(self._rows):
            return None
        return self._rows[self.cursor_row].key

    def select_key(self, key: str) -> bool:
        for index, row in enumerate(self._rows):
            if row.key == key:
                self.move_cursor(row=index)
                return True
        return False

    @property
    def loaded_rows(self) -> list[Row]:
        return list(self._rows)
