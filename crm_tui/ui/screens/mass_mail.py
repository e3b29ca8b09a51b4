"""A mass mail at work (M on the contacts or leads list; m on Settings > Users: to the team): before anything is
queued who gets it and the first mails as they will go out; who is skipped and why, a progress bar; g starts or
resumes, s stops (nobody gets it twice), q goes back while it keeps going."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Footer, Label, ProgressBar, Static

from crm_tui.core.errors import CrmError
from crm_tui.core.sanitize import terminal_safe
from crm_tui.core.services import email_templates, mail_accounts, mass_mail
from crm_tui.core.types import RecordRef
from crm_tui.ui.messages import CampaignProgress
from crm_tui.ui.screens.base import CrmScreen
from crm_tui.ui.screens.record_form import saved_id
from crm_tui.ui.screens.template_picker import TemplatePicker
from crm_tui.ui.widgets.status_bar import StatusBar

CHECKING = "checking every recipient…"  # the status bar while a mass mail's recipients are checked


def prepare_mass_mail(
    screen: CrmScreen, kind: str, who: str, refs_of: Callable[[Any], list[RecordRef]]
) -> None:
    """Pick a template for a mass mail to ``kind`` recipients (contact, lead, user; those a template can
    fill first), then check every recipient (``refs_of(session)``) in a worker and show the mass mail, ready:
    nothing is queued before g."""

    context = screen.context
    with context.database().read() as session:
        has_identity = bool(mail_accounts.identities(session))
        fits = email_templates.fitting_for_recipients(session, kind)
    if not has_identity or not fits:
        screen.notify("Mass mail needs a mail account and a template (Settings).", severity="warning")
        return

    def make(template_id: int) -> None:
        try:
            check(template_id)
        finally:  # the check is over, however it ended: the status bar no longer says it runs
            screen.app.call_from_thread(screen.crm_app.end_status, CHECKING)

    def check(template_id: int) -> None:

        try:
            with context.database().read() as session:
                refs = refs_of(session)
            if not refs:
                raise CrmError("nobody to write to: the list is empty")
            with context.database().write() as session:
                identity = mail_accounts.identities(session)[0]
                campaign = mass_mail.create_campaign(
                    session,
                    template_id=template_id,
                    account_id=identity.account_id,
                    from_name=identity.name,
                    from_address=identity.address,
                    refs=refs,
                    per_minute=context.settings.mass_mail_per_minute,
                    now=context.clock.now(),
                    me_id=context.me_id(),
                    today=context.today(),
                )
                campaign_id = saved_id(campaign.id)
        except CrmError as exc:
            screen.app.call_from_thread(screen.notify, f"Mass mail: {exc}", severity="warning")
            return
        screen.app.call_from_thread(screen.app.push_screen, MassMailScreen(campaign_id))

    def chosen(template_id: str | None) -> None:
        if template_id:
            screen.crm_app.update_status(CHECKING)
            # The recipients and their checks (each rendered once) in a worker: a list can hold thousands.
            screen.run_worker(
                lambda: make(int(template_id)),
                thread=True,
                exclusive=True,
                group="mass-mail-make",
                exit_on_error=False,
            )

    screen.app.push_screen(TemplatePicker(f"Mass mail to {who}: which template?", fits), chosen)


def left_out_text(left_out: dict[str, int]) -> str:
    """ "Left out: 15 leads (9 converted and 6 disqualified): ..." for the leads a mass mail does not write to."""
    total = sum(left_out.values())
    parts = [f"{count} {status}" for status, count in sorted(left_out.items()) if count]
    return (
        f"Left out: {total} lead{'s' if total != 1 else ''} ({' and '.join(parts)}): a mass mail does not go "
        "to converted leads (they are contacts now) nor to disqualified ones."
    )


class MassMailScreen(CrmScreen):
    BINDINGS = [
        Binding("g", "start", "Send / resume", id="mass.start"),
        Binding("s", "stop", "Stop", id="mass.stop"),
        Binding("q,escape", "back", "Back", id="mass.back"),
    ]

    def __init__(self, campaign_id: int) -> None:
        super().__init__()
        self.campaign_id = campaign_id

    def compose(self) -> ComposeResult:
        yield Label(id="mass-title")
        yield ProgressBar(id="mass-progress", show_eta=True)
        yield Static(id="mass-counts")
        with VerticalScroll(id="mass-skipped"):
            yield Static(id="mass-skipped-text")
        yield StatusBar()
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_view()

    def refresh_view(self, progress: Any = None) -> None:

        context = self.context
        with context.database().read() as session:
            name, per_minute = mass_mail.name_and_pace(session, self.campaign_id)
            progress = progress or mass_mail.progress(session, self.campaign_id)
            skipped = mass_mail.skipped(session, self.campaign_id)
            left_out = mass_mail.left_out(session, self.campaign_id)
            before_start = progress.queued == 0 and progress.state in ("ready", "stopped")
            recipients = mass_mail.recipients(session, self.campaign_id) if before_start else []
            previews = (
                mass_mail.preview(session, self.campaign_id, me_id=context.me_id(), today=context.today())
                if before_start
                else []
            )
        self.query_one("#mass-title", Label).update(
            Text(
                f"Mass mail: {terminal_safe(name)} · {per_minute}/min",
                style="bold",
            )
        )
        bar = self.query_one(ProgressBar)
        bar.update(total=max(progress.total, 1), progress=progress.done)
        state = {
            "ready": "ready: nothing is queued yet, g sends",
            "running": "sending…",
            "stopped": "stopped: g resumes",
            "done": "done",
        }
        self.query_one("#mass-counts", Static).update(
            Text(
                f"{progress.queued} sent to the outbox · {progress.pending} to go · {progress.skipped} skipped · "
                f"{state.get(progress.state, progress.state)}"
            )
        )
        text = Text()
        if left_out:
            text.append(f"{left_out_text(left_out)}\n\n", style="bold")
        if recipients:
            going = [r for r in recipients if r.state == "pending"]
            text.append(f"Recipients ({progress.pending}):\n", style="bold")
            for recipient in going:
                text.append(f"  {terminal_safe(recipient.label, max_length=40)}", style="bold")
                text.append(f" {terminal_safe(recipient.address or '', max_length=60)}\n", style="dim")
            if progress.pending > len(going):
                text.append(f"  … and {progress.pending - len(going):,} more\n", style="dim")
        if previews:
            text.append(f"\nThe first {len(previews)} mails as they will go out:\n", style="bold")
            for shown in previews:
                text.append("─" * 60 + "\n", style="dim")
                text.append("To: ", style="dim")
                text.append(terminal_safe(shown.to or shown.address) + "\n")
                text.append("Subject: ", style="dim")
                text.append(terminal_safe(shown.subject) + "\n\n")
                text.append(terminal_safe(shown.body, single_line=False, max_length=2000).rstrip("\n") + "\n")
            text.append("─" * 60 + "\n", style="dim")
        if skipped:
            text.append(
                "\nSkipped (nobody is mailed who opted out or lacks what the template needs, nor a converted "
                "or disqualified lead):\n",
                style="dim",
            )
        for label, address, reason in skipped:
            text.append(f"  {terminal_safe(label, max_length=40)}", style="bold")
            text.append(f" {terminal_safe(address or '', max_length=50)}  ", style="dim")
            text.append(terminal_safe(reason, max_length=160) + "\n")
        self.query_one("#mass-skipped-text", Static).update(text)

    def action_start(self) -> None:
        self._run()

    @work(thread=True, exclusive=True, group="mass-mail", exit_on_error=False)
    def _run(self) -> None:
        # the mail modules load when first used, not with the app (start-up)
        from crm_tui.mail import mass_mail as runner

        context = self.context
        runner.run(
            context.database(),
            self.campaign_id,
            clock=context.clock,
            me_id=context.me_id(),
            today=context.today(),
            deliver=not context.demo,
            on_progress=self._post_progress,
        )
        self.post_message(CampaignProgress(self.campaign_id, None))

    def _post_progress(self, progress: mass_mail.Progress) -> None:
        self.post_message(CampaignProgress(self.campaign_id, progress))

    @on(CampaignProgress)
    def _progress(self, message: CampaignProgress) -> None:
        self.refresh_view(message.progress)

    def action_stop(self) -> None:

        def stopping(_: Any) -> None:
            self.notify("Stopping after the current recipient; g resumes where it stopped.")
            self.refresh_view()

        self.write_in_worker(
            lambda session: mass_mail.set_state(session, self.campaign_id, "stopped").id, stopping
        )

    def action_back(self) -> None:
        self.app.pop_screen()
