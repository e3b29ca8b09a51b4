"""Loading a record's detail pane data (plain, for a worker to post back)."""

from __future__ import annotations

from crm_tui.core.services.overview import related, timeline
from crm_tui.core.services.record_facts import record_facts
from crm_tui.core.types import RecordRef
from crm_tui.runtime.context import AppContext
from crm_tui.ui.widgets.record_detail import DetailData


def load_detail(context: AppContext, ref: RecordRef) -> DetailData:
    with context.database().read() as session:
        facts = record_facts(session, ref)
        return DetailData(
            str(ref), facts.title, list(facts.facts), related(session, ref), timeline(session, ref)
        )
