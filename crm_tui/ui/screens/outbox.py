"""The outbox view (o in the inbox): what is on its way out, what failed and why, what is uncertain, which
recipients the server refused; the user decides those (R send again, to whoever has not got it; S count as
sent; D drop, asked first), also an item a dead process left "sending"; x delivers now (also what waits for its next try
or its send delay) and says how it went; u takes back a queued mail (a draft again, R in the inbox); Enter reads the mail as it goes out, with each recipient's outcome (bounced, replied); r the sent-mail report.
A queued mail waiting for a later time says until when ("queued, next try 14:05")."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Footer, Label, Static

from crm_tui.core.errors import CrmError
from crm_tui.core.sanitize import terminal_safe
from crm_tui.core.services import outbox
from crm_tui.core.services.outbox import OutboxRow, mail_named
from crm_tui.ui.messages import Delivered, OutboxLoaded, OutboxMailLoaded
from crm_tui.ui.screens.base import CrmScreen
from crm_tui.ui.screens.dialogs import ConfirmDialog
from crm_tui.ui.screens.mail_report import SentReportScreen
from crm_tui.ui.widgets.status_bar import StatusBar

STATE_STYLE = {
    "queued": "cyan",
    "sending": "yellow",
    "sent": "green",
    "partial": "bold red",
    "failed": "red",
    "uncertain": "bold magenta",
}


def state_text(row: OutboxRow, now: datetime, zone: tzinfo) -> str:
    """The State cell: a queued mail that waits for a later time says until when."""
    shown = row.shown_state
    if row.demo or row.state != "queued" or row.next_attempt_at is None or row.next_attempt_at <= now:
        return shown
    at = row.next_attempt_at.astimezone(zone)
    same_day = at.date() == now.astimezone(zone).date()
    when = f"{at:%H:%M}" if same_day else f"{at:%d.%m. %H:%M}"
    return f"{shown}, next try {when}" if row.attempts else f"{shown}, goes {when}"


def outbox_counts(rows: list[Any]) -> str:
    """The status line: what waits to go out, the demo's mail that never goes, what needs the user's word."""
    waiting = sum(1 for r in rows if r.state in ("queued", "sending") and not r.demo and not r.needs_decision)
    never = sum(1 for r in rows if r.shown_state == "never delivered (demo)")
    attention = sum(1 for r in rows if r.needs_decision)
    demo = f", {never} never delivered (demo)" if never else ""
    return f"outbox: {waiting} waiting{demo}, {attention} need a decision"


class OutboxScreen(CrmScreen):
    BINDINGS = [
        Binding("q,escape", "back", "Back", id="outbox.back"),
        Binding("j", "cursor(1)", "Down", show=False, id="outbox.down"),
        Binding("k", "cursor(-1)", "Up", show=False, id="outbox.up"),
        Binding("R", "decide('resend')", "Send again", id="outbox.resend"),
        Binding("S", "decide('sent')", "Count as sent", id="outbox.count_sent"),
        Binding("D", "decide('drop')", "Drop", id="outbox.drop"),
        Binding("x", "deliver", "Deliver now", id="outbox.deliver"),
        Binding("u", "take_back", "Take back", id="outbox.take_back"),
        Binding("enter", "read", "Read", id="outbox.read"),
        Binding("r", "report", "Sent-mail report", id="outbox.report"),
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

    def refresh_data(self) -> None:
        """Someone else changed data (another crm-tui's flush, a delivery here): the outbox again."""
        self.reload()

    def action_report(self) -> None:
        """The sent-mail report: what the mail sent became (bounced, replied...), per user and period."""
        self.app.push_screen(SentReportScreen())

    @work(thread=True, exclusive=True, group="outbox-view", exit_on_error=False)
    def reload(self) -> None:

        with self.context.database().read() as session:
            now = self.context.clock.now()
            self.post_message(OutboxLoaded(outbox.rows(session, now=now), now))

    @on(OutboxLoaded)
    def _show(self, message: OutboxLoaded) -> None:
        zone = self.context.zone
        now = message.now or self.context.clock.now()
        table = self.query_one(DataTable)
        keep = table.cursor_row
        table.clear()
        self.rows = message.rows
        for row in message.rows:
            when = (row.sent_at or row.created_at).astimezone(zone).strftime("%Y-%m-%d %H:%M")
            table.add_row(
                Text(state_text(row, now, zone), style="dim" if row.demo else STATE_STYLE.get(row.state, "")),
                when,
                terminal_safe(row.account, max_length=20),
                terminal_safe(", ".join(row.recipients), max_length=40),
                terminal_safe(row.subject or "(no subject)", max_length=60),
                key=str(row.id),
            )
        if message.rows:
            table.move_cursor(row=min(keep, len(message.rows) - 1))
        self.crm_app.update_status(outbox_counts(message.rows))
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
        """R, S, D on the highlighted mail; D (the mail is gone for good) asks first: y drops, n or Esc keeps."""

        row = self.current()
        if row is None:
            return
        if decision != "drop" or row.state == "sent":  # a sent mail cannot be dropped: that says why
            self._decide(row, decision)
            return

        named = mail_named(row.subject or "", row.recipients)
        if row.state == "partial":
            title, body = f"Let the refused addresses of {named} go?", "It stays sent to the others."
        else:
            title, body = f"Drop {named}?", "It leaves the outbox and is not sent; this cannot be undone."

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._decide(row, decision)

        self.app.push_screen(ConfirmDialog(title, body, "Drop"), confirmed)

    def _decide(self, row: Any, decision: str) -> None:

        now = self.context.clock.now()
        self.write_in_worker(
            lambda session: outbox.decide(session, row.id, decision, now=now),
            lambda _: self._decided(row, decision),
        )

    def _decided(self, row: Any, decision: str) -> None:

        said = {
            "resend": "queued again" + (" for the refused addresses" if row.state == "partial" else ""),
            "sent": "counted as sent",
            "drop": "refused addresses let go" if row.state == "partial" else "dropped",
        }[decision]
        self.notify(f"{outbox.mail_named(row.subject or '', row.recipients)}: {said}")
        if decision == "resend":
            self.crm_app.flush_outbox()
        self.reload()

    def action_take_back(self) -> None:
        """u: the highlighted mail, while it waits to go out, leaves the outbox and is a draft again."""

        row = self.current()
        if row is None:
            return
        now = self.context.clock.now()

        def taken_back(_: Any) -> None:
            queued = getattr(self.app, "just_queued", None)
            if queued is not None and queued.item_id == row.id:
                self.crm_app.just_queued = None
            to = terminal_safe(", ".join(row.recipients), max_length=60)
            self.notify(f"Taken back: the mail to {to} is a draft again (R in the inbox lists the drafts).")
            self.reload()

        self.write_in_worker(lambda session: outbox.take_back_item(session, row.id, now=now), taken_back)

    def action_deliver(self) -> None:
        """x: every queued mail goes now, also one waiting for its next try or its send delay; then it says how
        it went (or that nothing waits to go out)."""
        if self.context.demo:
            self.notify("Demo mode: nothing is delivered; the outbox holds.")
            return
        self.crm_app.update_status("outbox: delivering now…")
        self._deliver_now()

    @work(thread=True, exclusive=True, group="outbox-deliver", exit_on_error=False)
    def _deliver_now(self) -> None:
        # the mail modules load when first used, not with the app (start-up)
        from crm_tui.mail.outbox import flush

        context = self.context
        database = context.database()
        with database.read() as session:
            now = context.clock.now()
            waiting = outbox.due(session, now=now, at_once=True) or outbox.cut_off(session, now=now)
        if not waiting:
            self.post_message(Delivered("nothing waits to go out", False))
            return
        try:
            report = flush(database, clock=context.clock, at_once=True)
        except CrmError as exc:
            self.post_message(Delivered(f"nothing was delivered: {exc}", True))
            return
        self.post_message(Delivered(report.summary(context.zone), report.held_back))

    @on(Delivered)
    def _delivered(self, message: Delivered) -> None:
        said = terminal_safe(message.said, max_length=400)
        self.notify(f"Outbox: {said}", severity="warning" if message.trouble else "information", timeout=10)
        self.crm_app.update_status(f"outbox: {said}")
        self.reload()

    @on(DataTable.RowSelected)
    def _selected(self, event: DataTable.RowSelected) -> None:
        event.stop()  # Enter on the list (the table takes the key): the mail opens to read
        self.action_read()

    def action_read(self) -> None:
        """Enter: the highlighted mail as it goes out (its headers, recipients with their outcome, body)."""
        row = self.current()
        if row is not None:
            self.app.push_screen(OutboxMailScreen(row.id))

    def action_back(self) -> None:
        self.app.pop_screen()


class OutboxMailScreen(CrmScreen):
    """One outbox mail to read, read-only: its state, headers, each recipient with what became of it, the
    attachments and the text. q or Esc goes back."""

    BINDINGS = [
        Binding("q,escape", "back", "Back", id="outbox_mail.back"),
        Binding("j", "scroll(1)", "Down", show=False, id="outbox_mail.down"),
        Binding("k", "scroll(-1)", "Up", show=False, id="outbox_mail.up"),
        Binding("space", "page", "Page down", show=False, id="outbox_mail.page"),
    ]

    def __init__(self, item_id: int) -> None:
        super().__init__()
        self.item_id = item_id

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="outbox-mail"):
            yield Static(id="outbox-mail-text")
        yield StatusBar()
        yield Footer()

    def on_mount(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, group="outbox-mail", exit_on_error=False)
    def _load(self) -> None:

        context = self.context
        try:
            with context.database().read() as session:
                found = outbox.message_of(session, self.item_id, now=context.clock.now())
        except CrmError as exc:
            self.post_message(OutboxMailLoaded(Text(terminal_safe(str(exc)))))
            return
        self.post_message(OutboxMailLoaded(outbox_mail_text(found, context.zone, context.clock.now())))

    @on(OutboxMailLoaded)
    def _show(self, message: OutboxMailLoaded) -> None:
        self.query_one("#outbox-mail-text", Static).update(message.text)

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_scroll(self, step: int) -> None:
        self.query_one("#outbox-mail", VerticalScroll).scroll_relative(y=step * 3, animate=False)

    def action_page(self) -> None:
        self.query_one("#outbox-mail", VerticalScroll).scroll_page_down(animate=False)


