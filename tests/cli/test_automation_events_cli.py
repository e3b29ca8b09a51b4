"""Record events as triggers, headless: `automations list` says a rule waits for "a quote is accepted" (and
names the event in JSON); once a quote is accepted, `pending` shows its one action and `run` fires it once."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crm_tui.cli.main import main
from crm_tui.core.automation import rules
from crm_tui.core.db import open_database, sqlite_url
from crm_tui.core.services import sales_documents
from tests.utils import factories
from tests.utils.ids import id_of

AT = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


def test_an_event_rule_listed_pending_and_fired_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = open_database(sqlite_url(tmp_path / "data" / "crm.sqlite3"))
    with db.write() as s:
        factories.user(s, AT, "Anna Berg")
        pipe = factories.pipeline(s, "Sales")
        rules.create_rule(s, rules.RuleInput("Order call", "plan_activity", scope="record", trigger="event",
                                             record_event="quote_accepted", params={"subject": "Order"}), now=AT)  # fmt: skip
        person = factories.contact(s, AT, "Kunde", emails=["kunde@example.com"])
        deal = id_of(factories.deal(s, AT, pipe, title="Roof", contact_ids=[person.id]))
        data = sales_documents.QuoteInput(deal, [sales_documents.QuoteItemInput("Panels")], status="accepted")
        sales_documents.create_quote(s, data, now=AT)
    db.dispose()
    base = ["--home", str(tmp_path)]
    assert main([*base, "automations", "list"]) == 0
    assert "when a quote is accepted" in capsys.readouterr().out
    assert main([*base, "automations", "list", "--json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert (listed["when"], listed["event"], listed["pending"]) == (
        "when a quote is accepted",
        "quote_accepted",
        1,
    )
    assert main([*base, "automations", "pending", "--json"]) == 0
    [pending] = json.loads(capsys.readouterr().out)
    assert pending["record"] == f"opportunity:{deal} Roof" and pending["event"].endswith(" accepted")
    assert main([*base, "automations", "run", "--now", "2026-06-01T10:00:00+00:00"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("1 fired, 0 failed")
    assert main([*base, "automations", "run", "--now", "2026-06-01T11:00:00+00:00"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("0 fired")
