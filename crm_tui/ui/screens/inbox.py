"""The Inbox mode: folders and views, the message list (mutt keys), a safe preview with the related panel,
and one-key triage: archive, delete, move, read, flag, tag and apply to all tagged, undo; file on a record,
records made from the mail, a follow-up, a comment."""

from __future__ import annotations

import email.policy
import email.utils
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from functools import partial
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Footer, Input, OptionList, Static
from textual.widgets.option_list import Option

from crm_tui.core.errors import ValidationError
from crm_tui.core.mail_identity import format_address, split_raw
from crm_tui.core.sanitize import terminal_safe
from crm_tui.core.services import (
    activities,
    attachments,
    inbox,
    mail_accounts,
    mail_actions,
    mail_linking,
    mailbox,
    records,
    triage,
)
from crm_tui.core.services.inbox import InboxQuery, message_view
from crm_tui.core.services.mail_search import parse_query
from crm_tui.core.types import RecordRef, RecordType
from crm_tui.core.wording import plural, size_text
from crm_tui.runtime.context import AppContext
from crm_tui.ui.forms import RECORD_FORMS
from crm_tui.ui.forms.activities import activity_form
from crm_tui.ui.messages import PreviewLoaded, RelatedLoaded, Scoped
from crm_tui.ui.screens.attachments import AttachmentsScreen
from crm_tui.ui.screens.base import CrmScreen, SearchesItsList
from crm_tui.ui.screens.compose import ComposeScreen, recall_draft, take_back_queued
from crm_tui.ui.screens.dialogs import ChoiceDialog, PromptDialog
from crm_tui.ui.screens.outbox import OutboxScreen
from crm_tui.ui.screens.pickers import FolderPicker, RecordPicker
from crm_tui.ui.widgets.option_list import Options
from crm_tui.ui.widgets.paged_table import COUNT_CAP, PagedTable, Row
from crm_tui.ui.widgets.status_bar import StatusBar

PREVIEW_CHARS = 20_000


def query_problem(query: str) -> str | None:
    """What is wrong with a typed query (shown in the status bar), or None."""

    try:
        parse_query(query)
    except ValidationError as exc:
        return next(iter(exc.errors.values()), str(exc))
    return None


def _inbox_query(screen: InboxScreen, zone: tzinfo, query: str) -> InboxQuery:
    return InboxQuery(
        query, screen.scope, zone, screen.context.clock.now(), screen.no_reply_days, screen.collapsed
    )


def _message_rows(
    screen: InboxScreen, zone: tzinfo, session: Any, query: str, offset: int, limit: int
) -> list[Row]:
    rows = []
    tagged = set(screen.tagged)
    found = inbox.page(session, _inbox_query(screen, zone, query), offset=offset, limit=limit)
    screen.threads.update(found.threads)
    for message in found.messages:
        sent = message.sent_at.astimezone(zone).strftime("%Y-%m-%d %H:%M") if message.sent_at else ""
        flags = (
            ("*" if message.id in tagged else " ")
            + ("●" if not message.is_read else " ")
            + ("!" if message.is_flagged else " ")
            + ("📎" if message.has_attachments else " ")
        )
        who = (
            f"to {message.first_recipient}"
            if message.is_outgoing
            else (message.from_name or message.from_address)
        )
        subject = message.subject or "(no subject)"
        size = found.sizes.get(message.id, 1)
        if size > 1:
            subject = f"({size}) {subject}"
        rows.append(Row(str(message.id), (flags, sent, who, subject), "" if message.is_read else "bold"))
    return rows


def _message_count(screen: InboxScreen, zone: tzinfo, session: Any, query: str) -> int:
    return inbox.count(session, _inbox_query(screen, zone, query), cap=COUNT_CAP)


@dataclass
class TakeBack:
    """One triage step the user can undo (``u``): what it was, and how to take it back in one transaction."""

    description: str
    undo: Callable[[Any], str]
    retry: bool = True  # a failed undo stays on the stack (False: it cannot succeed later either)
    at: float = field(default_factory=time.monotonic)  # when: a mail queued later is taken back first


def _money(cents: int, currency: str) -> str:
    return f"{cents / 100:,.0f} {currency}"