def outbox_mail_text(found: Any, zone: Any, now: Any) -> Text:
    """An outbox mail as text: nothing in it reaches the terminal unsanitized, none of it as markup."""
    # the mail modules load when first used, not with the app (start-up)
    from crm_tui.mail.parse import parse_safely

    row = found.row
    data = parse_safely(found.raw)
    text = Text()
    text.append("Outbox: ", style="dim")
    text.append(state_text(row, now, zone), style=STATE_STYLE.get(row.state, ""))
    if row.attempts:
        text.append(f"   ({row.attempts} {'try' if row.attempts == 1 else 'tries'})", style="dim")
    text.append("\n")
    if row.explanation:
        text.append(terminal_safe(row.explanation, single_line=False) + "\n", style="italic")
    text.append("\n")

    def header(name: str, value: str) -> None:
        text.append(f"{name + ':':<9}", style="bold")
        text.append(terminal_safe(value, max_length=400) + "\n")

    sender = f"{data.from_name} <{data.from_address}>" if data.from_name else data.from_address
    header("From", sender or row.account)
    for name, values in (("To", data.to), ("Cc", data.cc)):
        if values:
            header(name, ", ".join(values))
    header("Subject", data.subject or "(no subject)")
    when = (data.sent_at or row.created_at).astimezone(zone)
    header("Date", f"{when:%a %d %b %Y %H:%M}")
    text.append("\nRecipients\n", style="bold")
    for address, outcome, reason in found.outcomes:
        style = {"delivered": "green", "refused": "red"}.get(outcome, "cyan")
        text.append(f"  {terminal_safe(address, max_length=120)}  ")
        text.append(outcome, style=style)
        if reason:
            text.append(f"  {terminal_safe(reason, max_length=200)}", style="dim")
        text.append("\n")
    if data.attachments:
        text.append("\nAttachments: ", style="bold")
        text.append(
            ", ".join(terminal_safe(name or "(unnamed)", max_length=80) for name, _, _ in data.attachments)
        )
        text.append("\n")
    text.append("\n")
    text.append(terminal_safe(data.body_text, single_line=False))
    return text
