"""Mail templates: merge fields from the records a mail is about, an error naming any field they cannot fill,
a sandbox, syntax checked on save, the shipped defaults."""

from __future__ import annotations

from datetime import date

import pytest

from crm_tui.core import models as m
from crm_tui.core.db import Database
from crm_tui.core.errors import ValidationError
from crm_tui.core.services import email_templates
from crm_tui.core.services.email_templates import TemplateFieldError, TemplateInput
from crm_tui.core.types import RecordRef, RecordType
from tests.conftest import NOW
from tests.utils import factories


def test_fields_come_from_the_deal_its_contact_and_organization(db: Database) -> None:
    with db.write() as session:
        me = factories.user(session, NOW, "Anna Berg")
        org = factories.organization(session, NOW, "Nordwind GmbH")
        person = factories.contact(
            session, NOW, "Lang", first_name="Lisa", emails=["lisa@nordwind.example"], organization_id=org.id
        )
        pipe = factories.pipeline(session, "Sales")
        deal = factories.deal(
            session, NOW, pipe, title="Solardach", organization_id=org.id, contact_ids=[person.id],
            primary_contact_id=person.id, amount_cents=1_250_000,
        )  # fmt: skip
        context = email_templates.merge_context(
            session,
            [RecordRef(RecordType.OPPORTUNITY, deal.id)],
            me_id=me.id,
            today=date(2026, 11, 22),  # type: ignore[arg-type]
        )
        subject, body = email_templates.render(
            (
                "Zu {{ deal.title }} ({{ opportunity.amount }})",
                "Hallo {{ contact.first_name }} von {{ organization.name }},\n{{ me.name }}, {{ today }}\n",
            ),
            context,
        )
    assert subject == "Zu Solardach (12,500.00 EUR)"
    assert body == "Hallo Lisa von Nordwind GmbH,\nAnna Berg, 22.11.2026\n"
    with pytest.raises(TemplateFieldError, match=r"contact\.phone, which is empty for Lisa Lang"):
        email_templates.render(("x", "{{ contact.phone }}"), context)
    with pytest.raises(TemplateFieldError, match=r"quote\.number, but this mail has no quote"):
        email_templates.render(("{{ quote.number }}", ""), context)
    with pytest.raises(TemplateFieldError, match=r"contact\.shoe_size, which is not a field"):
        email_templates.render(("x", "{{ contact.shoe_size }}"), context)
    with pytest.raises(TemplateFieldError):
        email_templates.render(("x", "{{ ''.__class__.__mro__ }}"), context)  # the sandbox
    with pytest.raises(TemplateFieldError, match="customer"):
        email_templates.render(("x", "{{ customer.name }}"), context)


def test_templates_are_checked_on_save_and_the_defaults_ship(db: Database) -> None:
    with db.write() as session:
        names = [t.name for t in email_templates.list_templates(session)]
        assert names == ["Angebot nachfassen", "Danke für Ihre Anfrage", "Termin bestätigen"]
        with pytest.raises(ValidationError) as broken:
            email_templates.create_template(
                session, TemplateInput("Kaputt", "Hallo {{ contact.name", "x"), now=NOW
            )
        assert "subject" in broken.value.errors
        with pytest.raises(ValidationError) as clash:
            email_templates.create_template(session, TemplateInput("Angebot nachfassen", "s", "b"), now=NOW)
        assert "exists" in clash.value.errors["name"]
        made = email_templates.create_template(session, TemplateInput("Neu", "Betreff", "Text"), now=NOW)
        email_templates.delete_template(session, made.id)  # type: ignore[arg-type]
        assert session.get(m.EmailTemplate, made.id) is None