class InboxScreen(SearchesItsList, CrmScreen):
    AUTO_FOCUS = "#messages"
    BINDINGS = [
        Binding("j", "cursor(1)", "Down", show=False, id="inbox.down"),
        Binding("k", "cursor(-1)", "Up", show=False, id="inbox.up"),
        Binding("enter", "open", "Open", id="inbox.open"),
        Binding("slash", "focus_search", "Search", id="inbox.search"),
        Binding("escape", "clear_search", "Clear search", show=False, id="inbox.clear_search"),
        Binding("c", "change_folder", "Folder/view", id="inbox.change_folder"),
        Binding("a", "triage('archive')", "Archive", id="inbox.archive"),
        Binding("d", "triage('delete')", "Delete", id="inbox.delete"),
        Binding("s", "move", "Move", id="inbox.move"),
        Binding("N", "toggle_read", "Read/unread", id="inbox.toggle_read"),
        Binding("F", "toggle_flag", "Flag", id="inbox.toggle_flag"),
        Binding("t", "tag", "Tag", id="inbox.tag"),
        Binding("semicolon", "tag_prefix", "On tagged…", id="inbox.tag_prefix"),
        Binding("u", "undo", "Undo", id="inbox.undo"),
        Binding("e", "file", "File on record", id="inbox.file"),
        Binding("x", "unlink", "Unlink", show=False, id="inbox.unlink"),
        Binding("L", "create('lead')", "New lead from mail", show=False, id="inbox.new_lead"),
        Binding("C", "create('contact')", "New contact from mail", show=False, id="inbox.new_contact"),
        Binding("O", "create('organization')", "New organization from mail", show=False, id="inbox.new_org"),
        Binding("I", "create('ticket')", "New ticket from mail", show=False, id="inbox.new_ticket"),
        Binding("A", "follow_up", "Follow-up", id="inbox.follow_up"),
        Binding("n", "comment", "Comment", show=False, id="inbox.comment"),
        Binding("Y", "accept_invitation", "Accept invitation", show=False, id="inbox.accept_invitation"),
        Binding("v", "attachments", "Attachments", show=False, id="inbox.attachments"),
        Binding("V", "toggle_threads", "Collapse/expand threads", show=False, id="inbox.threads"),
        Binding("r", "write('reply')", "Reply", id="inbox.reply"),
        Binding("T", "write('reply', True)", "Reply with template", show=False, id="inbox.reply_template"),
        Binding("g", "write('reply_all')", "Reply all", show=False, id="inbox.reply_all"),
        Binding("f", "write('forward')", "Forward", show=False, id="inbox.forward"),
        Binding("m", "write('new')", "Compose", id="inbox.compose"),
        Binding("o", "outbox", "Outbox", show=False, id="inbox.outbox"),
        Binding("R", "drafts", "Drafts", show=False, id="inbox.drafts"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.scope: tuple[str, object] = ("view", "all")
        self.tagged: set[int] = set()
        self.on_tagged = False  # ";" was typed: the next action applies to every tagged message
        self.undo_stack: list[TakeBack] = []
        self.folders: list[tuple[int, str, str, str | None]] = []
        self.said = ""
        self._said_shown = ""  # what the status line says after the count now (kept over the change watch)
        self._writes_running = 0  # triage steps written in a worker, not settled yet
        self._undo_waiting = 0  # u pressed while one ran: it undoes that step once it is on the stack
        self.no_reply_days = 3
        self.collapsed = False  # threads shown as their newest message (V); actions then take whole threads
        self.threads: dict[int, list[int]] = {}  # newest message -> its thread's messages in the list's scope

    def compose(self) -> ComposeResult:
        yield Input(
            placeholder='/ search mail: words "phrase" from: to: subject: has:attachment is:unread '
            "after: before: linked:TYPE:ID unlinked -not OR",
            id="search",
        )
        with Horizontal(id="body"):
            yield Options(id="folders")
            yield PagedTable(
                [("", 5), ("Date", 17), ("From", 24), ("Subject", 46)],
                partial(_message_rows, self, self.context.zone),
                partial(_message_count, self, self.context.zone),
                id="messages",
            )
            with VerticalScroll(id="preview-scroll"):
                yield Static(id="related")
                yield Static(id="preview")
        yield StatusBar()
        yield Footer()

    # --- the list and its scope ---

    def reload(self) -> None:
        """New mail arrived (or the user changed some): the list again, the highlighted message kept."""
        self.query_one(PagedTable).reload()
        self._load_folders()

    def refresh_data(self) -> None:
        """The app's change watch: another process stored mail (the background sync, batch by batch during a
        first sync) or changed some; the list shows it without waiting for the end of the pass. The line the
        last step said ("1 message archived (u undoes)") stays: this app's own writes are changes too."""
        self.said = self.said or self._said_shown
        self.reload()

    def on_mount(self) -> None:
        self.no_reply_days = self.context.settings.no_reply_days
        table = self.query_one(PagedTable)
        table.focus()
        table.reload("")
        self._load_folders()

    def on_screen_resume(self) -> None:
        # (Textual calls CrmScreen's handler too.) A sync may have found folders while another screen was in
        # front.
        self._load_folders()

    def reload_folders(self) -> None:
        """A sync ran: folders made (or removed) on the server show in the list."""
        self._load_folders()

    @work(thread=True, exclusive=True, group="folders", exit_on_error=False)
    def _load_folders(self) -> None:

        with self.context.database().read() as session:
            self.post_message(Scoped(triage.folders(session)))

    @on(Scoped)
    def _show_folders(self, message: Scoped) -> None:

        listing = self.query_one("#folders", OptionList)
        if message.folders == self.folders and listing.option_count:
            return  # the same folders: the list stays as it is (its highlight and scroll too)
        self.folders = message.folders
        options: list[Option | None] = [
            Option(Text(title), id=f"view:{name}") for name, title in triage.VIEWS.items()
        ]
        account = None
        for folder_id, account_name, name, _role in message.folders:
            if account_name != account:
                account = account_name
                options.append(None)
                options.append(Option(Text(terminal_safe(account_name), style="bold dim"), disabled=True))
            options.append(Option(Text("  " + terminal_safe(name)), id=f"folder:{folder_id}"))
        listing.clear_options()
        listing.add_options(options)
        self._highlight_scope()

    def _highlight_scope(self) -> None:
        """The folder pane highlights the view or folder the list shows."""
        listing = self.query_one("#folders", OptionList)
        chosen = f"{self.scope[0]}:{self.scope[1]}"
        for index in range(listing.option_count):
            if listing.get_option_at_index(index).id == chosen:
                listing.highlighted = index
                return

    @on(OptionList.OptionSelected, "#folders")
    def _folder_chosen(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self.choose_scope(event.option.id)
            self.query_one(PagedTable).focus()

    def choose_scope(self, value: str) -> None:
        kind, _, name = value.partition(":")
        self.scope = (kind, int(name) if kind == "folder" else name)
        self._highlight_scope()
        self.query_one(PagedTable).reload()
        self.crm_app.update_status(f"showing {self.scope_title()}")

    def scope_title(self) -> str:

        if self.scope[0] == "view":
            title = triage.VIEWS.get(str(self.scope[1]), str(self.scope[1]))
            return f"{title} for {self.no_reply_days} days" if self.scope[1] == "no-reply" else title
        for folder_id, account, name, _ in self.folders:
            if folder_id == self.scope[1]:
                return f"{account}/{name}"
        return "folder"

    def action_change_folder(self) -> None:

        choices = {f"view:{name}": title for name, title in triage.VIEWS.items()}
        choices |= {f"folder:{fid}": f"{account}/{name}" for fid, account, name, _ in self.folders}
        by_title = {title: value for value, title in choices.items()}

        def chosen(title: str | None) -> None:
            if title:
                self.choose_scope(by_title[title])

        self.app.push_screen(FolderPicker("Folder or view", list(by_title)), chosen)

    def say(self, text: str) -> None:
        """A line in the status bar that outlives the list's reload (which writes its count there)."""
        self.said = text
        self.crm_app.update_status(text)

    @on(PagedTable.Counted)
    def _counted(self, message: PagedTable.Counted) -> None:
        problem = query_problem(message.query) if message.query else None
        tagged = f", {len(self.tagged)} tagged" if self.tagged else ""
        # With threads collapsed a row is a conversation: the count says so.
        counted = plural(
            message.total, "conversation" if self.collapsed else "message", shown=message.total_text
        )
        self._said_shown = self.said
        if self.said:
            tagged += f" · {self.said}"
            self.said = ""
        if problem:
            self.crm_app.update_status(f"search: {problem}")
        elif message.query:
            self.crm_app.update_status(f"{counted} matching {message.query!r}{tagged}")
        else:
            self.crm_app.update_status(f"{self.scope_title()}: {counted}{tagged}")

    def action_cursor(self, step: int) -> None:
        """j/k move like the arrows in whichever list has the focus: the folder pane or the mail."""
        focused = self.focused
        target: Any = focused if isinstance(focused, OptionList) else self.query_one(PagedTable)
        target.action_cursor_down() if step > 0 else target.action_cursor_up()

    # --- preview and related panel ---

    @on(PagedTable.RowHighlighted)
    def _highlighted(self) -> None:
        key = self.query_one(PagedTable).selected_key
        if key is None:
            self.query_one("#related", Static).update("")
            self.query_one("#preview", Static).update(Text("No mail here.", style="italic dim"))
            return
        self._load_preview(int(key))

    @work(thread=True, exclusive=True, group="preview", exit_on_error=False)
    def _load_preview(self, message_id: int) -> None:

        context = self.context
        with context.database().read() as session:
            row = inbox.message_view(session, message_id)
            if row is None:
                return
            text = message_text(row, context.zone)
            invitation = invitation_of(mailbox.raw_of(session, message_id), context.zone)
            if invitation is not None:
                text = invitation_text(invitation, context.zone) + text
            related = related_text(session, message_id, context)
        self.post_message(PreviewLoaded(message_id, text))
        self.post_message(RelatedLoaded(message_id, related))

    @on(PreviewLoaded)
    def _show_preview(self, message: PreviewLoaded) -> None:
        if self.current() == message.message_id:
            self.query_one("#preview", Static).update(message.text)

    @on(RelatedLoaded)
    def _show_related(self, message: RelatedLoaded) -> None:
        if self.current() == message.message_id:
            self.query_one("#related", Static).update(message.text)

    def current(self) -> int | None:
        key = self.query_one(PagedTable).selected_key
        return int(key) if key is not None else None

    def action_open(self) -> None:
        """Enter: the mail in the reader, and read from now on (the highlight alone never marks it read)."""

        message_id = self.current()
        if message_id is None:
            return
        self.app.push_screen(MessageReader(message_id))
        now = self.context.clock.now()

        def marked(was_unread: bool) -> None:
            if was_unread:
                self.query_one(PagedTable).reload()

        self.write_in_worker(lambda session: triage.opened(session, message_id, now=now), marked)

    # --- tagging ---

    def action_tag(self) -> None:
        message_id = self.current()
        if message_id is None:
            return
        self.tagged ^= {message_id}
        self.query_one(PagedTable).reload()
        self.action_cursor(1)

    def action_tag_prefix(self) -> None:
        if not self.tagged:
            self.crm_app.update_status("no message is tagged (t tags one)")
            return
        self.on_tagged = True
        self.crm_app.update_status(f"next action applies to {plural(len(self.tagged), 'tagged message')}")

    def targets(self) -> list[int]:
        """The messages the next action works on: every tagged one after ";", else the highlighted one; with
        threads collapsed, a row stands for its whole thread (as in mutt)."""
        if self.on_tagged:
            self.on_tagged = False
            chosen = sorted(self.tagged)
        else:
            message_id = self.current()
            chosen = [message_id] if message_id is not None else []
        if self.collapsed:
            chosen = sorted({member for i in chosen for member in self.threads.get(i, [i])})
        return chosen

    def action_toggle_threads(self) -> None:
        self.collapsed = not self.collapsed
        self.threads.clear()
        self.say("threads collapsed: a row is a conversation" if self.collapsed else "threads expanded")
        self.query_one(PagedTable).reload()

    def _keep_place(self, ids: list[int]) -> None:
        """Before an action on these messages: the list keeps its place. If they leave the list (archived inside
        a view, moved out of a folder), the highlight goes to the row that followed the first of them (the next
        mail: triage goes on top-down), or the one before when none follows; else it stays on that row."""
        table = self.query_one(PagedTable)
        rows = [row.key for row in table.loaded_rows]
        acted = {str(i) for i in ids}
        first = next((index for index, key in enumerate(rows) if key in acted), None)
        if first is None:
            return
        after = [key for key in rows[first + 1 :] if key not in acted]
        before = [key for key in reversed(rows[:first]) if key not in acted]
        table.prefer_next([rows[first], *after, *before])

    def _done(self, step: TakeBack | None, *, untag: bool = False) -> None:
        if step is not None:
            self.undo_stack.append(step)
            self.say(step.description + " (u undoes)")
        if untag:
            self.tagged.clear()
        self.reload()

    # --- mail actions ---

    def _apply(self, ids: list[int], action: str, argument: str | None = None) -> None:

        if not ids:
            return
        now = self.context.clock.now()

        def applied(entry: Any) -> None:
            self._keep_place(ids)
            self._done(
                TakeBack(entry.description, lambda session: triage.undo(session, entry, now=now)),
                untag=len(ids) > 1 or bool(set(ids) & self.tagged),
            )

        self.write_in_worker(lambda session: triage.apply(session, ids, action, argument, now=now), applied)

    def action_triage(self, action: str) -> None:
        self._apply(self.targets(), action)

    def action_toggle_read(self) -> None:
        ids = self.targets()
        if ids:
            self._apply(ids, "unread" if self._all(ids, "read") else "read")

    def action_toggle_flag(self) -> None:
        ids = self.targets()
        if ids:
            self._apply(ids, "unflag" if self._all(ids, "flagged") else "flag")

    def _all(self, ids: list[int], mark: Any) -> bool:

        with self.context.database().read() as session:
            return inbox.all_marked(session, ids, mark)

    def action_move(self) -> None:
        ids = self.targets()
        if not ids:
            return
        names = sorted({name for _, _, name, _ in self.folders})

        def chosen(folder: str | None) -> None:
            if folder:
                self._apply(ids, "move", folder)

        self.app.push_screen(FolderPicker(f"Move {plural(len(ids), 'message')} to", names), chosen)

    def write_in_worker(
        self,
        work: Callable[[Any], Any],
        then: Callable[[Any], None] | None = None,
        *,
        refused: Callable[[str], None] | None = None,
        settled: Callable[[], None] | None = None,
    ) -> None:
        """Every write of this screen is counted while it runs: a u typed meanwhile waits for it (d u undoes
        the d, not the step before it)."""
        self._writes_running += 1

        def done() -> None:
            self._writes_running -= 1
            if settled is not None:
                settled()
            if not self._writes_running and self._undo_waiting:
                self._undo_waiting -= 1
                self.action_undo()

        super().write_in_worker(work, then, refused=refused, settled=done)

    def action_undo(self) -> None:
        """u: the newest step is undone: a triage step here, or the mail queued last (wherever it was written)
        while it has not gone out. Typed while a step is still being written, it waits for that step."""
        if self._writes_running:
            self._undo_waiting += 1
            return

        queued = getattr(self.app, "just_queued", None)
        if queued is not None and (not self.undo_stack or queued.at > self.undo_stack[-1].at):
            take_back_queued(self.crm_app, say=self.say, then=self.reload)
            return
        if not self.undo_stack:
            self.crm_app.update_status("nothing to undo")
            return
        step = self.undo_stack.pop()

        def undone(said: str) -> None:
            self.say(said)
            self.reload()

        def refused(reason: str) -> None:
            self.notify(reason, severity="warning", timeout=8)
            if step.retry:
                self.undo_stack.append(step)

        self.write_in_worker(step.undo, undone, refused=refused)

    # --- the CRM side ---

    def _suggestions(self, message_id: int) -> list[tuple[str, str, str]]:
        # the mail modules load when first used, not with the app (start-up)
        from crm_tui.mail.sync import load_free_domains

        with self.context.database().read() as session:
            found = mail_actions.suggestions(
                session,
                message_id,
                mine=mail_accounts.my_addresses(session),
                free_domains=set(load_free_domains()),
            )
        return [(str(s.ref), s.label, mail_actions.REASONS.get(s.reason, s.reason)) for s in found]

    def action_file(self) -> None:

        ids = self.targets()
        if not ids:
            return
        suggestions = self._suggestions(ids[0])

        def chosen(ref_text: str | None) -> None:
            if not ref_text:
                return
            ref = RecordRef.parse(ref_text)
            now = self.context.clock.now()

            def filed_on(filed: Any) -> None:
                self._keep_place(ids)
                self._done(
                    TakeBack(filed.description, lambda session: mail_actions.unfile(session, filed)),
                    untag=len(ids) > 1,
                )

            self.write_in_worker(lambda session: mail_actions.file_on(session, ids, ref, now=now), filed_on)

        title = f"File {plural(len(ids), 'message')} on" if len(ids) > 1 else "File this mail on"
        self.crm_app.push_screen(RecordPicker(title, suggestions, self.context), chosen)

    def action_unlink(self) -> None:

        message_id = self.current()
        if message_id is None:
            return
        with self.context.database().read() as session:
            links = mail_actions.filed_on(session, message_id)
        if not links:
            self.crm_app.update_status("this mail is not filed on any record")
            return

        def chosen(ref_text: str | None) -> None:
            if not ref_text:
                return
            ref = RecordRef.parse(ref_text)
            named = self.record_name(ref)
            now = self.context.clock.now()

            def relink(session: Any) -> str:
                mail_linking.link_manually(session, message_id, ref, now=now)
                return f"undone: filed on {named} again"

            def taken_off(_: Any) -> None:
                self._keep_place([message_id])
                self._done(TakeBack(f"taken off {named}", relink))

            self.write_in_worker(
                lambda session: mail_linking.unlink(session, message_id, ref, now=now), taken_off
            )

        self.app.push_screen(
            ChoiceDialog("Take the mail off", [(value, terminal_safe(label)) for value, label in links]),
            chosen,
        )

    def action_create(self, record_type: str) -> None:
        # the mail modules load when first used, not with the app (start-up)
        from crm_tui.mail.sync import load_free_domains

        ids = self.targets()
        if not ids:
            return
        context = self.context
        with context.database().read() as session:
            values = mail_actions.prefill(session, ids[0], record_type, free_domains=set(load_free_domains()))
        form = RECORD_FORMS[RecordType(record_type)]

        def saved(new_id: int) -> None:
            ref = RecordRef(RecordType(record_type), new_id)
            named = self.record_name(ref)
            now = context.clock.now()

            def take_back(session: Any) -> str:
                for message_id in ids:
                    mail_linking.unlink(session, message_id, ref, now=now)
                records.delete_record(session, ref)
                return f"undone: {named} and its links removed"

            def done(filed: bool) -> None:
                # Made, filed or not (a refusal was said): u takes the record back.
                if filed:
                    self._keep_place(ids)
                self._done(TakeBack(f"{named} made from the mail and filed", take_back), untag=len(ids) > 1)

            def refused(reason: str) -> None:
                self.notify(reason, severity="warning", timeout=8)
                done(False)

            self.write_in_worker(
                lambda session: mail_actions.file_on(session, ids, ref, now=now),
                lambda _: done(True),
                refused=refused,
            )

        self.open_form(lambda: form(context, None, values), noun=record_type, on_saved=saved)

    def action_follow_up(self) -> None:
        from datetime import time  # here: ``time`` at the top is the time module

        # the mail modules load when first used, not with the app (start-up)
        from crm_tui.mail.sync import load_free_domains

        message_id = self.current()
        if message_id is None:
            return
        context = self.context
        tomorrow = (context.clock.now().astimezone(context.zone) + timedelta(days=1)).date()
        start = datetime.combine(tomorrow, time(9, 0))
        with context.database().read() as session:
            values = mail_actions.follow_up_prefill(
                session,
                message_id,
                start,
                mine=mail_accounts.my_addresses(session),
                free_domains=set(load_free_domains()),
            )
        values["follow_up_of"] = str(message_id)  # saved with it: done by itself once the thread is answered

        def saved(activity_id: int) -> None:

            named = self.record_name(RecordRef(RecordType.ACTIVITY, activity_id))

            def take_back(session: Any) -> str:
                activities.delete_activity(session, activity_id)
                return f"undone: follow-up {named} removed"

            self._done(TakeBack(f"follow-up planned for {start:%a %d %b %H:%M}", take_back))

        self.open_form(lambda: activity_form(context, None, values), noun="activity", on_saved=saved)

    def action_accept_invitation(self) -> None:

        message_id = self.current()
        if message_id is None:
            return
        context = self.context
        with context.database().read() as session:
            invitation = invitation_of(mailbox.raw_of(session, message_id), context.zone)
            mine = mail_accounts.my_addresses(session)
        if invitation is None:
            self.say("this mail holds no calendar invitation")
            return
        if invitation.method == "CANCEL":
            self.say("this is a cancellation, not an invitation")
            return
        now = context.clock.now()

        def accepted_it(accepted: Any) -> None:
            start = invitation.start.astimezone(context.zone)
            made = f", {accepted.person} made from the sender" if accepted.created_person else ""
            self._done(
                TakeBack(
                    f"meeting on {start:%a %d %b %H:%M} in the calendar{made}",
                    lambda session: mail_actions.take_back_acceptance(session, message_id, accepted, now=now),
                )
            )

        self.write_in_worker(
            lambda session: mail_actions.accept_invitation(
                session, message_id, invitation, mine=mine, now=now, me_id=context.me_id()
            ),
            accepted_it,
        )

    def action_attachments(self) -> None:
        # the mail modules load when first used, not with the app (start-up)
        from crm_tui.mail.parse import attachment_payloads

        message_id = self.current()
        if message_id is None:
            return
        context = self.context
        with context.database().read() as session:
            raw = mailbox.raw_of(session, message_id)
        if raw is None:
            self.say("the body is still being downloaded; its attachments come with it")
            return
        files = attachment_payloads(raw)
        if not files:
            self.say("this mail has no attachments")
            return
        self.app.push_screen(AttachmentsScreen(message_id, files, context))

    def action_write(self, kind: str, template: bool = False) -> None:
        """m: a new mail; r: reply to the sender; g: reply to all; f: forward (attachments included); T: a reply
        that starts in the template picker (the templates this mail can fill first). Once ctrl+s has queued
        the mail, u takes it back until it goes out."""
        message_id = self.current() if kind != "new" else None
        if kind != "new" and message_id is None:
            return
        write_about(self, message_id, kind, template=template, then=self._queued)

    def _queued(self, result: Any) -> None:
        """A mail written from here went to the outbox: u takes it back (a draft again) until it goes out (the
        app keeps it as the mail queued last: ``action_undo``)."""

    def action_drafts(self) -> None:

        recall_draft(self)

    def action_outbox(self) -> None:

        self.app.push_screen(OutboxScreen())

    def action_comment(self) -> None:

        message_id = self.current()
        if message_id is None:
            return
        context = self.context
        with context.database().read() as session:
            links = inbox.filed_on(session, message_id)
            target = links[0] if links else None
        if target is None:
            self.crm_app.update_status("file the mail on a record first (e), then comment")
            return
        named = self.record_name(target)

        added: list[int] = []

        def save(body: str) -> str | None:
            now = context.clock.now()
            failed, comment_id = self.attempt(
                lambda session: (
                    attachments.add_comment(session, target, body, author_id=context.me_id(), now=now).id
                )
            )
            if failed is None:
                added.append(comment_id)
            return failed  # the dialog stays open with the text and the reason

        def written(body: str | None) -> None:
            if body and added:
                comment_id = added[0]

                def take_back(session: Any) -> str:
                    attachments.delete_comment(session, comment_id)
                    return "undone: comment removed"

                self._done(TakeBack(f"comment added to {named}", take_back))

        self.app.push_screen(PromptDialog(f"Comment on {named}", multiline=True, save=save), written)


def original_of(session: Any, message_id: int, raw: bytes, *, with_attachments: bool = False) -> Any:
    """What a reply or forward takes from a stored mail (``mail.compose.Original``); ``raw``: its bytes (empty
    while its body has not arrived)."""
    # the mail modules load when first used, not with the app (start-up)
    from crm_tui.mail.compose import Original

    row = message_view(session, message_id)
    if row is None:
        return None
    header = (
        email.message_from_bytes(split_raw(raw)[0] + b"\r\n\r\n", policy=email.policy.compat32)
        if raw
        else None
    )
    reply_to = []
    if header is not None and header.get("Reply-To"):
        reply_to = [
            format_address(n, a)
            for n, a in email.utils.getaddresses([str(header.get("Reply-To"))])
            if a and "@" in a
        ]
    attachments = []
    if with_attachments and raw:
        # the mail modules load when first used, not with the app (start-up)
        from crm_tui.mail.parse import attachment_payloads

        attachments = attachment_payloads(raw)
    return Original(
        from_name=row.from_name,
        from_address=row.from_address,
        reply_to=reply_to,
        to=[line for line in row.to_addresses.splitlines() if line],
        cc=[line for line in row.cc_addresses.splitlines() if line],
        subject=row.subject,
        sent_at=row.sent_at,
        message_id=row.message_id_header,
        references=[r for r in (row.references or "").splitlines() if r],
        body=row.body_text,
        attachments=attachments,
    )


def invitation_of(raw: bytes | None, zone: Any) -> Any:
    """The calendar invitation in a stored mail's bytes (None: its body has not arrived), or None."""
    if not raw:
        return None
    if b"text/calendar" not in raw.lower() and b".ics" not in raw.lower():
        return None
    # the mail modules load when first used, not with the app (start-up)
    from crm_tui.mail.invites import find_invitation

    return find_invitation(raw, zone)


def invitation_text(invitation: Any, zone: Any) -> Text:
    text = Text()
    verb = "Cancelled" if invitation.method == "CANCEL" else "Invitation"
    text.append(f"📅 {verb}: ", style="bold magenta")
    text.append(terminal_safe(invitation.summary or "(no title)", max_length=120) + "\n", style="bold")
    start = invitation.start.astimezone(zone)
    if invitation.all_day:
        when = f"{start:%a %d %b %Y} (all day)"
    else:
        end = invitation.end.astimezone(zone) if invitation.end else None
        same_day = end is not None and end.date() == start.date()
        until = f"–{end:%H:%M}" if same_day else (f" – {end:%a %d %b %H:%M}" if end else "")
        when = f"{start:%a %d %b %Y %H:%M}{until}"
    text.append("   When: ", style="dim")
    text.append(when + "\n")
    if invitation.location:
        text.append("   Where: ", style="dim")
        text.append(terminal_safe(invitation.location, max_length=200) + "\n")
    name, address = invitation.organizer
    if address:
        text.append("   Organizer: ", style="dim")
        text.append(terminal_safe(f"{name} <{address}>" if name else address, max_length=120) + "\n")
    if invitation.attendees:
        text.append("   Attendees: ", style="dim")
        shown = ", ".join(n or a for n, a in invitation.attendees[:12])
        more = f" and {len(invitation.attendees) - 12} more" if len(invitation.attendees) > 12 else ""
        text.append(terminal_safe(shown + more, max_length=600) + "\n")
    if invitation.method != "CANCEL":
        text.append("   Y puts it in the calendar as a meeting\n", style="italic dim")
    text.append("\n")
    return text


def message_text(row: Any, zone: Any, *, limit: int = PREVIEW_CHARS) -> Text:
    """A message as the preview and the reader show it: headers, warnings, attachments, the body; every piece
    of mail text made terminal-safe, never read as markup."""
    text = Text()
    text.append(terminal_safe(row.subject or "(no subject)") + "\n", style="bold")
    text.append("From: ", style="dim")
    text.append(
        terminal_safe(f"{row.from_name} <{row.from_address}>" if row.from_name else row.from_address) + "\n"
    )
    for label, value in (("To", row.to_addresses), ("Cc", row.cc_addresses)):
        if value:
            text.append(f"{label}: ", style="dim")
            text.append(terminal_safe(", ".join(value.splitlines()), max_length=300) + "\n")
    if row.sent_at:
        text.append("Date: ", style="dim")
        text.append(row.sent_at.astimezone(zone).strftime("%a %d %b %Y %H:%M") + "\n")
    if row.is_flagged:
        text.append("! flagged\n", style="yellow")
    if row.parse_problems:
        problems = [line for line in row.parse_problems.splitlines() if line]
        text.append("⚠ kept with problems (the original is kept: crm-tui mail raw ", style="yellow")
        text.append(f"{row.id}):\n", style="yellow")
        for problem in problems[:5]:
            text.append(f"  {terminal_safe(problem, max_length=160)}\n", style="yellow")
        if len(problems) > 5:
            text.append(f"  … and {len(problems) - 5} more\n", style="yellow")
    if row.attachments:
        text.append("Attachments: ", style="dim")
        names = []
        for line in row.attachments.splitlines()[:20]:
            name, _type, size = (line.split("\t") + ["", "", "0"])[:3]
            names.append(f"{terminal_safe(name, max_length=60) or '(unnamed)'} ({size_text(size)})")
        text.append(", ".join(names) + "\n")
    text.append("\n")
    if not row.has_body:
        text.append("⟳ the body is still being downloaded (the next sync brings it)", style="italic dim")
    body = row.body_text[:limit]
    text.append(terminal_safe(body, single_line=False))
    if len(row.body_text) > limit:
        text.append(f"\n… ({len(row.body_text) - limit} more characters)", style="dim")
    return text


def related_text(session: Any, message_id: int, context: AppContext) -> Text:
    """The related panel: the sender's records, their open deals and activities, other mail, and why the
    mail is filed where it is."""
    # the mail modules load when first used, not with the app (start-up)
    from crm_tui.mail.sync import load_free_domains

    panel = mail_actions.related(session, message_id, free_domains=set(load_free_domains()))
    text = Text()
    text.append("Related  ", style="bold")
    text.append(terminal_safe(panel.sender, max_length=80) + "\n", style="dim")
    if not panel.people and not panel.links:
        text.append("unknown sender: L makes a lead, C a contact, e files the mail\n", style="italic")
    for ref, label in panel.people:
        text.append(f"  {ref.type.value:<13}", style="dim")
        text.append(terminal_safe(label, max_length=60) + "\n")
    for _ref, title, stage, cents, currency in panel.deals:
        text.append("  open deal    ", style="dim")
        text.append(
            f"{terminal_safe(title, max_length=40)} · {terminal_safe(stage)} · {_money(cents, currency)}\n"
        )
    for _ref, subject, start in panel.activities:
        text.append("  planned      ", style="dim")
        text.append(f"{start.astimezone(context.zone):%d %b %H:%M} {terminal_safe(subject, max_length=50)}\n")
    for _id, subject, sent in panel.threads[:3]:
        text.append("  other mail   ", style="dim")
        when = sent.astimezone(context.zone).strftime("%d %b") if sent else ""
        text.append(f"{when} {terminal_safe(subject, max_length=50)}\n")
    for ref, label, reason in panel.links:
        text.append("  filed on     ", style="dim")
        text.append(terminal_safe(label, max_length=40))
        text.append(f" [{ref}] ({mail_actions.REASONS.get(reason, reason)})\n", style="dim")
    text.append("─" * 40 + "\n", style="dim")
    return text


def write_about(
    screen: CrmScreen,
    message_id: int | None,
    kind: str,
    *,
    template: bool = False,
    then: Callable[[Any], None] | None = None,
) -> None:
    """Write a mail from ``screen``: kind new (no message), reply, reply_all or forward of ``message_id``; with
    ``template`` the reply starts in the template picker. ``then`` gets what the compose screen returns."""
    # the mail modules load when first used, not with the app (start-up)
    from crm_tui.mail import compose

    context = screen.context
    with context.database().read() as session:
        identities = mail_accounts.identities(session)
        mine = mail_accounts.my_addresses(session)
        identity = mail_accounts.identity_for(session, message_id) if message_id else None
        original_raw = (mailbox.raw_of(session, message_id) or b"") if message_id else b""
        original = (
            original_of(session, message_id, original_raw, with_attachments=kind == "forward")
            if message_id
            else None
        )
    if not identities:
        screen.notify("Add a mail account first (Settings, or crm-tui account add).", severity="warning")
        return
    identity = identity or identities[0]
    if original is None:
        draft = compose.Draft(identity.name, identity.address)
        title = "New mail"
    elif kind == "forward":
        draft = compose.forward(
            original, from_name=identity.name, from_address=identity.address, zone=context.zone
        )
        title = "Forward"
    else:
        draft = compose.reply(
            original,
            from_name=identity.name,
            from_address=identity.address,
            mine=mine,
            everyone=kind == "reply_all",
            zone=context.zone,
        )
        title = "Reply to all" if kind == "reply_all" else "Reply"
    draft.body = compose.with_signature(draft.body, identity.signature)
    composer = ComposeScreen(
        draft,
        identities=identities,
        identity_key=identity.key,
        title=title,
        reply_to_id=message_id if kind in ("reply", "reply_all") else None,
        original=(
            (original.subject, original_raw)
            if kind == "forward" and original is not None and original_raw
            else None
        ),
    )
    screen.app.push_screen(composer, then)
    if template:
        composer.call_after_refresh(composer.action_template)


THREAD_SHOWN = 50  # messages of a thread the reader shows at most (the newest)


class MessageReader(CrmScreen):
    """One message, whole, to read (Enter in the list); with ``thread``, its whole thread, oldest first (Enter
    on a mail of a deal's timeline). r replies, g replies to all (to the newest message of the thread); q or Esc
    goes back."""

    BINDINGS = [
        Binding("q", "back", "Back", id="reader.back"),
        Binding("escape", "back", "Back", show=False, id="reader.escape"),
        Binding("j", "scroll(1)", "Down", show=False, id="reader.down"),
        Binding("k", "scroll(-1)", "Up", show=False, id="reader.up"),
        Binding("space", "page", "Page down", show=False, id="reader.page"),
        Binding("r", "write('reply')", "Reply", id="reader.reply"),
        Binding("g", "write('reply_all')", "Reply all", id="reader.reply_all"),
    ]

    def __init__(self, message_id: int, *, thread: bool = False) -> None:
        super().__init__()
        self.message_id = message_id
        self.thread = thread
        self.newest_id = message_id  # what r and g answer: the thread's newest message

    def action_write(self, kind: str) -> None:
        write_about(self, self.newest_id, kind)

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="reader"):
            yield Static(id="reader-text")
        yield StatusBar()
        yield Footer()

    def on_mount(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, group="reader", exit_on_error=False)
    def _load(self) -> None:

        context = self.context
        with context.database().read() as session:
            ids = [self.message_id]
            if self.thread:
                ids = triage.thread_members(session, [self.message_id], None).get(self.message_id, ids)
            text = Text()
            for index, message_id in enumerate(ids[-THREAD_SHOWN:]):
                row = message_view(session, message_id)
                if row is None:
                    continue
                if index:
                    text.append("\n" + "═" * 60 + "\n\n", style="dim")
                text.append_text(message_text(row, context.zone, limit=1_000_000 // len(ids)))
            if not text.plain:
                text = Text("This mail is gone.")
        self.post_message(PreviewLoaded(ids[-1], text))

    @on(PreviewLoaded)
    def _show(self, message: PreviewLoaded) -> None:
        self.newest_id = message.message_id
        self.query_one("#reader-text", Static).update(message.text)

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_scroll(self, step: int) -> None:
        scroll = self.query_one("#reader", VerticalScroll)
        scroll.scroll_relative(y=step * 3, animate=False)

    def action_page(self) -> None:
        self.query_one("#reader", VerticalScroll).scroll_page_down(animate=False)
