"""The smaller defects found while using the app for issue 20 (its item 7), each as a user met it on the demo."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col
from textual.screen import Screen
from textual.widgets import DataTable, Input, Label, OptionList

import crm_tui.ui.screens
from crm_tui.ui.app import CrmApp
from crm_tui.ui.screens.contacts import ContactsScreen
from crm_tui.ui.screens.settings import SettingsScreen
from tests.ui.helpers import wait_for
from tests.ui.keywalk import settle


def notes(app: CrmApp) -> list[tuple[str, str]]:
    return [(str(n.severity), n.message) for n in app._notifications]


async def test_j_and_k_move_in_the_settings_section_list_like_the_arrows(app: CrmApp, pilot: Any) -> None:
    await pilot.press("5")
    screen = app.screen
    assert isinstance(screen, SettingsScreen)
    sections = screen.query_one("#sections", OptionList)
    sections.focus()
    await settle(pilot)
    await pilot.press("j")
    await wait_for(lambda: screen.section == "pipelines", pilot)
    assert sections.highlighted == 1
    await pilot.press("j", "j")
    await wait_for(lambda: screen.section == "accounts", pilot)
    await pilot.press("k")
    await wait_for(lambda: screen.section == "fields", pilot)
    assert app.focused is sections


def test_no_screen_names_its_own_heading_title() -> None:
    """A Screen's ``title`` and ``sub_title`` are Textual's reactives: a screen keeping its own heading under
    that name showed "None (1)" as a dialog's title (the attachments and documents dialogs did)."""
    shadowing = []
    for module_info in pkgutil.iter_modules(crm_tui.ui.screens.__path__):
        module = importlib.import_module(f"crm_tui.ui.screens.{module_info.name}")
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, Screen) and cls.__module__ == module.__name__:
                shadowing += [f"{name}.{attr}" for attr in ("title", "sub_title") if attr in vars(cls)]
    assert not shadowing


async def test_the_documents_dialog_is_titled_with_the_record_and_a_count(
    app: CrmApp, pilot: Any, tmp_path: Path
) -> None:
    from crm_tui.ui.screens.attachments import DocumentsScreen
    from crm_tui.ui.screens.dialogs import PromptDialog

    offer = tmp_path / "offer.pdf"
    offer.write_bytes(b"%PDF-1.4")
    await pilot.press("2")
    screen = app.screen
    assert isinstance(screen, ContactsScreen)
    await wait_for(lambda: screen.table.row_count > 0, pilot)
    name = str(screen.table.loaded_rows[0].cells[0])
    await pilot.press("A")
    await wait_for(lambda: isinstance(app.screen, PromptDialog), pilot)
    app.screen.query_one(Input).value = str(offer)
    await pilot.press("enter")
    await wait_for(lambda: any("Attached offer.pdf" in n.message for n in app._notifications), pilot)
    await pilot.press("o")
    await wait_for(lambda: isinstance(app.screen, DocumentsScreen), pilot)
    title = str(app.screen.query_one(".dialog-title", Label).render())
    assert "None" not in title
    assert title.startswith("Documents of ") and name in title and title.endswith("(1)"), title


async def test_a_table_drawn_before_its_columns_are_measured_is_drawn_again_with_them() -> None:
    """The automation rules showed 4-character columns ("Sales  Call  on e") on first open and after Esc from
    the rule form: the rules are loaded twice (mount, resume) and the terminal drew the second load's rows
    before the table measured them; the widths came out as before, so nothing drew those lines again. Here the
    table is drawn at that moment on purpose."""
    from textual.app import App

    from crm_tui.ui.widgets.table_widths import redraw_tables_when_measured

    redraw_tables_when_measured()  # as the app does when it starts

    class Rules(App[None]):
        def compose(self) -> Any:
            yield DataTable()

    def load(table: DataTable[str]) -> None:
        table.clear(columns=True)
        table.add_columns("Where", "Rule")
        table.add_row("Sales / Contract approval", "Call at contract approval", key="1")

    rules = Rules()
    async with rules.run_test(size=(120, 10)) as pilot:
        table = rules.query_one(DataTable)
        load(table)
        await pilot.pause()  # no time: until the app is idle (the table measured)
        load(table)
        table.render_line(1)  # drawn before the table is idle (measured)
        await pilot.pause()  # no time: until the app is idle again
        assert "Where                      Rule" in table.render_line(0).text
        assert "Sales / Contract approval  Call at contract approval" in table.render_line(1).text


