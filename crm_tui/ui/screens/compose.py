"""Writing a mail: a new one (m), a reply (r), a reply to all (g), a forward (f). From is one of my identities;
To/Cc/Bcc complete from the CRM's contacts, leads, organizations and colleagues; ctrl+s queues it in the outbox
at once when every recipient is an address (asking first when it has no subject); the outbox delivers it
after a few seconds in which u takes it back, wherever the mail was written from (also later when offline);
ctrl+o attaches a file; ctrl+t fills it from a template (filled in a thread: the app never freezes on a slow
one); Esc discards (asking if anything was written)."""

from __future__ import annotations

import email.utils
import logging
import mimetypes
import os
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Input, Label, Select, Static, TextArea

from crm_tui.core.errors import CrmError, ValidationError
from crm_tui.core.mail_identity import format_address
from crm_tui.core.sanitize import strip_unsafe, terminal_safe
from crm_tui.core.services import (
    attachments,
    drafts,
    email_templates,
    mail_accounts,
    mail_actions,
    outbox,
    recipients,
    records,
)
from crm_tui.core.services.drafts import DraftFields
from crm_tui.core.types import RecordRef, RecordType
from crm_tui.core.wording import size_text
from crm_tui.mail.compose import Draft, addresses, build, with_signature
from crm_tui.ui.messages import TemplateFilled, TemplatesFilled
from crm_tui.ui.screens.base import CrmScreen, write_in_worker
from crm_tui.ui.screens.dialogs import ChoiceDialog, ConfirmDialog, PromptDialog
from crm_tui.ui.screens.record_form import saved_id
from crm_tui.ui.screens.template_picker import TemplatePicker
from crm_tui.ui.widgets.recipient_input import Choice, RecipientInput, recipient_items
from crm_tui.ui.widgets.status_bar import StatusBar

if TYPE_CHECKING:
    from crm_tui.ui.app import CrmApp

MAX_ATTACHMENT_BYTES = 25 * 2**20
DRAFT_DELAY = 1.5  # seconds after the last key: the draft is saved
RECIPIENT_KINDS = {"contact": "contact", "lead": "lead", "organization": "organization", "user": "colleague"}
TEMPLATE_NOTE_AFTER = 0.3  # seconds: filling the templates takes longer, a note says it is under way


@dataclass(frozen=True)
class Queued:
    """What ctrl+s did: the outbox item, to whom, and the mail as written (a draft again if taken back)."""

    item_id: int
    to: str
    fields: Any
    at: float = field(default_factory=time.monotonic)  # when (the newest take-back goes first)


TAKEN_BACK = "mail taken back: a draft again (R in the inbox)"


def take_back_queued(
    app: CrmApp, say: Callable[[str], None] | None = None, then: Callable[[], None] | None = None
) -> bool:
    """u (anywhere but where u means something else): the mail queued last is taken back, a draft again, while
    it has not gone out; once it has, it says so. False when no mail was queued since the last take-back.
    ``say``: how the screen puts a line on the status bar (the inbox's outlives its reload); ``then``: what the
    screen does once it is taken back (in a worker) or refused."""

    queued: Queued | None = getattr(app, "just_queued", None)
    if queued is None or queued.fields is None:
        return False
    app.just_queued = None
    now = app.context.clock.now()

    def refused(said: str) -> None:
        app.notify(
            f"{said[:1].upper()}{said[1:]} (the mail to {terminal_safe(queued.to)}).",
            severity="warning",
            timeout=8,
        )
        if then is not None:
            then()

    def taken_back(_: Any) -> None:
        said = f"taken back: the mail to {terminal_safe(queued.to)} is a draft again (R in the inbox lists the drafts)"
        app.notify(said[0].upper() + said[1:] + ".")
        (say or app.update_status)(TAKEN_BACK)
        if then is not None:
            then()

    write_in_worker(
        app, lambda session: outbox.take_back(session, queued.item_id, queued.fields, now=now), taken_back,
        refused=refused,
    )  # fmt: skip
    return True


