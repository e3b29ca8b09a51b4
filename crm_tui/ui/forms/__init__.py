"""The form of each record kind: its fields, how the record and what was typed convert to each other, and its
save through the kind's service (one module per kind; converter, references and edits are shared)."""

from __future__ import annotations

from collections.abc import Callable

from crm_tui.core.types import RecordType
from crm_tui.runtime.context import AppContext
from crm_tui.ui.forms.activities import activity_form
from crm_tui.ui.forms.contacts import contact_form
from crm_tui.ui.forms.leads import lead_form
from crm_tui.ui.forms.opportunities import opportunity_form
from crm_tui.ui.forms.organizations import organization_form
from crm_tui.ui.forms.quotes import quote_form
from crm_tui.ui.forms.tickets import ticket_form
from crm_tui.ui.screens.record_form import FormSpec

FormBuilder = Callable[[AppContext, int | None, dict[str, str]], FormSpec]

RECORD_FORMS: dict[RecordType, FormBuilder] = {
    RecordType.CONTACT: contact_form,
    RecordType.ORGANIZATION: organization_form,
    RecordType.LEAD: lead_form,
    RecordType.TICKET: ticket_form,
    RecordType.QUOTE: quote_form,
    RecordType.OPPORTUNITY: opportunity_form,
    RecordType.ACTIVITY: activity_form,
}
