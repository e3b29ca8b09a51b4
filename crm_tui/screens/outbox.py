"""The outbox view (o in the inbox): what is on its way out, what failed and why, what is uncertain, which
recipients the server refused; the user decides those (R send again, to whoever has not got it; S count as
sent; D drop), also an item a dead process left "sending"; x delivers now."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable, Footer, Label, Static

from crm_tui.core.sanitize import terminal_safe
from crm_tui.screens.base import CrmScreen
from crm_tui.widgets.status_bar import StatusBar

STATE_STYLE = {
    "queued": "cyan",
    "sending": "yellow",
    "sent": "green",
    "partial": "bold red",
    "failed": "red",
    "uncertain": "bold magenta",
}


class OutboxLoaded(Message):
    def __init__(self, rows: list[Any]) -> None:
        super().__init__()
        self.rows = rows


class OutboxScreen(CrmScreen):
    BINDINGS = [
        Binding("q,escape", "back", "Back", id="outbox.back"),
        Binding("j", "cursor(1)", "Down", show=False, id="outbox.down"),
        Binding("k", "cursor(-1)", "Up", show=False, id="outbox.up"),
        Binding("R", "decide('resend')", "Send again", id="outbox.resend"),
        Binding("S", "decide('sent')", "Count as sent", id="outbox.count_sent"),
        Binding("D", "decide('drop')", "Drop", id="outbox.drop"),
        Binding("x", "deliver", "Deliver now", id="outbox.deliver"),
    ]

    def compose(self) -> ComposeResult:
        yield Label(Text("Outbox", style="bold"), id="outbox-title")
        yield DataTable(id="outbox-table", cursor_type="row", zebra_stripes=True)
        yield Static(id="outbox-error")
        yield StatusBar()
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("State", "When", "Account", "To", "Subject")
        table.focus()
        self.reload()

    @work(thread=True, exclusive=True, group="outbox-view", exit_on_error=False)
    def reload(self) -> None:
        from crm_tui.core.services import outbox

        with self.app.context.database().read() as session:  # type: ignore[attr-defined]
            now = self.app.context.clock.now()  # type: ignore[attr-defined]
            self.post_message(OutboxLoaded(outbox.rows(session, now=now)))

    @on(OutboxLoaded)
    def _show(self, message: OutboxLoaded) -> None:
        zone = self.app.context.zone  # type: ignore[attr-defined]
        table = self.query_one(DataTable)
        keep = table.cursor_row
        table.clear()
        self.rows = message.rows
        for row in message.rows:
            when = (row.sent_at or row.created_at).astimezone(zone).strftime("%Y-%m-%d %H:%M")
            table.add_row(
                Text(row.shown_state, style="dim" if row.demo else STATE_STYLE.get(row.state, "")),
                when,
                terminal_safe(row.account, max_length=20),
                terminal_safe(", ".join(row.recipients), max_length=40),
                terminal_safe(row.subject or "(no subject)", max_length=60),
                key=str(row.id),
            )
        if message.rows:
            table.move_cursor(row=min(keep, len(message.rows) - 1))
        waiting = sum(
            1
            for r in message.rows
            if r.state in ("queued", "sending") and not r.demo and not r.needs_decision
        )
        attention = sum(1 for r in message.rows if r.needs_decision)
        self.app.update_status(f"outbox: {waiting} waiting, {attention} need a decision")  # type: ignore[attr-defined]
        self._show_error()

    @on(DataTable.RowHighlighted)
    def _show_error(self) -> None:
        row = self.current()
        text = Text()
        if row is not None and row.explanation:
            label = "partly sent" if row.state == "partial" else row.shown_state  # its lines name the refused
            text.append(f"{label}: ", style=STATE_STYLE.get(row.state, ""))
            text.append(terminal_safe(row.explanation, single_line=False))
        if row is not None and row.needs_decision:
            if row.state == "partial":
                hint = "R sends it again to the refused addresses · S or D lets them go"
            else:
                hint = "R sends it again · S counts it as sent · D drops it"
            text.append(f"\n{hint}", style="dim")
        self.query_one("#outbox-error", Static).update(text)

    def current(self) -> Any:
        table = self.query_one(DataTable)
        rows = getattr(self, "rows", [])
        return rows[table.cursor_row] if rows and 0 <= table.cursor_row < len(rows) else None

    def action_cursor(self, step: int) -> None:
        table = self.query_one(DataTable)
        table.action_cursor_down() if step > 0 else table.action_cursor_up()

    def action_decide(self, decision: str) -> None:
        from crm_tui.core.services import outbox

        row = self.current()
        if row is None:
            return
        now = self.app.context.clock.now()  # type: ignore[attr-defined]
        ok, _ = self.write(lambda session: outbox.decide(session, row.id, decision, now=now))
        if ok:
            said = {
                "resend": "queued again" + (" for the refused addresses" if row.state == "partial" else ""),
                "sent": "counted as sent",
                "drop": "refused addresses let go" if row.state == "partial" else "dropped",
            }[decision]
            self.notify(f"{terminal_safe(row.subject)}: {said}")
            if decision == "resend":
                self.app.flush_outbox()  # type: ignore[attr-defined]
            self.reload()

    def action_deliver(self) -> None:
        if self.app.context.demo:  # type: ignore[attr-defined]
            self.notify("Demo mode: nothing is delivered; the outbox holds.")
            return
        self.app.flush_outbox()  # type: ignore[attr-defined]  # the view reloads when it is over

    def action_back(self) -> None:
        self.app.pop_screen()
