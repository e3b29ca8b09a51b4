"""The Contacts mode: contacts, organizations, leads, tickets and quotes, each a searchable paged list with a
detail pane (facts, related records, timeline), forms to create and edit, and the record actions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.timer import Timer
from textual.widgets import Footer, Input, Label

from crm_tui.core.errors import CrmError
from crm_tui.core.search_text import MAX_SEARCH_TERMS, left_out_terms
from crm_tui.core.services import leads, pipelines
from crm_tui.core.services.attachments import add_comment, add_document
from crm_tui.core.services.records import delete_record, record_label
from crm_tui.core.types import RecordRef, RecordType
from crm_tui.core.wording import plural
from crm_tui.ui import forms
from crm_tui.ui.forms.activities import activity_form, activity_prefill
from crm_tui.ui.messages import DetailLoaded
from crm_tui.ui.screens.attachments import DocumentsScreen
from crm_tui.ui.screens.base import CrmScreen, SearchesItsList
from crm_tui.ui.screens.compose import write_from_record
from crm_tui.ui.screens.details import load_detail
from crm_tui.ui.screens.dialogs import ChoiceDialog, ConfirmDialog, PromptDialog
from crm_tui.ui.screens.import_preview import ImportsFromFiles
from crm_tui.ui.screens.mass_mail import prepare_mass_mail
from crm_tui.ui.screens.record_form import FormSpec
from crm_tui.ui.widgets.paged_table import PagedTable, Row
from crm_tui.ui.widgets.record_detail import RecordDetail
from crm_tui.ui.widgets.status_bar import StatusBar

DETAIL_DELAY = 0.15  # seconds the highlight rests before the detail pane loads


@dataclass(frozen=True)
class RecordList:
    """One of the mode's lists: its columns, its paged rows and count (read through the kind's service, in the
    table's worker) and the form of its records."""

    type: RecordType
    title: str
    columns: list[tuple[str, int]]
    fetch: Callable[..., list[Row]]  # (session, query, offset, limit, *, zone)
    count: Callable[[Any, str], int]  # (session, query)
    form: Callable[[Any, int | None, dict[str, str]], FormSpec]  # (context, record id, prefill)

    @property
    def singular(self) -> str:
        return self.type.value


LISTS: dict[RecordType, RecordList] = {
    RecordType.CONTACT: RecordList(
        RecordType.CONTACT,
        "Contacts",
        forms.contacts.COLUMNS,
        forms.contacts.contact_rows,
        forms.contacts.contact_count,
        forms.contacts.contact_form,
    ),
    RecordType.ORGANIZATION: RecordList(
        RecordType.ORGANIZATION,
        "Organizations",
        forms.organizations.COLUMNS,
        forms.organizations.organization_rows,
        forms.organizations.organization_count,
        forms.organizations.organization_form,
    ),
    RecordType.LEAD: RecordList(
        RecordType.LEAD,
        "Leads",
        forms.leads.COLUMNS,
        forms.leads.lead_rows,
        forms.leads.lead_count,
        forms.leads.lead_form,
    ),
    RecordType.TICKET: RecordList(
        RecordType.TICKET,
        "Tickets",
        forms.tickets.COLUMNS,
        forms.tickets.ticket_rows,
        forms.tickets.ticket_count,
        forms.tickets.ticket_form,
    ),
    RecordType.QUOTE: RecordList(
        RecordType.QUOTE,
        "Quotes",
        forms.quotes.COLUMNS,
        forms.quotes.quote_rows,
        forms.quotes.quote_count,
        forms.quotes.quote_form,
    ),
}

ORDER = list(LISTS)


MASS_MAIL_LIMIT = 10_000  # recipients of one mass mail at most


