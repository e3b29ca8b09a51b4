"""The Calendar mode: activities by week (placed by day and time), day and month; plan, edit, complete, cancel."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import DataTable, Footer, Label, OptionList
from textual.widgets.option_list import Option

from crm_tui.core.clock import local_day_bounds
from crm_tui.core.sanitize import terminal_safe
from crm_tui.core.services import activities, attachments, configuration
from crm_tui.core.services.activities import activity_record
from crm_tui.core.types import RecordRef, RecordType
from crm_tui.core.wording import plural
from crm_tui.ui.forms.activities import activity_form
from crm_tui.ui.messages import CalendarLoaded
from crm_tui.ui.screens.attachments import attach_file
from crm_tui.ui.screens.base import CrmScreen
from crm_tui.ui.screens.compose import write_invitation
from crm_tui.ui.widgets.option_list import Options
from crm_tui.ui.widgets.status_bar import StatusBar

# Entries per day in the week view (about what a column shows; rendering is what costs). The day view lists all.
DAY_COLUMN_LIMIT = 8

ICON = {"call": "☎", "meeting": "◉", "task": "☐", "email": "✉", "other": "·"}


@dataclass(frozen=True)
class Entry:
    id: int
    day: date
    start: str
    end: str
    type: str
    subject: str
    person: str
    owner: str
    status: str
    attachments: int = 0  # the files it carries (A attaches one)


class DayColumn(Vertical):
    """One day of the day and week views (``.day``): its header and its activities; ``day`` says which."""

    def __init__(self, day: date, *children: Widget) -> None:
        super().__init__(*children, classes="day")
        self.day = day


class CalendarScreen(CrmScreen):
    BINDINGS = [
        Binding("w", "view('week')", "Week", id="calendar.week"),
        Binding("d", "view('day')", "Day", id="calendar.day"),
        Binding("m", "view('month')", "Month", id="calendar.month"),
        Binding("t", "today", "Today", show=False, id="calendar.today"),
        Binding("right_square_bracket", "period(1)", "Next", show=False, id="calendar.next"),
        Binding("left_square_bracket", "period(-1)", "Previous", show=False, id="calendar.previous"),
        Binding("h,left", "day(-1)", "Previous day", show=False, id="calendar.left"),
        Binding("l,right", "day(1)", "Next day", show=False, id="calendar.right"),
        Binding("j", "cursor(1)", "Down", show=False, id="calendar.down"),
        Binding("k", "cursor(-1)", "Up", show=False, id="calendar.up"),
        Binding("a", "add", "Add activity", id="calendar.add"),
        Binding("e,enter", "edit", "Edit", show=False, id="calendar.edit"),
        Binding("x", "done", "Done", id="calendar.done"),
        Binding("X", "cancel_activity", "Cancel activity", id="calendar.cancel"),
        Binding("o", "owner", "Owner filter", show=False, id="calendar.owner"),
        Binding("H", "toggle_cancelled", "Hide cancelled", show=False, id="calendar.hide_cancelled"),
        Binding("i", "invite", "Send invitation", show=False, id="calendar.invite"),
        Binding("A", "attach", "Attach file", show=False, id="calendar.attach"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.view = "week"
        self.anchor_date: date | None = None
        self.owner_id: int | None = None
        self.owners: list[tuple[int, str]] = []
        self.hide_cancelled = False
        self.entries: list[Entry] = []
        self.first = date.today()
        self.focus_day: date | None = None
        self._request = 0  # superseded thread workers still deliver: only the newest load is shown
        self._pending_select: int | None = None  # an activity to select that no load has shown yet
        self._active_day = 0  # the day column the user works in (focus follows a moment later)

    def compose(self) -> ComposeResult:
        yield Label("", id="calendar-title")
        yield Horizontal(id="calendar")
        yield StatusBar()
        yield Footer()

    def on_mount(self) -> None:
        self.anchor_date = self.context.today()
        self.focus_day = self.anchor_date
        self.reload()

    # --- loading ---

    def _range(self) -> tuple[date, int]:
        anchor = self.anchor_date or date.today()
        if self.view == "day":
            return anchor, 1
        if self.view == "week":
            return anchor - timedelta(days=anchor.weekday()), 7
        first_of_month = anchor.replace(day=1)
        start = first_of_month - timedelta(days=first_of_month.weekday())
        return start, 42

    def refresh_data(self) -> None:
        self.reload()

    def reload(self, select: int | None = None) -> None:
        first, days = self._range()
        self._request += 1
        if select is not None:
            # Kept until a load shows it: a reload meanwhile (another writer's change) must not put the
            # highlight back on what was selected before, where the next key would act on it.
            self._pending_select = select
        chosen = self._pending_select if self._pending_select is not None else self.selected_id()
        self._load(first, days, self.owner_id, self.hide_cancelled, chosen, self._request)

    @work(thread=True, exclusive=True, group="calendar", exit_on_error=False)
    def _load(
        self,
        first: date,
        days: int,
        owner_id: int | None,
        hide_cancelled: bool,
        select: int | None,
        request: int,
    ) -> None:

        context = self.context
        zone = context.zone
        start = local_day_bounds(first, zone)[0]
        end = local_day_bounds(first + timedelta(days=days - 1), zone)[1]
        statuses = ["planned", "done"] if hide_cancelled else None
        with context.database().read() as session:
            rows = activities.list_activities(
                session, start=start, end=end, owner_id=owner_id, statuses=statuses, limit=5000
            )
            owners = [(user.id, user.name) for user in configuration.user_views(session, me=None)]
            carried = attachments.document_counts(session, RecordType.ACTIVITY, (r.id for r in rows))
        entries = [
            Entry(
                r.id,
                r.start_at.astimezone(zone).date(),
                r.start_at.astimezone(zone).strftime("%H:%M"),
                r.end_at.astimezone(zone).strftime("%H:%M") if r.end_at else "",
                r.type,
                r.subject,
                r.person_name or "",
                r.owner_name or "",
                r.status,
                carried.get(r.id, 0),
            )
            for r in rows
        ]
        loaded = CalendarLoaded(first, days, entries, owners, select)
        loaded.request = request
        self.post_message(loaded)

    @on(CalendarLoaded)
    async def _show(self, message: CalendarLoaded) -> None:
        if message.request != self._request:
            return
        self.first, self.entries, self.owners = message.first, message.entries, message.owners
        self._title()
        container = self.query_one("#calendar", Horizontal)
        await container.remove_children()
        if self.view == "month":
            await container.mount(self._month_table(message))
            self._focus_month()
        else:
            columns = []
            for offset in range(message.days):
                day = message.first + timedelta(days=offset)
                columns.append(self._day_column(day, [e for e in message.entries if e.day == day]))
            await container.mount_all(columns)
            self._focus_entry(message.select)
        self._pending_select = None
        shown = sum(1 for e in message.entries if e.status != "cancelled")
        self.crm_app.update_status(
            plural(shown, "activity")
            + (f", {len(message.entries) - shown} cancelled" if len(message.entries) > shown else "")
        )

    def _title(self) -> None:
        first, days = self._range()
        last = first + timedelta(days=days - 1)
        if self.view == "day":
            label = f"{first:%A %d %B %Y}"
        elif self.view == "week":
            label = f"Week {first.isocalendar()[1]}: {first:%d %b} – {last:%d %b %Y}"
        else:
            label = f"{(self.anchor_date or first):%B %Y}"
        owner = next((name for uid, name in self.owners if uid == self.owner_id), "everyone")
        text = Text(f" {label} ", style="reverse bold")
        text.append(f"  owner: {terminal_safe(owner)}", style="cyan")
        if self.hide_cancelled:
            text.append("  (cancelled hidden)", style="dim")
        text.append("   w/d/m view · [ ] move · t today · o owner · H cancelled", style="dim")
        self.query_one("#calendar-title", Label).update(text)

    def _entry_text(self, entry: Entry, wide: bool) -> Text:
        style = "strike dim" if entry.status == "cancelled" else ("dim" if entry.status == "done" else "")
        text = Text(f"{entry.start}", style="cyan")
        if entry.end and wide:
            text.append(f"–{entry.end}", style="cyan")
        text.append(f" {ICON.get(entry.type, '·')} ")
        if entry.attachments:
            text.append(attachments.attachment_mark(entry.attachments) + " ", style="yellow")
        text.append(terminal_safe(entry.subject, max_length=60 if wide else 22), style=style)
        if entry.status == "done":
            text.append(" ✓", style="green")
        if entry.status == "cancelled":
            text.append(" (cancelled)", style="red dim")
        if entry.person:
            text.append(
                ("  " if wide else "\n   ") + terminal_safe(entry.person, max_length=40 if wide else 20),
                style="dim",
            )
        if wide and entry.owner:
            text.append(f"  · {terminal_safe(entry.owner)}", style="dim")
        return text

    def _day_column(self, day: date, entries: list[Entry]) -> DayColumn:
        today = self.context.today()
        header = Text(f"{day:%a %d.%m}", style="bold reverse" if day == today else "bold")
        wide = self.view == "day"
        shown = entries if wide else entries[:DAY_COLUMN_LIMIT]
        options = [Option(self._entry_text(e, wide), id=str(e.id)) for e in shown]
        if len(entries) > len(shown):
            options.append(
                Option(Text(f"… {len(entries) - len(shown)} more (d: day view)", style="dim"), disabled=True)
            )
        return DayColumn(day, Label(header, classes="day-header"), Options(*options, classes="day-list"))

    def _month_table(self, message: CalendarLoaded) -> DataTable[Text]:
        table: DataTable[Text] = DataTable(id="month", cursor_type="cell", show_row_labels=False)
        for name in ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"):
            table.add_column(name, width=17)  # seven columns fit 140 terminal columns
        anchor = self.anchor_date or message.first
        for week in range(6):
            cells = []
            for weekday in range(7):
                day = message.first + timedelta(days=week * 7 + weekday)
                items = [e for e in message.entries if e.day == day and e.status != "cancelled"]
                text = Text(f"{day.day:>2}", style="bold" if day.month == anchor.month else "dim")
                if items:
                    text.append(f" · {len(items)} act.", style="cyan")
                for item in items[:2]:
                    text.append(
                        "\n" + f"{item.start} " + terminal_safe(item.subject, max_length=11), style="dim"
                    )
                cells.append(text)
            table.add_row(*cells, height=3, key=str(week))
        return table

    def _focus_month(self) -> None:
        table = self.query_one("#month", DataTable)
        table.focus()
        anchor = self.anchor_date or self.first
        offset = (anchor - self.first).days
        table.move_cursor(row=offset // 7, column=offset % 7)

    def _lists(self) -> list[OptionList]:
        return list(self.query(".day-list").results(OptionList))

    def _focus_entry(self, select: int | None) -> None:
        lists = self._lists()
        if not lists:
            return
        target = 0
        if self.focus_day is not None:
            for index, column in enumerate(self.query(".day")):
                if getattr(column, "day", None) == self.focus_day:
                    target = index
        highlight = 0
        if select is not None:
            for index, option_list in enumerate(lists):
                ids = [option_list.get_option_at_index(i).id for i in range(option_list.option_count)]
                if str(select) in ids:
                    target, highlight = index, ids.index(str(select))
        self._active_day = target
        lists[target].focus()
        if lists[target].option_count:
            lists[target].highlighted = highlight

    def selected_id(self) -> int | None:
        lists = self._lists()
        if not lists or self.view == "month":
            return None
        option_list = lists[min(self._active_day, len(lists) - 1)]
        if option_list.highlighted is None or not option_list.option_count:
            return None
        option = option_list.get_option_at_index(option_list.highlighted)
        return int(option.id) if option.id else None

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        lists = self._lists()
        # A focus event can arrive after focus has moved on (keys queue faster than focus settles): only the
        # widget that still has the focus may say where the user is.
        if event.widget in lists and event.widget.has_focus:
            self._active_day = lists.index(event.widget)

    def _focused_day(self) -> date | None:
        if self.view == "month" and self.query("#month"):
            table = self.query_one("#month", DataTable)
            row, col = table.cursor_coordinate
            return self.first + timedelta(days=row * 7 + col)
        columns = list(self.query(".day"))
        if columns:
            return getattr(columns[min(self._active_day, len(columns) - 1)], "day", None)
        return self.focus_day

    # --- navigation ---

    def action_view(self, view: str) -> None:
        day = self._focused_day()
        if day is not None:
            self.anchor_date = self.focus_day = day
        self.view = view
        self.reload()

    def action_today(self) -> None:
        self.anchor_date = self.focus_day = self.context.today()
        self.reload()

    def action_period(self, step: int) -> None:
        anchor = self.anchor_date or date.today()
        if self.view == "day":
            anchor += timedelta(days=step)
        elif self.view == "week":
            anchor += timedelta(days=7 * step)
        else:
            month = anchor.month - 1 + step
            anchor = date(anchor.year + month // 12, month % 12 + 1, 1)
        self.anchor_date = self.focus_day = anchor
        self.reload()

    def _month_grid(self) -> DataTable[Text] | None:
        """The month's grid; None while a switch to the month view is still loading (keys typed ahead)."""
        found = self.query("#month")
        return found.first(DataTable) if found else None

    def action_day(self, step: int) -> None:
        if self.view == "month":
            table = self._month_grid()
            if table is not None:
                table.action_cursor_right() if step > 0 else table.action_cursor_left()
            return
        lists = self._lists()
        target = self._active_day + step
        if 0 <= target < len(lists):
            self._active_day = target
            lists[target].focus()
            if lists[target].highlighted is None and lists[target].option_count:
                lists[target].highlighted = 0
            self.focus_day = self._focused_day()
        else:
            self.focus_day = (self._focused_day() or date.today()) + timedelta(days=step)
            self.anchor_date = self.focus_day
            self.reload()

    def action_cursor(self, step: int) -> None:
        if self.view == "month":
            table = self._month_grid()
            if table is not None:
                table.action_cursor_down() if step > 0 else table.action_cursor_up()
            return
        lists = self._lists()
        if lists:
            option_list = lists[min(self._active_day, len(lists) - 1)]
            option_list.action_cursor_down() if step > 0 else option_list.action_cursor_up()

    @on(DataTable.CellSelected, "#month")
    def _open_day(self) -> None:
        self.action_view("day")

    def action_owner(self) -> None:
        me = self.context.me_id()
        cycle: list[int | None] = [None] + ([me] if me else []) + [uid for uid, _ in self.owners if uid != me]
        index = cycle.index(self.owner_id) if self.owner_id in cycle else 0
        self.owner_id = cycle[(index + 1) % len(cycle)]
        self.reload()

    def action_toggle_cancelled(self) -> None:
        self.hide_cancelled = not self.hide_cancelled
        self.reload()

    # --- activity actions ---

    def _open_form(self, activity_id: int | None, prefill: dict[str, str]) -> None:
        context = self.context
        self.open_form(
            lambda: activity_form(context, activity_id, prefill), noun="activity", on_saved=self._show_saved
        )

    def _show_saved(self, activity_id: int) -> None:
        """Show what was just planned: its day, in the current view."""

        context = self.context
        with context.database().read() as session:
            activity = activity_record(session, activity_id)
            day = activity.start_at.astimezone(context.zone).date() if activity else None
        if day is not None:
            self.anchor_date = self.focus_day = day
        self.reload(select=activity_id)

    def action_add(self) -> None:
        day = self._focused_day() or self.context.today()
        self._open_form(None, {"start_at": f"{day.isoformat()} 09:00"})

    def action_edit(self) -> None:
        activity_id = self.selected_id()
        if activity_id is not None:
            self._open_form(activity_id, {})

    def _change(self, action: str) -> None:
        activity_id = self.selected_id()
        if activity_id is None:
            return

        context = self.context
        change = activities.complete_activity if action == "done" else activities.cancel_activity
        self.write_in_worker(
            lambda session: change(session, activity_id, now=context.clock.now()),
            lambda _: self.reload(select=activity_id),
        )

    def action_invite(self) -> None:
        """Invite a meeting's attendees: a mail with the iCalendar invitation attached, to check and send."""
        activity_id = self.selected_id()
        if activity_id is not None:
            write_invitation(self, activity_id)

    def action_attach(self) -> None:
        """A file to the selected activity (the form, e, lists, opens and removes its attachments)."""
        activity_id = self.selected_id()
        if activity_id is not None:
            attach_file(
                self, RecordRef(RecordType.ACTIVITY, activity_id), lambda _: self.reload(select=activity_id)
            )

    def action_done(self) -> None:
        self._change("done")

    def action_cancel_activity(self) -> None:
        self._change("cancel")
