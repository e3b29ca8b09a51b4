"""What a salesperson tried and saw fail (issue 19), as they did it: keys on the demo, through Pilot."""

from __future__ import annotations

import logging
import stat
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlmodel import col
from textual.widgets import Input

from crm_tui.core import models as m
from crm_tui.core.services.mail_accounts import DEMO_PRESET
from crm_tui.ui.app import CrmApp
from crm_tui.ui.screens.compose import ComposeScreen
from crm_tui.ui.screens.contacts import ContactsScreen
from crm_tui.ui.screens.opportunities import OpportunitiesScreen
from crm_tui.ui.screens.outbox import OutboxScreen
from crm_tui.ui.screens.record_form import RecordForm
from crm_tui.ui.widgets.paged_table import PagedTable
from crm_tui.ui.widgets.record_detail import RecordDetail
from tests.ui.helpers import wait_for
from tests.ui.keywalk import quick_press, settle


def notes(app: CrmApp) -> list[tuple[str, str]]:
    return [(str(n.severity), n.message) for n in app._notifications]


async def test_m_on_a_deal_writes_to_its_primary_contact_and_offers_the_others(
    app: CrmApp, pilot: Any
) -> None:
    from crm_tui.core.services.contacts import contact_emails

    with app.context.database().read() as session:
        row = session.execute(
            select(col(m.OpportunityContact.opportunity_id), col(m.OpportunityContact.contact_id))
            .where(col(m.OpportunityContact.is_primary).is_(True))
            .order_by(col(m.OpportunityContact.opportunity_id))
        ).first()
        assert row is not None, "the demo has deals with a primary contact"
        deal_id, contact_id = row
        contact = contact_emails(session, contact_id)[0]
    await pilot.press("3")
    board = app.screen
    assert isinstance(board, OpportunitiesScreen)
    await wait_for(lambda: bool(board.columns), pilot)
    board.reload(select=deal_id)
    await wait_for(lambda: board.selected_deal() == deal_id, pilot)
    await pilot.press("m")
    await settle(pilot)
    assert isinstance(app.screen, ComposeScreen), (app.screen, notes(app), app.focused)
    compose = app.screen
    assert contact and contact in compose.query_one("#c-to", Input).value, "addressed to the primary contact"
    with app.context.database().read() as session:
        others = [
            address
            for (other,) in session.execute(
                select(col(m.OpportunityContact.contact_id)).where(
                    col(m.OpportunityContact.opportunity_id) == deal_id,
                    col(m.OpportunityContact.contact_id) != contact_id,
                )
            )
            for address in contact_emails(session, other)
        ]
    assert all(any(address in offered for offered in compose.offered) for address in others)
    if compose.offered:  # a comma and one letter of another contact's name complete in To
        to = compose.query_one("#c-to", Input)
        primary = to.value
        await pilot.press("shift+tab")  # from the body back up to To, as a user goes
        for _ in range(4):
            if app.focused is to:
                break
            await pilot.press("shift+tab")
        assert app.focused is to
        await pilot.press("end", "comma", "space", compose.offered[0][0].lower())
        await wait_for(lambda: to._suggestion.endswith(compose.offered[0]), pilot)
        await pilot.press("right")
        assert to.value == f"{primary}, {compose.offered[0]}", "the primary contact stays in To"
    assert app.is_running
    assert not [n for n in notes(app) if n[0] == "error"]


async def test_the_quotes_list_loads_and_shows_the_quote(app: CrmApp, pilot: Any) -> None:
    records = app.screen
    assert isinstance(records, ContactsScreen)
    table = records.query_one(PagedTable)
    await wait_for(lambda: table.row_count > 0, pilot)
    for _ in range(4):  # contacts, organizations, leads, tickets, quotes
        await pilot.press("right_square_bracket")
    await wait_for(lambda: records.kind.title == "Quotes" and table.row_count > 0, pilot)
    assert table.loaded_rows[0].cells[0].startswith("Q-2026-")
    detail = records.query_one(RecordDetail)
    await wait_for(lambda: "quote:" in str(detail.render()), pilot)
    assert not [n for n in notes(app) if n[0] == "error"]


async def test_typing_a_board_filter_stays_in_the_filter(app: CrmApp, pilot: Any) -> None:
    await pilot.press("3")
    board = app.screen
    await wait_for(lambda: bool(getattr(board, "columns", None)), pilot)
    await quick_press(pilot, "slash")
    for letter in "Hallendach":  # at a typist's speed: the board reloads under every letter
        await quick_press(pilot, letter)
    await settle(pilot)
    assert board.query_one("#search", Input).value == "Hallendach"
    assert app.screen is board, "no letter ran as a command (a opened New activity)"


