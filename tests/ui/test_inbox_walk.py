"""What a salesperson's walk of the inbox on the demo found: the folder pane follows the view shown and j/k move
in it; triage inside a view keeps the highlight where it was (the next mail); messages name records, not ids;
counts say "1 message", "conversations"; a collapsed thread shows a person's mail and its whole size; the status
bar shows the whole last message; Esc closes the recipient completion before it leaves the mail."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlmodel import col
from textual.widgets import OptionList

from crm_tui.core import models as m
from crm_tui.ui.app import CrmApp
from crm_tui.ui.screens.dialogs import PromptDialog
from crm_tui.ui.screens.inbox import InboxScreen
from crm_tui.ui.screens.opportunities import OpportunitiesScreen
from crm_tui.ui.screens.pickers import FolderPicker
from crm_tui.ui.screens.record_form import RecordForm
from crm_tui.ui.widgets.paged_table import PagedTable
from crm_tui.ui.widgets.status_bar import StatusBar
from tests.ui.helpers import open_inbox, wait_for
from tests.ui.keywalk import RecordingApp, settle


def keys(table: PagedTable) -> list[str]:
    return [row.key for row in table.loaded_rows]


def status(app: CrmApp) -> str:
    return str(app.screen.query_one(StatusBar).render())


def newest(app: CrmApp, model: Any) -> Any:
    with app.context.database().read() as session:
        row = session.scalars(select(model).order_by(model.id.desc())).first()
        if row is not None:
            session.expunge(row)
        return row


def add_folders(app: CrmApp) -> dict[str, int]:
    """The demo's account gets an INBOX holding every incoming mail, and an empty folder "Projekte" (the demo
    has no folders: it never syncs)."""
    with app.context.database().write() as session:
        account = session.scalars(select(m.MailAccount)).first()
        assert account is not None and account.id is not None
        inbox = m.MailFolder(account_id=account.id, name="INBOX", role="inbox", uidvalidity=1)
        projects = m.MailFolder(account_id=account.id, name="Projekte", uidvalidity=1)
        session.add_all([inbox, projects])
        session.flush()
        incoming = session.scalars(
            select(col(m.MailMessage.id)).where(col(m.MailMessage.is_outgoing).is_(False))
        ).all()
        assert inbox.id is not None and projects.id is not None  # flushed
        for uid, message_id in enumerate(incoming, start=1):
            assert message_id is not None  # a stored row's
            session.add(m.MailLocation(message_id=message_id, folder_id=inbox.id, uidvalidity=1, uid=uid))
        return {"INBOX": inbox.id, "Projekte": projects.id}


async def choose(app: CrmApp, pilot: Any, screen: InboxScreen, typed: str, scope: tuple[str, object]) -> None:
    """c, a few letters, Enter: the list shows that view or folder."""
    table = screen.query_one(PagedTable)
    await pilot.press("c")
    await wait_for(lambda: isinstance(app.screen, FolderPicker), pilot)
    await pilot.press(*typed, "enter")
    await wait_for(lambda: app.screen is screen and screen.scope == scope, pilot)
    await wait_for(lambda: not table._loading, pilot)


def pane_highlight(screen: InboxScreen) -> str | None:
    pane = screen.query_one("#folders", OptionList)
    if pane.highlighted is None:
        return None
    return pane.get_option_at_index(pane.highlighted).id


async def test_the_folder_pane_highlights_the_view_shown_and_j_k_enter_work_in_it(
    app: CrmApp, pilot: Any
) -> None:
    folders = add_folders(app)
    screen, table = await open_inbox(app, pilot)
    pane = screen.query_one("#folders", OptionList)
    await wait_for(lambda: pane.option_count >= 8, pilot)  # 5 views, the account, its 2 folders
    assert pane_highlight(screen) == "view:all"

    await choose(app, pilot, screen, "awa", ("view", "awaiting"))
    assert pane_highlight(screen) == "view:awaiting"
    await choose(app, pilot, screen, "projekte", ("folder", folders["Projekte"]))
    assert pane_highlight(screen) == f"folder:{folders['Projekte']}"
    assert table.row_count == 0
    await choose(app, pilot, screen, "awa", ("view", "awaiting"))
    awaiting = keys(table)

    # shift+Tab: the pane has the focus; j/k move there (the mail list's highlight stays), Enter chooses.
    table.move_cursor(row=1)
    await pilot.press("shift+tab")
    await wait_for(lambda: screen.focused is pane, pilot)
    await pilot.press("j")
    await wait_for(lambda: pane_highlight(screen) == "view:no-reply", pilot)
    await pilot.press("k", "k")
    await wait_for(lambda: pane_highlight(screen) == "view:deals", pilot)
    assert table.cursor_row == 1 and keys(table) == awaiting, "j/k moved the pane, not the mail list"
    await pilot.press("enter")
    await wait_for(lambda: screen.scope == ("view", "deals") and screen.focused is table, pilot)
    await wait_for(lambda: keys(table) != awaiting and table.row_count > 0, pilot)
    assert pane_highlight(screen) == "view:deals"
    # Back in the pane, down to the account's INBOX, its first folder (the account's name is skipped).
    await pilot.press("shift+tab")
    await wait_for(lambda: screen.focused is pane, pilot)
    await pilot.press("j", "j", "j")
    await wait_for(lambda: pane_highlight(screen) == f"folder:{folders['INBOX']}", pilot)
    await pilot.press("enter")
    await wait_for(lambda: screen.scope == ("folder", folders["INBOX"]), pilot)


async def test_triage_inside_a_view_or_folder_keeps_the_highlight_in_place(app: CrmApp, pilot: Any) -> None:
    folders = add_folders(app)
    screen, table = await open_inbox(app, pilot)
    await choose(app, pilot, screen, "awa", ("view", "awaiting"))
    rows = keys(table)
    assert len(rows) >= 8
    # a and d on the third mail: it leaves the view, the highlight stays third (on the next mail).
    table.move_cursor(row=2)
    await pilot.press("a")
    await wait_for(lambda: keys(table) == rows[:2] + rows[3:], pilot)
    assert (table.cursor_row, table.selected_key) == (2, rows[3])
    await pilot.press("d")
    await wait_for(lambda: keys(table) == rows[:2] + rows[4:], pilot)
    assert (table.cursor_row, table.selected_key) == (2, rows[4])
    # On tagged mails (the second and the fourth): the highlight goes to the row after the first of them.
    rows = keys(table)
    table.move_cursor(row=1)
    await pilot.press("t", "j", "t")  # t tags and moves down
    await wait_for(lambda: screen.tagged == {int(rows[1]), int(rows[3])}, pilot)
    await pilot.press("semicolon", "a")
    await wait_for(lambda: keys(table) == [rows[0], rows[2], *rows[4:]], pilot)
    assert (table.cursor_row, table.selected_key) == (1, rows[2])
    # The last mail: the highlight goes to the one before, now the last.
    rows = keys(table)
    table.move_cursor(row=len(rows) - 1)
    await pilot.press("d")
    await wait_for(lambda: keys(table) == rows[:-1], pilot)
    assert table.selected_key == rows[-2]

    # s moves a mail out of a folder: the next mail is highlighted.
    await choose(app, pilot, screen, "inbox", ("folder", folders["INBOX"]))
    rows = keys(table)
    assert len(rows) >= 5
    table.move_cursor(row=3)
    await pilot.press("s")
    await wait_for(lambda: isinstance(app.screen, FolderPicker), pilot)
    await pilot.press(*"projekte", "enter")
    await wait_for(lambda: keys(table) == rows[:3] + rows[4:], pilot)
    assert (table.cursor_row, table.selected_key) == (3, rows[4])


async def test_messages_name_the_record_not_its_id(app: RecordingApp, pilot: Any) -> None:
    """'Saved lead “Anfrage PV-Anlage…”.', not 'Saved lead:31.'; the same in the undo lines, the comment prompt
    and the board's lost question."""
    screen, table = await open_inbox(app, pilot)
    await choose(app, pilot, screen, "unlinked", ("view", "unlinked"))
    leads_before = newest(app, m.Lead).id
    await pilot.press("L")
    await wait_for(lambda: isinstance(app.screen, RecordForm), pilot)
    await pilot.press("ctrl+s")
    await wait_for(lambda: app.screen is screen and newest(app, m.Lead).id != leads_before, pilot)
    lead = newest(app, m.Lead)
    assert 0 < len(lead.title) < 60
    named = f"lead “{lead.title}”"
    await wait_for(lambda: f"Saved {named}." in [text for _, text in app.shown], pilot)
    await wait_for(lambda: f"{named} made from the mail and filed (u undoes)" in status(app), pilot)
    await pilot.press("u")
    await wait_for(lambda: f"undone: {named} and its links removed" in status(app), pilot)

    await choose(app, pilot, screen, "open deals", ("view", "deals"))
    await pilot.press("A")
    await wait_for(lambda: isinstance(app.screen, RecordForm), pilot)
    await pilot.press("ctrl+s")
    await wait_for(lambda: app.screen is screen and newest(app, m.Activity).follow_up_of is not None, pilot)
    named = f"activity “{newest(app, m.Activity).subject}”"
    await wait_for(lambda: f"Saved {named}." in [text for _, text in app.shown], pilot)
    await pilot.press("u")
    await wait_for(lambda: f"undone: follow-up {named} removed" in status(app), pilot)

    # n: the comment goes on the record the mail is filed on, named.
    assert table.selected_key is not None
    message_id = int(table.selected_key)
    with app.context.database().read() as session:
        link = session.scalars(select(m.MailLink).where(col(m.MailLink.message_id) == message_id)).first()
        assert link is not None and link.record_type == "contact"
        contact = session.get_one(m.Contact, link.record_id).name
    await pilot.press("n")
    await wait_for(lambda: isinstance(app.screen, PromptDialog), pilot)
    assert isinstance(app.screen, PromptDialog) and app.screen._title == f"Comment on contact “{contact}”"
    await pilot.press("escape")
    await wait_for(lambda: app.screen is screen, pilot)

    # The board: > from Won to Lost asks why the deal, by its title, was lost.
    await pilot.press("3")
    await wait_for(lambda: isinstance(app.screen, OpportunitiesScreen), pilot)
    board: Any = app.screen
    await wait_for(lambda: board.columns and board.selected_deal() is not None, pilot)
    won = next(i for i, c in enumerate(board.columns) if c.kind == "won")
    for _ in range(10):
        if board.selected_column() is board.columns[won]:
            break
        await pilot.press("l" if board._active_column < won else "h")
        await settle(pilot)
    await wait_for(lambda: board.selected_column() is board.columns[won] and board.selected_deal(), pilot)
    with app.context.database().read() as session:
        title = session.get_one(m.Opportunity, board.selected_deal()).title
    await pilot.press("greater_than_sign")
    await wait_for(lambda: isinstance(app.screen, PromptDialog), pilot)
    assert isinstance(app.screen, PromptDialog) and app.screen._title == f"Why was deal “{title}” lost?"


