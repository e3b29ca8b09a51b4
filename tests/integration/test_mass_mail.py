"""Mass mail against the test SMTP server: one message per recipient, skipped ones listed with the reason,
stopped and resumed without anyone getting it twice."""

from __future__ import annotations

import email
import email.policy
from datetime import date

from crm_tui.core.clock import FixedClock
from crm_tui.core.services import email_templates, mail_accounts, mass_mail
from crm_tui.core.types import RecordRef, RecordType
from crm_tui.mail import mass_mail as runner
from tests.conftest import NOW
from tests.integration.conftest import Mailbox
from tests.integration.smtp import SmtpServer
from tests.utils import factories
from tests.utils.ids import id_of


def test_a_mass_mail_stopped_and_resumed_reaches_everyone_once(mailbox: Mailbox, smtp: SmtpServer) -> None:  # noqa: F811
    db = mailbox.database()
    with db.write() as session:
        template = email_templates.create_template(
            session,
            email_templates.TemplateInput(
                "Einladung", "Tag der offenen Tür", "Hallo {{ contact.first_name }},\nkommen Sie vorbei!\n"
            ),
            now=NOW,
        )
        people = [
            factories.contact(session, NOW, "Ahrens", first_name="Anna", emails=["anna@a.example"]),
            factories.contact(session, NOW, "Brandt", first_name="Ben", emails=["ben@b.example"]),
            factories.contact(session, NOW, "Claus", first_name="Cleo", emails=["cleo@c.example"]),
            factories.contact(
                session, NOW, "Dorn", first_name="Dana", emails=["dana@d.example"], mail_opt_out=True
            ),
            factories.contact(session, NOW, "Ebert", first_name="", emails=["e@e.example"]),
            factories.contact(session, NOW, "Fuchs", first_name="Finn"),
        ]
        account = mail_accounts.get_account(session, "work")
        campaign = mass_mail.create_campaign(
            session,
            template_id=id_of(template),
            account_id=id_of(account),
            from_name="Anna Berg",
            from_address="anna@crm.example",
            refs=[RecordRef(RecordType.CONTACT, id_of(p)) for p in people],
            per_minute=6000,
            now=NOW,
            me_id=None,
            today=date(2026, 11, 22),
        )
        campaign_id = id_of(campaign)
    with db.read() as session:
        listed = mass_mail.skipped(session, campaign_id)
    assert [(label, reason) for label, _, reason in listed] == [
        ("Dana Dorn", "opted out of mass mail"),
        ("Ebert", "the template uses contact.first_name, which is empty for Ebert"),
        ("Finn Fuchs", "no e-mail address"),
    ]

    def stop_after_two(progress: mass_mail.Progress) -> None:
        if progress.queued == 2:
            with db.write() as session:
                mass_mail.set_state(session, campaign_id, "stopped")

    clock = FixedClock(NOW)
    first = runner.run(
        db,
        campaign_id,
        clock=clock,
        me_id=None,
        today=date(2026, 11, 22),
        sleep=lambda s: None,
        on_progress=stop_after_two,
    )
    assert (first.state, first.queued, first.pending) == ("stopped", 2, 1)
    assert len(smtp.received) == 2
    second = runner.run(
        db, campaign_id, clock=clock, me_id=None, today=date(2026, 11, 22), sleep=lambda s: None
    )
    assert (second.state, second.queued, second.pending, second.skipped) == ("done", 3, 0, 3)
    third = runner.run(
        db, campaign_id, clock=clock, me_id=None, today=date(2026, 11, 22), sleep=lambda s: None
    )
    assert third.queued == 3
    recipients = sorted(r for _, rcpts, _ in smtp.received for r in rcpts)
    assert recipients == ["anna@a.example", "ben@b.example", "cleo@c.example"], "each once, nobody else"
    bodies = {
        rcpts[0]: email.message_from_bytes(raw, policy=email.policy.default).get_content()
        for _, rcpts, raw in smtp.received
    }
    assert bodies["ben@b.example"].startswith("Hallo Ben,")
    db.dispose()


async def test_mass_mail_from_the_contacts_list_search_with_progress(
    mailbox: Mailbox, smtp: SmtpServer
) -> None:  # noqa: F811

    from textual.widgets import ProgressBar

    from crm_tui.ui.app import CrmApp
    from crm_tui.ui.screens.mass_mail import MassMailScreen
    from crm_tui.ui.screens.template_picker import TemplatePicker
    from crm_tui.ui.widgets.paged_table import PagedTable
    from tests.ui.helpers import make_context, wait_for

    db = mailbox.database()
    with db.write() as session:
        email_templates.create_template(
            session,
            email_templates.TemplateInput("Messe", "Messe 2027", "Hallo {{ contact.first_name }}!\n"),
            now=NOW,
        )
        for first, last in (("Anna", "Solar"), ("Ben", "Solar"), ("Cleo", "Wind")):
            factories.contact(
                session, NOW, last, first_name=first, emails=[f"{first.lower()}@{last.lower()}.example"]
            )
        factories.contact(
            session, NOW, "Solar", first_name="Dana", emails=["dana@solar.example"], mail_opt_out=True
        )
    db.dispose()

    from crm_tui.runtime.paths import resolve_paths

    config = resolve_paths(mailbox.home).config_file
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("mass_mail_per_minute = 600\n")

    app = CrmApp(make_context(mailbox.home, demo=False), start_mode="contacts", sync_mail=False)
    async with app.run_test(size=(160, 48)) as pilot:
        table = app.screen.query_one(PagedTable)
        await wait_for(lambda: table.row_count == 4, pilot)
        await pilot.press("slash", *"solar", "enter")
        await wait_for(lambda: table.row_count == 3, pilot)
        await pilot.press("M")
        await wait_for(lambda: isinstance(app.screen, TemplatePicker), pilot)
        await pilot.press(*"messe", "enter")  # type-ahead
        await wait_for(lambda: isinstance(app.screen, MassMailScreen), pilot)
        screen = app.screen
        shown = str(screen.query_one("#mass-skipped-text").render())
        assert "Dana Solar" in shown
        # Before anything is queued: who gets it and the first mails as they will go out.
        assert "Recipients (2)" in shown and "Hallo Anna!" in shown and "Hallo Ben!" in shown
        assert not smtp.received
        assert "600/min" in str(screen.query_one("#mass-title").render()), "the pace from the settings"
        await pilot.press("g")
        await wait_for(lambda: "done" in str(screen.query_one("#mass-counts").render()), pilot, timeout=30)
        bar = screen.query_one(ProgressBar)
        assert bar.progress == bar.total == 3
    assert sorted(r for _, rcpts, _ in smtp.received for r in rcpts) == [
        "anna@solar.example",
        "ben@solar.example",
    ]
