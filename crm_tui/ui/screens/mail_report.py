"""The sent-mail report (``r`` in the outbox, the palette's "Sent-mail report"): for one user and a period of
days, how many recipients of their mail it was sent to, failed for, were refused, bounced and replied
(core/services/mail_outcomes.py says what each means); Enter on a number lists the recipients behind it; u
another user, p another period ([ and ] the month before and after), x the rows as CSV to a file (0600)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Label, Static

from crm_tui.core.errors import CrmError
from crm_tui.core.sanitize import terminal_safe
from crm_tui.core.services import mail_outcomes
from crm_tui.core.services.mail_outcomes import KIND_MEANING, KINDS, ReportUser, SentMailReport
from crm_tui.ui.messages import SentReportLoaded
from crm_tui.ui.screens.base import CrmScreen
from crm_tui.ui.screens.dialogs import ChoiceDialog, PromptDialog
from crm_tui.ui.widgets.status_bar import StatusBar

KIND_STYLE = {
    "sent": "green",
    "failed": "red",
    "refused": "bold red",
    "bounced": "magenta",
    "replied": "cyan",
}


def month_of(day: date) -> tuple[date, date]:
    """The first and last day of ``day``'s month."""
    first = day.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return first, following - timedelta(days=1)


def parse_period(text: str) -> tuple[date, date]:
    """ "2026-11-01 2026-11-30" (or "2026-11-01..2026-11-30", "2026-11-01 - 2026-11-30"), or one day."""
    parts = text.replace("..", " ").replace(" - ", " ").replace(",", " ").split()
    if len(parts) not in (1, 2):
        raise CrmError("type the first and the last day: 2026-11-01 2026-11-30")
    try:
        days = [date.fromisoformat(part) for part in parts]
    except ValueError:
        raise CrmError("a day is written YYYY-MM-DD: 2026-11-01 2026-11-30") from None
    start, end = days[0], days[-1]
    if end < start:
        raise CrmError(f"the period ends ({end:%Y-%m-%d}) before it starts ({start:%Y-%m-%d})")
    return start, end