async def test_counts_agree_with_their_number_and_collapsed_threads_count_conversations(
    app: CrmApp, pilot: Any
) -> None:
    screen, table = await open_inbox(app, pilot)
    await pilot.press("slash", *"from:werner", "enter")
    await wait_for(lambda: table.row_count == 1, pilot)
    await wait_for(lambda: "1 message matching 'from:werner'" in status(app), pilot)
    await pilot.press("s")
    await wait_for(lambda: isinstance(app.screen, FolderPicker), pilot)
    assert isinstance(app.screen, FolderPicker) and app.screen._title == "Move 1 message to"
    await pilot.press("escape")
    await wait_for(lambda: app.screen is screen, pilot)
    await pilot.press("escape")  # the search cleared: all mail
    await wait_for(lambda: table.row_count > 1 and not table._loading, pilot)
    messages = table.row_count
    await wait_for(lambda: f"All mail: {messages} messages" in status(app), pilot)
    await pilot.press("V")
    await wait_for(lambda: 1 < table.row_count < messages, pilot)
    await wait_for(lambda: f"All mail: {table.row_count} conversations" in status(app), pilot)
    assert "messages" not in status(app).split("·")[0]


async def test_a_collapsed_thread_shows_a_persons_mail_and_the_whole_threads_size(
    app: CrmApp, pilot: Any
) -> None:
    """V: a thread's row is its newest mail a person wrote (an out-of-office reply after my answer does not
    stand for the conversation), and "(N)" counts the whole thread, in "Awaiting my reply" too."""
    with app.context.database().read() as session:
        mails = session.execute(
            select(col(m.MailMessage.id), col(m.MailMessage.thread_id), col(m.MailMessage.is_automatic))
        ).all()
    threads: dict[int, list[Any]] = {}
    for row in mails:
        threads.setdefault(row.thread_id, []).append(row)
    ended_by_a_robot = [t for t, rows in threads.items() if max(rows, key=lambda r: r.id).is_automatic]
    assert ended_by_a_robot, "the demo has a thread whose newest mail is an out-of-office reply"

    def stands_for(thread: list[Any]) -> int:
        people = [row.id for row in thread if not row.is_automatic]
        return int(max(people or [row.id for row in thread]))

    screen, table = await open_inbox(app, pilot)
    await pilot.press("V")
    await wait_for(lambda: screen.collapsed and table.row_count == len(threads) and not table._loading, pilot)
    thread_of = {row.id: row.thread_id for row in mails}
    shown = {int(row.key): row.cells[3] for row in table.loaded_rows}
    assert set(shown) == {stands_for(rows) for rows in threads.values()}
    for message_id, subject in shown.items():
        size = len(threads[thread_of[message_id]])
        assert subject.startswith(f"({size}) ") == (size > 1), subject

    await choose(app, pilot, screen, "awa", ("view", "awaiting"))
    rows = {int(row.key): row.cells[3] for row in table.loaded_rows}
    assert rows
    assert any(len(threads[thread_of[i]]) > 1 for i in rows)
    for message_id, subject in rows.items():
        size = len(threads[thread_of[message_id]])
        assert subject.startswith(f"({size}) ") == (size > 1), subject