def screen_rows(app: Any) -> list[str]:
    """What the terminal shows, row by row (from the app's screenshot; a cell is 12.2 units wide there)."""
    import html
    import re

    svg = app.export_screenshot()
    rows: dict[float, list[tuple[int, str]]] = {}
    for x, y, text in re.findall(r'<text class="[^"]*" x="([\d.]+)" y="([\d.]+)"[^>]*>([^<]*)</text>', svg):
        rows.setdefault(float(y), []).append(
            (round(float(x) / 12.2), html.unescape(text).replace("\xa0", " "))
        )
    lines = []
    for y in sorted(rows):
        line = ""
        for column, text in sorted(rows[y]):
            line = line.ljust(column) + text
        lines.append(line)
    return lines


def shown_in(app: Any, widget: Any) -> str:
    """The text the terminal shows in ``widget``'s region, its rows joined by spaces."""
    rows = screen_rows(app)
    x, y, width, height = widget.region
    return " ".join(rows[row][x : x + width].strip() for row in range(y, y + height) if row < len(rows))


def screen_text(app: Any) -> str:
    """What the terminal shows, as text (from the app's screenshot)."""
    import html
    import re

    return html.unescape(" ".join(re.findall(r">([^<]*)</text>", app.export_screenshot()))).replace(
        "\xa0", " "
    )


async def test_the_automation_rules_fit_a_160_column_terminal(app: CrmApp, pilot: Any) -> None:
    from crm_tui.ui.screens.automation import AutomationScreen

    await pilot.press("3")
    await settle(pilot)
    await pilot.press("R")
    await wait_for(lambda: isinstance(app.screen, AutomationScreen) and bool(app.screen.rows), pilot)
    await settle(pilot)
    shown = screen_text(app)
    assert "Pending" in shown, "the last column's header is whole (it showed 'Pendi')"
    assert "Sales / Contract approval" in shown


async def board_on(app: CrmApp, pilot: Any) -> Any:
    from crm_tui.ui.screens.opportunities import OpportunitiesScreen

    await pilot.press("3")
    board = app.screen
    assert isinstance(board, OpportunitiesScreen)
    await wait_for(lambda: bool(board.columns), pilot)
    await settle(pilot)
    return board


async def test_board_totals_follow_the_filter_and_headers_are_whole(app: CrmApp, pilot: Any) -> None:
    from sqlalchemy import select

    from crm_tui.core import models as m

    board = await board_on(app, pilot)
    await pilot.press("slash", *"Wallbox", "enter")
    await wait_for(lambda: board.filter_text == "Wallbox", pilot)
    await settle(pilot)  # the board loaded with the filter
    with app.context.database().read() as session:
        found = session.execute(
            select(
                col(m.Opportunity.stage_id), col(m.Opportunity.currency), col(m.Opportunity.amount_cents)
            ).where(
                col(m.Opportunity.pipeline_id) == board.pipeline_id,
                col(m.Opportunity.title).contains("Wallbox"),
            )
        ).all()
    for column in board.columns:
        mine = [(currency, cents) for stage, currency, cents in found if stage == column.stage_id]
        assert column.count == len(mine), column.name
        assert column.amounts == {
            currency: sum(c for cur, c in mine if cur == currency) for currency, _ in mine
        }, column.name
    shown = screen_text(app)
    for column in board.columns:
        for currency, cents in column.amounts.items():
            assert f"{round(cents / 100):,} {currency}" in shown, "a column's total is shown whole"
    await pilot.press("escape")
    await wait_for(lambda: board.filter_text == "", pilot)
    await settle(pilot)
    for column, header in zip(board.columns, board.query(".column-header"), strict=True):
        shown = shown_in(app, header)
        assert "…" not in shown and shown.split() == [
            *column.name.split(),
            str(column.count),
            f"{column.probability}%",
            *" ".join(f"{round(cents / 100):,} {cur}" for cur, cents in column.amounts.items()).split(),
        ], shown


