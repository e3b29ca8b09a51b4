"""The Inbox mode (grows with the mail engine): stored messages newest first, paged, with a safe preview."""

from __future__ import annotations

from functools import partial

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Footer, Input, Static

from crm_tui.core.sanitize import terminal_safe
from crm_tui.screens.base import CrmScreen, SearchesItsList
from crm_tui.widgets.paged_table import PagedTable, Row
from crm_tui.widgets.status_bar import StatusBar

PREVIEW_CHARS = 20_000


def _condition(zone, session, query: str):  # type: ignore[no-untyped-def]
    """The search's condition; an unfinished or wrong query (typed so far) matches nothing."""
    from crm_tui.core.errors import ValidationError
    from crm_tui.core.services.mail_search import search_condition

    if not query.strip():
        return None
    try:
        return search_condition(session, query, zone)
    except ValidationError:
        from sqlalchemy import false

        return false()


def query_problem(query: str) -> str | None:
    """What is wrong with a typed query (shown in the status bar), or None."""
    from crm_tui.core.errors import ValidationError
    from crm_tui.core.services.mail_search import parse_query

    try:
        parse_query(query)
    except ValidationError as exc:
        return next(iter(exc.errors.values()), str(exc))
    return None


def _message_rows(zone, session, query: str, offset: int, limit: int) -> list[Row]:  # type: ignore[no-untyped-def]
    from crm_tui.core.services.mail_store import list_messages

    rows = []
    for message in list_messages(session, limit=limit, offset=offset, where=_condition(zone, session, query)):
        sent = message.sent_at.astimezone(zone).strftime("%Y-%m-%d %H:%M") if message.sent_at else ""
        flags = ("●" if not message.is_read else " ") + ("📎" if message.has_attachments else " ")
        who = (
            f"to {message.first_recipient}"
            if message.is_outgoing
            else (message.from_name or message.from_address)
        )
        rows.append(
            Row(
                str(message.id),
                (flags, sent, who, message.subject or "(no subject)"),
                "" if message.is_read else "bold",
            )
        )
    return rows


def _message_count(zone, session, query: str) -> int:  # type: ignore[no-untyped-def]
    from crm_tui.core.services.mail_store import count_messages
    from crm_tui.widgets.paged_table import COUNT_CAP

    return count_messages(session, where=_condition(zone, session, query), cap=COUNT_CAP)


def _size(text: str) -> str:
    try:
        size = int(text)
    except ValueError:
        return "?"
    for unit in ("B", "KB", "MB"):
        if size < 1024 or unit == "MB":
            return f"{size} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    return f"{size} B"


class PreviewLoaded(Message):
    def __init__(self, message_id: int, text: Text):
        super().__init__()
        self.message_id, self.text = message_id, text


class InboxScreen(SearchesItsList, CrmScreen):
    AUTO_FOCUS = "#messages"
    BINDINGS = [
        Binding("j", "cursor(1)", "Down", show=False, id="inbox.down"),
        Binding("k", "cursor(-1)", "Up", show=False, id="inbox.up"),
        Binding("slash", "focus_search", "Search", id="inbox.search"),
        Binding("escape", "clear_search", "Clear search", show=False, id="inbox.clear_search"),
    ]

    def compose(self) -> ComposeResult:
        yield Input(
            placeholder='/ search mail: words "phrase" from: to: subject: has:attachment is:unread '
            "after: before: linked:TYPE:ID unlinked -not OR",
            id="search",
        )
        with Horizontal(id="body"):
            yield PagedTable(
                [("", 3), ("Date", 17), ("From", 26), ("Subject", 50)],
                partial(_message_rows, self.app.context.zone),  # type: ignore[attr-defined]
                partial(_message_count, self.app.context.zone),  # type: ignore[attr-defined]
                id="messages",
            )
            with VerticalScroll(id="preview-scroll"):
                yield Static(id="preview")
        yield StatusBar()
        yield Footer()

    def reload(self) -> None:
        """New mail arrived: the list again, the highlighted message kept."""
        self.query_one(PagedTable).reload()

    def on_mount(self) -> None:
        table = self.query_one(PagedTable)
        table.focus()
        table.reload("")

    @on(PagedTable.Counted)
    def _counted(self, message: PagedTable.Counted) -> None:
        problem = query_problem(message.query) if message.query else None
        if problem:
            self.app.update_status(f"search: {problem}")  # type: ignore[attr-defined]
        elif message.query:
            self.app.update_status(f"{message.total_text} messages matching {message.query!r}")  # type: ignore[attr-defined]
        else:
            self.app.update_status(f"{message.total_text} messages")  # type: ignore[attr-defined]

    @on(PagedTable.RowHighlighted)
    def _highlighted(self) -> None:
        key = self.query_one(PagedTable).selected_key
        if key is None:
            self.query_one("#preview", Static).update(Text("No mail stored yet.", style="italic dim"))
            return
        self._load_preview(int(key))

    @work(thread=True, exclusive=True, group="preview", exit_on_error=False)
    def _load_preview(self, message_id: int) -> None:
        from crm_tui.core import models as m

        context = self.app.context  # type: ignore[attr-defined]
        with context.database().read() as session:
            row = session.get(m.MailMessage, message_id)
            if row is None:
                return
            text = Text()
            text.append(terminal_safe(row.subject or "(no subject)") + "\n", style="bold")
            text.append("From: ", style="dim")
            text.append(
                terminal_safe(f"{row.from_name} <{row.from_address}>" if row.from_name else row.from_address)
                + "\n"
            )
            for label, value in (("To", row.to_addresses), ("Cc", row.cc_addresses)):
                if value:
                    text.append(f"{label}: ", style="dim")
                    text.append(terminal_safe(", ".join(value.splitlines()), max_length=300) + "\n")
            if row.sent_at:
                text.append("Date: ", style="dim")
                text.append(row.sent_at.astimezone(context.zone).strftime("%a %d %b %Y %H:%M") + "\n")
            if row.parse_problems:
                text.append(
                    "⚠ parts of this message could not be read; the original is kept\n", style="yellow"
                )
            if row.attachments:
                text.append("Attachments: ", style="dim")
                names = []
                for line in row.attachments.splitlines()[:20]:
                    name, _type, size = (line.split("\t") + ["", "", "0"])[:3]
                    names.append(f"{terminal_safe(name, max_length=60) or '(unnamed)'} ({_size(size)})")
                text.append(", ".join(names) + "\n")
            text.append("\n")
            if not row.has_body:
                text.append(
                    "⟳ the body is still being downloaded (the next sync brings it)", style="italic dim"
                )
            body = row.body_text[:PREVIEW_CHARS]
            text.append(terminal_safe(body, single_line=False))
            if len(row.body_text) > PREVIEW_CHARS:
                text.append(f"\n… ({len(row.body_text) - PREVIEW_CHARS} more characters)", style="dim")
        self.post_message(PreviewLoaded(message_id, text))

    @on(PreviewLoaded)
    def _show_preview(self, message: PreviewLoaded) -> None:
        key = self.query_one(PagedTable).selected_key
        if key is not None and int(key) == message.message_id:
            self.query_one("#preview", Static).update(message.text)

    def action_cursor(self, step: int) -> None:
        table = self.query_one(PagedTable)
        table.action_cursor_down() if step > 0 else table.action_cursor_up()
