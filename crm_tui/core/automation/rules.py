"""Rules: validation, create, edit, enable/disable, delete, and what each change does to pending jobs."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from crm_tui.core import models as m
from crm_tui.core.automation import actions, events, fields, schedule
from crm_tui.core.errors import CrmError, FieldErrors, NotFound

SCOPES = ("stage", "substate", "status", "record")
TRIGGERS = {
    "stage": ("enter", "exit", "date", "field_change", "activity_done"),
    "substate": ("enter", "exit"),
    "status": ("enter", "exit", "date", "field_change", "activity_done"),
    "record": ("create", "date", "field_change", "activity_done", "event"),
}
TRIGGER_WORDS = {"enter": "on enter", "exit": "on exit", "date": "from a date", "create": "on create",
                 "field_change": "when a field changes", "activity_done": "when an activity is done",
                 "event": "on a record event"}  # fmt: skip
SUBSTATE_WORDS = {"enter": "on open", "exit": "on close"}
STATUSES = {"lead": [s.value for s in m.LeadStatus], "ticket": [s.value for s in m.TicketStatus]}


@dataclass
class RuleInput:
    name: str
    action: str
    entity: str = "opportunity"
    scope: str = "stage"
    stage_id: int | None = None
    substate_id: int | None = None
    pipeline_id: int | None = None  # record rules on deals: only this pipeline (None: all)
    status: str | None = None
    trigger: str = "enter"
    delay_value: int = 0
    delay_unit: str = "days"
    date_field: str | None = None
    at_time: str | None = None
    zone: str = "UTC"
    watch_field: str | None = None
    record_event: str | None = None  # trigger "event": one of automation.events.EVENTS
    conditions: str = ""  # one per line, FIELD OP VALUE
    params: dict[str, Any] = field(default_factory=dict)
    late_policy: str = "fire"
    late_limit_hours: int = 72
    survives_exit: bool = False
    enabled: bool = True


def _check(session: Session, data: RuleInput) -> dict[str, Any]:
    errors = FieldErrors()
    clean: dict[str, Any] = {}
    name = (data.name or "").strip()
    if not name:
        errors.add("name", "required")
    elif len(name) > 120:
        errors.add("name", "at most 120 characters")
    clean["name"] = name
    entity = data.entity
    if entity not in fields.ENTITIES:
        errors.add("entity", f"one of {', '.join(fields.ENTITIES)}")
        errors.raise_if_any()
    if data.scope not in SCOPES:
        errors.add("scope", f"one of {', '.join(SCOPES)}")
    clean["pipeline_id"] = None
    if data.scope in ("stage", "substate") and entity != "opportunity":
        errors.add("scope", "stages and sub-states belong to opportunities; leads and tickets have statuses")
    if data.scope == "status" and entity == "opportunity":
        errors.add("scope", "opportunities move through stages; choose a stage")
    if data.scope == "stage":
        stage = session.get(m.Stage, data.stage_id) if data.stage_id else None
        if stage is None:
            errors.add("stage_id", "choose a stage")
        else:
            clean["pipeline_id"] = stage.pipeline_id
    if data.scope == "substate":
        substate = session.get(m.SubstateDefinition, data.substate_id) if data.substate_id else None
        if substate is None:
            errors.add("substate_id", "choose a sub-state")
        else:
            stage = session.get(m.Stage, substate.stage_id)
            clean["pipeline_id"] = stage.pipeline_id if stage else None
            clean["stage_id"] = substate.stage_id
    if data.scope == "status" and data.status not in STATUSES.get(entity, []):
        errors.add("status", f"one of {', '.join(STATUSES.get(entity, []))}")
    if data.scope == "record" and data.pipeline_id is not None:
        if entity != "opportunity" or session.get(m.Pipeline, data.pipeline_id) is None:
            errors.add("pipeline_id", "a pipeline of opportunities, or none")
        clean["pipeline_id"] = data.pipeline_id
    if data.trigger not in TRIGGERS.get(data.scope, ()):
        errors.add("trigger", f"for a {data.scope}: one of {', '.join(TRIGGERS.get(data.scope, ()))}")
    if data.delay_unit not in fields.UNITS:
        errors.add("delay_unit", f"one of {', '.join(fields.UNITS)}")
    if not isinstance(data.delay_value, int):
        errors.add("delay_value", "a whole number")
    elif data.delay_value < 0 and data.trigger != "date":
        errors.add("delay_value", "only a date trigger can fire before (a negative delay)")
    elif abs(data.delay_value) > 100_000:
        errors.add("delay_value", "too large")
    if data.trigger == "date" and data.date_field not in fields.DATE_FIELDS[entity]:
        errors.add("date_field", f"one of {', '.join(fields.DATE_FIELDS[entity])}")
    clean["date_field"] = data.date_field if data.trigger == "date" else None
    unwatchable = ("stage", "pipeline", "created")
    if data.trigger == "field_change" and (
        data.watch_field not in fields.FIELDS[entity] or data.watch_field in unwatchable
    ):
        watchable = [f for f in fields.FIELDS[entity] if f not in unwatchable]
        errors.add("watch_field", f"one of {', '.join(watchable)}")
    clean["watch_field"] = data.watch_field if data.trigger == "field_change" else None
    if data.trigger == "event":
        if entity != "opportunity":
            errors.add("trigger", "record events (a quote accepted, a document signed) happen to deals")
        if data.record_event not in events.EVENTS:
            errors.add("record_event", f"one of {', '.join(events.EVENTS)}")
    clean["record_event"] = data.record_event if data.trigger == "event" else None
    at_time = (data.at_time or "").strip() or None
    try:
        fields.parse_at_time(at_time)
    except CrmError as exc:
        errors.add("at_time", str(exc))
    clean["at_time"] = at_time
    if fields.zone_of(data.zone) is fields.zone_of("not/a-zone") and data.zone != "UTC":
        errors.add("zone", f"unknown time zone {data.zone!r}")
    try:
        conditions = fields.parse_conditions(data.conditions or "")
        keys = {
            d.key
            for d in session.scalars(
                select(m.CustomFieldDefinition).where(col(m.CustomFieldDefinition.entity_type) == entity)
            )
        }
        problem = fields.check_condition_fields(entity, conditions, keys)
        if problem:
            errors.add("conditions", problem)
        clean["conditions"] = fields.conditions_json(conditions)
    except ValueError as exc:
        errors.add("conditions", str(exc))
    clean["params"] = actions.check_params(session, entity, data.action, data.params or {}, errors)
    if data.late_policy not in ("fire", "skip"):
        errors.add("late_policy", "fire (late) or skip")
    if not isinstance(data.late_limit_hours, int) or data.late_limit_hours < 1:
        errors.add("late_limit_hours", "1 hour or more")
    errors.raise_if_any()
    return clean


def _store(rule: m.AutomationRule, data: RuleInput, clean: dict[str, Any], now: datetime) -> None:
    rule.name = clean["name"]
    rule.enabled = data.enabled
    rule.entity = data.entity
    rule.scope = data.scope
    rule.pipeline_id = clean["pipeline_id"]
    rule.stage_id = clean.get("stage_id", data.stage_id) if data.scope in ("stage", "substate") else None
    rule.substate_id = data.substate_id if data.scope == "substate" else None
    rule.status = data.status if data.scope == "status" else None
    rule.trigger = data.trigger
    rule.delay_value = data.delay_value
    rule.delay_unit = data.delay_unit
    rule.date_field = clean["date_field"]
    rule.at_time = clean["at_time"]
    rule.zone = data.zone
    rule.watch_field = clean["watch_field"]
    rule.record_event = clean["record_event"]
    rule.conditions = clean["conditions"]
    rule.action = data.action
    rule.params = json.dumps(clean["params"], sort_keys=True)
    rule.late_policy = data.late_policy
    rule.late_limit_hours = data.late_limit_hours
    rule.survives_exit = data.survives_exit
    rule.updated_at = now


def create_rule(session: Session, data: RuleInput, *, now: datetime) -> m.AutomationRule:
    clean = _check(session, data)
    rule = m.AutomationRule(name=clean["name"], action=data.action, created_at=now)
    _store(rule, data, clean, now)
    session.add(rule)
    session.flush()
    schedule.forget_rules(session)
    return rule


def get_rule(session: Session, rule_id: int) -> m.AutomationRule:
    rule = session.get(m.AutomationRule, rule_id)
    if rule is None:
        raise NotFound(f"no automation rule {rule_id}")
    return rule


def pending_of(session: Session, rule: m.AutomationRule) -> int:
    """The pending jobs of a stored rule (``pending_count`` by its id)."""
    assert rule.id is not None  # read from the database: a rule's id is None only before it is flushed
    return pending_count(session, rule.id)


def pending_count(session: Session, rule_id: int) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(m.AutomationJob)
            .where(col(m.AutomationJob.rule_id) == rule_id, col(m.AutomationJob.state) == "pending")
        )
        or 0
    )


def _where_it_applies(rule: m.AutomationRule) -> tuple[Any, ...]:
    return (rule.entity, rule.scope, rule.stage_id, rule.substate_id, rule.status, rule.trigger, rule.date_field,
            rule.pipeline_id, rule.record_event)  # fmt: skip


def _cancel_pending(session: Session, rule: m.AutomationRule, reason: str) -> int:
    jobs = list(session.scalars(
        select(m.AutomationJob).where(col(m.AutomationJob.rule_id) == rule.id, col(m.AutomationJob.state) == "pending")
    ))  # fmt: skip
    for job in jobs:
        job.state, job.result = "cancelled", reason
        session.add(job)
    session.flush()
    return len(jobs)


def _retime_pending(session: Session, rule: m.AutomationRule) -> int:
    """Pending jobs get the due time the edited rule gives them (counted from the same moment)."""
    changed = 0
    jobs = list(session.scalars(
        select(m.AutomationJob).where(col(m.AutomationJob.rule_id) == rule.id, col(m.AutomationJob.state) == "pending")
    ))  # fmt: skip
    for job in jobs:
        record = session.get(fields.MODELS[job.record_type], job.record_id)
        if record is None:
            continue
        entry = session.get(m.AutomationEntry, job.entry_id) if job.entry_id else None
        moment = (
            entry.entered_at
            if entry is not None and job.key.startswith("entry:")
            else (entry.left_at if entry is not None and entry.left_at else job.created_at)
        )
        due = schedule.due_time(rule, moment, record)
        if due is None:
            job.state, job.result = "cancelled", f"{rule.date_field} is not set"
            changed += 1
        elif due != job.due_at:
            job.due_at = due
            changed += 1
        session.add(job)
    session.flush()
    return changed


@dataclass
class Change:
    rule: m.AutomationRule
    pending_changed: int
    message: str


def update_rule(session: Session, rule_id: int, data: RuleInput, *, now: datetime) -> Change:
    """Edit a rule. Its pending jobs: cancelled if it is disabled or now applies elsewhere, otherwise moved
    to the due time the edited rule gives. The change says how many."""
    rule = get_rule(session, rule_id)
    clean = _check(session, data)
    before = _where_it_applies(rule)
    was_enabled = rule.enabled
    _store(rule, data, clean, now)
    session.add(rule)
    session.flush()
    schedule.forget_rules(session)
    if not rule.enabled:
        count = _cancel_pending(session, rule, "the rule was disabled")
        message = f"rule disabled: {count} pending action{'s' if count != 1 else ''} cancelled"
    elif before != _where_it_applies(rule):
        count = _cancel_pending(session, rule, "the rule now applies elsewhere")
        message = (
            f"{count} pending action{'s' if count != 1 else ''} cancelled (the rule applies elsewhere now)"
        )
    else:
        count = _retime_pending(session, rule)
        message = f"{count} pending action{'s' if count != 1 else ''} rescheduled"
        if not was_enabled:
            message = "rule enabled: it schedules from the next change on"
    return Change(rule, count, message)


def set_enabled(session: Session, rule_id: int, enabled: bool, *, now: datetime) -> Change:
    rule = get_rule(session, rule_id)
    rule.enabled = enabled
    rule.updated_at = now
    session.add(rule)
    session.flush()
    schedule.forget_rules(session)
    if enabled:
        return Change(rule, 0, f"{rule.name!r} enabled: it schedules from the next change on")
    count = _cancel_pending(session, rule, "the rule was disabled")
    return Change(
        rule, count, f"{rule.name!r} disabled: {count} pending action{'s' if count != 1 else ''} cancelled"
    )


def delete_rule(session: Session, rule_id: int) -> int:
    """Delete a rule and its pending jobs (its log stays). Returns how many pending jobs went with it."""
    rule = get_rule(session, rule_id)
    count = pending_count(session, rule_id)
    session.delete(rule)
    session.flush()
    schedule.forget_rules(session)
    return count


def list_rules(session: Session) -> list[m.AutomationRule]:
    return list(
        session.scalars(
            select(m.AutomationRule).order_by(
                m.AutomationRule.entity,
                col(m.AutomationRule.pipeline_id),
                col(m.AutomationRule.stage_id),
                col(m.AutomationRule.id),
            )
        )
    )


def rule_input(rule: m.AutomationRule) -> RuleInput:
    conditions = "\n".join(c.text() for c in fields.load_conditions(rule.conditions))
    return RuleInput(
        name=rule.name, action=rule.action, entity=rule.entity, scope=rule.scope, stage_id=rule.stage_id,
        substate_id=rule.substate_id, pipeline_id=rule.pipeline_id if rule.scope == "record" else None,
        status=rule.status, trigger=rule.trigger, delay_value=rule.delay_value, delay_unit=rule.delay_unit,
        date_field=rule.date_field, at_time=rule.at_time, zone=rule.zone, watch_field=rule.watch_field,
        record_event=rule.record_event, conditions=conditions, params=json.loads(rule.params or "{}"), late_policy=rule.late_policy,
        late_limit_hours=rule.late_limit_hours, survives_exit=rule.survives_exit, enabled=rule.enabled,
    )  # fmt: skip


def place(session: Session, rule: m.AutomationRule) -> str:
    """Where the rule applies, in words ("Sales / Won", "Sales / Negotiation / Documents pending")."""
    if rule.scope in ("stage", "substate"):
        stage = session.get(m.Stage, rule.stage_id)
        pipeline = session.get(m.Pipeline, stage.pipeline_id) if stage else None
        text = f"{pipeline.name if pipeline else '?'} / {stage.name if stage else '?'}"
        if rule.scope == "substate":
            substate = session.get(m.SubstateDefinition, rule.substate_id)
            text += f" / {substate.name if substate else '?'}"
        return text
    if rule.scope == "status":
        return f"{rule.entity}s {rule.status}"
    pipeline = session.get(m.Pipeline, rule.pipeline_id) if rule.pipeline_id else None
    return f"every {rule.entity}" + (f" in {pipeline.name}" if pipeline else "")


def when(rule: m.AutomationRule) -> str:
    """The trigger in words ("6 months after enter", "3 days before expected_close at 09:00")."""
    words = (
        SUBSTATE_WORDS.get(rule.trigger, TRIGGER_WORDS[rule.trigger])
        if rule.scope == "substate"
        else TRIGGER_WORDS[rule.trigger]
    )
    unit = rule.delay_unit if abs(rule.delay_value) != 1 else rule.delay_unit.rstrip("s")
    at = f" at {rule.at_time}" if rule.at_time and rule.delay_value else ""
    if rule.trigger == "date":
        if rule.delay_value == 0:
            return f"on {rule.date_field}{' at ' + rule.at_time if rule.at_time else ''}"
        side = "before" if rule.delay_value < 0 else "after"
        return f"{abs(rule.delay_value)} {unit} {side} {rule.date_field}{at}"
    if rule.trigger == "field_change":
        words = f"when {rule.watch_field} changes"
    if rule.trigger == "event":
        words = f"when {events.words(rule.record_event)}"
    if rule.delay_value:
        return f"{rule.delay_value} {unit} after {words.removeprefix('on ').removeprefix('when ')}{at}"
    return words
