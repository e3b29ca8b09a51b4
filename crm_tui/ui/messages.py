"""Every Textual message the app's screens and widgets post, in one place.

Messages carry plain data (ids, strings, Rich ``Text``, frozen dataclasses of the core services), never ORM
rows: most are posted from thread workers. A message a widget posts keeps the widget's namespace, so its
handler name stays ``on_paged_table_page_loaded`` and ``@on(PagedTable.PageLoaded)`` still reads naturally
(the widget class names it as an attribute).

This module imports no other crm_tui.ui module, so screens and widgets can import it without a circle; the
data types of the screens (``board.Column``, ``calendar.Entry``, ``record_detail.DetailData``) are named in
the docstrings, not imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.message import Message
from textual.widget import Widget

# --- widgets ---


@dataclass
class PageLoaded(Message, namespace="paged_table"):
    """A page of a PagedTable's rows, read in a thread (``rows``: (key, cells, style))."""

    table: Widget
    generation: int
    offset: int
    rows: list[tuple[str, tuple[str, ...], str]]
    total: int
    has_more: bool


@dataclass
class Counted(Message, namespace="paged_table"):
    """The number of rows matching a PagedTable's current query (for a status line); counting stops at ``cap``."""

    table: Widget
    total: int
    query: str
    cap: int

    @property
    def total_text(self) -> str:
        return f"{self.cap}+" if self.total > self.cap else str(self.total)


@dataclass
class RowHighlighted(Message, namespace="paged_table"):
    """A PagedTable's cursor moved to another row (or the rows under it changed)."""

    table: Widget
    cursor_row: int
    row_key: str | None

    @property
    def control(self) -> Widget:
        return self.table


class Suggested(Message, namespace="recipient_input"):
    """The matches for what is typed in a RecipientInput changed (empty: none, or the field was left);
    ``choices`` are recipient_input.Choice."""

    def __init__(self, field: Widget, choices: list[Any], chosen: int) -> None:
        super().__init__()
        self.field, self.choices, self.chosen = field, choices, chosen

    @property
    def control(self) -> Widget:
        return self.field


# --- inbox ---


class PreviewLoaded(Message):
    def __init__(self, message_id: int, text: Text):
        super().__init__()
        self.message_id, self.text = message_id, text


class Scoped(Message):
    """The folders and views of the sidebar, read in a worker."""

    def __init__(self, folders: list[tuple[int, str, str, str | None]]) -> None:
        super().__init__()
        self.folders = folders


class RelatedLoaded(Message):
    def __init__(self, message_id: int, text: Text) -> None:
        super().__init__()
        self.message_id, self.text = message_id, text


# --- compose ---


class TemplatesFilled(Message):
    """The template picker's list, filled in a thread: ``fits`` (email_templates.TemplateFit), the notes on
    where the fields come from; or ``error``, what went wrong in words."""

    def __init__(self, fits: list[Any], notes: list[str], error: str | None = None) -> None:
        super().__init__()
        self.fits, self.notes, self.error = fits, notes, error


class TemplateFilled(Message):
    """One template filled in a thread for this mail: (subject, body), or ``error`` in words."""

    def __init__(self, subject: str, body: str, error: str | None = None) -> None:
        super().__init__()
        self.subject, self.body, self.error = subject, body, error


# --- outbox ---


class OutboxLoaded(Message):
    def __init__(self, rows: list[Any], now: Any = None) -> None:
        super().__init__()
        self.rows, self.now = rows, now


class Delivered(Message):
    """x is over: what happened, in words."""

    def __init__(self, said: str, trouble: bool) -> None:
        super().__init__()
        self.said, self.trouble = said, trouble


class OutboxMailLoaded(Message):
    def __init__(self, text: Text) -> None:
        super().__init__()
        self.text = text


class SentReportLoaded(Message):
    """The sent-mail report (mail_outcomes.SentMailReport, None without a user who sends mail) and the users
    it can be read for (mail_outcomes.ReportUser), for the load numbered ``request``."""

    def __init__(self, report: Any, users: list[Any], request: int) -> None:
        super().__init__()
        self.report, self.users, self.request = report, users, request


# --- board (opportunities) ---


