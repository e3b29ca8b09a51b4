"""The Opportunities mode: a board with one column per stage of the chosen pipeline, and a forecast chart."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Label, OptionList, SelectionList, Static
from textual.widgets.option_list import Option
from textual.widgets.selection_list import Selection

from crm_tui.core.errors import CrmError
from crm_tui.core.money import format_money
from crm_tui.core.sanitize import terminal_safe
from crm_tui.core.services import configuration, opportunities
from crm_tui.core.types import RecordRef, RecordType
from crm_tui.core.wording import plural
from crm_tui.ui.forms.activities import activity_form, activity_prefill
from crm_tui.ui.forms.opportunities import opportunity_form
from crm_tui.ui.messages import BoardDetailLoaded, BoardLoaded, ForecastLoaded
from crm_tui.ui.screens.base import CrmScreen
from crm_tui.ui.screens.compose import write_from_record
from crm_tui.ui.screens.deal import DealScreen
from crm_tui.ui.screens.deal_moves import DealMoves
from crm_tui.ui.screens.details import load_detail
from crm_tui.ui.screens.dialogs import PromptDialog
from crm_tui.ui.screens.followers import choose_follower
from crm_tui.ui.screens.funnel import FunnelScreen
from crm_tui.ui.screens.import_preview import ImportsFromFiles
from crm_tui.ui.widgets.forecast_chart import forecast_chart
from crm_tui.ui.widgets.guard import ReportsErrors
from crm_tui.ui.widgets.option_list import Options
from crm_tui.ui.widgets.record_detail import RecordDetail
from crm_tui.ui.widgets.status_bar import StatusBar

COLUMN_LIMIT = 100  # deals listed per column; the header counts them all


@dataclass(frozen=True)
class Card:
    id: int
    title: str
    organization: str
    amount: str
    close: str
    substates: tuple[str, ...]


@dataclass(frozen=True)
class Column:
    stage_id: int
    name: str
    kind: str
    probability: int
    count: int
    amounts: dict[str, int]
    cards: list[Card]


class SubstatesDialog(ReportsErrors, ModalScreen[list[int] | None]):
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="substates.cancel"),
        Binding("ctrl+s", "save", "Save", id="substates.save"),
    ]

    def __init__(self, title: str, options: list[tuple[int, str, bool]]):
        super().__init__()
        self._title, self._options = title, options

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Text(self._title, style="bold"), classes="dialog-title")
            yield SelectionList[int](
                *(Selection(Text(name), sid, is_open) for sid, name, is_open in self._options)
            )
            yield Label(Text("space toggles · ctrl+s save · esc cancel", style="dim"))

    def on_mount(self) -> None:
        self.query_one(SelectionList).focus()

    def action_save(self) -> None:
        self.dismiss(list(self.query_one(SelectionList).selected))

    def action_cancel(self) -> None:
        self.dismiss(None)


class OpportunitiesScreen(ImportsFromFiles, CrmScreen):
    # The first key belongs to the board, not the filter box (Textual would focus the first focusable).
    AUTO_FOCUS = ".column-list"
    BINDINGS = [
        Binding("h,left", "column(-1)", "Previous column", show=False, id="board.left"),
        Binding("l,right", "column(1)", "Next column", show=False, id="board.right"),
        Binding("j", "cursor(1)", "Down", show=False, id="board.down"),
        Binding("k", "cursor(-1)", "Up", show=False, id="board.up"),
        Binding("greater_than_sign", "move(1)", "Next stage", id="board.next_stage"),
        Binding("less_than_sign", "move(-1)", "Previous stage", id="board.previous_stage"),
        Binding("p", "switch_pipeline", "Pipeline", id="board.pipeline"),
        Binding("enter", "open_deal_screen", "Open deal", id="board.open"),
        Binding("e", "edit", "Edit deal", id="board.edit"),
        Binding("G", "go_to_stage", "Go to stage", show=False, id="board.go_to_stage"),
        Binding("C", "copy", "Copy to a pipeline", show=False, id="board.copy"),
        Binding("L", "lost", "Lost", show=False, id="board.lost"),
        Binding("u", "undo", "Undo move", show=False, id="board.undo"),
        Binding("n", "new", "New deal", show=False, id="board.new"),
        Binding("s", "substates", "Sub-states", id="board.substates"),
        Binding("a", "add_activity", "Add activity", show=False, id="board.add_activity"),
        Binding("f", "forecast", "Forecast", id="board.forecast"),
        Binding("F", "funnel", "Funnel", show=False, id="board.funnel"),
        Binding("m", "mail", "Write mail", show=False, id="board.mail"),
        Binding("w", "followers", "Followers of the deal", show=False, id="board.followers"),
        Binding("R", "app.automation('rules')", "Automation", id="board.automation"),
        Binding("I", "import", "Import deals from a file", show=False, id="board.import"),
        Binding("slash", "focus_search", "Filter", show=False, id="board.search"),
        Binding("escape", "clear_search", "Clear filter", show=False, id="board.clear_search"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.pipeline_id: int | None = None
        self.pipelines: list[tuple[int, str]] = []
        self.columns: list[Column] = []
        self.filter_text = ""
        self.showing_forecast = False
        # Thread workers that were superseded still deliver their result: only the newest request counts.
        self._board_request = 0
        self._pending_select: int | None = None  # a deal to select that no load has shown yet
        self._searching = False  # "/" was pressed and the filter not left: reloads keep the focus there
        self._detail_request = 0
        # The column the user works in; focus follows it a moment later, so selection reads this, not focus.
        self._active_column = 0
        self._shown: tuple[int | None, str] = (None, "")  # the pipeline and filter the board shows
        # G, C, L, < and > and their undo (u): shared with the deal screen.
        self.moves = DealMoves(self, lambda deal_id: self.reload(select=deal_id))

    def compose(self) -> ComposeResult:
        yield Label("", id="board-title")
        yield Input(placeholder="/ filter deals by title or customer", id="search")
        yield Horizontal(id="board")
        yield Static(id="forecast", classes="hidden")
        with VerticalScroll(id="board-detail"):
            yield RecordDetail(id="deal-detail")
        yield StatusBar()
        yield Footer()

    def on_mount(self) -> None:
        self.reload()

    # --- loading ---

    def reload(self, select: int | None = None) -> None:
        if select is not None:
            # Kept until a load shows it: a reload meanwhile (another writer's change) must not put the
            # highlight back on the deal selected before, where the next key would act on it.
            self._pending_select = select
        chosen = self._pending_select if self._pending_select is not None else self.selected_deal()
        self._load(self.pipeline_id, self.filter_text, chosen)

    def _load(self, pipeline_id: int | None, text: str, select: int | None) -> None:
        self._board_request += 1
        self._load_board(pipeline_id, text, select, self._board_request)

    @work(thread=True, exclusive=True, group="board", exit_on_error=False)
    def _load_board(self, pipeline_id: int | None, text: str, select: int | None, request: int) -> None:

        context = self.context
        with context.database().read() as session:
            all_pipelines = configuration.pipeline_views(session)
            if not all_pipelines:
                self.post_message(
                    BoardLoaded(0, "no pipeline yet (create one in Settings)", [], [], None, request, text)
                )
                return
            ids = [p.id for p in all_pipelines]
            current = next((p for p in all_pipelines if p.id == pipeline_id), all_pipelines[0])
            partner = context.partner_id()
            # Counts and totals of what the filter finds, as the cards are.
            totals = {
                t.stage_id: t
                for t in opportunities.stage_totals(
                    session, current.id, partner_id=partner, text=text or None
                )
            }
            columns = []
            for stage in configuration.stage_views(session, current.id, counted=False):
                deals = opportunities.list_opportunities(
                    session, stage_id=stage.id, text=text or None, limit=COLUMN_LIMIT, partner_id=partner
                )
                count = totals[stage.id].count
                cards = [
                    Card(
                        d.id,
                        d.title,
                        d.organization_name or "",
                        format_money(d.amount_cents, d.currency),
                        d.expected_close.isoformat() if d.expected_close else "",
                        d.open_substates,
                    )
                    for d in deals
                ]
                columns.append(
                    Column(
                        stage.id,
                        stage.name,
                        stage.kind,
                        stage.probability,
                        count,
                        totals[stage.id].amounts,
                        cards,
                    )
                )
        self.post_message(
            BoardLoaded(
                current.id,
                current.name,
                [(p.id, p.name) for p in all_pipelines if p.id in ids],
                columns,
                select,
                request,
                text,
            )
        )

    @on(BoardLoaded)
    async def _show(self, message: BoardLoaded) -> None:
        if message.request and message.request != self._board_request:
            return
        self.pipeline_id, self.pipelines, self.columns = (
            message.pipeline_id,
            message.pipelines,
            message.columns,
        )
        title = Text(f" {message.pipeline_name} ", style="reverse bold")
        title.append("  p switch pipeline · < > move deal · f forecast · F funnel", style="dim")
        self.query_one("#board-title", Label).update(title)
        board = self.query_one("#board", Horizontal)
        await board.remove_children()
        widgets = []
        for column in message.columns:
            header = Text(terminal_safe(column.name), style="bold")
            header.append(f"  {column.count}", style="cyan")
            header.append(f"  {column.probability}%\n", style="dim")
            # A total per line, in whole units: a column is narrow, and a total cut off says nothing.
            header.append(
                "\n".join(f"{round(cents / 100):,} {cur}" for cur, cents in column.amounts.items()) or "—",
                style="dim",
            )
            options = [Option(self._card_text(card), id=str(card.id)) for card in column.cards]
            if column.count > len(column.cards):
                options.append(
                    Option(
                        Text(f"… {column.count - len(column.cards)} more (filter with /)", style="dim"),
                        disabled=True,
                    )
                )
            box = Vertical(
                Label(header, classes="column-header"),
                Options(*options, classes="column-list"),
                classes="column",
            )
            widgets.append(box)
        await board.mount_all(widgets)
        # Read the active column now: keys pressed while the columns were rebuilt have moved it.
        column = self._active_column
        shown = (message.pipeline_id, message.text)
        if shown != self._shown and message.select is None:
            # Another pipeline, or another filter: the highlight goes to a deal, not to an empty column
            # (after a filter and a switch, the board sat on Installation's empty last column).
            column = self._column_with_cards(0 if message.pipeline_id != self._shown[0] else column)
        self._shown = shown
        self._restore_focus(message.select, column)
        self._pending_select = None
        total = sum(c.count for c in message.columns)
        self.crm_app.update_status(f"{plural(total, 'deal')} in {message.pipeline_name}")

    def _column_with_cards(self, preferred: int) -> int:
        """The column nearest to ``preferred`` (leftmost of two) that lists a deal; ``preferred`` if none."""
        if not self.columns:
            return 0
        preferred = min(preferred, len(self.columns) - 1)
        order = sorted(range(len(self.columns)), key=lambda index: (abs(index - preferred), index))
        return next((index for index in order if self.columns[index].cards), preferred)

    def _card_text(self, card: Card) -> Text:
        text = Text(whole_words(terminal_safe(card.title), 40) + "\n", style="bold")
        text.append(whole_words(terminal_safe(card.organization), 34) + "\n", style="dim")
        text.append(card.amount)
        if card.close:
            text.append(f"  ⏱ {card.close}", style="dim")
        for name in card.substates:
            text.append(f"\n  ◇ {terminal_safe(name, max_length=30)}", style="green")
        return text

    def _lists(self) -> list[OptionList]:
        return list(self.query(".column-list").results(OptionList))

    def _restore_focus(self, select: int | None, column_index: int) -> None:
        lists = self._lists()
        if not lists:
            return
        target = min(column_index, len(lists) - 1)
        highlight = 0
        if select is not None:
            for index, column in enumerate(self.columns):
                ids = [card.id for card in column.cards]
                if select in ids:
                    target, highlight = index, ids.index(select)
                    break
        self._active_column = target
        # While the user types a filter, the board reloads under each letter: the field keeps the focus.
        typing = self._searching and isinstance(self.focused, Input) and self.focused.id == "search"
        if not typing:
            lists[target].focus()
        if lists[target].option_count:
            lists[target].highlighted = highlight
        self._detail_for_selection()

    def action_mail(self) -> None:

        deal_id = self.selected_deal()
        if deal_id is not None:
            write_from_record(self, RecordRef(RecordType.OPPORTUNITY, deal_id))

    def action_followers(self) -> None:
        """w: add a user to the highlighted deal's followers (its team, with the owner) or take one off."""
        deal_id = self.selected_deal()
        if deal_id is not None:
            choose_follower(self, deal_id)

    def selected_deal(self) -> int | None:
        lists = self._lists()
        if not lists:
            return None
        option_list = lists[min(self._active_column, len(lists) - 1)]
        if option_list.highlighted is None or not option_list.option_count:
            return None
        option = option_list.get_option_at_index(option_list.highlighted)
        return int(option.id) if option.id else None

    def selected_column(self) -> Column | None:
        index = self._active_column
        return self.columns[index] if index < len(self.columns) else None

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        # A click (or tab) into a column makes it the active one; the event names the widget that got focus.
        lists = self._lists()
        # A focus event can arrive after focus has moved on (keys queue faster than focus settles): only the
        # widget that still has the focus may say where the user is.
        if event.widget in lists and event.widget.has_focus:
            self._active_column = lists.index(event.widget)

    @on(OptionList.OptionHighlighted)
    def _highlighted(self) -> None:
        self._detail_for_selection()

    def _detail_for_selection(self) -> None:
        deal_id = self.selected_deal()
        if deal_id is None:
            self.query_one(RecordDetail).show(None, self.context.zone, empty="No deal selected.")
            return
        self._detail_request += 1
        self._load_detail(deal_id, self._detail_request)

    @work(thread=True, exclusive=True, group="board-detail", exit_on_error=False)
    def _load_detail(self, deal_id: int, request: int) -> None:
        try:
            data = load_detail(self.context, RecordRef(RecordType.OPPORTUNITY, deal_id))
        except CrmError:
            data = None
        self.post_message(BoardDetailLoaded(deal_id, data, request))

    @on(BoardDetailLoaded)
    def _show_detail(self, message: BoardDetailLoaded) -> None:
        if message.request == self._detail_request and message.deal_id == self.selected_deal():
            self.query_one(RecordDetail).show(message.data, self.context.zone)

    # --- navigation ---

    def action_column(self, step: int) -> None:
        if not self.columns:
            return
        # The column data decides (the widgets may be mid-rebuild); focus follows when the lists exist.
        self._active_column = max(0, min(len(self.columns) - 1, self._active_column + step))
        lists = self._lists()
        if self._active_column < len(lists):
            option_list = lists[self._active_column]
            option_list.focus()
            if option_list.highlighted is None and option_list.option_count:
                option_list.highlighted = 0
        self._detail_for_selection()

    def action_cursor(self, step: int) -> None:
        lists = self._lists()
        if lists:
            option_list = lists[min(self._active_column, len(lists) - 1)]
            option_list.action_cursor_down() if step > 0 else option_list.action_cursor_up()

    def action_switch_pipeline(self) -> None:
        if len(self.pipelines) < 2:
            self.notify(
                "There is only one pipeline."
                if self.pipelines
                else "No pipeline yet: make one in Settings > Pipelines (5)."
            )
            return
        ids = [pid for pid, _ in self.pipelines]
        self.pipeline_id = (
            ids[(ids.index(self.pipeline_id) + 1) % len(ids)] if self.pipeline_id in ids else ids[0]
        )
        self._load(self.pipeline_id, self.filter_text, None)

    @on(Input.Changed, "#search")
    def _filter(self, event: Input.Changed) -> None:
        if event.value.strip() == self.filter_text:
            return  # the input's first Changed (and whitespace) must not reload the board under the user
        self.filter_text = event.value.strip()
        self._load(self.pipeline_id, self.filter_text, None)

    @on(Input.Submitted, "#search")
    def _filter_done(self) -> None:
        searching = self._searching
        self._searching = False
        self.action_column(0)
        if not searching and not self.filter_text:
            # Nobody was filtering: an Enter meant for the card reached the field while the columns were
            # rebuilt (a reload takes the focus off the board for a moment). It opens the deal.
            self.action_open_deal_screen()

    def action_focus_search(self) -> None:
        # At once, not after a refresh as widget.focus() does: keys typed right after "/" go to the field.
        self._searching = True
        self.set_focus(self.query_one("#search", Input))

    def action_clear_search(self) -> None:
        self._searching = False
        search = self.query_one("#search", Input)
        if search.value:
            search.value = ""
        self.action_column(0)

    # --- deal actions ---

    def action_move(self, step: int) -> None:
        deal_id = self.selected_deal()
        if deal_id is None:
            return

        context = self.context
        with context.database().read() as session:
            target = configuration.adjacent_stage(session, deal_id, step)
        if target is None:
            self.notify("No stage further that way.")
            return
        if target.kind == "lost":
            self.app.push_screen(
                PromptDialog(
                    f"Why was {self.record_name(RecordRef(RecordType.OPPORTUNITY, deal_id))} lost?",
                    placeholder="lost reason",
                ),
                lambda reason: self._move(deal_id, target.id, reason) if reason else None,
            )
            return
        self._move(deal_id, target.id, None)

    def _move(self, deal_id: int, stage_id: int, reason: str | None) -> None:
        """Move, after showing what the move will fire and cancel (one key confirms) when rules are involved."""
        self.moves.move(deal_id, stage_id, reason)

    def _moved(self, deal_id: int) -> None:
        self.moves.moved(deal_id)

    def action_go_to_stage(self) -> None:
        deal_id = self.selected_deal()
        if deal_id is not None:
            self.moves.go_to_stage(deal_id)

    def action_copy(self) -> None:
        deal_id = self.selected_deal()
        if deal_id is not None:
            self.moves.copy(deal_id)

    def action_lost(self) -> None:
        deal_id = self.selected_deal()
        if deal_id is not None:
            self.moves.lose(deal_id)

    def action_undo(self) -> None:
        """u: the last G, C, L, < or > taken back; without one, the mail just queued (the app's u)."""
        if not self.moves.undo():
            self.crm_app.action_take_back()

    def action_open_deal_screen(self) -> None:
        """Enter: the deal's screen (its people, timeline and moves); back on the board with q or Esc."""
        deal_id = self.selected_deal()
        if deal_id is not None:
            self.app.push_screen(DealScreen(deal_id), lambda _: self.reload(select=deal_id))

    @on(OptionList.OptionSelected, ".column-list")
    def _card_chosen(self, event: OptionList.OptionSelected) -> None:
        # Enter in a column (the focused list takes Enter before the screen's binding), or a click on a card.
        event.stop()
        self.action_open_deal_screen()

    def action_import(self) -> None:
        self.start_import("opportunities")

    def refresh_data(self) -> None:
        self.reload()

    def after_import(self) -> None:
        self.reload()

    def action_edit(self) -> None:
        deal_id = self.selected_deal()
        if deal_id is not None:
            self.open_deal(deal_id)

    def open_deal(self, deal_id: int | None, prefill: dict[str, str] | None = None) -> None:
        context = self.context
        self.open_form(
            lambda: opportunity_form(context, deal_id, prefill or {}),
            noun="opportunity",
            on_saved=lambda new_id: self.reload(select=new_id),
        )

    def action_new(self) -> None:
        if not self.pipelines:
            self.notify("No pipeline yet: make one in Settings > Pipelines (5), then deals can go on it.")
            return
        column = self.selected_column()
        self.open_deal(None, {"stage_id": str(column.stage_id)} if column else {})

    def action_substates(self) -> None:
        deal_id = self.selected_deal()
        if deal_id is None:
            return

        context = self.context
        with context.database().read() as session:
            options = configuration.deal_substates(session, deal_id)
        if not options:
            self.notify("This stage has no sub-states (add them in Settings).")
            return

        def chosen(selected: list[int] | None) -> None:
            if selected is None:
                return

            def apply(session: Any) -> None:
                for substate_id, _name, _open in options:
                    opportunities.set_substate(
                        session,
                        deal_id,
                        substate_id,
                        substate_id in selected,
                        now=context.clock.now(),
                        user_id=context.me_id(),
                    )

            self.write_in_worker(apply, lambda _: self._moved(deal_id))

        self.app.push_screen(
            SubstatesDialog(
                f"Sub-states of {self.record_name(RecordRef(RecordType.OPPORTUNITY, deal_id))}", options
            ),
            chosen,
        )

    def action_add_activity(self) -> None:
        deal_id = self.selected_deal()
        if deal_id is None:
            return

        context = self.context
        ref = RecordRef(RecordType.OPPORTUNITY, deal_id)
        self.open_form(
            lambda: activity_form(context, None, activity_prefill(context, ref)),
            noun="activity",
            on_saved=lambda _new_id: self.reload(select=deal_id),
        )

    # --- forecast ---

    def action_forecast(self) -> None:
        self.showing_forecast = not self.showing_forecast
        self.query_one("#board").set_class(self.showing_forecast, "hidden")
        self.query_one("#forecast").set_class(not self.showing_forecast, "hidden")
        if self.showing_forecast:
            self._load_forecast(self.pipeline_id)
        else:
            self.action_column(0)

    @work(thread=True, exclusive=True, group="forecast", exit_on_error=False)
    def _load_forecast(self, pipeline_id: int | None) -> None:

        with self.context.database().read() as session:
            months = opportunities.forecast(session, pipeline_id=pipeline_id, today=self.context.today())
        self.post_message(ForecastLoaded(forecast_chart(months)))

    @on(ForecastLoaded)
    def _show_forecast(self, message: ForecastLoaded) -> None:
        self.query_one("#forecast", Static).update(message.text)

    def action_funnel(self) -> None:
        """The pipeline's funnel, with its forecast (screens/funnel.py)."""
        self.app.push_screen(FunnelScreen(self.pipeline_id))


def whole_words(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters, cut after a whole word with " …" ("Wärmepumpe für den Neubau
    …", never "… (Seebli…"); only a first word longer than that is cut inside, where it must."""
    if len(text) <= limit:
        return text
    head = text[: limit - 1]  # room for the word, the space and the ellipsis: up to limit - 2, and one more
    if " " not in head.strip():
        return text[: limit - 1] + "…"
    return head[: head.rindex(" ")].rstrip() + " …"