class ComposeScreen(CrmScreen):
    BINDINGS = [
        Binding("ctrl+s", "send", "Send", id="compose.send"),
        Binding("ctrl+o", "attach", "Attach file", id="compose.attach"),
        Binding(
            "ctrl+d", "attach_document", "Attach a record's document", priority=True, id="compose.document"
        ),
        Binding("ctrl+e", "editor", "Edit in $EDITOR", priority=True, id="compose.editor"),
        Binding("ctrl+t", "template", "Template", priority=True, id="compose.template"),
        Binding(
            "ctrl+f", "forward_whole", "Forward attached / inline", priority=True, id="compose.forward_whole"
        ),
        Binding("escape", "discard", "Discard", id="compose.discard"),
    ]
    AUTO_FOCUS = "#c-to"

    def __init__(
        self,
        draft: Draft,
        *,
        identities: list[Any],
        identity_key: str | None,
        title: str,
        reply_to_id: int | None = None,
        record: tuple[str, int] | None = None,
        original: tuple[str, bytes] | None = None,
        draft_id: int | None = None,
        offered: list[str] | None = None,
    ) -> None:
        super().__init__()
        self.offered = list(offered or [])  # completed first in To, Cc and Bcc (the record's other people)
        self.draft_id = draft_id  # the saved draft (saved as it is written)
        self._save_timer: Any = None
        self._loaded = False
        self.original = (
            original  # a forward's (subject, raw bytes): ctrl+f attaches it whole instead of inline
        )
        self.inline_kept: tuple[str, list[Any]] | None = None
        self.draft, self.identities, self.identity_key = draft, identities, identity_key
        self.title_text, self.reply_to_id, self.record = title, reply_to_id, record
        self.attachments = list(draft.attachments)
        self.sent_item: int | None = None
        self._queueing = False  # ctrl+s has sent the mail to the outbox (a worker writes it)
        self._template_timer: Any = None  # set while a template list or a template is being filled
        self._book: Any = None  # who was written to when, and the team: read once, at the first lookup
        self._book_lock = threading.Lock()

    def compose(self) -> ComposeResult:
        d = self.draft
        with Vertical(id="compose-form"):
            yield Label(Text(self.title_text, style="bold"))
            with Horizontal(classes="compose-row"):
                yield Label("From", classes="compose-label")
                yield Select(
                    [(terminal_safe(i.label), i.key) for i in self.identities],
                    value=self.identity_key or (self.identities[0].key if self.identities else Select.BLANK),
                    allow_blank=not self.identities,
                    id="c-from",
                )
            for name, label, value in (("to", "To", d.to), ("cc", "Cc", d.cc), ("bcc", "Bcc", d.bcc)):
                with Horizontal(classes="compose-row"):
                    yield Label(label, classes="compose-label")
                    yield RecipientInput(
                        ", ".join(value),
                        find=self.find_recipients,
                        id=f"c-{name}",
                        placeholder="name or address (Tab completes)",
                        # Coming back to a field of recipients adds to them: a selected field would be
                        # replaced by the first letter typed (the deal's primary contact lost to another).
                        select_on_focus=False,
                    )
                yield Static(id=f"c-{name}-hint", classes="compose-hint hidden")
            with Horizontal(classes="compose-row"):
                yield Label("Subject", classes="compose-label")
                # Tabbing into a subject ("Re: ...") must not select it: the first key would replace it.
                yield Input(d.subject, id="c-subject", select_on_focus=False)
            yield Static(id="c-attachments")
            yield TextArea(d.body, id="c-body", soft_wrap=True)
        yield StatusBar()
        yield Footer()

    def on_mount(self) -> None:
        self.call_after_refresh(self._start_saving)
        self._show_attachments()
        if len(self.identities) <= 1:
            # Nothing to choose: Tab from the text goes round to To, not to a From that takes no typing
            # (what was typed there went nowhere).
            self.query_one("#c-from", Select).can_focus = False
        body = self.query_one("#c-body", TextArea)
        body.move_cursor((0, 0))
        if self.draft.to:  # a reply: write at the top, above the quote
            self.set_focus(body)

    # --- recipients: completed as they are typed, checked before sending ---

    def find_recipients(self, typed: str, head: str) -> list[Choice]:
        """The people ``typed`` may mean (run in a thread, on each key): the record's other people first
        (one letter is enough among them), then the address book's best matches."""

        context = self.context
        present = {address.lower() for _, address in email.utils.getaddresses([head]) if address}
        words = [recipients.fold(word) for word in recipients.typed_words(typed)]
        choices: list[Choice] = []
        for offered in self.offered:
            name, address = email.utils.parseaddr(offered)
            if address.lower() not in present and recipients.tier(words, name, address) is not None:
                choices.append(Choice(offered, "on this record"))
                present.add(address.lower())
        with context.database().read() as session:
            with self._book_lock:
                if self._book is None:
                    self._book = recipients.address_book(session)
            found = recipients.complete(session, typed, book=self._book, skip=present, limit=6)
        for recipient in found:
            note = RECIPIENT_KINDS.get(recipient.kind, recipient.kind)
            if recipient.last_written:
                note += f", written to {recipient.last_written.astimezone(context.zone):%d.%m.%Y}"
            choices.append(Choice(recipient.text, note))
        return choices[:6]

    @on(RecipientInput.Suggested)
    def _suggested(self, event: RecipientInput.Suggested) -> None:
        hint = self.query_one(f"#{event.field.id}-hint", Static)
        if not event.choices:
            hint.update("")
            hint.add_class("hidden")
            return
        text = Text()
        for index, choice in enumerate(event.choices):
            chosen = index == event.chosen
            text.append("› " if chosen else "  ", style="bold" if chosen else "")
            text.append(terminal_safe(choice.text, max_length=120), style="bold" if chosen else "")
            text.append(f"  {terminal_safe(choice.note)}", style="dim")
            if index == 0:
                text.append(
                    "   Tab takes it" + (", ↑↓ another" if len(event.choices) > 1 else ""), style="dim italic"
                )
            text.append("\n")
        text.rstrip()
        hint.remove_class("error")
        hint.update(text)
        hint.remove_class("hidden")

    def not_addresses(self) -> bool:
        """Say under To, Cc or Bcc which recipient is not an address (a bare name); True if one is."""
        for name in ("to", "cc", "bcc"):
            field = self.query_one(f"#c-{name}", Input)
            bare = [item for item in recipient_items(field.value) if "@" not in item]
            if bare:
                hint = self.query_one(f"#c-{name}-hint", Static)
                which = ", ".join(f"“{terminal_safe(one, max_length=60)}”" for one in bare)
                hint.update(
                    Text(
                        f"{which} {'is not an address' if len(bare) == 1 else 'are not addresses'}: type a "
                        "few letters of the name and Tab takes the address, or write Name <address>",
                    )
                )
                hint.add_class("error")
                hint.remove_class("hidden")
                self.set_focus(field)
                return True
        return False

    # --- drafts: saved as they are written ---

    def _start_saving(self) -> None:
        self._loaded = True

    def on_input_changed(self, event: Input.Changed) -> None:
        if self._loaded and (event.input.id or "").startswith("c-"):
            self._schedule_save()

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        if self._loaded:
            self._schedule_save()

    def _schedule_save(self) -> None:
        if self._save_timer is not None:
            self._save_timer.stop()
        self._save_timer = self.set_timer(DRAFT_DELAY, self.save_draft)

    def draft_fields(self) -> Any:
        # the mail modules load when first used, not with the app (start-up)
        from crm_tui.mail.compose import build_draft

        identity = next(
            (i for i in self.identities if i.key == self.query_one("#c-from", Select).value), None
        )
        if identity is None:
            return None
        values = {name: self.query_one(f"#c-{name}", Input).value for name in ("to", "cc", "bcc", "subject")}
        body = self.query_one("#c-body", TextArea).text
        draft = Draft(
            identity.name, identity.address, to=[values["to"]], cc=[values["cc"]], bcc=[values["bcc"]],
            subject=values["subject"], body=body, in_reply_to=self.draft.in_reply_to,
            references=self.draft.references, attachments=self.attachments,
        )  # fmt: skip
        raw, message_id = build_draft(draft, now=self.context.clock.now())
        fields = DraftFields(
            identity.account_id, identity.address, values["to"], values["cc"], values["bcc"], values["subject"],
            body, self.draft.in_reply_to, self.draft.references, raw, self.reply_to_id, self.record,
        )  # fmt: skip
        return fields, raw, message_id

    def save_draft(self) -> None:
        """Save the mail as a draft (in a worker), and its copy in the Drafts folder in the background."""

        self._save_timer = None
        built = self.draft_fields()
        if built is None:
            return
        fields, raw, message_id = built
        app = self.crm_app
        now = app.context.clock.now()

        def save(session: Any) -> int:
            # The draft's id as it is when this write runs: the writes run in order, and each one's answer is
            # taken before the next runs, so a second save updates the draft the first made.
            self.draft_id = saved_id(drafts.save(session, self.draft_id, fields, now=now).id)
            return self.draft_id

        def saved(draft_id: int) -> None:
            if app.context.demo:
                return

            def store() -> None:
                # the mail modules load when first used, not with the app (start-up)
                from crm_tui.mail import drafts as server_drafts

                said = server_drafts.store(app.context.database(), draft_id, raw, message_id)
                app.call_from_thread(app.update_status, said)

            app.run_worker(store, thread=True, exclusive=True, group="draft-copy", exit_on_error=False)

        self.write_in_worker(save, saved)

    def drop_draft(self) -> None:
        """The mail was sent or discarded: its draft goes, here and in the Drafts folder (in workers)."""

        if self._save_timer is not None:
            self._save_timer.stop()
            self._save_timer = None
        app = self.crm_app

        def drop(session: Any) -> tuple[int, str] | None:
            # The draft as it is when this write runs (a save asked for before it has run by then).
            draft_id, self.draft_id = self.draft_id, None
            return drafts.remove(session, draft_id) if draft_id is not None else None

        def dropped(server_copy: tuple[int, str] | None) -> None:
            if server_copy is None or app.context.demo:
                return
            account_id, server_id = server_copy

            def remove() -> None:
                # the mail modules load when first used, not with the app (start-up)
                from crm_tui.mail import drafts as server_drafts

                server_drafts.remove(app.context.database(), account_id, server_id)

            app.run_worker(remove, thread=True, group="draft-remove", exit_on_error=False)

        self.write_in_worker(drop, dropped)

    def _show_attachments(self) -> None:
        text = Text()
        if self.attachments:
            text.append("Attachments: ", style="dim")
            text.append(
                ", ".join(
                    f"{terminal_safe(name, max_length=50)} ({size_text(str(len(data)))})"
                    for name, _t, data in self.attachments
                )
            )
        self.query_one("#c-attachments", Static).update(text)

    def current(self) -> Draft:
        identity = next(
            (i for i in self.identities if i.key == self.query_one("#c-from", Select).value), None
        )
        if identity is None:
            raise ValidationError.single("from", "no mail account to send from: add one in Settings")
        return Draft(
            from_name=identity.name,
            from_address=identity.address,
            to=addresses(self.query_one("#c-to", Input).value),
            cc=addresses(self.query_one("#c-cc", Input).value),
            bcc=addresses(self.query_one("#c-bcc", Input).value),
            subject=self.query_one("#c-subject", Input).value,
            body=self.query_one("#c-body", TextArea).text,
            in_reply_to=self.draft.in_reply_to,
            references=self.draft.references,
            attachments=self.attachments,
        )

    def action_send(self) -> None:
        """ctrl+s: queued at once when every recipient is an address (a bare name is named under its field and
        nothing goes) and it has a subject (else it asks first, as mutt and aerc do); the mail waits
        ``send_delay_seconds`` in the outbox, and u takes it back."""
        if self.not_addresses():
            return
        try:
            draft = self.current()
            raw, message_id, recipients = build(draft, now=self.context.clock.now())
        except (ValidationError, CrmError) as exc:
            problems = exc.errors.values() if isinstance(exc, ValidationError) else [str(exc)]
            self.notify("; ".join(problems), severity="warning")
            return
        if draft.subject.strip():
            self._queue(draft, raw, message_id, recipients)
            return

        def decided(send: bool | None) -> None:
            if send:
                self._queue(draft, raw, message_id, recipients)
            else:
                self.set_focus(self.query_one("#c-subject", Input))

        self.app.push_screen(
            ConfirmDialog(
                "Send without a subject?",
                "This mail has no subject. y sends it as it is; n or Esc goes back to write one.",
                confirm_label="Send",
            ),
            decided,
        )

    def _queue(self, draft: Draft, raw: bytes, message_id: str, recipients: list[str]) -> None:

        if self._queueing:
            return  # ctrl+s again while the mail goes to the outbox: it goes once
        self._queueing = True

        account_id = int(str(self.query_one("#c-from", Select).value).split(":", 1)[0])
        context = self.context
        now = context.clock.now()
        built = self.draft_fields()  # as written: taking the mail back makes it this draft again
        delay = max(0, context.settings.send_delay_seconds)
        self.write_in_worker(
            lambda session: (
                outbox.queue(
                    session,
                    account_id=account_id,
                    message_id=message_id,
                    from_address=draft.from_address,
                    recipients=recipients,
                    subject=" ".join(draft.subject.split()),
                    raw=raw,
                    now=now,
                    reply_to_id=self.reply_to_id,
                    record=self.record,
                    hold=timedelta(seconds=delay) if delay else None,
                ).id
            ),
            lambda item_id: self._queued(item_id, recipients, built, delay),
            refused=self._not_queued,
        )

    def _not_queued(self, reason: str) -> None:
        self._queueing = False
        self.notify(reason, severity="warning", timeout=8)

    def _queued(self, item_id: int, recipients: list[str], built: Any, delay: int) -> None:
        """The mail is in the outbox: its draft goes, u can take it back, the screen closes."""
        context = self.context
        self.sent_item = item_id
        self.drop_draft()
        who = recipients[0] if len(recipients) == 1 else f"{len(recipients)} recipients"
        queued = Queued(item_id, who, built[0] if built else None)
        # u takes it back from wherever it was written (the app's u; the inbox's u when it is the newest step).
        self.crm_app.just_queued = queued
        if context.demo:
            self.app.notify(
                f"Queued to {who}. Demo mode: it waits in the outbox, nothing is delivered; u takes it back."
            )
        elif delay:
            self.app.notify(f"Queued to {who}: it goes out in {delay} s; u takes it back until then.")
            self.crm_app.set_timer(delay + 0.5, self.crm_app.flush_outbox)
        else:
            self.app.notify(f"Queued to {who}: it goes out now, or as soon as the server can be reached.")
            self.crm_app.flush_outbox()
        self.dismiss(queued)

    def action_attach(self) -> None:

        def attach(path_text: str | None) -> None:
            if not path_text:
                return
            path = Path(path_text).expanduser()
            try:
                size = path.stat().st_size
                if size > MAX_ATTACHMENT_BYTES:
                    raise CrmError(f"{path.name} is larger than {MAX_ATTACHMENT_BYTES // 2**20} MiB")
                data = path.read_bytes()
            except OSError as exc:
                self.notify(
                    f"cannot attach {terminal_safe(str(path))}: {exc.strerror or exc}", severity="warning"
                )
                return
            except CrmError as exc:
                self.notify(str(exc), severity="warning")
                return

            self.attachments.append(
                (path.name, mimetypes.guess_type(path.name)[0] or "application/octet-stream", data)
            )
            self._show_attachments()

        self.app.push_screen(PromptDialog("Attach file (path)", placeholder="~/Documents/offer.pdf"), attach)

    def action_editor(self) -> None:
        """Write the body in the user's editor ($VISUAL, $EDITOR, else vi): the app steps aside meanwhile."""

        command = shlex.split(os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi")
        if not command or shutil.which(command[0]) is None:
            self.notify(f"no editor {' '.join(command)!r} here: set $EDITOR", severity="warning")
            return
        body = self.query_one("#c-body", TextArea)
        handle, name = tempfile.mkstemp(prefix="crm-tui-mail-", suffix=".txt")  # private: mode 0600
        path = Path(name)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(body.text)
            try:
                if self.app.is_headless:  # no terminal to hand over (tests): the editor runs without one
                    subprocess.run([*command, str(path)], check=False, stdin=subprocess.DEVNULL)  # noqa: S603
                else:
                    with self.app.suspend():
                        subprocess.run([*command, str(path)], check=False)  # noqa: S603 - the user's own editor
            except Exception as exc:  # noqa: BLE001 - e.g. no terminal to hand over (suspend not supported)
                self.notify(f"the editor could not run here: {exc}", severity="warning")
                return
            body.text = path.read_text(encoding="utf-8", errors="replace")
        finally:
            path.unlink(missing_ok=True)
        self.set_focus(body)

    def merge_refs(self, session: Any, to: str | None = None) -> list[RecordRef]:
        """The records a template fills from: the record the mail is written from, the contacts, leads and
        colleagues in To, the records the answered mail is filed on (else the open deal of whom it goes to)."""
        return self.mail_merge(session, to).refs

    def mail_merge(self, session: Any, to: str | None = None) -> email_templates.MailMerge:
        """``merge_refs`` and the notes the template picker shows about them (email_templates.MailMerge);
        ``to``: the To field as read on the UI thread (a worker passes it), else read here."""

        if to is None:
            to = self.query_one("#c-to", Input).value
        return email_templates.mail_merge(
            session,
            record=RecordRef(RecordType(self.record[0]), self.record[1]) if self.record else None,
            reply_to_id=self.reply_to_id,
            addresses=[address for _, address in email.utils.getaddresses([to])],
        )

    def _filling_note(self, what: str) -> None:
        """After a moment of filling: a note that it is under way (the app stays usable meanwhile)."""
        if self._template_timer is not None:
            self._template_timer.stop()
        self._template_timer = self.set_timer(
            TEMPLATE_NOTE_AFTER,
            lambda: self.notify(what, title="Template", timeout=4),
        )

    def _filled(self) -> None:
        if self._template_timer is not None:
            self._template_timer.stop()
            self._template_timer = None

    def action_template(self) -> None:
        """Fill the mail from a template and the records it is about (shown here before anything is sent):
        the picker lists first the templates this mail can fill, the others with what they need. A reply
        (or a forward) keeps its subject and threading and gets the text above the quote; a new mail takes
        the template's subject, and its signature stays under the text."""
        if self._template_timer is not None:
            self.notify("The templates are being filled; the list shows when they are.", title="Template")
            return
        self._filling_note("Filling the templates with this mail's records…")
        self._fill_templates(self.query_one("#c-to", Input).value)

    @work(thread=True, exclusive=True, group="template-fill", exit_on_error=False)
    def _fill_templates(self, to: str) -> None:
        """Each template filled with this mail's records (one may take its 2 s): plain data back to the UI."""

        context = self.context
        try:
            with context.database().read() as session:
                sources = self.mail_merge(session, to)
                merge = email_templates.merge_context(
                    session, sources.refs, me_id=context.me_id(), today=context.today()
                )
                fits = email_templates.fitting_for_mail(session, merge)
        except CrmError as exc:
            self.post_message(TemplatesFilled([], [], str(exc)))
            return
        except Exception as exc:  # noqa: BLE001 - said in words; the picker can be asked for again
            logging.getLogger(__name__).exception("filling the templates")
            self.post_message(TemplatesFilled([], [], f"the templates could not be filled: {exc}"))
            return
        self.post_message(TemplatesFilled(fits, list(sources.notes)))

    @on(TemplatesFilled)
    def _templates_filled(self, message: TemplatesFilled) -> None:

        self._filled()
        if message.error:
            self.notify(message.error, title="Template", severity="warning", timeout=12)
            return
        fits = message.fits
        if not fits:
            self.notify("No templates yet: add them in Settings > Mail templates.", severity="warning")
            return
        if not self.is_current:  # left meanwhile (a dialog over it, or gone)
            return

        def chosen(template_id: str | None) -> None:
            if template_id:
                self.apply_template(int(template_id))

        fitting = sum(1 for fit in fits if fit.fits)
        self.app.push_screen(
            TemplatePicker(f"Template ({fitting} of {len(fits)} fit this mail)", fits, notes=message.notes),
            chosen,
        )

    def apply_template(self, template_id: int) -> None:
        """Fill the template in a thread (it may take its 2 s); the mail takes it when it is filled."""
        self._filling_note("Filling the template…")
        self._fill_template(template_id, self.query_one("#c-to", Input).value)

    @work(thread=True, exclusive=True, group="template-fill", exit_on_error=False)
    def _fill_template(self, template_id: int, to: str) -> None:

        context = self.context
        try:
            with context.database().read() as session:
                merge = email_templates.merge_context(
                    session, self.merge_refs(session, to), me_id=context.me_id(), today=context.today()
                )
                filled = email_templates.render_template(session, template_id, merge)
            if filled is None:
                self.post_message(TemplateFilled("", "", "that template is gone"))
                return
            subject, body = filled
        except CrmError as exc:
            self.post_message(TemplateFilled("", "", str(exc)))
            return
        except Exception as exc:  # noqa: BLE001 - said in words; the picker can be asked for again
            logging.getLogger(__name__).exception("filling the template")
            self.post_message(TemplateFilled("", "", f"the template could not be filled: {exc}"))
            return
        self.post_message(TemplateFilled(subject, body))

    @on(TemplateFilled)
    def _template_filled(self, message: TemplateFilled) -> None:
        self._filled()
        if message.error:
            self.notify(message.error, title="Template", severity="warning", timeout=12)
            return
        # Fields from records (a name or a ticket's subject taken from a mail) go in without control characters.
        subject, body = strip_unsafe(message.subject), strip_unsafe(message.body, single_line=False)
        area = self.query_one("#c-body", TextArea)
        if not (self.draft.in_reply_to or self.draft.subject):
            # A new mail takes the template's subject; a reply, a forward or a mail taken up again keeps
            # its own (Re: ...) and its threading.
            self.query_one("#c-subject", Input).value = subject
        if area.text.strip() and area.text != self.draft.body or self.draft.in_reply_to or self.draft.subject:
            # Above what is there (the quote, or what was written already), a blank line between.
            area.text = body.rstrip("\n") + "\n\n" + area.text.lstrip("\n")
        else:
            identity = next(
                (i for i in self.identities if i.key == self.query_one("#c-from", Select).value), None
            )
            area.text = with_signature(body, identity.signature if identity else "")
        area.move_cursor((0, 0))
        self.set_focus(area)

    def action_attach_document(self) -> None:
        """Attach a document of the records this mail is about (the one it is written from, those the answered
        mail is filed on, the recipients' contacts and their organizations)."""

        context = self.context
        with context.database().read() as session:
            documents = [
                (str(d.id), f"{d.filename} — {d.record}")
                for d in attachments.documents_for_mail(session, self.merge_refs(session))
            ]
        if not documents:
            self.notify("The records of this mail have no documents.", severity="warning")
            return

        def chosen(document_id: str | None) -> None:
            if not document_id:
                return
            name = dict(documents)[document_id].rpartition(" — ")[0]
            try:
                with context.database().read() as session:
                    document, data = attachments.read_document(
                        session, context.document_store(), int(document_id)
                    )
            except CrmError as exc:
                self.notify(f"cannot read {terminal_safe(name)}: {exc}", severity="warning")
                return
            self.attachments.append((document.filename, document.content_type, data))
            self._show_attachments()

        self.app.push_screen(
            ChoiceDialog("Attach a document", [(i, terminal_safe(label)) for i, label in documents]), chosen
        )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "forward_whole":
            return self.original is not None
        return True

    def action_forward_whole(self) -> None:
        """A forward: the original attached whole (as the .eml it is), or back to its text inline."""
        if self.original is None:
            return
        area = self.query_one("#c-body", TextArea)
        if self.inline_kept is None:
            marker = area.text.find("-------- Forwarded message --------")
            self.inline_kept = (area.text, list(self.attachments))
            if marker >= 0:
                area.text = area.text[:marker].rstrip("\n") + "\n"
            subject, raw = self.original
            name = (strip_unsafe(subject)[:60] or "message").replace("/", "-") + ".eml"
            self.attachments = [(name, "message/rfc822", raw)]
            self.notify("The original goes along whole, as an attachment (ctrl+f: inline again).")
        else:
            area.text, self.attachments = self.inline_kept[0], self.inline_kept[1]
            self.inline_kept = None
            self.notify("The original's text is inline again, its attachments attached.")
        self._show_attachments()

    def action_discard(self) -> None:
        changed = (
            self.query_one("#c-body", TextArea).text != self.draft.body
            or any(
                self.query_one(f"#c-{name}", Input).value.strip()
                != ", ".join(getattr(self.draft, name)).strip()
                for name in ("to", "cc", "bcc")
            )
            or self.query_one("#c-subject", Input).value != self.draft.subject
            or self.attachments != list(self.draft.attachments)
        )
        if not changed:
            self.app.pop_screen()
            return

        def decided(choice: str | None) -> None:
            if choice == "keep":
                self.save_draft()
                self.app.notify("Kept as a draft: R in the inbox takes it up again.")
                self.app.pop_screen()
            elif choice == "discard":
                self.drop_draft()
                self.app.pop_screen()

        self.app.push_screen(
            ChoiceDialog(
                "Leave this mail?",
                [("keep", "Keep it as a draft"), ("discard", "Discard it (the draft goes too)")],
            ),
            decided,
        )


def write_from_record(screen: CrmScreen, ref: RecordRef) -> None:
    """Open a new mail to a record (a contact, lead, organization, deal, quote or ticket): the recipient is
    chosen among its addresses; once sent, the mail is an email activity on the record."""

    context = screen.context
    with context.database().read() as session:
        identities = mail_accounts.identities(session)
        choices = mail_actions.record_addresses(session, ref)
        label = records.record_label(session, ref)
    if not identities:
        screen.notify("Add a mail account first (Settings > Mail accounts).", severity="warning")
        return
    if not choices:
        screen.notify(f"{terminal_safe(label)} has no e-mail address.", severity="warning")
        return
    identity = identities[0]

    def open_with(address: str | None, others: list[str] | None = None) -> None:
        if not address:
            return
        draft = Draft(
            identity.name, identity.address, to=[address], body=with_signature("", identity.signature)
        )
        title = f"Mail to {terminal_safe(label)}"
        if others:
            title += f" · {len(others)} more on it: in To, type a comma and a letter"
        screen.app.push_screen(
            ComposeScreen(
                draft,
                identities=identities,
                identity_key=identity.key,
                title=title,
                record=(ref.type.value, ref.id),
                offered=others,
            )
        )

    if len(choices) == 1 or ref.type in (RecordType.OPPORTUNITY, RecordType.QUOTE):
        # A deal's (a quote's) mail goes to its primary contact, listed first; its other people complete
        # first in To.
        open_with(choices[0], choices[1:])
    else:
        screen.app.push_screen(ChoiceDialog("Send to", [(c, terminal_safe(c)) for c in choices]), open_with)


def write_invitation(screen: CrmScreen, activity_id: int) -> None:
    """A mail inviting a meeting's attendees, the iCalendar invitation attached; sent like any mail."""
    # the mail modules load when first used, not with the app (start-up)
    from crm_tui.mail.invites import invitation_ics

    context = screen.context
    try:
        with context.database().read() as session:
            identities = mail_accounts.identities(session)
            meeting = mail_actions.meeting_of(session, activity_id, mine=mail_accounts.my_addresses(session))
    except CrmError as exc:
        screen.notify(str(exc), severity="warning")
        return
    if not identities:
        screen.notify("Add a mail account first (Settings > Mail accounts).", severity="warning")
        return
    identity = identities[0]
    zone = context.zone
    start = meeting.start.astimezone(zone)
    end = meeting.end.astimezone(zone) if meeting.end else None
    when = f"{start:%A, %d.%m.%Y %H:%M}" + (f"–{end:%H:%M}" if end and end.date() == start.date() else "")
    ics = invitation_ics(
        uid=f"crm-tui-activity-{activity_id}@{identity.address.rpartition('@')[2]}",
        summary=meeting.subject,
        start=meeting.start,
        end=meeting.end,
        description=meeting.description,
        organizer=(identity.name, identity.address),
        attendees=meeting.attendees,
        now=context.clock.now(),
    )

    body = f"Einladung: {meeting.subject}\nWann: {when}\n" + (
        f"\n{meeting.description}\n" if meeting.description else ""
    )
    draft = Draft(
        identity.name,
        identity.address,
        to=[format_address(name, address) for name, address in meeting.attendees],
        subject=f"Einladung: {meeting.subject}",
        body=with_signature(body, identity.signature),
        attachments=[("invite.ics", "text/calendar; method=REQUEST", ics)],
    )
    screen.app.push_screen(
        ComposeScreen(draft, identities=identities, identity_key=identity.key, title="Invitation")
    )


def recall_draft(screen: CrmScreen) -> None:
    """Take up a saved draft again (R in the inbox)."""
    # the mail modules load when first used, not with the app (start-up)
    from crm_tui.mail.parse import attachment_payloads

    context = screen.context
    with context.database().read() as session:
        saved = [
            (str(d.id), f"{d.subject or '(no subject)'} — {d.to or 'no recipient'} — "
             f"{d.updated_at.astimezone(context.zone):%d.%m. %H:%M}")
            for d in drafts.saved_drafts(session)
        ]  # fmt: skip
        identities = mail_accounts.identities(session)
    if not saved:
        screen.notify("No drafts.")
        return

    def chosen(draft_id: str | None) -> None:
        if not draft_id:
            return
        with context.database().read() as session:
            row = drafts.saved_draft(session, int(draft_id))
        identity = next(
            (i for i in identities if i.account_id == row.account_id and i.address == row.from_address),
            identities[0] if identities else None,
        )
        draft = Draft(
            identity.name if identity else "", row.from_address, to=[row.to] if row.to else [],
            cc=[row.cc] if row.cc else [], bcc=[row.bcc] if row.bcc else [], subject=row.subject, body=row.body,
            in_reply_to=row.in_reply_to, references=list(row.references),
            attachments=attachment_payloads(row.raw) if row.raw else [],
        )  # fmt: skip
        record, reply_to_id = row.record, row.reply_to_id
        screen.app.push_screen(
            ComposeScreen(
                draft,
                identities=identities,
                identity_key=identity.key if identity else None,
                title="Draft",
                reply_to_id=reply_to_id,
                record=record,
                draft_id=int(draft_id),
            )  # fmt: skip
        )

    screen.app.push_screen(ChoiceDialog("Drafts", [(i, terminal_safe(label)) for i, label in saved]), chosen)
