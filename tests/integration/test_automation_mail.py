"""Rule mails reach a real SMTP server (aiosmtpd on 127.0.0.1): a templated reminder four days after a
sub-state opened, and a PDF report mailed to the owner, both through the outbox, from the owner's account."""

from __future__ import annotations

import email
import email.policy
import io
from datetime import timedelta

from pypdf import PdfReader

from crm_tui.cli.main import main
from crm_tui.core.automation import rules
from crm_tui.core.services import email_templates, opportunities, pipelines, users
from tests.conftest import NOW
from tests.integration.conftest import Mailbox
from tests.integration.smtp import SmtpServer
from tests.utils import factories
from tests.utils.ids import id_of


def test_rule_mails_arrive_once_with_their_merge_fields_and_report(
    mailbox: Mailbox,
    smtp: SmtpServer,  # noqa: F811 - the fixture imported above
) -> None:
    db = mailbox.database()
    with db.write() as s:
        anna = users.current_user(s, None)
        assert anna is not None
        pipe = factories.pipeline(s, "Sales")
        _, proposal, won, _ = pipelines.stages_of(s, id_of(pipe))
        docs = pipelines.add_substate(s, id_of(proposal), "Documents pending")
        email_templates.create_template(s, email_templates.TemplateInput(
            name="Docs", subject="Unterlagen für {{ deal.title }}",
            body="Hallo {{ contact.first_name }},\nbitte schicken Sie die Unterlagen.\n"), now=NOW)  # fmt: skip
        R = rules.RuleInput
        rules.create_rule(s, R("reminder", "send_email", scope="substate", substate_id=docs.id, trigger="enter",
                               delay_value=4, delay_unit="days", params={"template": "Docs", "to": "primary_contact"}),
                          now=NOW)  # fmt: skip
        rules.create_rule(s, R("summary", "report", stage_id=won.id, trigger="enter",
                               params={"template": "deal-summary", "email_to": "owner"}), now=NOW)  # fmt: skip
        person = factories.contact(s, NOW, "Roth", first_name="Jana", emails=["jana.roth@neu-solar.example"])
        deal = factories.deal(s, NOW, pipe, title="Dach Roth", contact_ids=[person.id], owner_id=anna.id,
                              amount_cents=1_250_000)  # fmt: skip
        opportunities.move_to_stage(s, id_of(deal), id_of(proposal), now=NOW, user_id=None)
        opportunities.set_substate(s, id_of(deal), id_of(docs), True, now=NOW, user_id=None)
        opportunities.move_to_stage(s, id_of(deal), id_of(won), now=NOW, user_id=None)
    db.dispose()

    def run_at(days: int, *command: str) -> int:
        return main(
            ["--home", str(mailbox.home), "--now", (NOW + timedelta(days=days)).isoformat(), *command]
        )

    # Won: the report fires; the reminder was cancelled by leaving Proposal (sub-states end with their stage).
    assert run_at(0, "automations", "run") == 0
    assert run_at(0, "outbox", "flush") == 0
    [(sender, recipients, raw)] = smtp.received
    assert sender == "anna@crm.example" and recipients == ["anna@crm.example"]
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["Subject"] == "Deal summary: Dach Roth"
    [pdf_part] = [p for p in message.iter_attachments()]
    assert pdf_part.get_content_type() == "application/pdf"
    text = PdfReader(io.BytesIO(pdf_part.get_content())).pages[0].extract_text()
    assert "Dach Roth" in text and "12,500.00 EUR" in text and "Jana Roth" in text

    # A second deal stays in Proposal with documents pending: four days later the reminder goes, once.
    db = mailbox.database()
    with db.write() as s:
        pipe_id = s.get_one(type(proposal), id_of(proposal)).pipeline_id
        deal2 = factories.deal(
            s, NOW, s.get_one(type(pipe), pipe_id), title="Carport Roth", contact_ids=[person.id]
        )
        opportunities.move_to_stage(s, id_of(deal2), id_of(proposal), now=NOW, user_id=None)
        opportunities.set_substate(s, id_of(deal2), id_of(docs), True, now=NOW, user_id=None)
    db.dispose()
    assert run_at(3, "automations", "run") == 0
    assert run_at(3, "outbox", "flush") == 0
    assert len(smtp.received) == 1  # not yet
    for _ in range(2):
        assert run_at(5, "automations", "run") == 0
        assert run_at(5, "outbox", "flush") == 0
    assert len(smtp.received) == 2
    _, recipients, raw = smtp.received[1]
    reminder = email.message_from_bytes(raw, policy=email.policy.default)
    assert recipients == ["jana.roth@neu-solar.example"]
    assert reminder["Subject"] == "Unterlagen für Carport Roth"
    assert reminder.get_content().replace("\r\n", "\n") == "Hallo Jana,\nbitte schicken Sie die Unterlagen.\n"