def test_card_titles_are_cut_after_a_whole_word() -> None:
    from crm_tui.ui.screens.opportunities import whole_words

    assert (
        whole_words("Wärmepumpe für den Neubau (Seeblick Autohaus GmbH)", 40)
        == "Wärmepumpe für den Neubau (Seeblick …"
    )
    assert whole_words("Solarcarport Elbe", 40) == "Solarcarport Elbe"
    assert whole_words("Energiemonitoringsystemerweiterungspaket", 20) == "Energiemonitoringsy…"
    assert len(whole_words("a b c d e f g h i j k l m n o p q r s t", 10)) <= 10


async def test_after_a_filter_and_a_pipeline_switch_the_board_highlights_a_deal(
    app: CrmApp, pilot: Any
) -> None:
    """Seen: a filter, a switch to Installation (its one deal filtered out), Esc: the board sat on the last,
    empty column ("No deal selected.") and j/k/h/l seemed to do nothing."""
    from sqlalchemy import select

    from crm_tui.core import models as m
    from crm_tui.ui.widgets.record_detail import RecordDetail

    with app.context.database().write() as session:
        installation = session.scalars(select(m.Pipeline).where(col(m.Pipeline.name) == "Installation")).one()
        first = session.scalars(
            select(m.Stage).where(col(m.Stage.pipeline_id) == installation.id).order_by(col(m.Stage.position))
        ).first()
        deal = session.scalars(select(m.Opportunity).where(col(m.Opportunity.title).contains("Auen"))).first()
        assert first is not None and deal is not None
        assert installation.id is not None and first.id is not None
        deal.pipeline_id, deal.stage_id = installation.id, first.id  # as the "won: copy" rule puts one there
        deal_id = deal.id
    board = await board_on(app, pilot)
    await pilot.press("l", "l", "l", "l", "slash", *"Wärme", "enter")
    await wait_for(lambda: board.filter_text == "Wärme", pilot)
    await settle(pilot)
    while board.pipeline_id != installation.id:
        await pilot.press("p")
        await settle(pilot)
    assert not any(column.cards for column in board.columns), "its one deal is filtered out"
    await pilot.press("escape")
    await wait_for(lambda: board.filter_text == "", pilot)
    await settle(pilot)
    assert board.selected_deal() == deal_id
    detail = board.query_one(RecordDetail)
    await wait_for(lambda: "Energiemonitoring Auen" in str(detail.render()), pilot)
    await pilot.press("l")
    assert board.selected_deal() is None  # the next column is empty
    await pilot.press("h")
    assert board.selected_deal() == deal_id
    await pilot.press("p")  # to a pipeline with deals: a deal is highlighted at once
    await settle(pilot)
    assert board.pipeline_id != installation.id
    assert board.selected_deal() is not None


async def test_the_move_preview_fills_the_merge_fields_for_the_deal(app: CrmApp, pilot: Any) -> None:
    """> on a deal in Contract approval showed "repeat lead 'Repeat business: {{ deal.title }}'" and "call
    {{ contact.name }}": what the rules will do to this deal, as they will do it."""
    from crm_tui.ui.screens.dialogs import ConfirmDialog

    board = await board_on(app, pilot)
    approval = next(i for i, column in enumerate(board.columns) if column.name == "Contract approval")
    for _ in range(approval):
        await pilot.press("l")
    deal_id = board.selected_deal()
    assert deal_id is not None
    title = next(card.title for card in board.columns[approval].cards if card.id == deal_id)
    await pilot.press("greater_than_sign")
    await wait_for(lambda: isinstance(app.screen, ConfirmDialog), pilot)
    shown = " ".join(screen_rows(app))
    assert "{{" not in shown and "}}" not in shown, shown
    assert isinstance(app.screen, ConfirmDialog)
    body = app.screen._body
    assert f"Repeat business: {title}" in (body.plain if hasattr(body, "plain") else str(body))
    await pilot.press("escape")


