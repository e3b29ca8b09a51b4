"""Moving a deal, shared by the board and the deal screen: to the next or previous stage (``>``/``<``), to any
stage through a picker with type-ahead (``G``), lost with its reason (``L``), a copy into another pipeline or
stage (``C``), and ``u``: the last of these undone. A move that involves automation shows first what it will
fire, cancel and complete; one key confirms."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.text import Text

from crm_tui.core.automation import preview
from crm_tui.core.sanitize import terminal_safe
from crm_tui.core.services import deal_story, opportunities
from crm_tui.core.services.deal_story import StageChoice
from crm_tui.core.types import RecordRef, RecordType
from crm_tui.runtime.context import AppContext
from crm_tui.ui.screens.base import CrmScreen
from crm_tui.ui.screens.dialogs import ConfirmDialog, PromptDialog
from crm_tui.ui.screens.pickers import Picker, fuzzy_score

KIND_MARKS = {"won": "✓", "lost": "✗"}


def preview_text(context: AppContext, found: preview.StageMovePreview) -> tuple[str, Text]:
    """The title and body of the dialog that shows what a stage move makes automation do."""
    now = context.clock.now()
    body = Text()
    for item in found.planned:
        does = terminal_safe(item.does)  # its merge fields filled (never "{{ contact.name }}")
        if item.due_at is None:
            body.append("  not now  ", style="dim")
            body.append(
                f"{terminal_safe(item.rule)}: {does} (its conditions do not hold, or no date)\n", style="dim"
            )
            continue
        due = item.due_at.astimezone(context.zone)
        when = "at once" if item.due_at <= now else f"{due:%Y-%m-%d %H:%M}"
        body.append(f"  {when:<17}", style="bold cyan")
        body.append(f"{terminal_safe(item.rule)}: ", style="bold")
        body.append(f"{does}  ({item.event})\n")
    for step in found.cancelled:
        body.append("  cancelled        ", style="bold yellow")
        body.append(f"{terminal_safe(step.rule)}: {terminal_safe(step.does)} (was due "
                    f"{step.was_due.astimezone(context.zone):%Y-%m-%d %H:%M})\n")  # fmt: skip
    for activity_type, subject in found.completes:
        body.append("  completed        ", style="bold green")
        body.append(f"{activity_type}: {terminal_safe(subject)} (planned by a rule of this stage)\n")
    for waiting in found.on_events:  # rules waiting for an event of the deal: the move changes nothing there
        body.append("  on an event      ", style="bold magenta")
        body.append(f"{terminal_safe(waiting.rule)}: ", style="bold")
        body.append(f"{terminal_safe(waiting.text())}\n")
    body.append("\ny or Enter moves the deal · Esc keeps it where it is", style="dim")
    title = terminal_safe(f"Move {found.deal_title!r} to {found.stage_name}: automation", max_length=100)
    return title, body


class StagePicker(Picker):
    """Pick a stage by a few of its letters ("w" Enter: Won); the deal's own stage is marked and not taken.
    Returns the stage id as text."""

    def __init__(self, title: str, choices: list[StageChoice], *, with_pipeline: bool = False) -> None:
        super().__init__(title, "type part of a stage name")
        self._choices, self._with_pipeline = choices, with_pipeline

    def _stage_label(self, choice: StageChoice) -> str:
        return f"{choice.pipeline_name} › {choice.name}" if self._with_pipeline else choice.name

    def refill(self, query: str) -> None:
        scored = [
            (fuzzy_score(query, self._stage_label(c)), index, c) for index, c in enumerate(self._choices)
        ]
        ranked = sorted(
            ((score, index, c) for score, index, c in scored if score is not None and not c.current),
            key=lambda item: (-item[0], item[1]),
        )
        options = []
        for _, _, choice in ranked:
            label = Text(terminal_safe(self._stage_label(choice)))
            mark = KIND_MARKS.get(choice.kind)
            if mark:
                label.append(f"  {mark} {choice.kind}", style="dim")
            options.append((str(choice.stage_id), label))
        self.show(options)


@dataclass(frozen=True)
class Undo:
    """How to take back the last G, L or C: a move back to ``stage_id`` (with its lost reason), or the copy
    ``copy_id`` deleted."""

    deal_id: int
    what: str  # said when undone: "the move to Won", "the copy in Service › Visit"
    stage_id: int | None = None
    lost_reason: str | None = None
    copy_id: int | None = None


class DealMoves:
    """The moves of one screen (the board, a deal screen): ``after(deal_id)`` runs once a change is committed
    (the screen shows it again); ``u`` takes back the last one."""

    def __init__(self, screen: CrmScreen, after: Callable[[int], None]) -> None:
        self.screen, self.after = screen, after
        self.last: Undo | None = None

    @property
    def context(self) -> AppContext:
        return self.screen.context

    def named(self, deal_id: int) -> str:
        return self.screen.record_name(RecordRef(RecordType.OPPORTUNITY, deal_id))

    # --- G: to any stage of the pipeline ---

    def go_to_stage(self, deal_id: int) -> None:
        with self.context.database().read() as session:
            choices = deal_story.stage_choices(session, deal_id)
        if len(choices) < 2:
            self.screen.notify("The deal's pipeline has no other stage.")
            return

        def chosen(value: str | None) -> None:
            if value:
                stage = next(c for c in choices if c.stage_id == int(value))
                self.to_stage(deal_id, stage)

        self.screen.app.push_screen(StagePicker(f"Move {self.named(deal_id)} to", choices), chosen)

    def to_stage(self, deal_id: int, stage: StageChoice) -> None:
        """To ``stage``: a lost one asks for the reason first."""
        if stage.kind == "lost":
            self.ask_reason(deal_id, stage.stage_id)
        else:
            self.move(deal_id, stage.stage_id, None)

    # --- L: lost, with its reason ---

    def lose(self, deal_id: int) -> None:
        with self.context.database().read() as session:
            choices = deal_story.stage_choices(session, deal_id)
        if any(c.current and c.kind == "lost" for c in choices):
            self.screen.notify("This deal is lost already.")
            return
        lost = next((c for c in choices if c.kind == "lost"), None)
        if lost is None:
            self.screen.notify("The deal's pipeline has no lost stage (add one in Settings > Pipelines).")
            return
        self.ask_reason(deal_id, lost.stage_id)

    def ask_reason(self, deal_id: int, stage_id: int) -> None:
        self.screen.app.push_screen(
            PromptDialog(f"Why was {self.named(deal_id)} lost?", placeholder="lost reason"),
            lambda reason: self.move(deal_id, stage_id, reason) if reason else None,
        )

    # --- the move itself, after its preview ---

    def move(self, deal_id: int, stage_id: int, reason: str | None) -> None:
        """Move, after showing what the move will fire and cancel (one key confirms) when rules are involved."""
        context = self.context
        with context.database().read() as session:
            found = preview.stage_move(
                session,
                deal_id,
                stage_id,
                now=context.clock.now(),
                me_id=context.me_id(),
                today=context.today(),
            )
        if found is None:
            self.move_now(deal_id, stage_id, reason)
            return
        title, body = preview_text(context, found)
        self.screen.app.push_screen(
            ConfirmDialog(title, body, "Move"),
            lambda yes: self.move_now(deal_id, stage_id, reason) if yes else None,
        )

    def move_now(self, deal_id: int, stage_id: int, reason: str | None) -> None:
        context = self.context

        def work(session: Any) -> tuple[Undo | None, str]:
            before = deal_story.current_stage(session, deal_id)
            opportunities.move_to_stage(
                session,
                deal_id,
                stage_id,
                now=context.clock.now(),
                user_id=context.me_id(),
                lost_reason=reason,
            )
            names = {c.stage_id: c.name for c in deal_story.stage_choices(session, deal_id)}
            name = names.get(stage_id, "?")
            if before is None or before[0] == stage_id:
                return None, name  # nothing moved: nothing to take back
            return Undo(deal_id, f"the move to {name}", stage_id=before[0], lost_reason=before[1]), name

        def done(result: tuple[Undo | None, str]) -> None:
            undo, name = result
            self.last = undo
            self.screen.notify(f"{self.named(deal_id)} is in {name} now (u takes it back).")
            self.moved(deal_id)

        self.screen.write_in_worker(work, done)

    def moved(self, deal_id: int) -> None:
        self.after(deal_id)
        if getattr(self.screen.app, "run_automations", False):
            # What the move made due now fires at once; the screen shows its effects afterwards.
            self.screen.crm_app.fire_automations(then=lambda: self.after(deal_id))

    # --- C: a copy into another pipeline or stage ---

    def copy(self, deal_id: int) -> None:
        with self.context.database().read() as session:
            choices = [
                StageChoice(c.stage_id, c.pipeline_name, c.name, c.kind, False)
                for c in deal_story.stage_choices(session, deal_id, every_pipeline=True)
            ]
        if not choices:
            return

        def chosen(value: str | None) -> None:
            if not value:
                return
            stage = next(c for c in choices if c.stage_id == int(value))
            self.copy_now(deal_id, stage)

        self.screen.app.push_screen(
            StagePicker(f"Copy {self.named(deal_id)} to", choices, with_pipeline=True), chosen
        )

    def copy_now(self, deal_id: int, stage: StageChoice) -> None:
        context = self.context
        where = f"{stage.pipeline_name} › {stage.name}"

        def done(copy_id: int) -> None:
            self.last = Undo(deal_id, f"the copy in {where}", copy_id=copy_id)
            self.screen.notify(f"Copied {self.named(deal_id)} to {where} (u takes it back).")
            self.moved(deal_id)

        self.screen.write_in_worker(
            lambda session: (
                opportunities.copy_to_stage(
                    session, deal_id, stage.stage_id, now=context.clock.now(), user_id=context.me_id()
                ).id
            ),
            done,
        )

    # --- u: the last of these undone ---

    def undo(self) -> bool:
        """Take back the last move, loss or copy; False when there is none (the caller may do something else)."""
        last = self.last
        if last is None:
            return False
        self.last = None
        context = self.context

        if last.copy_id is not None:
            copy_id = last.copy_id

            def removed(orphans: list[str]) -> None:
                context.document_store().discard(orphans)
                self.screen.notify(f"Undone: {last.what}.")
                self.after(last.deal_id)

            self.screen.write_in_worker(
                lambda session: opportunities.delete_opportunity(session, copy_id), removed
            )
            return True
        stage_id = last.stage_id
        assert stage_id is not None  # a move's undo names the stage it came from

        def back(_: object) -> None:
            self.screen.notify(f"Undone: {last.what}.")
            self.moved(last.deal_id)

        self.screen.write_in_worker(
            lambda session: opportunities.move_to_stage(
                session,
                last.deal_id,
                stage_id,
                now=context.clock.now(),
                user_id=context.me_id(),
                lost_reason=last.lost_reason,
                note="undone",
            ),
            back,
        )
        return True