async def test_the_demo_account_never_connects_and_says_so(app: CrmApp, pilot: Any) -> None:
    with app.context.database().read() as session:
        account = session.scalars(select(m.MailAccount)).one()
    assert account.preset == DEMO_PRESET
    await pilot.press("ctrl+r")
    await wait_for(lambda: ("information", "demo: not connected") in notes(app), pilot)
    # A mail written in the demo waits in the outbox for good.
    await pilot.press("1")
    await settle(pilot)
    await pilot.press("m")
    await wait_for(lambda: isinstance(app.screen, ComposeScreen), pilot)
    compose = app.screen
    compose.query_one("#c-to", Input).value = "kunde@example.com"
    compose.query_one("#c-subject", Input).value = "Angebot"
    await pilot.press("ctrl+s")  # every recipient an address: queued without asking
    await wait_for(lambda: not isinstance(app.screen, ComposeScreen), pilot)
    await pilot.press("o")
    await wait_for(
        lambda: isinstance(app.screen, OutboxScreen) and bool(getattr(app.screen, "rows", [])), pilot
    )
    assert isinstance(app.screen, OutboxScreen)
    assert app.screen.rows[0].shown_state == "never delivered (demo)"
    assert not [n for n in notes(app) if n[0] == "error"]


async def test_an_error_in_a_key_is_one_notification_and_a_log_entry(
    app: CrmApp, pilot: Any, caplog: Any, monkeypatch: Any
) -> None:
    caplog.set_level(logging.WARNING, logger="crm_tui")

    def broken(self: Any) -> None:
        raise RuntimeError("a bug in a key's action, holding Ana Müller's notes")

    monkeypatch.setattr(ContactsScreen, "action_new", broken)
    await wait_for(lambda: app.screen.query_one(PagedTable).row_count > 0, pilot)
    await pilot.press("n")
    await pilot.press("n")  # the same error again at once is not shown twice
    await settle(pilot)
    errors = [text for severity, text in notes(app) if severity == "error"]
    assert len(errors) == 1 and "RuntimeError" in errors[0] and "crm-tui.log" in errors[0]
    logged = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert logged and logged[0].exc_info is not None, "the traceback goes to the log"
    assert app.is_running, "the app goes on"
    await pilot.press("j")  # and still answers keys
    await settle(pilot)
    assert isinstance(app.screen, ContactsScreen)


async def test_an_error_the_app_cannot_survive_ends_it_with_one_line_and_status_1(
    app: CrmApp, pilot: Any, tmp_path: Path
) -> None:
    await settle(pilot)
    app._handle_exception(RuntimeError("the screen could not be built"))
    await wait_for(lambda: app.return_code == 1, pilot)
    shown = [str(getattr(r, "plain", r)) for r in app._exit_renderables]
    assert len(shown) == 1 and shown[0].startswith("crm-tui stopped after an internal error: RuntimeError")
    assert "Traceback" not in shown[0]
    app._exception = None  # the test itself goes on (Pilot would raise it again)
    log = app.context.paths.log_file
    assert "the screen could not be built" in log.read_text(encoding="utf-8")
    assert stat.S_IMODE(log.stat().st_mode) == 0o600 and stat.S_IMODE(log.parent.stat().st_mode) == 0o700


async def test_a_new_form_opens_prefilled_values_that_pass_its_own_checks(app: CrmApp, pilot: Any) -> None:
    """Every record kind's "new" form saves (or names what to fill) without a bad-value message."""
    records = app.screen
    table = records.query_one(PagedTable)
    for _ in range(5):
        await wait_for(lambda: table.row_count > 0, pilot)
        await quick_press(pilot, "n")
        await settle(pilot)
        form = app.screen
        assert isinstance(form, RecordForm)
        await quick_press(pilot, "ctrl+s")
        await settle(pilot)
        if isinstance(app.screen, RecordForm):
            shown = " ".join(str(w.render()) for w in app.screen.query(".field-error"))
            assert "control characters" not in shown and "invalid" not in shown.lower(), shown
        await quick_press(pilot, "escape")
        await settle(pilot)
        if app.screen is not records:
            await quick_press(pilot, "y")
            await settle(pilot)
        await quick_press(pilot, "right_square_bracket")
        await settle(pilot)


async def test_a_mode_shown_again_shows_what_another_mode_changed(app: CrmApp, pilot: Any) -> None:
    """A pipeline made in Settings is on the board when the user goes back to it (it said "no pipeline")."""
    from crm_tui.core.services import pipelines

    await pilot.press("3")
    board = app.screen
    assert isinstance(board, OpportunitiesScreen)
    await wait_for(lambda: bool(board.pipelines), pilot)
    await pilot.press("5")
    await settle(pilot)
    with app.context.database().write() as session:
        made = pipelines.create_pipeline(
            session, "Vertrieb Nord", [pipelines.StageInput(name="Erstkontakt", kind="open", probability=10)]
        )
        made_id = made.id
    app.check_for_changes()  # the app noticed the write while Settings was in front (as it does every 2 s)
    await settle(pilot)
    await pilot.press("3")
    await wait_for(lambda: made_id in [pid for pid, _name in board.pipelines], pilot)


async def burst(app: CrmApp, keys: list[str]) -> None:
    """Keys as a terminal delivers a fast typist's burst: all queued before the app handles the first."""
    from textual import events

    driver = app._driver
    assert driver is not None
    for key in keys:
        event = events.Key(key, key if len(key) == 1 else None)
        event.set_sender(app)
        driver.send_message(event)