def test_a_merge_field_the_deal_cannot_fill_is_named_in_the_preview(app: CrmApp) -> None:
    from sqlalchemy import delete, select

    from crm_tui.core import models as m
    from crm_tui.core.automation import actions
    from crm_tui.core.types import RecordRef, RecordType

    context = app.context
    with context.database().write() as session:
        rule = next(
            r for r in session.scalars(select(m.AutomationRule)) if "contact.name" in (r.params or "")
        )
        deal_id = session.scalars(select(col(m.Opportunity.id))).first()
        assert deal_id is not None
        session.execute(
            delete(m.OpportunityContact).where(col(m.OpportunityContact.opportunity_id) == deal_id)
        )
    with context.database().read() as session:
        said = actions.describe_for(
            session, rule, RecordRef(RecordType.OPPORTUNITY, deal_id), me_id=None, today=context.today()
        )
    assert "{{" not in said and "contact" in said and "fail" in said, said


async def test_esc_on_a_changed_form_asks_and_on_an_unchanged_one_closes(app: CrmApp, pilot: Any) -> None:
    from sqlalchemy import func, select

    from crm_tui.core import models as m
    from crm_tui.ui.screens.dialogs import ConfirmDialog
    from crm_tui.ui.screens.record_form import RecordForm

    def contacts() -> int:
        with app.context.database().read() as session:
            return session.scalar(select(func.count()).select_from(m.Contact)) or 0

    before = contacts()
    await pilot.press("2")
    records = app.screen
    assert isinstance(records, ContactsScreen)
    await wait_for(lambda: records.table.row_count > 0, pilot)
    await pilot.press("e")  # opened and left as it was: Esc closes at once
    await wait_for(lambda: isinstance(app.screen, RecordForm), pilot)
    await pilot.press("escape")
    await wait_for(lambda: app.screen is records, pilot)

    await pilot.press("n")
    await wait_for(lambda: isinstance(app.screen, RecordForm), pilot)
    form = app.screen
    assert isinstance(form, RecordForm)
    await pilot.press(*"Lena")
    await pilot.press("escape")
    await wait_for(lambda: isinstance(app.screen, ConfirmDialog), pilot)
    assert "Discard" in str(app.screen.query_one(".dialog-title", Label).render())
    for key in ("n", "escape"):  # both go back to the form, as it was
        await pilot.press(key)
        await wait_for(lambda: app.screen is form, pilot)
        assert "Lena" in form.values().values()
        await pilot.press("escape")
        await wait_for(lambda: isinstance(app.screen, ConfirmDialog), pilot)
    await pilot.press("y")
    await wait_for(lambda: app.screen is records, pilot)
    assert contacts() == before, "nothing was saved"


async def test_the_rule_form_and_the_template_form_ask_before_discarding(app: CrmApp, pilot: Any) -> None:
    from crm_tui.ui.screens.automation import AutomationScreen
    from crm_tui.ui.screens.dialogs import ConfirmDialog
    from crm_tui.ui.screens.record_form import RecordForm

    await board_on(app, pilot)
    await pilot.press("R")
    await wait_for(lambda: isinstance(app.screen, AutomationScreen) and bool(app.screen.rows), pilot)
    rules = app.screen
    await pilot.press("e")
    await wait_for(lambda: isinstance(app.screen, RecordForm), pilot)
    app.screen.query_one("#f-name", Input).value = "Call at contract approval (changed)"
    await pilot.press("escape")
    await wait_for(lambda: isinstance(app.screen, ConfirmDialog), pilot)
    await pilot.press("y")
    await wait_for(lambda: app.screen is rules, pilot)
    await pilot.press("escape")

    await pilot.press("5")
    settings = app.screen
    assert isinstance(settings, SettingsScreen)
    settings.show_section("templates")
    await settle(pilot)
    await pilot.press("n")
    await wait_for(lambda: isinstance(app.screen, RecordForm), pilot)
    await pilot.press(*"Angebot")
    await pilot.press("escape")
    await wait_for(lambda: isinstance(app.screen, ConfirmDialog), pilot)
    await pilot.press("n")
    await wait_for(lambda: isinstance(app.screen, RecordForm), pilot)


