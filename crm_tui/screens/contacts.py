"""The contacts list: instant search that pages from the database, and the selected contact's details."""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable, Footer, Input, Static

from crm_tui.core.sanitize import terminal_safe
from crm_tui.core.services.contacts import ContactSummary
from crm_tui.messages import ContactsLoaded
from crm_tui.screens.base import CrmScreen
from crm_tui.widgets.status_bar import StatusBar

PAGE_SIZE = 200


class ContactsScreen(CrmScreen):
    BINDINGS = [
        Binding("slash", "focus_search", "Search", id="contacts.search"),
        Binding("escape", "clear_search", "Clear", show=False, id="contacts.clear_search"),
        Binding("j", "cursor_down", "Down", show=False, id="contacts.down"),
        Binding("k", "cursor_up", "Up", show=False, id="contacts.up"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._rows: list[ContactSummary] = []
        self._query = ""
        self._has_more = False
        self._loading = False

    def compose(self) -> ComposeResult:
        yield Input(placeholder="/ search name, e-mail, organization, phone", id="search")
        with Horizontal(id="body"):
            table: DataTable[Text] = DataTable(id="contacts-table", cursor_type="row", zebra_stripes=True)
            yield table
            yield Static(id="contact-detail")
        yield StatusBar()
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for label, width in (("Name", 24), ("E-mail", 40), ("Organization", 28), ("City", 18)):
            table.add_column(label, width=width, key=label.lower())
        table.focus()
        self.load(query="", offset=0)

    @work(thread=True, exclusive=True, group="contacts", exit_on_error=False)
    def load(self, *, query: str, offset: int) -> None:
        from crm_tui.core.services.contacts import count_contacts, search_contacts

        database = self.app.context.database()  # type: ignore[attr-defined]
        with database.read() as session:
            rows = search_contacts(session, query, limit=PAGE_SIZE + 1, offset=offset)
            total = count_contacts(session, query) if offset == 0 else -1
        self.post_message(ContactsLoaded(query, offset, rows[:PAGE_SIZE], total, len(rows) > PAGE_SIZE))

    @on(ContactsLoaded)
    def show_page(self, message: ContactsLoaded) -> None:
        if message.query != self._query:
            return
        table = self.query_one(DataTable)
        if message.offset == 0:
            table.clear()
            self._rows = []
            self.app.update_status(
                f"{message.total} contacts" + (f" matching {message.query!r}" if message.query else "")
            )  # type: ignore[attr-defined]
        self._rows.extend(message.rows)
        self._has_more = message.has_more
        self._loading = False
        for row in message.rows:
            table.add_row(
                Text(terminal_safe(row.name, max_length=40)),
                Text(terminal_safe(row.emails[0] if row.emails else "", max_length=40)),
                Text(terminal_safe(row.organization_name or "", max_length=40)),
                Text(terminal_safe(row.city or "", max_length=30)),
                key=str(row.id),
            )
        if message.offset == 0:
            self.show_detail(0)

    @on(Input.Changed, "#search")
    def search_changed(self, event: Input.Changed) -> None:
        self._query = event.value.strip()
        self.load(query=self._query, offset=0)

    @on(Input.Submitted, "#search")
    def search_submitted(self) -> None:
        self.query_one(DataTable).focus()

    @on(DataTable.RowHighlighted)
    def row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.show_detail(event.cursor_row)
        if self._has_more and not self._loading and event.cursor_row >= len(self._rows) - 10:
            self._loading = True
            self.load(query=self._query, offset=len(self._rows))

    def show_detail(self, index: int) -> None:
        detail = self.query_one("#contact-detail", Static)
        if not 0 <= index < len(self._rows):
            detail.update(Text("No contact matches." if self._query else "No contacts yet.", style="italic"))
            return
        row = self._rows[index]
        text = Text()
        text.append(terminal_safe(row.name) + "\n", style="bold")
        if row.job_title:
            text.append(terminal_safe(row.job_title) + "\n")
        if row.organization_name:
            text.append(terminal_safe(row.organization_name) + "\n")
        text.append("\n")
        for address in row.emails:
            text.append("✉ " + terminal_safe(address) + "\n")
        for number in row.phones:
            text.append("☎ " + terminal_safe(number) + "\n")
        place = " ".join(p for p in (row.postcode, row.city) if p)
        if place or row.region:
            text.append("\n" + terminal_safe(", ".join(p for p in (place, row.region) if p)) + "\n")
        if row.owner_name:
            text.append(f"\nOwner: {terminal_safe(row.owner_name)}\n", style="dim")
        detail.update(text)

    def action_focus_search(self) -> None:
        self.query_one("#search", Input).focus()

    def action_clear_search(self) -> None:
        search = self.query_one("#search", Input)
        if search.value:
            search.value = ""
        self.query_one(DataTable).focus()

    def action_cursor_down(self) -> None:
        self.query_one(DataTable).action_cursor_down()

    def action_cursor_up(self) -> None:
        self.query_one(DataTable).action_cursor_up()
