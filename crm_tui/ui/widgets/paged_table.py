"""A list of records that shows a window of rows fetched from the database, a page at a time.

FACTS.md: a DataTable with 100k rows takes seconds to paint, so nothing loads a whole table. The owner gives a
``fetch(session, query, offset, limit)`` returning plain rows and a ``count(session, query)``; loading runs in a
thread worker and the next page is fetched as the cursor nears the end.

The widget is a line-API ``ScrollView``: it paints only the lines on screen, each straight from the plain cell
strings (cropped and padded to the column width), with no Rich renderable per cell. A DataTable spent ~15 ms
per repaint of one screenful on rendering each cell through Rich; this widget repaints it in about 1 ms, which
is what keeps a search keystroke well inside 100 ms on the benchmark database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeAlias

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events, on, work
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.worker import Worker, WorkerState

from crm_tui.core.sanitize import terminal_safe
from crm_tui.ui import messages
from crm_tui.ui.app_access import app_context
from crm_tui.ui.widgets.guard import ReportsErrors

COUNT_CAP = 1000  # lists say "1000+" rather than count every match on every keystroke
PAGE_SIZE = 100  # more than two screenfuls; the next page loads as the cursor nears the end
CELL_CHARS = 80  # longest text kept per cell (the widest column is narrower)


@dataclass(frozen=True)
class Row:
    key: str
    cells: tuple[str, ...]
    style: str = ""


Fetch = Callable[[Any, str, int, int], list[Row]]
Count = Callable[[Any, str], int]


class PagedTable(ReportsErrors, ScrollView, can_focus=True):
    """Rows under a pinned header line; the cursor is a highlighted row (keys: up/down, page, home/end)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor_up", "Up", show=False),
        Binding("down", "cursor_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "first", "First", show=False),
        Binding("end", "last", "Last", show=False),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "paged-table--header",
        "paged-table--cursor",
        "paged-table--even-row",
    }
    DEFAULT_CSS = """
    PagedTable {
        background: $surface;
        color: $foreground;
        height: 1fr;
        overflow-x: hidden;
        & > .paged-table--header { text-style: bold; background: $panel; color: $foreground; }
        & > .paged-table--even-row { background: $surface-lighten-1 50%; }
        & > .paged-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        &:focus > .paged-table--cursor {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
            text-style: $block-cursor-text-style;
        }
    }
    """

    cursor_row: reactive[int] = reactive(0, always_update=False, repaint=False)

    PageLoaded: TypeAlias = messages.PageLoaded
    Counted: TypeAlias = messages.Counted
    RowHighlighted: TypeAlias = messages.RowHighlighted

    def __init__(self, columns: list[tuple[str, int]], fetch: Fetch, count: Count, **kwargs: Any):
        super().__init__(**kwargs)
        self._columns = columns
        self._fetch = fetch
        self._count = count
        self.query_text = ""
        self._generation = 0
        self._rows: list[Row] = []
        self._has_more = False
        self._loading = False
        self._prefer: list[str] = []  # keys the next reload highlights, the first still listed (prefer_next)

    # --- data ---

    def set_source(self, columns: list[tuple[str, int]], fetch: Fetch, count: Count) -> None:
        self._columns, self._fetch, self._count = columns, fetch, count
        self._rows = []
        self._update_size()
        self.reload(self.query_text)

    def prefer_next(self, keys: list[str]) -> None:
        """The next reload highlights the first of these rows still listed (after an action took rows out of
        the list: the highlight stays in place, on the next row, rather than going back to the first)."""
        self._prefer = list(keys)

    def reload(self, query: str | None = None) -> None:
        if query is not None:
            self.query_text = query
        self._generation += 1
        self._loading = True
        self._load(self._generation, self.query_text, 0)

    @work(thread=True, exclusive=True, group="paged-table", exit_on_error=False)
    def _load(self, generation: int, query: str, offset: int) -> None:
        with app_context(self).database().read() as session:
            rows = self._fetch(session, query, offset, PAGE_SIZE + 1)
            total = self._count(session, query) if offset == 0 else -1
        # Cells are made terminal-safe here, in the worker, so painting does no per-cell work.
        safe = [
            (row.key, tuple(terminal_safe(cell, max_length=CELL_CHARS) for cell in row.cells), row.style)
            for row in rows[:PAGE_SIZE]
        ]
        self.post_message(self.PageLoaded(self, generation, offset, safe, total, len(rows) > PAGE_SIZE))

    @on(PageLoaded)
    def _show_page(self, message: PageLoaded) -> None:
        message.stop()
        if message.generation != self._generation:
            return
        new_rows = [Row(key, cells, style) for key, cells, style in message.rows]
        if message.offset == 0:
            wanted = self._prefer or ([self.selected_key] if self.selected_key is not None else [])
            self._prefer = []
            self._rows = new_rows
            where = {row.key: i for i, row in enumerate(new_rows)}
            index = next((where[key] for key in wanted if key in where), 0)
        else:
            self._rows.extend(new_rows)
            index = self.cursor_row
        self._has_more = message.has_more
        self._loading = False
        self._update_size()
        self.refresh()
        if message.offset == 0:
            self.post_message(self.Counted(self, message.total, self.query_text, COUNT_CAP))
            self._set_cursor(index, announce=True)

    def _update_size(self) -> None:
        # Lines are fitted to the widget's width (the last column takes what is left): no sideways scrolling.
        self.virtual_size = Size(0, len(self._rows) + 1)

    @property
    def row_count(self) -> int:
        return len(self._rows)

    @property
    def loaded_rows(self) -> list[Row]:
        return list(self._rows)

    def get_row_at(self, index: int) -> tuple[str, ...]:
        return self._rows[index].cells

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

    @on(Worker.StateChanged)
    def _report_failed_worker(self, event: Worker.StateChanged) -> None:
        # Worker.StateChanged does not bubble: hand failures to the app's one reporter.
        report = getattr(self.app, "report_worker_state", None)
        if report is not None:
            report(event)
        if event.state == WorkerState.ERROR:
            self._loading = False

    # --- cursor ---

    def move_cursor(self, *, row: int) -> None:
        self._set_cursor(row, announce=row != self.cursor_row)

    def _set_cursor(self, row: int, *, announce: bool) -> None:
        row = max(0, min(row, len(self._rows) - 1)) if self._rows else 0
        old = self.cursor_row
        self.cursor_row = row
        self._refresh_row(old)
        self._refresh_row(row)
        self._scroll_cursor_into_view()
        if announce:
            self.post_message(self.RowHighlighted(self, row, self.selected_key))
        if self._has_more and not self._loading and row >= len(self._rows) - 20:
            self._loading = True
            self._load(self._generation, self.query_text, len(self._rows))

    def _refresh_row(self, row: int) -> None:
        y = row + 1 - int(self.scroll_offset.y)
        if 1 <= y < self.size.height:
            self.refresh(Region(0, y, self.size.width, 1))

    def _scroll_cursor_into_view(self) -> None:
        visible = max(1, self.scrollable_content_region.height - 1)
        top = int(self.scroll_offset.y)
        if self.cursor_row < top:
            self.scroll_to(y=self.cursor_row, animate=False, immediate=True)
        elif self.cursor_row >= top + visible:
            self.scroll_to(y=self.cursor_row - visible + 1, animate=False, immediate=True)

    def _page(self) -> int:
        return max(1, self.scrollable_content_region.height - 2)

    def action_cursor_down(self) -> None:
        self.move_cursor(row=self.cursor_row + 1)

    def action_cursor_up(self) -> None:
        self.move_cursor(row=self.cursor_row - 1)

    def action_page_down(self) -> None:
        self.move_cursor(row=self.cursor_row + self._page())

    def action_page_up(self) -> None:
        self.move_cursor(row=self.cursor_row - self._page())

    def action_first(self) -> None:
        self.move_cursor(row=0)

    def action_last(self) -> None:
        self.move_cursor(row=len(self._rows) - 1)

    def on_click(self, event: events.Click) -> None:
        row = event.y - 1 + int(self.scroll_offset.y)
        if event.y >= 1 and 0 <= row < len(self._rows):
            self.move_cursor(row=row)

    # --- painting ---

    def _line_text(self, cells: tuple[str, ...], width: int) -> str:
        parts = []
        remaining = width
        last = len(self._columns) - 1
        for index, (_, column_width) in enumerate(self._columns):
            if remaining <= 0:
                break
            text = cells[index] if index < len(cells) else ""
            size = remaining if index == last else min(column_width, remaining)
            if cell_len(text) > size:
                text = set_cell_size(text, size - 1) + "…" if size > 1 else set_cell_size(text, size)
            else:
                text = set_cell_size(text, size)
            parts.append(text)
            remaining -= size
            if index != last and remaining > 0:
                parts.append(" ")
                remaining -= 1
        line = "".join(parts)
        return set_cell_size(line, width)

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.rich_style
        if y == 0:
            header = self.get_component_rich_style("paged-table--header")
            labels = tuple(label for label, _ in self._columns)
            return Strip([Segment(self._line_text(labels, width), base + header)], width)
        index = y - 1 + int(self.scroll_offset.y)
        if index >= len(self._rows):
            return Strip([Segment(" " * width, base)], width)
        row = self._rows[index]
        style = base
        if index % 2:
            style += self.get_component_rich_style("paged-table--even-row")
        if row.style:
            style += Style.parse(row.style)
        if index == self.cursor_row:
            style += self.get_component_rich_style("paged-table--cursor")
        return Strip([Segment(self._line_text(row.cells, width), style)], width)
