"""The deal screen (issue 24, item 1) on the demo: Enter on a board card opens it, and each of its keys does
what the user expects to see: the facts and people, one timeline, the moves G (with the automation preview), L
and C and their undo u, comments, files, documents, mail, activities, a mail's thread with its replies, and the
palette's "Open deal..."."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.command import CommandPalette
from textual.widgets import DataTable, Input, OptionList, Static, TextArea

from crm_tui.core.services import mail_store
from crm_tui.core.types import RecordRef, RecordType
from crm_tui.ui.screens.attachments import DocumentsScreen
from crm_tui.ui.screens.compose import ComposeScreen
from crm_tui.ui.screens.deal import DealPicker, DealScreen
from crm_tui.ui.screens.deal_moves import StagePicker
from crm_tui.ui.screens.dialogs import ChoiceDialog, ConfirmDialog, PromptDialog
from crm_tui.ui.screens.inbox import MessageReader
from crm_tui.ui.screens.opportunities import OpportunitiesScreen
from crm_tui.ui.screens.record_form import RecordForm
from tests.ui.helpers import wait_for
from tests.ui.keywalk import settle, use_recording_programs


def facts(app: Any) -> str:
    return str(app.screen.query_one("#deal-facts-text", Static).render())


def title(app: Any) -> str:
    return str(app.screen.query_one("#deal-title").render())


def timeline(app: Any) -> list[str]:
    """The timeline's rows as the user reads them: when, what, text."""
    table = app.screen.query_one("#timeline", DataTable)
    return [" ".join(str(cell) for cell in table.get_row_at(index)) for index in range(table.row_count)]


async def open_first_deal(app: Any, pilot: Any) -> DealScreen:
    await pilot.press("3")
    await wait_for(lambda: isinstance(app.screen, OpportunitiesScreen) and app.screen.selected_deal(), pilot)
    board = app.screen
    deal_id = board.selected_deal()
    await pilot.press("enter")
    await wait_for(lambda: isinstance(app.screen, DealScreen) and app.screen.story is not None, pilot)
    screen = app.screen
    assert isinstance(screen, DealScreen) and screen.deal_id == deal_id
    return screen


async def test_enter_on_a_card_shows_the_deals_story_and_q_esc_go_back(app: Any, pilot: Any) -> None:
    screen = await open_first_deal(app, pilot)
    story = screen.story
    assert story is not None
    assert story.title in title(app) and f"{story.pipeline_name} › {story.stage_name}" in title(app)
    seen = facts(app)
    for heading in ("People", "Automation waiting", "Stage history"):
        assert heading in seen
    assert story.people and story.people[0].name in seen, "the primary contact is listed"
    assert "★" in seen and "primary contact" in seen
    assert str(app.screen.query_one("#timeline-heading").render()) == "Timeline"
    rows = timeline(app)
    assert any("created in" in row for row in rows), rows
    stamps = [item.at for item in screen.items]
    assert stamps == sorted(stamps, reverse=True), "newest first"
    await pilot.press("q")
    await wait_for(lambda: isinstance(app.screen, OpportunitiesScreen), pilot)
    await pilot.press("enter")
    await wait_for(lambda: isinstance(app.screen, DealScreen), pilot)
    await pilot.press("escape")
    await wait_for(lambda: isinstance(app.screen, OpportunitiesScreen), pilot)
    await pilot.press("e")
    await wait_for(lambda: isinstance(app.screen, RecordForm), pilot)  # e on the board still edits


