"""The opportunity (deal) form: fields, the text a deal is shown with, the save through the service."""

from __future__ import annotations

import re
from typing import Any

from crm_tui.core.errors import ValidationError
from crm_tui.core.form_text import ref_text
from crm_tui.core.money import format_amount
from crm_tui.core.services import opportunities, pipelines
from crm_tui.core.services.references import resolve_reference
from crm_tui.runtime.context import AppContext
from crm_tui.ui.forms.converter import (
    Converter,
    custom_field_specs,
    custom_values_text,
    owner_text,
    user_choices,
)
from crm_tui.ui.forms.edits import OpenedAs, checks_edits, save_record
from crm_tui.ui.forms.references import suggester
from crm_tui.ui.screens.record_form import FieldSpec, FormSpec, saved_id


def opportunity_values(deal: opportunities.OpportunityRecord) -> dict[str, str]:
    """The deal as its form's fields hold it."""
    primary = deal.primary_contact_id
    names = dict(deal.contacts)
    others = [cid for cid, _ in deal.contacts if cid != primary]
    return {
        "title": deal.title,
        "stage_id": str(deal.stage_id),
        "amount": format_amount(deal.amount_cents),
        "currency": deal.currency,
        "expected_close": deal.expected_close.isoformat() if deal.expected_close else "",
        "owner_id": owner_text(deal.owner_id),
        "lost_reason": deal.lost_reason or "",
        "description": deal.description or "",
        "organization_id": ref_text(deal.organization_name, "organization", deal.organization_id),
        "installer_id": ref_text(deal.installer_name, "organization", deal.installer_id),
        "reseller_id": ref_text(deal.reseller_name, "organization", deal.reseller_id),
        "primary_contact_id": ref_text(names.get(primary) if primary else None, "contact", primary),
        "contact_ids": ", ".join(ref_text(names.get(cid), "contact", cid) for cid in others),
    } | custom_values_text(deal.custom)


def opportunity_form(context: AppContext, record_id: int | None, prefill: dict[str, str]) -> FormSpec:
    with context.database().read() as session:
        stage_choices = [(str(stage_id), label) for stage_id, label in pipelines.stage_choices(session)]
        values = {"currency": "EUR"} | dict(prefill)
        record = None
        if record_id is not None:
            record = opportunities.opportunity_record(session, record_id)
            if record is None:
                raise ValidationError.single("opportunity", f"opportunity:{record_id} does not exist")
            values |= opportunity_values(record)
        else:
            values.setdefault("owner_id", str(context.me_id() or ""))
            if "stage_id" not in values and stage_choices:
                values["stage_id"] = str(pipelines.first_open_stage_id(session))
        fields = [
            FieldSpec("title", "Title", required=True),
            FieldSpec("stage_id", "Pipeline › stage", "choice", stage_choices, required=True),
            FieldSpec("amount", "Amount", "money"),
            FieldSpec("currency", "Currency"),
            FieldSpec("expected_close", "Expected close", "date"),
            FieldSpec("organization_id", "Customer", "ref", ref_type="organization"),
            FieldSpec("primary_contact_id", "Primary contact", "ref", ref_type="contact"),
            FieldSpec("contact_ids", "Other contacts", "list", placeholder="Name [contact:ID], ..."),
            FieldSpec("owner_id", "Owner", "choice", user_choices(session)),
            FieldSpec("installer_id", "Installer partner", "ref", ref_type="organization"),
            FieldSpec("reseller_id", "Reseller partner", "ref", ref_type="organization"),
            FieldSpec("lost_reason", "Lost reason"),
            FieldSpec("description", "Description", "textarea"),
            *custom_field_specs(session, "opportunity"),
        ]
    opened = OpenedAs(record)

    def save(v: dict[str, str]) -> int:
        def work(session: Any, c: Converter) -> int:
            stage_id = int(v["stage_id"]) if v.get("stage_id") else None
            pipeline_id = pipelines.pipeline_of_stage(session, stage_id) if stage_id is not None else None
            if pipeline_id is None:
                c.errors.add("stage_id", "is required")
            others = []
            for item in re.split(r",(?![^\[]*\])", v.get("contact_ids", "")):
                if item.strip():
                    try:
                        others.append(resolve_reference(session, "contact", item.strip()))
                    except ValueError as exc:
                        c.errors.add("contact_ids", str(exc))
            primary = c.ref(v, "primary_contact_id", "contact")
            data = opportunities.OpportunityInput(
                title=v.get("title", ""),
                pipeline_id=pipeline_id or 0,
                stage_id=stage_id if pipeline_id is not None else None,
                amount_cents=c.money(v, "amount"),
                currency=(v.get("currency") or "EUR").strip(),
                expected_close=c.date(v, "expected_close"),
                owner_id=c.owner(v),
                organization_id=c.ref(v, "organization_id", "organization"),
                installer_id=c.ref(v, "installer_id", "organization"),
                reseller_id=c.ref(v, "reseller_id", "organization"),
                contact_ids=([primary] if primary else []) + others,
                primary_contact_id=primary,
                lost_reason=c.text(v, "lost_reason"),
                description=c.text(v, "description"),
                custom=c.custom(v),
            )
            c.raise_if_any()
            now, me = context.clock.now(), context.me_id()
            if record_id is None:
                return saved_id(opportunities.create_opportunity(session, data, now=now, user_id=me).id)
            opportunities.update_opportunity(
                session, record_id, data, now=now, user_id=me, expected=opened.record
            )
            return record_id

        return save_record(context, work)

    spec = FormSpec(
        "Edit opportunity" if record_id else "New opportunity",
        fields,
        values,
        save,
        suggest=suggester(context),
    )
    return checks_edits(spec, opened, opportunity_values)
