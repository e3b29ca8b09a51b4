"""The funnel of a pipeline (``F`` on the board): deals and amount per stage, conversion from stage to stage and
the average days in a stage (core/services/funnel.py defines them), with the pipeline's forecast under it."""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Footer, Label, Static

from crm_tui.core.money import format_money
from crm_tui.core.sanitize import terminal_safe
from crm_tui.core.services import configuration, opportunities
from crm_tui.core.services.funnel import Funnel, FunnelStage, funnel
from crm_tui.ui.messages import FunnelLoaded
from crm_tui.ui.screens.base import CrmScreen
from crm_tui.ui.widgets.forecast_chart import forecast_chart
from crm_tui.ui.widgets.status_bar import StatusBar

NAME_WIDTH = 24


class FunnelScreen(CrmScreen):
    """One pipeline's funnel and forecast; ``p`` the next pipeline, ``q``/Esc back to the board."""

    AUTO_FOCUS = "#funnel-view"
    BINDINGS = [
        Binding("q,escape", "back", "Back to the board", id="funnel.back"),
        Binding("p", "switch_pipeline", "Pipeline", id="funnel.pipeline"),
        Binding("j", "scroll(1)", "Down", show=False, id="funnel.down"),
        Binding("k", "scroll(-1)", "Up", show=False, id="funnel.up"),
    ]

    def __init__(self, pipeline_id: int | None) -> None:
        super().__init__()
        self.pipeline_id = pipeline_id
        self.pipelines: list[tuple[int, str]] = []
        self._request = 0

    def compose(self) -> ComposeResult:
        yield Label("", id="funnel-title")
        with VerticalScroll(id="funnel-view"):
            yield Static(Text("Loading the funnel…", style="dim"), id="funnel")
            yield Static("", id="funnel-forecast")
        yield StatusBar()
        yield Footer()

    def on_mount(self) -> None:
        self.reload()

    def refresh_data(self) -> None:
        self.reload()

    def reload(self) -> None:
        self._request += 1
        self._load(self.pipeline_id, self._request)

    @work(thread=True, exclusive=True, group="funnel", exit_on_error=False)
    def _load(self, pipeline_id: int | None, request: int) -> None:
        context = self.context
        with context.database().read() as session:
            pipelines = configuration.pipeline_views(session)
            if not pipelines:
                self.post_message(FunnelLoaded([], None, Text(), request))
                return
            current = next((p for p in pipelines if p.id == pipeline_id), pipelines[0])
            shown = funnel(session, current.id, now=context.clock.now(), partner_id=context.partner_id())
            months = opportunities.forecast(session, pipeline_id=current.id, today=context.today())
        self.post_message(
            FunnelLoaded([(p.id, p.name) for p in pipelines], shown, forecast_chart(months), request)
        )

    @on(FunnelLoaded)
    def _show(self, message: FunnelLoaded) -> None:
        if message.request != self._request:
            return  # a newer load (another pipeline) is on its way
        self.pipelines = message.pipelines
        title = Text()
        if message.funnel is None:
            title.append(" Funnel ", style="reverse bold")
            self.query_one("#funnel", Static).update(
                Text("No pipeline yet: make one in Settings > Pipelines (5).", style="dim")
            )
            self.query_one("#funnel-forecast", Static).update("")
        else:
            shown: Funnel = message.funnel
            self.pipeline_id = shown.pipeline_id
            title.append(f" Funnel: {terminal_safe(shown.pipeline_name)} ", style="reverse bold")
            self.query_one("#funnel", Static).update(funnel_text(shown))
            self.query_one("#funnel-forecast", Static).update(message.forecast)
            deals = sum(stage.count for stage in shown.stages)
            self.crm_app.update_status(f"funnel of {terminal_safe(shown.pipeline_name)}: {deals} deals")
        title.append("  p switch pipeline · j/k scroll · q back to the board", style="dim")
        self.query_one("#funnel-title", Label).update(title)

    def action_back(self) -> None:
        self.dismiss()

    def action_switch_pipeline(self) -> None:
        if len(self.pipelines) < 2:
            self.notify("There is only one pipeline." if self.pipelines else "No pipeline yet.")
            return
        ids = [pid for pid, _ in self.pipelines]
        self.pipeline_id = (
            ids[(ids.index(self.pipeline_id) + 1) % len(ids)] if self.pipeline_id in ids else ids[0]
        )
        self.reload()

    def action_scroll(self, step: int) -> None:
        view = self.query_one("#funnel-view", VerticalScroll)
        view.scroll_down() if step > 0 else view.scroll_up()


def _amounts(stage: FunnelStage) -> str:
    return " · ".join(format_money(cents, currency) for currency, cents in stage.amounts.items()) or "—"


def _conversion(stage: FunnelStage) -> str:
    if stage.conversion is None:
        return "—"
    return f"{round(stage.conversion * 100)}% ({stage.converted} of {stage.entered})"


def _days(stage: FunnelStage) -> str:
    return "—" if stage.average_days is None else f"{stage.average_days:.1f}"


def funnel_text(shown: Funnel) -> Text:
    """The funnel as a table: one line per stage, open stages in order, then won and lost."""
    amount_width = max([len("Amount now"), *(len(_amounts(stage)) for stage in shown.stages)])
    text = Text()
    text.append(
        f"{'Stage':<{NAME_WIDTH}} {'Deals now':>9}  {'Amount now':<{amount_width}}  {'Entered':>7}  "
        f"{'To a later stage':<18}  {'Avg days in stage':>17}\n",
        style="bold underline",
    )
    for stage in shown.stages:
        name = terminal_safe(stage.name, max_length=NAME_WIDTH - 6)
        if stage.kind == "open":
            label = f"{name} {stage.probability}%"
        else:  # "Signed (won)"; a stage named for its kind ("Won") says it already
            label = name if name.lower() == stage.kind else f"{name} ({stage.kind})"
        style = {"won": "green", "lost": "red"}.get(stage.kind, "")
        text.append(f"{label:<{NAME_WIDTH}} ", style=f"bold {style}".strip())
        text.append(f"{stage.count:>9}  ", style="cyan")
        text.append(f"{_amounts(stage):<{amount_width}}  ")
        text.append(f"{stage.entered:>7}  ")
        text.append(f"{_conversion(stage):<18}  ", style="bold")
        text.append(f"{_days(stage):>17}\n")
    text.append(
        "\nDeals now and Amount now: the deals in the stage today (amounts per currency). Entered: the deals that"
        "\never were in it. To a later stage: the share of those that went on to a later open stage or were won."
        "\nAvg days in stage: the mean time a deal that entered it spent there (up to now for deals still in it).\n",
        style="dim",
    )
    return text