async def test_qualification_to_won_in_four_keys_with_the_preview_and_u_undoes_it(
    app: Any, pilot: Any
) -> None:
    screen = await open_first_deal(app, pilot)
    assert screen.story is not None and screen.story.stage_name == "Qualification"
    await pilot.press("G")
    await wait_for(lambda: isinstance(app.screen, StagePicker), pilot)
    await pilot.press("w")
    await wait_for(
        lambda: "Won" in str(app.screen.query_one(OptionList).get_option_at_index(0).prompt), pilot
    )
    await pilot.press("enter")
    # The demo's Won rules: the preview says what will fire before anything moves.
    await wait_for(lambda: isinstance(app.screen, ConfirmDialog), pilot)
    preview = str(app.screen.query_one(".dialog-body").render())
    assert "on entering the stage" in preview and "report" in preview
    await pilot.press("enter")
    await wait_for(lambda: isinstance(app.screen, DealScreen) and "› Won" in title(app), pilot)
    await wait_for(lambda: any("Qualification → Won" in row for row in timeline(app)), pilot)
    await wait_for(lambda: any("automation" in row for row in timeline(app)), pilot)  # what fired
    assert "Won" in facts(app).split("Stage history")[1]
    await pilot.press("u")
    await wait_for(lambda: "› Qualification" in title(app), pilot)
    assert any("Won → Qualification (undone)" in row for row in timeline(app))
    assert any("Undone: the move to Won." in text for _, text in app.shown)


async def test_l_asks_the_reason_and_c_copies_to_another_pipeline(app: Any, pilot: Any) -> None:
    await open_first_deal(app, pilot)
    await pilot.press("L")
    await wait_for(lambda: isinstance(app.screen, PromptDialog), pilot)
    await pilot.press(*"too expensive", "enter")
    await wait_for(lambda: "› Lost" in title(app), pilot)
    assert "Lost reason: too expensive" in facts(app)
    await pilot.press("L")
    await wait_for(lambda: any("lost already" in text for _, text in app.shown), pilot)
    await pilot.press("u")
    await wait_for(lambda: "› Qualification" in title(app), pilot)
    assert "Lost reason" not in facts(app)

    await pilot.press("C")
    await wait_for(lambda: isinstance(app.screen, StagePicker), pilot)
    await pilot.press(*"install")
    await wait_for(
        lambda: "Installation ›" in str(app.screen.query_one(OptionList).get_option_at_index(0).prompt), pilot
    )
    await pilot.press("enter")
    await wait_for(
        lambda: any(text.startswith("Copied ") and "Installation ›" in text for _, text in app.shown), pilot
    )
    await pilot.press("u")
    await wait_for(lambda: any("Undone: the copy in Installation" in text for _, text in app.shown), pilot)