async def test_the_status_bar_shows_the_whole_last_message(app: RecordingApp, pilot: Any) -> None:
    """u takes back a queued mail: the notification says to whom, and the status bar's line ("mail taken back: a
    draft again (R in the inbox)") is read whole on its row after the list's reload, beside the modes."""
    from crm_tui.ui.screens.compose import TAKEN_BACK, ComposeScreen
    from crm_tui.ui.screens.template_picker import TemplatePicker
    from tests.ui.test_small_fixes import screen_rows

    screen, table = await open_inbox(app, pilot)
    await choose(app, pilot, screen, "open deals", ("view", "deals"))
    queued = getattr(newest(app, m.OutboxItem), "id", None)
    await pilot.press("T")
    await wait_for(lambda: isinstance(app.screen, TemplatePicker), pilot)
    await pilot.press("enter")
    await wait_for(lambda: isinstance(app.screen, ComposeScreen), pilot)
    await settle(pilot)
    await pilot.press("ctrl+s")
    await wait_for(
        lambda: app.screen is screen and getattr(newest(app, m.OutboxItem), "id", None) != queued, pilot
    )
    await pilot.press("u")
    await wait_for(lambda: "is a draft again" in " ".join(text for _, text in app.shown), pilot)
    await wait_for(lambda: "messages" in status(app) and TAKEN_BACK in status(app), pilot)
    await wait_for(lambda: TAKEN_BACK in screen_rows(app)[-2], pilot)  # drawn
    bar_row = screen_rows(app)[-2]
    assert TAKEN_BACK in bar_row, bar_row
    assert "1 Inbox" in bar_row

    # A message wider than the whole bar: cut there, and shown whole as a notification.
    long = "taken back: " + "the mail to a very long list of recipients, " * 5
    screen.say(long)
    await wait_for(lambda: long.strip() in [text.strip() for _, text in app.shown], pilot)


