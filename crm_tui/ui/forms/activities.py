"""The activity form, with the other activities of the chosen day beside it, and the start of an activity
planned from a record (that record and what it belongs to, filled in)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from rich.text import Text

from crm_tui.core.clock import local_day_bounds
from crm_tui.core.errors import ValidationError
from crm_tui.core.form_text import ref_text
from crm_tui.core.sanitize import terminal_safe
from crm_tui.core.services import activities, attachments
from crm_tui.core.types import ActivityType, RecordRef, RecordType
from crm_tui.core.wording import size_text
from crm_tui.runtime.context import AppContext
from crm_tui.ui.forms.converter import (
    Converter,
    custom_field_specs,
    custom_values_text,
    local_text,
    owner_text,
    user_choices,
)
from crm_tui.ui.forms.edits import OpenedAs, checks_edits, save_record
from crm_tui.ui.forms.references import suggester
from crm_tui.ui.screens.attachments import DocumentsScreen
from crm_tui.ui.screens.record_form import FieldSpec, FormSpec, saved_id


def activity_prefill(context: AppContext, ref: RecordRef) -> dict[str, str]:
    """An activity planned from a record starts with that record (and what it belongs to) filled in."""
    with context.database().read() as session:
        planned = activities.planned_from(session, ref)
    values = {name: ref_text(label, linked.type, linked.id) for name, linked, label in planned.links}
    values["subject"] = planned.subject
    return values


def activity_values(act: activities.ActivityRecord, context: AppContext) -> dict[str, str]:
    """The activity as its form's fields hold it (times in the user's zone)."""
    return {
        "type": act.type,
        "task_type": act.task_type or "",
        "subject": act.subject,
        "description": act.description or "",
        "start_at": local_text(act.start_at, context),
        "end_at": local_text(act.end_at, context),
        "reminder_at": local_text(act.reminder_at, context),
        "owner_id": owner_text(act.owner_id),
        "contact_id": ref_text(act.contact_name, "contact", act.contact_id),
        "lead_id": ref_text(act.lead_title, "lead", act.lead_id),
        "organization_id": ref_text(act.organization_name, "organization", act.organization_id),
        "opportunity_id": ref_text(act.opportunity_title, "opportunity", act.opportunity_id),
    } | custom_values_text(act.custom)


def activity_form(context: AppContext, record_id: int | None, prefill: dict[str, str]) -> FormSpec:
    """The activity form; beside it, the other activities of the chosen day."""
    with context.database().read() as session:
        values = {"type": "call"} | dict(prefill)
        record = None
        if record_id is not None:
            record = activities.activity_record(session, record_id)
            if record is None:
                raise ValidationError.single("activity", f"activity:{record_id} does not exist")
            values |= activity_values(record, context)
        else:
            values.setdefault("owner_id", str(context.me_id() or ""))
            if "start_at" not in values:
                start = (
                    (context.clock.now() + timedelta(hours=1))
                    .astimezone(context.zone)
                    .replace(minute=0, second=0, microsecond=0)
                )
                values["start_at"] = start.strftime("%Y-%m-%d %H:%M")
        fields = [
            FieldSpec("type", "Type", "choice", [(t.value, t.value) for t in ActivityType], required=True),
            FieldSpec("subject", "Subject", required=True),
            FieldSpec("start_at", "Start", "datetime", required=True),
            FieldSpec("end_at", "End", "datetime"),
            FieldSpec("contact_id", "Contact", "ref", ref_type="contact"),
            FieldSpec("lead_id", "or lead", "ref", ref_type="lead"),
            FieldSpec("organization_id", "Organization", "ref", ref_type="organization"),
            FieldSpec("opportunity_id", "Opportunity", "ref", ref_type="opportunity"),
            FieldSpec("owner_id", "Owner", "choice", user_choices(session)),
            FieldSpec("task_type", "Task type", placeholder="e.g. Outbound call"),
            FieldSpec("reminder_at", "Reminder", "datetime"),
            FieldSpec("description", "Description", "textarea"),
            *custom_field_specs(session, "activity"),
        ]
    opened = OpenedAs(record)
    own = RecordRef(RecordType.ACTIVITY, record_id) if record_id is not None else None

    def documents() -> DocumentsScreen | None:
        assert own is not None, "ctrl+o is offered on a saved activity only"
        screen = DocumentsScreen(own, context)
        return screen if screen.entries else None

    def side(v: dict[str, str]) -> Text:
        start = Converter(None, context).instant(v, "start_at")
        if start is None:
            return Text("Pick a start to see that day.", style="dim")
        day = start.astimezone(context.zone).date()
        begin, end = local_day_bounds(day, context.zone)
        with context.database().read() as session:
            rows = activities.list_activities(session, start=begin, end=end)
            files = attachments.document_infos(session, own) if own is not None else []
        text = Text()
        if files:
            # The activity's own files first (ctrl+o opens, saves or removes them; A in the calendar adds).
            text.append(f"Attachments ({len(files)})\n", style="bold")
            for info in files:
                text.append(f"📎 {terminal_safe(info.filename, max_length=40)}", style="yellow")
                text.append(f"  {size_text(str(info.size))}\n", style="dim")
            text.append("ctrl+o open · save · remove\n\n", style="dim")
        text.append(f"{day:%A %d %B %Y}\n", style="bold")
        if not rows:
            text.append("Nothing else planned.", style="dim")
        for row in rows:
            if row.id == record_id:
                continue
            begin_text = row.start_at.astimezone(context.zone).strftime("%H:%M")
            end_text = row.end_at.astimezone(context.zone).strftime("%H:%M") if row.end_at else ""
            style = "dim strike" if row.status == "cancelled" else ("dim" if row.status == "done" else "")
            text.append(f"{begin_text}–{end_text} ", style="cyan")
            text.append(f"{row.type}: {terminal_safe(row.subject, max_length=40)}", style=style)
            text.append(f"  {terminal_safe(row.owner_name or '', max_length=20)}\n", style="dim")
        return text

    def save(v: dict[str, str]) -> int:
        def work(session: Any, c: Converter) -> int:
            start = c.instant(v, "start_at")
            if start is None and "start_at" not in c.errors.errors:
                c.errors.add("start_at", "is required")
            data = activities.ActivityInput(
                subject=v.get("subject", ""),
                start_at=start or context.clock.now(),
                type=v.get("type") or "call",
                task_type=c.text(v, "task_type"),
                description=c.text(v, "description"),
                contact_id=c.ref(v, "contact_id", "contact"),
                lead_id=c.ref(v, "lead_id", "lead"),
                organization_id=c.ref(v, "organization_id", "organization"),
                opportunity_id=c.ref(v, "opportunity_id", "opportunity"),
                end_at=c.instant(v, "end_at"),
                owner_id=c.owner(v),
                reminder_at=c.instant(v, "reminder_at"),
                custom=c.custom(v),
                # Not a field: a follow-up made from a mail (``A``) watches it in the same save.
                follow_up_of=int(prefill["follow_up_of"]) if prefill.get("follow_up_of") else None,
            )
            c.raise_if_any()
            now = context.clock.now()
            if record_id is None:
                return saved_id(activities.create_activity(session, data, now=now).id)
            activities.update_activity(session, record_id, data, now=now, expected=opened.record)
            return record_id

        return save_record(context, work)

    spec = FormSpec(
        "Edit activity" if record_id else "New activity",
        fields,
        values,
        save,
        side=side,
        suggest=suggester(context),
        documents=documents if own is not None else None,
    )
    return checks_edits(spec, opened, lambda record: activity_values(record, context))
