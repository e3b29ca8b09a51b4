"""The deal screen: a deal's whole story on one screen (Enter on a board card, "Open deal..." in the palette).

Left, the facts: stage and sub-states, amount, owner, the customer and partners, every person with their role on
the deal, custom fields, what automation will do next and when, and the stage history with how long each stay
lasted. Right, one timeline, newest first: mail threads, activities, comments, documents and stored reports,
quotes, stage moves and what automation fired. The deal's actions are a key each (see BINDINGS)."""

from __future__ import annotations

from datetime import tzinfo
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Footer, Input, Label, Static

from crm_tui.core.errors import CrmError
from crm_tui.core.sanitize import terminal_safe
from crm_tui.core.services import deal_story
from crm_tui.core.services.attachments import add_comment, add_document
from crm_tui.core.services.deal_story import DealStory, TimelineCursor, TimelineItem
from crm_tui.core.services.opportunities import CONTACT_ROLES, set_contact_role
from crm_tui.core.types import RecordRef, RecordType
from crm_tui.ui import forms
from crm_tui.ui.app_access import app_context
from crm_tui.ui.forms.activities import activity_form, activity_prefill
from crm_tui.ui.forms.opportunities import opportunity_form
from crm_tui.ui.messages import DealsFound, DealStoryLoaded, TimelinePageLoaded
from crm_tui.ui.screens.attachments import DocumentsScreen
from crm_tui.ui.screens.base import CrmScreen
from crm_tui.ui.screens.compose import write_from_record
from crm_tui.ui.screens.deal_moves import DealMoves
from crm_tui.ui.screens.dialogs import ChoiceDialog, PromptDialog
from crm_tui.ui.screens.followers import choose_follower
from crm_tui.ui.screens.inbox import MessageReader
from crm_tui.ui.screens.pickers import Picker
from crm_tui.ui.widgets.status_bar import StatusBar

ICONS = {
    "mail": "✉",
    "activity": "◆",
    "comment": "✎",
    "document": "📎",
    "report": "▤",
    "quote": "€",
    "stage": "➜",
    "substate": "◇",
    "automation": "⚙",
}


NO_ROLE = "-"  # the "no role" choice of r