async def test_esc_closes_the_recipient_completion_before_it_leaves_the_mail(app: CrmApp, pilot: Any) -> None:
    from textual.widgets import Input, Static

    from crm_tui.ui.screens.compose import ComposeScreen
    from crm_tui.ui.screens.dialogs import ChoiceDialog

    screen, _table = await open_inbox(app, pilot)
    await pilot.press("m")
    await wait_for(lambda: isinstance(app.screen, ComposeScreen), pilot)
    compose = app.screen
    to, hint = compose.query_one("#c-to", Input), compose.query_one("#c-to-hint", Static)
    await pilot.press(*"Lea Sch")
    await wait_for(lambda: "Lea Scholz" in str(hint.render()) and hint.display, pilot)
    await pilot.press("escape")
    await wait_for(lambda: "hidden" in hint.classes or not str(hint.render()).strip(), pilot)
    assert await settle(pilot), "whatever Esc started is over"
    assert app.screen is compose, "Esc closed the completion list, not the mail"
    assert to.value == "Lea Sch" and app.focused is to, "what was typed stays"
    # The list closed: Esc now asks whether to leave the mail (it was changed).
    await pilot.press("escape")
    await wait_for(lambda: isinstance(app.screen, ChoiceDialog), pilot)
    assert isinstance(app.screen, ChoiceDialog) and app.screen._title == "Leave this mail?"