async def test_compose_asks_when_only_the_subject_was_written(app: CrmApp, pilot: Any) -> None:
    from crm_tui.ui.screens.compose import ComposeScreen
    from crm_tui.ui.screens.dialogs import ChoiceDialog

    await pilot.press("1")
    await settle(pilot)
    await pilot.press("m")
    await wait_for(lambda: isinstance(app.screen, ComposeScreen), pilot)
    compose = app.screen
    compose.query_one("#c-subject", Input).value = "Angebot"
    await pilot.press("escape")
    await wait_for(lambda: isinstance(app.screen, ChoiceDialog), pilot)


@pytest.mark.parametrize("size", [(160, 48), (80, 24)])
async def test_notifications_in_compose_show_their_text(app: CrmApp, size: tuple[int, int]) -> None:
    """Reported: notifications inside the mail editor were blank. Their text must be on the screen, over the
    fields and over the body (the Pilot default hides notifications: here they are on)."""
    from crm_tui.ui.screens.compose import ComposeScreen
    from crm_tui.ui.screens.dialogs import PromptDialog

    async with app.run_test(size=size, notifications=True) as pilot:
        await pilot.press("1")
        await settle(pilot)
        await pilot.press("m")
        await wait_for(lambda: isinstance(app.screen, ComposeScreen), pilot)
        await settle(pilot)
        await pilot.press("ctrl+d")  # a warning: the new mail is about no record
        await pilot.press("ctrl+o")
        await wait_for(lambda: isinstance(app.screen, PromptDialog), pilot)
        await pilot.press(*"/nowhere/offer.pdf", "enter")
        await wait_for(lambda: isinstance(app.screen, ComposeScreen), pilot)
        await settle(pilot)
        shown = " ".join(" ".join(screen_rows(app)).split())
        for _severity, message in notes(app)[-2:]:
            assert " ".join(message.split()[:4]) in shown, (message, shown)


async def test_attaching_a_file_that_is_not_there_keeps_the_dialog_open_to_correct_the_path(
    app: CrmApp, pilot: Any, tmp_path: Path
) -> None:
    """A mistyped path said "does not exist" and closed the dialog (the walk): the dialog stays, with the
    reason and the typed path, and the corrected path attaches."""

    from crm_tui.ui.screens.dialogs import PromptDialog

    offer = tmp_path / "offer.pdf"
    offer.write_bytes(b"%PDF-1.4")
    await pilot.press("2")
    screen = app.screen
    assert isinstance(screen, ContactsScreen)
    await wait_for(lambda: screen.table.row_count > 0, pilot)
    await pilot.press("A")
    await wait_for(lambda: isinstance(app.screen, PromptDialog), pilot)
    dialog = app.screen
    dialog.query_one(Input).value = str(tmp_path / "offre.pdf")
    await pilot.press("enter")
    await wait_for(lambda: "does not exist" in str(dialog.query_one("#error", Label).render()), pilot)
    assert app.screen is dialog and dialog.query_one(Input).value == str(tmp_path / "offre.pdf")
    dialog.query_one(Input).value = str(offer)
    await pilot.press("enter")
    await wait_for(lambda: any("Attached offer.pdf" in n.message for n in app._notifications), pilot)
    assert app.screen is screen
