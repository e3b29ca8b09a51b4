"""Writing and taking back (issue 21): u takes back the mail just queued wherever it was written (a contact's
m, the inbox), the newest step first; a mail without a subject asks before it goes; the template picker is
filled in a thread (a slow template leaves the app usable, a note says it is under way). On the demo."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlmodel import col
from textual.widgets import Input, TextArea

from crm_tui.core import models as m
from crm_tui.ui.app import CrmApp
from crm_tui.ui.screens.compose import ComposeScreen
from crm_tui.ui.screens.contacts import ContactsScreen
from crm_tui.ui.screens.dialogs import ChoiceDialog, ConfirmDialog
from crm_tui.ui.widgets.paged_table import PagedTable
from tests.ui.helpers import open_inbox, wait_for


def count(app: CrmApp, query: Any) -> int:
    with app.context.database().read() as session:
        return int(session.scalar(query) or 0)


QUEUED = select(func.count()).select_from(m.OutboxItem).where(col(m.OutboxItem.state) == "queued")
DRAFTS = select(func.count()).select_from(m.MailDraft)


def said(app: CrmApp) -> str:
    return " | ".join(str(n.message) for n in app._notifications)


async def compose_from_contact(app: CrmApp, pilot: Any) -> tuple[ContactsScreen, ComposeScreen]:
    """2 (contacts), m on the first contact (its first address if it asks): returns (the contacts list, the
    compose screen)."""
    await pilot.press("2")
    await wait_for(lambda: isinstance(app.screen, ContactsScreen), pilot)
    contacts = app.screen
    assert isinstance(contacts, ContactsScreen)
    table = contacts.query_one(PagedTable)
    await wait_for(lambda: table.row_count > 0, pilot)
    table.focus()
    await pilot.press("m")
    await wait_for(lambda: isinstance(app.screen, (ComposeScreen, ChoiceDialog)), pilot)
    if isinstance(app.screen, ChoiceDialog):
        await pilot.press("enter")
        await wait_for(lambda: isinstance(app.screen, ComposeScreen), pilot)
    compose = app.screen
    assert isinstance(compose, ComposeScreen)
    return contacts, compose


async def write_from_contact(app: CrmApp, pilot: Any, subject: str) -> ContactsScreen:
    """2 (contacts), m on the first contact, a subject and a line, ctrl+s: back on the contacts list."""
    contacts, compose = await compose_from_contact(app, pilot)
    compose.query_one("#c-subject", Input).value = subject
    compose.query_one("#c-body", TextArea).text = "Guten Tag"
    await pilot.press("ctrl+s")
    await wait_for(lambda: app.screen is contacts, pilot)
    return contacts


async def test_u_takes_back_a_mail_written_from_a_contact_there_and_in_the_inbox(
    app: CrmApp, pilot: Any
) -> None:
    queued, drafts = count(app, QUEUED), count(app, DRAFTS)
    await write_from_contact(app, pilot, "Rückruf")
    assert count(app, QUEUED) == queued + 1
    assert "u takes it back" in said(app)
    await pilot.press("u")  # on the contacts list, where the mail was written
    await wait_for(lambda: count(app, QUEUED) == queued and count(app, DRAFTS) == drafts + 1, pilot)
    assert "is a draft again" in said(app)

    # In the inbox, after a triage step there: the mail written later (from a contact) is taken back first.
    screen, table = await open_inbox(app, pilot)
    read_before = count(
        app, select(func.count()).select_from(m.MailMessage).where(col(m.MailMessage.is_read))
    )
    await pilot.press("N")  # read/unread: a step u undoes
    await wait_for(
        lambda: (
            count(app, select(func.count()).select_from(m.MailMessage).where(col(m.MailMessage.is_read)))
            != read_before
        ),
        pilot,
    )
    await write_from_contact(app, pilot, "Angebot")
    assert count(app, QUEUED) == queued + 1
    await pilot.press("1")
    await wait_for(lambda: app.screen is screen, pilot)
    await pilot.press("u")
    await wait_for(lambda: count(app, QUEUED) == queued and count(app, DRAFTS) == drafts + 2, pilot)
    await pilot.press("u")  # then the triage step
    await wait_for(
        lambda: (
            count(app, select(func.count()).select_from(m.MailMessage).where(col(m.MailMessage.is_read)))
            == read_before
        ),
        pilot,
    )


async def test_a_mail_without_a_subject_asks_before_it_is_queued(app: CrmApp, pilot: Any) -> None:
    queued = count(app, QUEUED)
    _, compose = await compose_from_contact(app, pilot)
    compose.query_one("#c-body", TextArea).text = "Kurz: passt Dienstag?"
    await pilot.press("ctrl+s")
    await wait_for(lambda: isinstance(app.screen, ConfirmDialog), pilot)
    assert isinstance(app.screen, ConfirmDialog) and "Send without a subject?" in app.screen._title
    await pilot.press("n")  # back to write one: nothing queued, the subject field has the cursor
    await wait_for(lambda: app.screen is compose, pilot)
    assert count(app, QUEUED) == queued
    assert compose.focused is compose.query_one("#c-subject", Input)
    await pilot.press("ctrl+s")
    await wait_for(lambda: isinstance(app.screen, ConfirmDialog), pilot)
    await pilot.press("y")  # sent as it is
    await wait_for(lambda: count(app, QUEUED) == queued + 1 and isinstance(app.screen, ContactsScreen), pilot)


async def test_a_slow_template_leaves_the_app_usable_while_the_picker_is_filled(
    app: CrmApp, pilot: Any
) -> None:
    """A template that takes its 2 s to fill: ctrl+t returns at once, a note says the templates are being
    filled, the app answers keys meanwhile, and the picker shows when they are (the slow one says why not)."""
    import time

    from crm_tui.ui.screens.template_picker import TemplatePicker

    with app.context.database().write() as session:
        now = app.context.clock.now()
        session.add(
            m.EmailTemplate(
                name="Langsam",
                subject="Langsam",
                body="{% for a in range(9999) %}{% for b in range(9999) %}{% endfor %}{% endfor %}x",
                created_at=now,
                updated_at=now,
            )
        )
    await compose_from_contact(app, pilot)
    ticks: list[float] = []  # the app's event loop, every 50 ms: a gap is a freeze
    timer = app.set_interval(0.05, lambda: ticks.append(time.monotonic()))
    await pilot.press("ctrl+t")
    await wait_for(lambda: "Filling the templates" in said(app), pilot)  # said while it is filled
    await wait_for(lambda: isinstance(app.screen, TemplatePicker), pilot, timeout=20)
    timer.stop()
    gaps = [later - earlier for earlier, later in zip(ticks, ticks[1:], strict=False)]
    assert max(gaps) < 1.0, f"the app froze for {max(gaps):.1f} s while the templates were filled"
    picker = app.screen
    assert isinstance(picker, TemplatePicker)
    slow = next(fit for fit in picker.fits if fit.name == "Langsam")
    assert not slow.fits


async def test_u_in_the_outbox_takes_back_any_queued_mail_as_the_draft_it_was(
    app: CrmApp, pilot: Any
) -> None:
    """Two mails queued; u in the outbox on the older one (not the one just queued): a draft again with its
    To, Bcc, subject and text; the other stays queued."""
    from textual.widgets import DataTable

    from crm_tui.ui.screens.outbox import OutboxScreen

    queued, drafts = count(app, QUEUED), count(app, DRAFTS)
    _, compose = await compose_from_contact(app, pilot)
    to = compose.query_one("#c-to", Input).value
    compose.query_one("#c-bcc", Input).value = "Chefin <chefin@crm.example>"
    compose.query_one("#c-subject", Input).value = "Ältere Mail"
    compose.query_one("#c-body", TextArea).text = "Erste Zeile\nZweite Zeile"
    await pilot.press("ctrl+s")
    await wait_for(
        lambda: count(app, QUEUED) == queued + 1 and not isinstance(app.screen, ComposeScreen), pilot
    )
    await write_from_contact(app, pilot, "Neuere Mail")
    assert count(app, QUEUED) == queued + 2
    await open_inbox(app, pilot)
    await pilot.press("o")
    await wait_for(lambda: isinstance(app.screen, OutboxScreen), pilot)
    view = app.screen
    grid = view.query_one(DataTable)
    await wait_for(lambda: grid.row_count >= 2, pilot)
    older = next(i for i in range(grid.row_count) if "Ältere Mail" in str(grid.get_row_at(i)[4]))
    grid.move_cursor(row=older)
    await pilot.press("u")
    await wait_for(lambda: count(app, QUEUED) == queued + 1 and count(app, DRAFTS) == drafts + 1, pilot)
    with app.context.database().read() as session:
        draft = session.scalars(select(m.MailDraft).order_by(col(m.MailDraft.id).desc())).first()
        subjects = list(
            session.scalars(select(col(m.OutboxItem.subject)).where(col(m.OutboxItem.state) == "queued"))
        )
    assert draft is not None and draft.subject == "Ältere Mail"
    assert draft.to == to and draft.bcc == "chefin@crm.example"
    assert draft.body.rstrip("\n").startswith("Erste Zeile\nZweite Zeile")
    assert "Neuere Mail" in subjects and "Ältere Mail" not in subjects
    assert "is a draft again" in said(app)


async def test_a_chosen_template_is_filled_in_a_thread(app: CrmApp, pilot: Any, monkeypatch: Any) -> None:
    """Enter on a template that takes long to fill (here its filling is made to take 1.5 s): the app keeps
    answering, a note says it is being filled, and the mail takes the text when it is."""
    import time

    from crm_tui.core.services import email_templates
    from crm_tui.ui.screens.template_picker import TemplatePicker

    real = email_templates.render

    def slow(*args: Any, **kwargs: Any) -> Any:
        time.sleep(1.5)  # a template that takes its time (in the worker's thread)
        return real(*args, **kwargs)

    _, compose = await compose_from_contact(app, pilot)
    body = compose.query_one("#c-body", TextArea)
    before = body.text
    await pilot.press("ctrl+t")
    await wait_for(lambda: isinstance(app.screen, TemplatePicker), pilot, timeout=20)
    monkeypatch.setattr(email_templates, "render", slow)  # the chosen one is slow to fill
    ticks: list[float] = []
    timer = app.set_interval(0.05, lambda: ticks.append(time.monotonic()))
    await pilot.press("enter")
    await wait_for(lambda: "Filling the template…" in said(app), pilot)
    await wait_for(lambda: app.screen is compose and body.text != before, pilot, timeout=20)
    timer.stop()
    gaps = [later - earlier for earlier, later in zip(ticks, ticks[1:], strict=False)]
    assert max(gaps) < 1.0, f"the app froze for {max(gaps):.1f} s while the template was filled"
    assert compose.query_one("#c-subject", Input).value  # a new mail takes the template's subject
