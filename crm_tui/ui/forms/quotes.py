"""The quotes' list rows and form: fields, line items as text (QUANTITY x DESCRIPTION @ UNIT PRICE), the save."""

from __future__ import annotations

import re
from datetime import tzinfo
from typing import Any

from crm_tui.core.errors import ValidationError
from crm_tui.core.form_text import ref_text
from crm_tui.core.money import format_amount, format_money, parse_amount
from crm_tui.core.services import sales_documents
from crm_tui.core.types import QuoteStatus
from crm_tui.runtime.context import AppContext
from crm_tui.ui.forms.converter import Converter
from crm_tui.ui.forms.edits import OpenedAs, checks_edits, save_record
from crm_tui.ui.forms.references import suggester
from crm_tui.ui.screens.record_form import FieldSpec, FormSpec, saved_id
from crm_tui.ui.widgets.paged_table import Row

COLUMNS = [("Number", 14), ("Opportunity", 34), ("Status", 10), ("Total", 18), ("Valid until", 12)]

ITEM_LINE = re.compile(r"^\s*([0-9.,]+)\s*[x×]\s*(.+?)\s*@\s*([0-9.,]+)\s*$")


def quote_rows(session: Any, query: str, offset: int, limit: int, *, zone: tzinfo) -> list[Row]:
    return [
        Row(
            str(q.id),
            (
                q.number,
                q.opportunity_title,
                q.status,
                format_money(q.total_cents, q.currency),
                q.valid_until.isoformat() if q.valid_until else "",
            ),
        )
        for q in sales_documents.quote_rows(session, query, limit=limit, offset=offset)
    ]


def quote_count(session: Any, query: str) -> int:
    return sales_documents.count_quotes(session, query)


def quote_values(quote: sales_documents.QuoteRecord) -> dict[str, str]:
    """The quote as its form's fields hold it: one line per item."""
    lines = [
        f"{format_amount(i.quantity_milli // 10).rstrip('0').rstrip('.')} x {i.description} @ {format_amount(i.unit_price_cents)}"
        for i in quote.items
    ]
    return {
        "number": quote.number,
        "opportunity_id": ref_text(quote.opportunity_title, "opportunity", quote.opportunity_id),
        "status": quote.status,
        "currency": quote.currency,
        "valid_until": quote.valid_until.isoformat() if quote.valid_until else "",
        "items": "\n".join(lines),
    }


def _items(c: Converter, v: dict[str, str]) -> list[sales_documents.QuoteItemInput]:
    items = []
    for number, line in enumerate(v.get("items", "").splitlines(), 1):
        if not line.strip():
            continue
        match = ITEM_LINE.match(line)
        if not match:
            c.errors.add("items", f"line {number}: write QUANTITY x DESCRIPTION @ UNIT PRICE")
            continue
        try:
            price = parse_amount(match.group(3))
        except ValueError as exc:
            c.errors.add("items", f"line {number}: {exc}")
            continue
        items.append(sales_documents.QuoteItemInput(match.group(2), match.group(1).replace(",", "."), price))
    return items


def quote_form(context: AppContext, record_id: int | None, prefill: dict[str, str]) -> FormSpec:
    with context.database().read() as session:
        values = {"status": "draft"} | dict(prefill)
        record = None
        if record_id is not None:
            record = sales_documents.quote_record(session, record_id)
            if record is None:
                raise ValidationError.single("quote", f"quote:{record_id} does not exist")
            values |= quote_values(record)
    fields = [
        FieldSpec("opportunity_id", "Opportunity", "ref", required=True, ref_type="opportunity"),
        FieldSpec("number", "Number", placeholder="next free number"),
        FieldSpec("status", "Status", "choice", [(s.value, s.value) for s in QuoteStatus], required=True),
        FieldSpec("currency", "Currency", placeholder="the deal's currency"),
        FieldSpec("valid_until", "Valid until", "date"),
        FieldSpec("items", "Line items: one per line, QUANTITY x DESCRIPTION @ UNIT PRICE", "textarea"),
    ]
    opened = OpenedAs(record)

    def save(v: dict[str, str]) -> int:
        def work(session: Any, c: Converter) -> int:
            items = _items(c, v)
            deal_id = c.ref(v, "opportunity_id", "opportunity")
            if deal_id is None and "opportunity_id" not in c.errors.errors:
                c.errors.add("opportunity_id", "is required")
            data = sales_documents.QuoteInput(
                opportunity_id=deal_id or 0,
                items=items,
                number=c.text(v, "number"),
                status=v.get("status") or "draft",
                currency=(c.text(v, "currency") or None),
                valid_until=c.date(v, "valid_until"),
            )
            c.raise_if_any()
            now = context.clock.now()
            if record_id is None:
                return saved_id(sales_documents.create_quote(session, data, now=now).id)
            sales_documents.update_quote(session, record_id, data, now=now, expected=opened.record)
            return record_id

        return save_record(context, work)

    spec = FormSpec(
        "Edit quote" if record_id else "New quote", fields, values, save, suggest=suggester(context)
    )
    return checks_edits(spec, opened, quote_values)