async def test_a_quick_correction_in_a_search_field_keeps_every_key_in_order(app: CrmApp, pilot: Any) -> None:
    for mode in ("1", "2"):  # the inbox's search and the contacts' search
        await pilot.press(mode)
        await settle(pilot)
        await quick_press(pilot, "slash")
        search = app.screen.query_one("#search", Input)
        for _round in range(3):
            await burst(app, [*"fotos", *["backspace"] * 5, *"speicher"])
            await settle(pilot)
            assert search.value == "speicher", "backspaces ran after the letters typed behind them"
            await burst(app, [*["backspace"] * 8, "left", "right", *"fotos"])
            await settle(pilot)
            assert search.value == "fotos"
            await burst(app, ["backspace"] * 5)
            await settle(pilot)
        await quick_press(pilot, "escape")
        await settle(pilot)


async def test_up_on_the_first_activity_of_a_day_stays_there(app: CrmApp, pilot: Any) -> None:
    from textual.widgets import OptionList

    await pilot.press("4")
    await settle(pilot)
    await pilot.press("d")  # the day view: one list
    await settle(pilot)
    days = [d for d in app.screen.query(OptionList) if d.option_count > 1]
    assert days, "the demo's day has activities"
    day = days[0]
    day.focus()
    day.highlighted = 0
    await pilot.press("k")
    await settle(pilot)
    assert day.highlighted == 0, "k at the top does not wrap round to the last activity"
    day.highlighted = day.option_count - 1
    await pilot.press("j")
    await settle(pilot)
    assert day.highlighted == day.option_count - 1


async def test_page_keys_in_a_closed_drop_down_do_nothing_harmful(app: CrmApp, pilot: Any) -> None:
    """A form's drop-down (Textual's SelectOverlay) that was never opened has no layout: page down/up there
    raised KeyError (found by the random walk). They leave it as it is."""
    from textual.widgets._select import SelectOverlay

    records = app.screen
    await wait_for(lambda: records.query_one(PagedTable).row_count > 0, pilot)
    await pilot.press("a")  # a new activity: its Type is a drop-down
    await wait_for(lambda: isinstance(app.screen, RecordForm), pilot)
    overlays = list(app.screen.query(SelectOverlay))
    assert overlays, "the form has a drop-down"
    for overlay in overlays:
        before = overlay.highlighted
        overlay.action_page_down()  # type: ignore[no-untyped-call]  # Textual's OptionList action is unannotated
        overlay.action_page_up()  # type: ignore[no-untyped-call]  # likewise
        assert overlay.highlighted == before
    await settle(pilot)
    assert not [n for n in notes(app) if n[0] == "error"]


async def test_a_field_error_quoting_what_was_typed_shows_it_as_typed(app: CrmApp, pilot: Any) -> None:
    """A number field given "[/b]": its error quotes the input; shown as text, never read as markup (the
    random walk's seed 2 found the form dying on it with a MarkupError)."""
    from crm_tui.ui.screens.record_form import RecordForm

    await pilot.press("3")
    await settle(pilot)
    await pilot.press("n")
    await wait_for(lambda: isinstance(app.screen, RecordForm), pilot)
    form = app.screen
    form.query_one("#f-title", Input).value = "Dach Süd"
    form.query_one("#f-custom--roof_area_m2", Input).value = "[/b] and [red]"
    await pilot.press("ctrl+s")
    await wait_for(
        lambda: "[/b] and [red]" in str(form.query_one("#error-f-custom--roof_area_m2").render()), pilot
    )
    assert app.screen is form
    assert not [n for n in notes(app) if n[0] == "error"]


async def test_on_a_fresh_home_the_board_says_to_make_a_pipeline_and_the_app_stays(
    make_app: Any, tmp_path: Any
) -> None:
    """A fresh home has no pipeline: n on the board said nothing and the deal form's empty stage list closed
    the whole app (EmptySelectError); now n says what to do, p too, and the deal form opens wherever it
    comes from (its stage is required, the save says so)."""
    from crm_tui.ui.forms.opportunities import opportunity_form
    from crm_tui.ui.screens.record_form import RecordForm

    app = make_app(tmp_path / "fresh", demo=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("3")
        await settle(pilot)
        await pilot.press("n")
        await wait_for(lambda: any("No pipeline yet" in text for _, text in notes(app)), pilot)
        await pilot.press("p")
        await wait_for(lambda: sum("No pipeline yet" in text for _, text in notes(app)) == 2, pilot)
        assert app.is_running
        app.screen.open_form(
            lambda: opportunity_form(app.context, None, {}), noun="opportunity", on_saved=print
        )
        await wait_for(lambda: isinstance(app.screen, RecordForm), pilot)
        await pilot.press("ctrl+s")
        await wait_for(lambda: "required" in str(app.screen.query_one("#error-f-stage_id").render()), pilot)
        assert not [n for n in notes(app) if n[0] == "error"]