class BoardLoaded(Message):
    """The board's columns (board.Column), read in a thread for one pipeline."""

    def __init__(
        self,
        pipeline_id: int,
        name: str,
        pipelines: list[tuple[int, str]],
        columns: list[Any],
        select: int | None,
        request: int = 0,
        text: str = "",
    ):
        super().__init__()
        self.pipeline_id, self.pipeline_name, self.pipelines = pipeline_id, name, pipelines
        self.columns, self.select = columns, select
        self.request = request  # the load it answers: an older one's answer (a thread runs on) is dropped
        self.text = text  # the filter it was loaded with


class BoardDetailLoaded(Message):
    """One deal's detail (record_detail.DetailData, None when it is gone)."""

    def __init__(self, deal_id: int, data: Any, request: int):
        super().__init__()
        self.deal_id, self.data, self.request = deal_id, data, request


class DealStoryLoaded(Message):
    """A deal's whole story for the deal screen (core.services.deal_story.DealStory; None: the deal is gone)."""

    def __init__(self, deal_id: int, story: Any, request: int):
        super().__init__()
        self.deal_id, self.story, self.request = deal_id, story, request


class TimelinePageLoaded(Message):
    """A further page of a deal's timeline (deal_story.TimelinePage) for the deal screen."""

    def __init__(self, deal_id: int, page: Any, request: int):
        super().__init__()
        self.deal_id, self.page, self.request = deal_id, page, request


class DealsFound(Message):
    """Deals matching what was typed in the "Open deal..." picker: (id, label)."""

    def __init__(self, query: str, found: list[tuple[int, str]]):
        super().__init__()
        self.query, self.found = query, found


class ForecastLoaded(Message):
    def __init__(self, text: Text):
        super().__init__()
        self.text = text


class FunnelLoaded(Message):
    """A pipeline's funnel (core.services.funnel.Funnel; None: there is no pipeline) and its forecast chart,
    read in a thread; ``pipelines``: (id, name) of every pipeline, to switch between."""

    def __init__(self, pipelines: list[tuple[int, str]], funnel: Any, forecast: Text, request: int):
        super().__init__()
        self.pipelines, self.funnel, self.forecast, self.request = pipelines, funnel, forecast, request


# --- calendar ---


class CalendarLoaded(Message):
    """The calendar's entries (calendar.Entry) from ``first`` for ``days`` days."""

    def __init__(
        self, first: date, days: int, entries: list[Any], owners: list[tuple[int, str]], select: int | None
    ):
        super().__init__()
        self.first, self.days, self.entries, self.owners, self.select = first, days, entries, owners, select
        self.request = 0


# --- automation, mass mail, pickers, import ---


class AutomationLoaded(Message):
    def __init__(self, view: str, rows: list[Any]) -> None:
        super().__init__()
        self.view, self.rows = view, rows


class CampaignProgress(Message):
    def __init__(self, campaign_id: int, progress: Any) -> None:
        super().__init__()
        self.campaign_id, self.progress = campaign_id, progress


class RecordsFound(Message):
    def __init__(self, query: str, found: list[tuple[str, str, str]]) -> None:
        super().__init__()
        self.query, self.found = query, found


class ImportPreviewed(Message):
    def __init__(self, path: Path, type_name: str, report: Any) -> None:
        super().__init__()
        self.path, self.type_name, self.report = path, type_name, report


class ImportDone(Message):
    def __init__(self, summary: str, problems: int) -> None:
        super().__init__()
        self.summary, self.problems = summary, problems


# --- the background process (ui/supervisor.py, runtime/background.py) ---


@dataclass
class MailAccountsListed(Message):
    """The mail accounts there are (read in a worker): the background process starts once there is one."""

    names: list[str]


@dataclass
class BackgroundEvent(Message):
    """One line the background process wrote (a plain dictionary: ``type`` and its fields, see
    runtime/background.py)."""

    event: dict[str, Any]


@dataclass
class BackgroundStopped(Message):
    """The background process ended (``code``: its exit status; negative: the signal that ended it)."""

    pid: int
    code: int


# --- the Contacts mode's lists and the record forms ---


class DetailLoaded(Message):
    """A record's detail pane data (``record_detail.DetailData``) or why there is none, for request ``request``
    (only the newest request is shown)."""

    def __init__(self, ref: str, data: Any, error: str | None, request: int):
        super().__init__()
        self.ref, self.data, self.error, self.request = ref, data, error, request


@dataclass
class FormSaved(Message):
    """A record form's save (in its worker) is done: the id of the record saved."""

    record_id: int


@dataclass
class FormRefused(Message):
    """A record form's save was refused: a message per bad field (``errors``), or one for the whole form."""

    errors: dict[str, str]
    message: str = ""