async def test_a_search_of_999_words_says_how_many_it_takes(app: CrmApp, pilot: Any) -> None:
    """999 words (pasted) made the mail search fail on SQLite ("Expression tree is too large"): the list matches
    nothing and the status bar says how many words a search takes. A record list takes the first 8 and says so."""
    from textual.widgets import Input

    screen, table = await open_inbox(app, pilot)
    await pilot.press("slash")
    search = screen.query_one("#search", Input)
    await wait_for(lambda: search.has_focus, pilot)
    search.value = " ".join(f"wort{i}" for i in range(999))
    await pilot.press("enter")
    await wait_for(
        lambda: "search: a search takes at most 32 words (this one has 999): leave some out" in status(app),
        pilot,
    )
    await wait_for(lambda: table.row_count == 0 and not table._loading, pilot)
    assert not [n for n in app._notifications if n.severity == "error"], "no error was notified"
    await pilot.press("slash")
    search.value = "angebot"
    await pilot.press("enter")
    await wait_for(lambda: table.row_count > 0 and "matching 'angebot'" in status(app), pilot)
    # A record list searches the first 8 words (every word narrows it) and says it left the others out.
    await pilot.press("escape", "2")
    await wait_for(lambda: app.screen is not screen and app.screen.query(PagedTable), pilot)
    contacts = app.screen.query_one(PagedTable)
    await pilot.press("slash")
    search = app.screen.query_one("#search", Input)
    await wait_for(lambda: search.has_focus, pilot)
    search.value = " ".join(["berg"] * 8 + ["zzzz"] * 991)
    await pilot.press("enter")
    await wait_for(
        lambda: "matching the first 8 words of the search (the other 991 left out)" in status(app), pilot
    )
    await wait_for(lambda: contacts.row_count > 0 and not contacts._loading, pilot)