class ContactsScreen(ImportsFromFiles, SearchesItsList, CrmScreen):
    AUTO_FOCUS = "#records-table"  # the list, not the search box, takes the first key
    BINDINGS = [
        Binding("slash", "focus_search", "Search", id="records.search"),
        Binding("escape", "clear_search", "Clear search", show=False, id="records.clear_search"),
        Binding("j", "cursor_down", "Down", show=False, id="records.down"),
        Binding("k", "cursor_up", "Up", show=False, id="records.up"),
        Binding("right_square_bracket", "next_kind", "Next list", show=False, id="records.next_kind"),
        Binding(
            "left_square_bracket", "previous_kind", "Previous list", show=False, id="records.previous_kind"
        ),
        Binding("n", "new", "New", id="records.new"),
        Binding("e,enter", "edit", "Edit", id="records.edit"),
        Binding("D", "delete", "Delete", show=False, id="records.delete"),
        Binding("c", "comment", "Comment", show=False, id="records.comment"),
        Binding("A", "attach", "Attach file", show=False, id="records.attach"),
        Binding("o", "documents", "Documents (save, open)", show=False, id="records.documents"),
        Binding("a", "add_activity", "Add activity", id="records.add_activity"),
        Binding("C", "convert", "Convert lead", id="records.convert"),
        Binding("m", "mail", "Write mail", id="records.mail"),
        Binding("M", "mass_mail", "Mass mail to this list", show=False, id="records.mass_mail"),
        Binding("I", "import", "Import from a file", show=False, id="records.import"),
    ]

    def __init__(self, kind: RecordType = RecordType.CONTACT):
        super().__init__()
        self.kind = LISTS[kind]
        # Superseded thread workers still deliver: only the newest detail request is shown.
        self._detail_request = 0
        self._detail_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Label(self._tabs(), id="kind-tabs")
        yield Input(placeholder=self._placeholder(), id="search")
        with Horizontal(id="body"):
            yield PagedTable(self.kind.columns, self._fetch(), self.kind.count, id="records-table")
            with VerticalScroll(id="detail-scroll"):
                yield RecordDetail(id="record-detail")
        yield StatusBar()
        yield Footer()

    def _fetch(self) -> Any:
        """The kind's row fetch, showing dates in the user's zone (not the process's)."""
        return partial(self.kind.fetch, zone=self.context.zone)

    def _tabs(self) -> Text:
        text = Text(" ")
        for record_type in ORDER:
            title = LISTS[record_type].title
            text.append(f" {title} ", style="reverse bold" if record_type == self.kind.type else "")
            text.append(" ")
        text.append("  [ ] switch list", style="dim")
        return text

    def _placeholder(self) -> str:
        return f"/ search {self.kind.title.lower()}"

    def on_mount(self) -> None:
        table = self.query_one(PagedTable)
        table.focus()
        table.reload("")

    @property
    def table(self) -> PagedTable:
        return self.query_one(PagedTable)

    def selected_ref(self) -> RecordRef | None:
        key = self.table.selected_key
        return RecordRef(self.kind.type, int(key)) if key else None

    def named(self, ref: RecordRef) -> str:
        """The record's name for a dialog's title ("Emma Albrecht", not "contact:32")."""
        try:
            with self.context.database().read() as session:
                return record_label(session, ref)
        except CrmError:  # removed meanwhile: its reference still says which it was
            return str(ref)

    # --- list and detail ---

    @on(PagedTable.Counted)
    def _counted(self, message: PagedTable.Counted) -> None:
        counted = plural(message.total, self.kind.singular, self.kind.title.lower(), shown=message.total_text)
        left_out = left_out_terms(message.query)
        if left_out:
            matching = (
                f" matching the first {MAX_SEARCH_TERMS} words of the search (the other {left_out} left out)"
            )
        else:
            matching = f" matching {message.query!r}" if message.query else ""
        self.crm_app.update_status(counted + matching)

    @on(PagedTable.RowHighlighted)
    def _highlighted(self) -> None:
        # The detail loads once the highlight rests: typing a search or holding j must not queue a timeline
        # query per row (its work in a thread competes with the UI for the interpreter).
        if self._detail_timer is not None:
            self._detail_timer.stop()
        self._detail_timer = self.set_timer(DETAIL_DELAY, self._highlight_rested)

    def _highlight_rested(self) -> None:
        self._detail_timer = None
        ref = self.selected_ref()
        if ref is None:
            empty = f"No {self.kind.title.lower()} here."
            self.query_one(RecordDetail).show(None, self.context.zone, empty=empty)
            return
        self._load_detail(ref)

    def _load_detail(self, ref: RecordRef) -> None:
        self._detail_request += 1
        self._fetch_detail(ref, self._detail_request)

    @work(thread=True, exclusive=True, group="detail", exit_on_error=False)
    def _fetch_detail(self, ref: RecordRef, request: int) -> None:
        try:
            data = load_detail(self.context, ref)
        except CrmError as exc:
            self.post_message(DetailLoaded(str(ref), None, str(exc), request))
            return
        self.post_message(DetailLoaded(str(ref), data, None, request))

    @on(DetailLoaded)
    def _show_detail(self, message: DetailLoaded) -> None:
        current = self.selected_ref()
        if message.request != self._detail_request or current is None or str(current) != message.ref:
            return
        self.query_one(RecordDetail).show(message.data, self.context.zone, empty=message.error or "")

    def refresh_list(self, select: int | None = None) -> None:
        self.table.reload()
        if select is not None:
            self.call_after_refresh(self._select_later, str(select))

    def _select_later(self, key: str, attempts: int = 20) -> None:
        if not self.table.select_key(key) and attempts:
            self.set_timer(0.05, lambda: self._select_later(key, attempts - 1))

    def action_cursor_down(self) -> None:
        self.table.action_cursor_down()

    def action_cursor_up(self) -> None:
        self.table.action_cursor_up()

    def show_kind(self, record_type: RecordType) -> None:
        self.kind = LISTS[record_type]
        self.query_one("#kind-tabs", Label).update(self._tabs())
        search = self.query_one("#search", Input)
        search.placeholder = self._placeholder()
        with search.prevent(Input.Changed):
            search.value = ""
        self.table.query_text = ""
        self.table.set_source(self.kind.columns, self._fetch(), self.kind.count)
        self.table.focus()

    def action_next_kind(self) -> None:
        self.show_kind(ORDER[(ORDER.index(self.kind.type) + 1) % len(ORDER)])

    def action_previous_kind(self) -> None:
        self.show_kind(ORDER[(ORDER.index(self.kind.type) - 1) % len(ORDER)])

    # --- record actions ---

    def _open_form(self, record_id: int | None, prefill: dict[str, str] | None = None) -> None:
        context = self.context
        self.open_form(
            lambda: self.kind.form(context, record_id, prefill or {}),
            noun=self.kind.singular,
            on_saved=lambda new_id: self.refresh_list(select=new_id),
        )

    def action_new(self) -> None:
        self._open_form(None)

    def action_edit(self) -> None:
        ref = self.selected_ref()
        if ref is not None:
            self._open_form(ref.id)

    def action_delete(self) -> None:
        ref = self.selected_ref()
        if ref is None:
            return

        def confirmed(yes: bool | None) -> None:
            if not yes:
                return
            named = self.record_name(ref)

            def deleted(orphans: list[str]) -> None:
                self.context.document_store().discard(orphans)
                self.notify(f"Deleted {named}.")
                self.refresh_list()

            self.write_in_worker(lambda session: delete_record(session, ref), deleted)

        self.app.push_screen(
            ConfirmDialog(
                f"Delete {self.named(ref)}?",
                "Its comments, documents and mail links go with it; activities stay.",
                "Delete",
            ),
            confirmed,
        )

    def action_mail(self) -> None:
        ref = self.selected_ref()
        if ref is not None:
            write_from_record(self, ref)

    def action_mass_mail(self) -> None:
        """One template to every contact or lead the list shows (its search), one mail each; the recipients
        and the first mails are shown before anything goes. (To the team: Settings > Users, m.)"""
        if self.kind.type not in (RecordType.CONTACT, RecordType.LEAD):
            self.notify(
                "Mass mail goes to contacts or leads: switch to one of those lists (to the team: Settings > "
                "Users, m).",
                severity="warning",
            )
            return
        context = self.context
        query = self.table.query_text
        kind = self.kind

        def refs_of(session: Any) -> list[RecordRef]:
            rows = kind.fetch(session, query, 0, MASS_MAIL_LIMIT, zone=context.zone)
            return [RecordRef(kind.type, int(row.key)) for row in rows]

        who = f"the {kind.title.lower()}" + (f" matching {query!r}" if query else "")
        prepare_mass_mail(self, kind.type.value, who, refs_of)

    def action_comment(self) -> None:
        ref = self.selected_ref()
        if ref is None:
            return

        def save(body: str) -> str | None:
            context = self.context
            failed, _ = self.attempt(
                lambda session: add_comment(
                    session, ref, body, author_id=context.me_id(), now=context.clock.now()
                )
            )
            return failed  # the dialog stays open with the text and the reason

        def entered(body: str | None) -> None:
            if body:
                self._load_detail(ref)

        self.app.push_screen(
            PromptDialog(f"Comment on {self.named(ref)}", multiline=True, save=save), entered
        )

    def action_import(self) -> None:
        name = {"contact": "contacts", "organization": "organizations", "lead": "leads"}.get(
            self.kind.type.value
        )
        if name is None:
            self.notify(
                f"{self.kind.title} are not imported from files (contacts, organizations and leads are)."
            )
            return
        self.start_import(name)

    def refresh_data(self) -> None:
        """Someone else changed data: the list again (the search and position kept)."""
        self.table.reload()

    def after_import(self) -> None:
        self.show_kind(self.kind.type)

    def action_attach(self) -> None:
        ref = self.selected_ref()
        if ref is None:
            return

        context = self.context
        attached: list[str] = []

        def save(path: str) -> str | None:
            # In the dialog's worker: the file is copied into the document store too. A path that does not
            # exist keeps the dialog open with the reason, so the path can be corrected.
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
                self.notify(f"Attached {attached[-1]}.")
                self._load_detail(ref)

        self.app.push_screen(
            PromptDialog(f"Attach a file to {self.named(ref)}", placeholder="path of the file", save=save),
            entered,
        )

    def action_documents(self) -> None:
        ref = self.selected_ref()
        if ref is None:
            return
        screen = DocumentsScreen(ref, self.context)
        if not screen.entries:
            self.notify(f"{self.named(ref)} has no documents (A attaches a file).")
            return
        self.app.push_screen(screen, lambda _: self._load_detail(ref))

    def action_add_activity(self) -> None:
        ref = self.selected_ref()
        if ref is None:
            return
        context = self.context
        self.open_form(
            lambda: activity_form(context, None, activity_prefill(context, ref)),
            noun="activity",
            on_saved=lambda _new_id: self._load_detail(ref),
        )

    def action_convert(self) -> None:
        ref = self.selected_ref()
        if ref is None or ref.type != RecordType.LEAD:
            self.notify("Select a lead to convert (] switches to the leads list).", severity="warning")
            return
        context = self.context
        try:
            with context.database().read() as session:
                plan = leads.plan_conversion(session, ref.id)
                choices = [
                    (str(i), f"Opportunity in {name}") for i, name in pipelines.pipeline_choices(session)
                ]
        except CrmError as exc:
            self.notify(str(exc), severity="warning")
            return
        choices.append(("none", "No opportunity (contact and organization only)"))

        def pipeline_chosen(choice: str | None) -> None:
            if choice is None:
                return
            pipeline_id = None if choice == "none" else int(choice)
            body = Text()
            body.append("Contact: ", style="bold")
            body.append(
                f"attach to {plan.contact_name} [contact:{plan.contact_id}]\n"
                if plan.contact_id
                else f"create {plan.contact_name}\n"
            )
            body.append("Organization: ", style="bold")
            if plan.organization_id:
                body.append(f"attach to {plan.organization_name} [organization:{plan.organization_id}]\n")
            elif plan.organization_name:
                body.append(f"create {plan.organization_name}\n")
            else:
                body.append("none\n")
            body.append("Opportunity: ", style="bold")
            body.append(f"create {plan.opportunity_title!r}\n" if pipeline_id else "none\n")
            body.append(
                "Activities, mail, comments and documents come along; the lead stays, marked converted.\n",
                style="dim",
            )
            for reason in plan.reasons:
                body.append(f"  · {reason}\n", style="dim")

            def confirmed(yes: bool | None) -> None:
                if yes:
                    self._convert(ref.id, pipeline_id)

            self.app.push_screen(
                ConfirmDialog(f"Convert {self.record_name(ref)}?", body, "Convert"), confirmed
            )

        self.app.push_screen(ChoiceDialog("Convert into", choices), pipeline_chosen)

    def _convert(self, lead_id: int, pipeline_id: int | None) -> None:
        context = self.context

        def converted(result: leads.ConversionResult) -> None:
            self.notify("Converted: " + ", ".join(result.created or ("attached to existing records",)))
            self.refresh_list()
            if result.opportunity_id is not None:
                self.crm_app.open_opportunity(result.opportunity_id)

        self.write_in_worker(
            lambda session: leads.convert_lead(
                session, lead_id, now=context.clock.now(), user_id=context.me_id(), pipeline_id=pipeline_id
            ),
            converted,
        )