def duration_text(seconds: int) -> str:
    """A stay's length as a person says it: "3 d 4 h", "5 h 10 min", "12 min"."""
    minutes = seconds // 60
    days, hours = divmod(minutes // 60, 24)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes % 60} min" if minutes % 60 else f"{hours} h"
    return f"{minutes} min"


def story_text(story: DealStory, zone: tzinfo) -> Text:
    """The facts pane: everything about the deal but its timeline."""
    text = Text()
    text.append(terminal_safe(story.title) + "\n", style="bold")
    text.append(f"opportunity:{story.id}\n", style="dim")
    stage_style = {"won": "bold green", "lost": "bold red"}.get(story.stage_kind, "bold cyan")
    text.append(f"{terminal_safe(story.pipeline_name)} › ", style="dim")
    text.append(terminal_safe(story.stage_name), style=stage_style)
    text.append(f"  {story.probability}%\n", style="dim")
    for name, is_open in story.substates:
        text.append(f"  {'◆' if is_open else '◇'} {terminal_safe(name)}", style="green" if is_open else "dim")
        text.append("  open\n" if is_open else "\n", style="dim")
    if story.lost_reason:
        text.append("Lost reason: ", style="dim")
        text.append(terminal_safe(story.lost_reason) + "\n", style="red")

    def fact(label: str, value: str | None) -> None:
        if value:
            text.append(f"{label}: ", style="dim")
            text.append(terminal_safe(value) + "\n")

    fact("Amount", story.amount)
    fact("Expected close", story.expected_close.isoformat() if story.expected_close else None)
    fact(
        "Owner", f"{story.owner} <{story.owner_email}>" if story.owner and story.owner_email else story.owner
    )
    fact("Followers", ", ".join(story.followers))
    for label, value in story.custom:
        fact(label, value)
    if story.copied_from:
        fact("Copied from", story.copied_from[1])
    if story.description:
        text.append("\n" + terminal_safe(story.description, max_length=600) + "\n")
    if story.parties:
        text.append("\nOrganizations\n", style="bold underline")
        for party in story.parties:
            text.append(f"  {party.role:<10}", style="dim")
            text.append(terminal_safe(party.name) + "\n", style="bold")
            for line in (party.address, party.phone, party.website):
                if line:
                    text.append(f"            {terminal_safe(line)}\n", style="dim")
    text.append("\nPeople\n", style="bold underline")
    if not story.people:
        text.append("  nobody yet (e adds contacts)\n", style="dim")
    for person in story.people:
        text.append("  ★ " if person.is_primary else "    ", style="yellow")
        text.append(terminal_safe(person.name), style="bold")
        role = person.role or ("primary contact" if person.is_primary else "")
        if role:
            text.append(f"  {role}", style="magenta")
        text.append("\n")
        for line in (person.job_title, ", ".join(person.emails), ", ".join(person.phones), person.address):
            if line:
                text.append(f"      {terminal_safe(line)}\n", style="dim")
    text.append("\nAutomation waiting\n", style="bold underline")
    if not story.waiting and not story.on_events:
        text.append("  nothing planned\n", style="dim")
    for action in story.waiting:
        text.append(f"  {action.due_at.astimezone(zone):%Y-%m-%d %H:%M}  ", style="bold cyan")
        text.append(f"{terminal_safe(action.rule)}: ", style="bold")
        text.append(f"{terminal_safe(action.does)}\n")
    for waiting in story.on_events:  # rules waiting for an event of the deal (a quote accepted...)
        text.append("  on an event       ", style="bold magenta")
        text.append(f"{terminal_safe(waiting.rule)}: ", style="bold")
        text.append(f"{terminal_safe(waiting.text())}\n")
    text.append("\nStage history\n", style="bold underline")
    for stay in reversed(story.history):
        text.append(f"  {stay.entered_at.astimezone(zone):%Y-%m-%d}  ", style="cyan")
        text.append(f"{terminal_safe(stay.stage_name):<20}")
        length = duration_text(stay.seconds)
        text.append(f" {length}{' so far' if stay.left_at is None else ''}", style="dim")
        if stay.note:
            text.append(f"  ({terminal_safe(stay.note, max_length=40)})", style="dim")
        text.append("\n")
    return text


def timeline_cells(item: TimelineItem, zone: tzinfo) -> tuple[Text, Text, Text]:
    style = "dim strike" if item.status == "cancelled" else ("dim" if item.status == "done" else "")
    when = Text(f"{item.at.astimezone(zone):%Y-%m-%d %H:%M}", style="cyan")
    what = Text(f"{ICONS.get(item.kind, '·')} {item.kind}", style="bold" if item.kind == "mail" else "")
    line = Text(terminal_safe(item.text.replace("\n", " "), max_length=90), style=style)
    extra = " · ".join(p for p in (item.status, item.detail) if p)
    if extra:
        line.append(f"  {terminal_safe(extra, max_length=40)}", style="dim")
    return when, what, line


class DealScreen(CrmScreen):
    """One deal's story; keys act on the deal, Enter on the highlighted timeline entry."""

    AUTO_FOCUS = "#timeline"
    DEFAULT_CSS = """
    DealScreen #deal-body { height: 1fr; }
    DealScreen #deal-facts { width: 2fr; border: round $panel-lighten-2; padding: 0 1; }
    DealScreen #deal-timeline-pane { width: 3fr; border: round $panel-lighten-2; }
    DealScreen #timeline-heading { padding: 0 1; text-style: bold underline; }
    DealScreen #timeline { height: 1fr; }
    DealScreen #deal-keys { padding: 0 1; color: $text-muted; }
    """
    BINDINGS = [
        Binding("q", "back", "Back", id="deal.back"),
        Binding("escape", "back", "Back", show=False, id="deal.escape"),
        Binding("j", "cursor(1)", "Down", show=False, id="deal.down"),
        Binding("k", "cursor(-1)", "Up", show=False, id="deal.up"),
        Binding("enter", "open_entry", "Open entry", show=False, id="deal.open_entry"),
        Binding("e", "edit", "Edit deal", id="deal.edit"),
        Binding("c", "comment", "Comment", id="deal.comment"),
        Binding("A", "attach", "Attach file", show=False, id="deal.attach"),
        Binding("o", "documents", "Documents", id="deal.documents"),
        Binding("m", "mail", "Write mail", id="deal.mail"),
        Binding("a", "add_activity", "Add activity", id="deal.add_activity"),
        Binding("G", "go_to_stage", "Go to stage", id="deal.go_to_stage"),
        Binding("C", "copy", "Copy to a pipeline", show=False, id="deal.copy"),
        Binding("L", "lost", "Lost", show=False, id="deal.lost"),
        Binding("u", "undo", "Undo move", show=False, id="deal.undo"),
        Binding("r", "role", "Role of a person", show=False, id="deal.role"),
        Binding("w", "followers", "Followers of the deal", show=False, id="deal.followers"),
    ]

    def __init__(self, deal_id: int) -> None:
        super().__init__()
        self.deal_id = deal_id
        self.story: DealStory | None = None
        self.items: list[TimelineItem] = []
        self.next_page: TimelineCursor | None = None
        self._request = 0
        self._loading_more = False
        self.moves = DealMoves(self, lambda _deal_id: self.reload())

    @property
    def ref(self) -> RecordRef:
        return RecordRef(RecordType.OPPORTUNITY, self.deal_id)

    def compose(self) -> ComposeResult:
        yield Label("", id="deal-title")
        with Horizontal(id="deal-body"):
            with VerticalScroll(id="deal-facts"):
                yield Static(Text("Loading…", style="dim"), id="deal-facts-text")
            with Vertical(id="deal-timeline-pane"):
                yield Label("Timeline", id="timeline-heading")
                table: DataTable[Text] = DataTable(id="timeline", cursor_type="row", zebra_stripes=False)
                yield table
        yield Label(
            Text(
                "enter open · e edit · c comment · A attach · o documents · m mail · a activity · "
                "G go to stage · C copy · L lost · u undo · r role · q back"
            ),
            id="deal-keys",
        )
        yield StatusBar()
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#timeline", DataTable)
        table.add_columns("When", "What", "")
        self.reload()

    # --- loading ---

    def reload(self) -> None:
        self._request += 1
        self._load(self._request)

    def refresh_data(self) -> None:
        """Another writer changed data (the app's change watch): the deal again."""
        self.reload()

    @work(thread=True, exclusive=True, group="deal", exit_on_error=False)
    def _load(self, request: int) -> None:
        context = self.context
        with context.database().read() as session:
            story = deal_story.deal_story(
                session, self.deal_id, now=context.clock.now(), me_id=context.me_id(), today=context.today()
            )
        self.post_message(DealStoryLoaded(self.deal_id, story, request))

    @on(DealStoryLoaded)
    def _show(self, message: DealStoryLoaded) -> None:
        if message.request != self._request:
            return
        story: DealStory | None = message.story
        if story is None:
            self.story = None
            self.query_one("#deal-facts-text", Static).update(Text("This deal is gone.", style="italic"))
            self.query_one("#deal-title", Label).update(Text(" deal gone ", style="reverse"))
            return
        self.story = story
        zone = self.context.zone
        title = Text(f" {terminal_safe(story.title, max_length=80)} ", style="reverse bold")
        title.append(
            f"  {terminal_safe(story.pipeline_name)} › {terminal_safe(story.stage_name)}", style="bold"
        )
        title.append(f"  {story.amount}", style="dim")
        self.query_one("#deal-title", Label).update(title)
        self.query_one("#deal-facts-text", Static).update(story_text(story, zone))
        table = self.query_one("#timeline", DataTable)
        row = table.cursor_row
        self.items = list(story.timeline.items)
        self.next_page = story.timeline.next
        self._fill(table)
        if self.items:
            table.move_cursor(row=min(row, table.row_count - 1))
        self.crm_app.update_status(f"{terminal_safe(story.title, max_length=40)}: {self._count_text()}")

    def _count_text(self) -> str:
        more = "+" if self.next_page is not None else ""
        return f"{len(self.items)}{more} timeline entries"

    def _fill(self, table: DataTable[Any]) -> None:
        zone = self.context.zone
        table.clear()
        for index, item in enumerate(self.items):
            table.add_row(*timeline_cells(item, zone), key=str(index))
        if self.next_page is not None:
            table.add_row(
                Text(""), Text("…", style="dim"), Text("older entries (Enter)", style="dim"), key="more"
            )
        if not self.items:
            table.add_row(Text(""), Text(""), Text("nothing yet", style="dim"), key="empty")

    def _load_more(self) -> None:
        if self.next_page is None or self._loading_more:
            return
        self._loading_more = True
        self._more(self.next_page, self._request)

    @work(thread=True, group="deal-more", exit_on_error=False)
    def _more(self, cursor: TimelineCursor, request: int) -> None:
        with self.context.database().read() as session:
            page = deal_story.timeline_page(session, self.deal_id, before=cursor)
        self.post_message(TimelinePageLoaded(self.deal_id, page, request))

    @on(TimelinePageLoaded)
    def _more_shown(self, message: TimelinePageLoaded) -> None:
        self._loading_more = False
        if message.request != self._request:
            return
        table = self.query_one("#timeline", DataTable)
        row = table.cursor_row
        self.items.extend(message.page.items)
        self.next_page = message.page.next
        self._fill(table)
        table.move_cursor(row=min(row, table.row_count - 1))
        self.crm_app.update_status(f"{self._count_text()}")

    @on(DataTable.RowHighlighted, "#timeline")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value == "more":
            self._load_more()  # the next page comes as the cursor reaches the end

    @on(DataTable.RowSelected, "#timeline")
    def _row_chosen(self, event: DataTable.RowSelected) -> None:
        # Enter in the table (the focused table takes Enter before the screen's binding), or a click.
        event.stop()
        self.action_open_entry()

    # --- keys ---

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_followers(self) -> None:
        """w: add a user to the deal's followers (its team, with the owner) or take one off."""
        choose_follower(self, self.deal_id, self.reload)

    def action_cursor(self, step: int) -> None:
        table = self.query_one("#timeline", DataTable)
        table.action_cursor_down() if step > 0 else table.action_cursor_up()

    def selected_item(self) -> TimelineItem | None:
        table = self.query_one("#timeline", DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        if key is None or not key.isdigit() or int(key) >= len(self.items):
            return None
        return self.items[int(key)]

    def action_open_entry(self) -> None:
        """Enter: a mail opens its thread (r, g reply there), an activity or a quote its form, a document or a
        report the documents."""
        table = self.query_one("#timeline", DataTable)
        if table.row_count and table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value == "more":
            self._load_more()
            return
        item = self.selected_item()
        if item is None or item.ref is None:
            if item is not None:
                self.notify(f"A {item.kind} entry opens nothing (e edits the deal).")
            return
        ref = item.ref
        context = self.context
        if ref.type is RecordType.MESSAGE:
            self.app.push_screen(MessageReader(ref.id, thread=True), lambda _: self.reload())
        elif ref.type is RecordType.ACTIVITY:
            self.open_form(
                lambda: activity_form(context, ref.id, {}), noun="activity", on_saved=lambda _: self.reload()
            )
        elif ref.type is RecordType.QUOTE:
            self.open_form(
                lambda: forms.quotes.quote_form(context, ref.id, {}),
                noun="quote",
                on_saved=lambda _: self.reload(),
            )
        elif ref.type is RecordType.DOCUMENT:
            self.action_documents()
        elif ref.type is RecordType.COMMENT:
            self.notify(terminal_safe(item.text, max_length=500), title="Comment", timeout=12)

    def action_edit(self) -> None:
        context = self.context
        self.open_form(
            lambda: opportunity_form(context, self.deal_id, {}),
            noun="opportunity",
            on_saved=lambda _: self.reload(),
        )

    def action_comment(self) -> None:
        context = self.context
        ref = self.ref

        def save(body: str) -> str | None:
            failed, _ = self.attempt(
                lambda session: add_comment(
                    session, ref, body, author_id=context.me_id(), now=context.clock.now()
                )
            )
            return failed  # the dialog stays open with the text and the reason

        def entered(body: str | None) -> None:
            if body:
                self.notify("Comment added.")
                self.reload()

        self.app.push_screen(
            PromptDialog(f"Comment on {self.record_name(ref)}", multiline=True, save=save), entered
        )

    def action_attach(self) -> None:
        context = self.context
        ref = self.ref
        attached: list[str] = []

        def save(path: str) -> str | None:
            # In the dialog's worker: the file is copied into the document store. A path that does not exist
            # keeps the dialog open with the reason, so the path can be corrected.
            failed, name = self.attempt(
                lambda session: (
                    add_document(
                        session,
                        ref,
                        Path(path).expanduser(),
                        store=context.document_store(),
                        added_by_id=context.me_id(),
                        now=context.clock.now(),
                    ).filename
                )
            )
            if failed is None:
                attached.append(name)
            return failed

        def entered(path: str | None) -> None:
            if path and attached:
                self.notify(f"Attached {terminal_safe(attached[-1])}.")
                self.reload()

        self.app.push_screen(
            PromptDialog(
                f"Attach a file to {self.record_name(ref)}", placeholder="path of the file", save=save
            ),
            entered,
        )

    def action_documents(self) -> None:
        screen = DocumentsScreen(self.ref, self.context)
        if not screen.entries:
            self.notify(f"{self.record_name(self.ref)} has no documents (A attaches a file).")
            return
        self.app.push_screen(screen, lambda _: self.reload())

    def action_mail(self) -> None:
        write_from_record(self, self.ref)

    def action_add_activity(self) -> None:
        context = self.context
        ref = self.ref
        self.open_form(
            lambda: activity_form(context, None, activity_prefill(context, ref)),
            noun="activity",
            on_saved=lambda _: self.reload(),
        )

    def action_go_to_stage(self) -> None:
        self.moves.go_to_stage(self.deal_id)

    def action_copy(self) -> None:
        self.moves.copy(self.deal_id)

    def action_lost(self) -> None:
        self.moves.lose(self.deal_id)

    def action_role(self) -> None:
        """r: a person's role on the deal (decision maker, technical, billing...): the person, then the role."""
        story = self.story
        if story is None or not story.people:
            self.notify("Nobody is on this deal yet (e adds contacts).")
            return
        people = story.people

        def role_for(contact_id: int) -> None:
            person = next(p for p in people if p.contact_id == contact_id)
            choices = [(role, role) for role in CONTACT_ROLES] + [(NO_ROLE, "no role")]

            def chosen(value: str | None) -> None:
                if value is None:
                    return
                role = None if value == NO_ROLE else value

                def done(_: object) -> None:
                    self.notify(f"{terminal_safe(person.name)}: {role or 'no role'}.")
                    self.reload()

                self.write_in_worker(
                    lambda session: set_contact_role(session, self.deal_id, contact_id, role), done
                )

            self.app.push_screen(
                ChoiceDialog(
                    f"Role of {terminal_safe(person.name)} on the deal",
                    choices,
                    selected=person.role,
                ),
                chosen,
            )

        if len(people) == 1:
            role_for(people[0].contact_id)
            return
        self.app.push_screen(
            ChoiceDialog(
                "Whose role?",
                [(str(p.contact_id), terminal_safe(f"{p.name}  {p.role or ''}".strip())) for p in people],
            ),
            lambda value: role_for(int(value)) if value else None,
        )

    def action_undo(self) -> None:
        if not self.moves.undo():
            self.notify("Nothing to undo here (u takes back the last G, C or L).")


class DealPicker(Picker):
    """ "Open deal...": type a few letters of a deal's title or customer, Enter opens it. Returns the deal id."""

    def __init__(self) -> None:
        super().__init__("Open deal", "type part of a deal's title or customer")

    def refill(self, query: str) -> None:
        self._search(query)

    @work(thread=True, exclusive=True, group="deal-picker", exit_on_error=False)
    def _search(self, query: str) -> None:
        context = app_context(self)
        with context.database().read() as session:
            found = deal_story.deal_choices(session, query, partner_id=context.partner_id())
        self.post_message(DealsFound(query, found))

    @on(DealsFound)
    def _found(self, message: DealsFound) -> None:
        if message.query != self.query_one("#picker-input", Input).value:
            return  # typed on meanwhile
        self.show(
            [(str(deal_id), Text(terminal_safe(label, max_length=90))) for deal_id, label in message.found]
        )


def pick_and_open_deal(app: Any) -> None:
    """The palette's "Open deal...": the picker, then the deal's screen."""

    def chosen(value: str | None) -> None:
        if value:
            try:
                app.push_screen(DealScreen(int(value)))
            except (CrmError, ValueError) as exc:
                app.notify(str(exc), severity="warning")

    app.push_screen(DealPicker(), chosen)