class SentReportScreen(CrmScreen):
    DEFAULT_CSS = """
    SentReportScreen #mail-report-rows { height: 1fr; }
    SentReportScreen #mail-report-note { height: auto; }
    """

    BINDINGS = [
        Binding("q,escape", "back", "Back", id="mail_report.back"),
        Binding("j", "cursor(1)", "Down", show=False, id="mail_report.down"),
        Binding("k", "cursor(-1)", "Up", show=False, id="mail_report.up"),
        Binding("enter", "show_list", "List behind the number", id="mail_report.list"),
        Binding("u", "choose_user", "Report of user", id="mail_report.user"),
        Binding("p", "choose_period", "Report period", id="mail_report.period"),
        Binding("left_square_bracket", "month(-1)", "Month before", id="mail_report.previous_month"),
        Binding("right_square_bracket", "month(1)", "Month after", id="mail_report.next_month"),
        Binding("x", "export", "Export report as CSV", id="mail_report.export"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.start = self.end = date.min  # this month so far, from the clock, once mounted
        self.user_email: str | None = None
        self.users: list[ReportUser] = []
        self.report: SentMailReport | None = None
        self.kind = "sent"
        self._request = 0

    def compose(self) -> ComposeResult:
        yield Label("", id="mail-report-title")
        yield DataTable(id="mail-report-counts", cursor_type="row", zebra_stripes=True)
        yield Label("", id="mail-report-list-title")
        yield DataTable(id="mail-report-rows", cursor_type="row", zebra_stripes=True)
        yield Static(id="mail-report-note")
        yield StatusBar()
        yield Footer()

    def on_mount(self) -> None:
        counts = self.query_one("#mail-report-counts", DataTable)
        counts.add_columns("Outcome", "Recipients", "What it means")
        counts.styles.height = len(KINDS) + 1
        self.query_one("#mail-report-rows", DataTable).add_columns("When", "Recipient", "Subject", "Detail")
        counts.focus()
        today = self.context.today()
        self.start, self.end = today.replace(day=1), today
        self.reload()

    def refresh_data(self) -> None:
        self.reload()

    def reload(self) -> None:
        self._request += 1
        self._load(self.user_email, self.start, self.end, self._request)

    @work(thread=True, exclusive=True, group="mail-report", exit_on_error=False)
    def _load(self, email: str | None, start: date, end: date, request: int) -> None:
        context = self.context
        me = context.me_id()
        with context.database().read() as session:
            users = mail_outcomes.report_users(session)
            if email is None:
                email = next((u.email for u in users if u.id == me), users[0].email if users else None)
            report = (
                mail_outcomes.sent_mail_report(
                    session, user_email=email, start=start, end=end, zone=context.zone
                )
                if email is not None
                else None
            )
        self.post_message(SentReportLoaded(report, users, request))

    @on(SentReportLoaded)
    def _show(self, message: SentReportLoaded) -> None:
        if message.request != self._request:
            return  # another user or period is on its way
        self.users = message.users
        self.report = message.report
        title = Text(" Sent-mail report ", style="reverse bold")
        report = self.report
        counts = self.query_one("#mail-report-counts", DataTable)
        keep = counts.cursor_row
        counts.clear()
        if report is None:
            title.append("  no user has a mail account yet (Settings > Mail accounts)", style="dim")
            self.query_one("#mail-report-title", Label).update(title)
            self._show_list()
            return
        self.user_email = report.user_email
        title.append(
            f" {terminal_safe(report.user_name, max_length=40)} <{terminal_safe(report.user_email)}>, "
        )
        title.append(f"{report.start:%Y-%m-%d} to {report.end:%Y-%m-%d}", style="bold")
        title.append("  Enter list · u user · p period · [ ] month · x CSV · q back", style="dim")
        self.query_one("#mail-report-title", Label).update(title)
        numbers = report.counts
        for kind in KINDS:
            counts.add_row(
                Text(kind, style=KIND_STYLE[kind]), Text(str(numbers[kind]), style="bold"), KIND_MEANING[kind],
                key=kind,
            )  # fmt: skip
        counts.move_cursor(row=min(keep, len(KINDS) - 1))
        self._show_list()
        self.crm_app.update_status(
            "sent-mail report: " + ", ".join(f"{numbers[kind]} {kind}" for kind in KINDS)
        )

    def _show_list(self) -> None:
        """The recipients behind the chosen number (``self.kind``)."""
        rows = self.query_one("#mail-report-rows", DataTable)
        rows.clear()
        report = self.report
        shown = report.rows_of(self.kind) if report is not None else ()
        zone = self.context.zone
        for index, row in enumerate(shown):
            rows.add_row(
                row.at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
                terminal_safe(row.recipient, max_length=40),
                terminal_safe(row.subject, max_length=50),
                terminal_safe(row.detail, max_length=80),
                key=str(index),
            )
        heading = Text(f" {self.kind}: {len(shown)} ", style=f"reverse {KIND_STYLE[self.kind]}")
        heading.append("  " + ("none" if not shown else KIND_MEANING[self.kind]), style="dim")
        self.query_one("#mail-report-list-title", Label).update(heading)

    @on(DataTable.RowSelected, "#mail-report-counts")
    def _selected(self, event: DataTable.RowSelected) -> None:
        event.stop()  # Enter on the numbers (the table takes the key): the list behind the number
        self.action_show_list()

    def action_show_list(self) -> None:
        counts = self.query_one("#mail-report-counts", DataTable)
        if not counts.has_focus or self.report is None:
            return
        self.kind = KINDS[min(max(counts.cursor_row, 0), len(KINDS) - 1)]
        self._show_list()
        rows = self.query_one("#mail-report-rows", DataTable)
        if rows.row_count:
            rows.focus()

    def action_back(self) -> None:
        rows = self.query_one("#mail-report-rows", DataTable)
        if rows.has_focus:
            self.query_one("#mail-report-counts", DataTable).focus()
            return
        self.dismiss()

    def action_cursor(self, step: int) -> None:
        table = (
            self.focused
            if isinstance(self.focused, DataTable)
            else self.query_one("#mail-report-counts", DataTable)
        )
        if step > 0:
            table.action_cursor_down()
        else:
            table.action_cursor_up()

    def action_choose_user(self) -> None:
        if not self.users:
            self.notify("No user has a mail account yet.")
            return

        def chosen(email: str | None) -> None:
            if email:
                self.user_email = email
                self.reload()

        choices = [(u.email, f"{u.name} <{u.email}>") for u in self.users]
        self.app.push_screen(ChoiceDialog("Sent mail of", choices, selected=self.user_email), chosen)

    def action_choose_period(self) -> None:
        def entered(text: str | None) -> None:
            if not text:
                return
            try:
                self.start, self.end = parse_period(text)
            except CrmError as exc:
                self.notify(str(exc), severity="warning")
                return
            self.reload()

        self.app.push_screen(
            PromptDialog(
                "Period: the first and the last day",
                placeholder="2026-11-01 2026-11-30",
                value=f"{self.start:%Y-%m-%d} {self.end:%Y-%m-%d}",
            ),
            entered,
        )

    def action_month(self, step: int) -> None:
        anchor = self.start.replace(day=1)
        anchor = (anchor - timedelta(days=1)) if step < 0 else (anchor + timedelta(days=32))
        self.start, self.end = month_of(anchor)
        self.reload()

    def action_export(self) -> None:
        report = self.report
        if report is None:
            self.notify("Nothing to export: no user has a mail account yet.")
            return
        zone = self.context.zone
        written: list[Path] = []

        def save(path: str) -> str | None:
            # In the dialog's worker; a path that cannot be written keeps the dialog open with the reason.
            try:
                written.append(mail_outcomes.write_report_csv(report, Path(path.strip()), zone))
            except CrmError as exc:
                return str(exc)
            return None

        def done(path: str | None) -> None:
            if path and written:
                self.notify(f"Wrote {len(report.rows)} rows to {terminal_safe(str(written[-1]))}.")

        name = f"sent-mail-{report.start:%Y-%m-%d}-{report.end:%Y-%m-%d}.csv"
        self.app.push_screen(
            PromptDialog("Export the report as CSV to", placeholder="path of the file", value=str(Path.home() / name),
                         save=save),
            done,
        )  # fmt: skip