async def test_comment_attach_documents_and_activity(
    app: Any, pilot: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    started = use_recording_programs(monkeypatch, tmp_path / "programs")
    await open_first_deal(app, pilot)
    await pilot.press("c")
    await wait_for(lambda: isinstance(app.screen, PromptDialog), pilot)
    app.screen.query_one(TextArea).insert("They want the bigger pump")
    await pilot.press("ctrl+s")
    await wait_for(lambda: any("They want the bigger pump" in row for row in timeline(app)), pilot)

    offer = tmp_path / "offer.pdf"
    offer.write_bytes(b"%PDF-1.4 an offer")
    await pilot.press("o")
    await wait_for(lambda: any("has no documents" in text for _, text in app.shown), pilot)
    await pilot.press("A")
    await wait_for(lambda: isinstance(app.screen, PromptDialog), pilot)
    app.screen.query_one(Input).value = str(offer)
    await pilot.press("enter")
    await wait_for(lambda: any("offer.pdf" in row and "document" in row for row in timeline(app)), pilot)
    await pilot.press("o")
    await wait_for(lambda: isinstance(app.screen, DocumentsScreen), pilot)
    assert app.screen.entries[0][0] == "offer.pdf"
    await pilot.press("o")  # open with the desktop opener (the recording command here)
    await wait_for(lambda: started.exists() and "offer.pdf" in started.read_text(), pilot)
    await pilot.press("escape")
    await wait_for(lambda: isinstance(app.screen, DealScreen), pilot)

    await pilot.press("a")
    await wait_for(lambda: isinstance(app.screen, RecordForm), pilot)
    await pilot.press("escape")
    await settle(pilot)
    if isinstance(app.screen, ConfirmDialog):
        await pilot.press("y")
    await wait_for(lambda: isinstance(app.screen, DealScreen), pilot)
    await pilot.press("e")
    await wait_for(
        lambda: isinstance(app.screen, RecordForm) and "pportunit" in str(app.screen.spec.title), pilot
    )


async def test_m_writes_to_the_primary_contact_and_a_timeline_mail_opens_its_thread(
    app: Any, pilot: Any
) -> None:
    screen = await open_first_deal(app, pilot)
    story = screen.story
    assert story is not None
    primary = story.people[0]
    await pilot.press("m")
    await wait_for(lambda: isinstance(app.screen, ComposeScreen), pilot)
    assert primary.emails[0] in app.screen.query_one("#c-to", Input).value
    await pilot.press("escape")
    await wait_for(lambda: not isinstance(app.screen, ComposeScreen), pilot)
    if isinstance(app.screen, ConfirmDialog):
        await pilot.press("y")
    await wait_for(lambda: isinstance(app.screen, DealScreen), pilot)

    # A mail of the demo filed on the deal: it shows in the timeline; Enter opens its thread, r replies.
    context = app.context
    with context.database().write() as session:
        [(message_id, subject)] = [
            (row.id, row.subject) for row in mail_store.list_messages(session, limit=1)
        ]
        mail_store.link_message(
            session,
            message_id,
            RecordRef(RecordType.OPPORTUNITY, screen.deal_id),
            reason="manual",
            now=context.clock.now(),
        )
    screen.reload()
    await wait_for(lambda: any(subject in row and "mail" in row for row in timeline(app)), pilot)
    table = app.screen.query_one("#timeline", DataTable)
    table.move_cursor(row=next(i for i, item in enumerate(screen.items) if item.kind == "mail"))
    await pilot.press("enter")
    await wait_for(lambda: isinstance(app.screen, MessageReader) and app.screen.thread, pilot)
    await wait_for(lambda: subject in str(app.screen.query_one("#reader-text", Static).render()), pilot)
    await pilot.press("r")
    await wait_for(lambda: isinstance(app.screen, ComposeScreen), pilot)
    assert app.screen.query_one("#c-subject", Input).value.lower().startswith("re:")
    assert app.screen.query_one("#c-to", Input).value, "the reply goes to the mail's sender"


async def test_the_palette_opens_a_deal_by_a_few_letters(app: Any, pilot: Any) -> None:
    await pilot.press("ctrl+p")
    await wait_for(lambda: isinstance(app.screen, CommandPalette), pilot)
    await pilot.press(*"Open deal")
    await settle(pilot)
    await pilot.press("enter")
    await wait_for(lambda: isinstance(app.screen, DealPicker), pilot)
    await pilot.press(*"sommer")
    await wait_for(
        lambda: (
            app.screen.query_one(OptionList).option_count > 0
            and "Sommer" in str(app.screen.query_one(OptionList).get_option_at_index(0).prompt)
        ),
        pilot,
    )
    await pilot.press("enter")
    await wait_for(lambda: isinstance(app.screen, DealScreen) and app.screen.story is not None, pilot)
    assert "Sommer" in title(app)


async def test_r_gives_a_person_a_role_on_the_deal(app: Any, pilot: Any) -> None:
    screen = await open_first_deal(app, pilot)
    assert screen.story is not None
    person = screen.story.people[0]
    assert "decision maker" not in facts(app)
    await pilot.press("r")
    await wait_for(lambda: isinstance(app.screen, ChoiceDialog), pilot)
    if "Whose role" in str(app.screen.query_one(".dialog-title").render()):
        await pilot.press("enter")  # the primary contact, listed first
        await wait_for(lambda: "Role of" in str(app.screen.query_one(".dialog-title").render()), pilot)
    assert person.name in str(app.screen.query_one(".dialog-title").render())
    await pilot.press("enter")  # the first role: decision maker
    await wait_for(lambda: isinstance(app.screen, DealScreen) and "decision maker" in facts(app), pilot)
    people = facts(app).split("People")[1]
    assert people.index(person.name) < people.index("decision maker")
