"""A mass mail at work (M on the contacts or leads list): who gets it, who is skipped and why, a progress bar;
g starts or resumes, s stops (nobody gets it twice), q goes back while it keeps going."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Footer, Label, ProgressBar, Static

from crm_tui.core.sanitize import terminal_safe
from crm_tui.screens.base import CrmScreen
from crm_tui.widgets.status_bar import StatusBar


class CampaignProgress(Message):
    def __init__(self, campaign_id: int, progress: Any) -> None:
        super().__init__()
        self.campaign_id, self.progress = campaign_id, progress


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
        from crm_tui.core import models as m
        from crm_tui.core.services import mass_mail

        with self.app.context.database().read() as session:  # type: ignore[attr-defined]
            campaign = session.get(m.Campaign, self.campaign_id)
            progress = progress or mass_mail.progress(session, self.campaign_id)
            skipped = mass_mail.skipped(session, self.campaign_id)
        self.query_one("#mass-title", Label).update(
            Text(
                f"Mass mail: {terminal_safe(campaign.name if campaign else '')} · {campaign.per_minute if campaign else 0}/min",
                style="bold",
            )
        )
        bar = self.query_one(ProgressBar)
        bar.update(total=max(progress.total, 1), progress=progress.done)
        state = {
            "ready": "ready: g sends",
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
        if skipped:
            text.append(
                "Skipped (nobody is mailed who opted out or lacks what the template needs):\n", style="dim"
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
        from crm_tui.mail import mass_mail as runner

        context = self.app.context  # type: ignore[attr-defined]
        runner.run(
            context.database(),
            self.campaign_id,
            clock=context.clock,
            me_id=context.me_id(),
            today=context.today(),
            deliver=not context.demo,
            on_progress=lambda progress: self.post_message(CampaignProgress(self.campaign_id, progress)),
        )
        self.post_message(CampaignProgress(self.campaign_id, None))

    @on(CampaignProgress)
    def _progress(self, message: CampaignProgress) -> None:
        self.refresh_view(message.progress)

    def action_stop(self) -> None:
        from crm_tui.core.services import mass_mail

        ok, _ = self.write(lambda session: mass_mail.set_state(session, self.campaign_id, "stopped"))
        if ok:
            self.notify("Stopping after the current recipient; g resumes where it stopped.")
            self.refresh_view()

    def action_back(self) -> None:
        self.app.pop_screen()
