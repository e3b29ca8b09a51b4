"""Events from the services become scheduled jobs.

A record's stay in a stage, sub-state or status is an ``AutomationEntry``. Entering schedules the place's
"enter" rules (with their delays) and its date rules; leaving schedules its "exit" rules, cancels the entry's
pending jobs unless their rule survives the exit, and completes the activities its rules planned with "complete
when the record leaves". One job per rule and entry (or event): scheduling twice is harmless.

Depth: a change made by a firing job schedules at that job's depth plus one (``session.info``); beyond
``MAX_DEPTH`` nothing is scheduled and the log says where the chain stopped.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlmodel import Session, col

from crm_tui.core import models as m
from crm_tui.core.automation import fields

MAX_DEPTH = 5
DEPTH_KEY = "automation_depth"
_event_numbers = itertools.count()


def depth(session: Session) -> int:
    """The depth of jobs scheduled now: 1 for a person's change, the firing job's plus one in a chain."""
    return int(session.info.get(DEPTH_KEY, 0)) + 1


def _rules(session: Session, **where: Any) -> list[m.AutomationRule]:
    cache = session.info.setdefault("automation_rules", {})
    key = tuple(sorted(where.items()))
    if key not in cache:
        query = select(m.AutomationRule).where(col(m.AutomationRule.enabled).is_(True))
        for column, value in where.items():
            attribute = getattr(m.AutomationRule, column)
            query = query.where(attribute.in_(value) if isinstance(value, tuple) else attribute == value)
        cache[key] = list(session.scalars(query.order_by(col(m.AutomationRule.id))))
    found: list[m.AutomationRule] = cache[key]
    return found


def forget_rules(session: Session) -> None:
    """Rules changed in this session: look them up again."""
    session.info.pop("automation_rules", None)


@dataclass
class Planned:
    """A job that would be (or was) scheduled: for previews."""

    rule: m.AutomationRule
    due_at: datetime | None  # None: conditions do not hold now / no date
    event: str


def due_time(rule: m.AutomationRule, moment: datetime, record: Any) -> datetime | None:
    zone = fields.zone_of(rule.zone)
    if rule.trigger == "date":
        column = fields.COLUMN_OF.get(rule.date_field or "", rule.date_field or "")
        value = getattr(record, column, None)
        if value is None:
            return None
        day = value.date() if isinstance(value, datetime) else value
        return fields.from_date(day, rule.delay_value, rule.delay_unit, at_time=rule.at_time, zone=zone)
    return fields.shifted(moment, rule.delay_value, rule.delay_unit, at_time=rule.at_time, zone=zone)


def conditions_hold(session: Session, rule: m.AutomationRule, record: Any) -> bool:
    conditions = fields.load_conditions(rule.conditions)
    if not conditions:
        return True
    return fields.holds(conditions, fields.record_values(session, rule.entity, record))


def _log_stop(
    session: Session, rule: m.AutomationRule, record_type: str, record_id: int, now: datetime
) -> None:
    session.add(
        m.AutomationLog(
            rule_id=rule.id,
            rule_name=rule.name,
            action=rule.action,
            record_type=record_type,
            record_id=record_id,
            at=now,
            outcome="stopped",
            message=f"chain of rules stopped at the depth limit ({MAX_DEPTH}): not scheduled",
        )  # fmt: skip
    )


def schedule(
    session: Session,
    rule: m.AutomationRule,
    record_type: str,
    record: Any,
    *,
    moment: datetime,
    now: datetime,
    key: str,
    event: str,
    entry_id: int | None = None,
) -> m.AutomationJob | None:
    level = depth(session)
    if level > MAX_DEPTH:
        _log_stop(session, rule, record_type, record.id, now)
        return None
    if not conditions_hold(session, rule, record):
        return None
    due = due_time(rule, moment, record)
    if due is None:
        return None
    existing = session.scalars(
        select(m.AutomationJob).where(
            col(m.AutomationJob.rule_id) == rule.id, col(m.AutomationJob.key) == key
        )
    ).first()
    if existing is not None:
        return existing
    assert rule.id is not None  # read from the database
    job = m.AutomationJob(
        rule_id=rule.id, entry_id=entry_id, key=key, record_type=record_type, record_id=record.id,
        due_at=due, depth=level, event=event, created_at=now,
    )  # fmt: skip
    session.add(job)
    session.flush()
    return job


# --- entries ----------------------------------------------------------------------------------------


def _enter(
    session: Session, record_type: str, record_id: int, scope: str, key: str, now: datetime
) -> m.AutomationEntry:
    entry = m.AutomationEntry(
        record_type=record_type, record_id=record_id, scope=scope, key=key, entered_at=now
    )
    session.add(entry)
    session.flush()
    return entry


def _place_rules(entity: str, scope: str, key: str) -> dict[str, Any]:
    if scope == "stage":
        return {"entity": entity, "scope": scope, "stage_id": int(key)}
    if scope == "substate":
        return {"entity": entity, "scope": scope, "substate_id": int(key)}
    return {"entity": entity, "scope": scope, "status": key}


def enter(
    session: Session, entity: str, record: Any, scope: str, key: str, *, now: datetime, event: str
) -> m.AutomationEntry | None:
    """The record entered a place: its enter and date rules are scheduled on a new entry. Where no rule
    waits for the place, no entry is written (leaving makes one if an exit rule is added meanwhile)."""
    rules = _rules(session, trigger=("enter", "date"), **_place_rules(entity, scope, key))
    if not rules:
        return None
    entry = _enter(session, entity, record.id, scope, key, now)
    for rule in rules:
        schedule(session, rule, entity, record, moment=now, now=now, key=f"entry:{entry.id}", event=event,
                 entry_id=entry.id)  # fmt: skip
    return entry


def leave(
    session: Session, entity: str, record: Any, scope: str, key: str | None, *, now: datetime, event: str
) -> list[m.AutomationEntry]:
    """Close the record's open entries in the scope (one key, or all), cancel what waited on them, complete
    the activities their rules planned to be completed on exit, and schedule the places' exit rules."""
    query = select(m.AutomationEntry).where(
        col(m.AutomationEntry.record_type) == entity,
        m.AutomationEntry.record_id == record.id,
        col(m.AutomationEntry.scope) == scope,
        col(m.AutomationEntry.left_at).is_(None),
    )
    if key is not None:
        query = query.where(col(m.AutomationEntry.key) == key)
    entries = list(session.scalars(query))
    if (
        key is not None
        and not entries
        and _rules(session, trigger="exit", **_place_rules(entity, scope, key))
    ):
        # Entered before any rule waited for the place: this stay starts counting now, to key its exit rules.
        entries = [_enter(session, entity, record.id, scope, key, now)]
    for entry in entries:
        entry.left_at = now
        session.add(entry)
        _cancel_waiting(session, entry, now)
        _complete_planned(session, entry, now)
        for rule in _rules(session, trigger="exit", **_place_rules(entity, scope, entry.key)):
            schedule(session, rule, entity, record, moment=now, now=now, key=f"exit:{entry.id}", event=event,
                     entry_id=entry.id)  # fmt: skip
    session.flush()
    return entries


def _cancel_waiting(session: Session, entry: m.AutomationEntry, now: datetime) -> None:
    rows = session.execute(
        select(m.AutomationJob, m.AutomationRule)
        .join(m.AutomationRule, col(m.AutomationRule.id) == m.AutomationJob.rule_id)
        .where(
            col(m.AutomationJob.entry_id) == entry.id,
            col(m.AutomationJob.state) == "pending",
            col(m.AutomationRule.survives_exit).is_(False),
        )
    ).all()
    for job, rule in rows:
        job.state, job.result = "cancelled", "the record left before it was due"
        session.add(job)
        session.add(
            m.AutomationLog(
                job_id=job.id,
                rule_id=rule.id,
                rule_name=rule.name,
                action=rule.action,
                record_type=job.record_type,
                record_id=job.record_id,
                due_at=job.due_at,
                at=now,
                outcome="cancelled",
                message="the record left before it was due",
            )  # fmt: skip
        )


def _complete_planned(session: Session, entry: m.AutomationEntry, now: datetime) -> None:
    rows = session.execute(
        select(col(m.AutomationJob.created_ref), col(m.AutomationRule.params))
        .join(m.AutomationRule, col(m.AutomationRule.id) == m.AutomationJob.rule_id)
        .where(
            col(m.AutomationJob.entry_id) == entry.id,
            col(m.AutomationJob.state) == "done",
            col(m.AutomationRule.action) == "plan_activity",
        )
    ).all()
    for created_ref, params in rows:
        if not created_ref or not created_ref.startswith("activity:"):
            continue
        if not json.loads(params or "{}").get("complete_on_exit"):
            continue
        session.execute(
            update(m.Activity)
            .where(col(m.Activity.id) == int(created_ref.split(":")[1]), col(m.Activity.status) == "planned")
            .values(status="done", completed_at=now, updated_at=now)
        )


# --- events from the services -----------------------------------------------------------------------


def record_created(session: Session, entity: str, record: Any, *, now: datetime) -> None:
    """A new deal, lead or ticket: it enters its stage or status, and record rules on "create" fire."""
    if entity == "opportunity":
        enter(session, entity, record, "stage", str(record.stage_id), now=now, event="created")
    else:
        enter(session, entity, record, "status", record.status, now=now, event=f"created as {record.status}")
    for rule in _rules(session, entity=entity, scope="record", trigger=("create", "date")):
        if _pipeline_matches(rule, record):
            schedule(session, rule, entity, record, moment=now, now=now, key=f"create:{record.id}",
                     event="created")  # fmt: skip


def _pipeline_matches(rule: m.AutomationRule, record: Any) -> bool:
    return rule.pipeline_id is None or getattr(record, "pipeline_id", None) == rule.pipeline_id


def event_rules(session: Session, entity: str, event: str | None = None) -> list[m.AutomationRule]:
    """The enabled rules waiting for a record event (``automation.events``; None: any) of records of this kind."""
    if event is None:
        return _rules(session, entity=entity, scope="record", trigger="event")
    return _rules(session, entity=entity, scope="record", trigger="event", record_event=event)


def applies_to(rule: m.AutomationRule, record: Any) -> bool:
    """A rule on every record (of one pipeline, for deals) applies to this record."""
    return _pipeline_matches(rule, record)


def stage_changed(
    session: Session, deal: m.Opportunity, previous_stage_id: int, *, now: datetime, names: tuple[str, str]
) -> None:
    event = f"moved from {names[0]} to {names[1]}"
    # The sub-states belong to the stage: leaving it ends their stays too.
    leave(session, "opportunity", deal, "substate", None, now=now, event=event)
    leave(session, "opportunity", deal, "stage", str(previous_stage_id), now=now, event=event)
    enter(session, "opportunity", deal, "stage", str(deal.stage_id), now=now, event=event)


def substate_changed(
    session: Session, deal: m.Opportunity, substate_id: int, is_open: bool, *, now: datetime, name: str
) -> None:
    if is_open:
        enter(session, "opportunity", deal, "substate", str(substate_id), now=now, event=f"{name} opened")
    else:
        leave(session, "opportunity", deal, "substate", str(substate_id), now=now, event=f"{name} closed")


def status_changed(session: Session, entity: str, record: Any, previous: str, *, now: datetime) -> None:
    if previous == record.status:
        return
    event = f"status {previous} -> {record.status}"
    leave(session, entity, record, "status", previous, now=now, event=event)
    enter(session, entity, record, "status", record.status, now=now, event=event)


def fields_changed(
    session: Session, entity: str, record: Any, changed: Iterable[str], *, now: datetime
) -> None:
    """Fields of the record changed (names as rules use them): "field changed" rules fire, and pending jobs
    counted from a changed date field move with it."""
    changed = set(changed)
    if not changed:
        return
    for rule in _rules(session, entity=entity, trigger="field_change"):
        if rule.watch_field in changed and _in_place(session, rule, entity, record):
            schedule(session, rule, entity, record, moment=now, now=now,
                     key=f"change:{record.id}:{now.isoformat()}:{next(_event_numbers)}",
                     event=f"{rule.watch_field} changed")  # fmt: skip
    dated = [f for f in changed if f in fields.DATE_FIELDS.get(entity, [])]
    if dated:
        rows = session.execute(
            select(m.AutomationJob, m.AutomationRule)
            .join(m.AutomationRule, col(m.AutomationRule.id) == m.AutomationJob.rule_id)
            .where(
                col(m.AutomationJob.record_type) == entity,
                m.AutomationJob.record_id == record.id,
                col(m.AutomationJob.state) == "pending",
                col(m.AutomationRule.trigger) == "date",
                col(m.AutomationRule.date_field).in_(dated),
            )
        ).all()
        for job, rule in rows:
            due = due_time(rule, now, record)
            if due is None:
                job.state, job.result = "cancelled", f"{rule.date_field} was cleared"
            else:
                job.due_at = due
            session.add(job)
        session.flush()


def _in_place(session: Session, rule: m.AutomationRule, entity: str, record: Any) -> bool:
    if rule.scope == "record":
        return _pipeline_matches(rule, record)
    if rule.scope == "stage":
        return getattr(record, "stage_id", None) == rule.stage_id
    if rule.scope == "status":
        return getattr(record, "status", None) == rule.status
    row = session.get(m.OpportunitySubstate, (record.id, rule.substate_id))
    return row is not None and row.is_open


def activity_completed(session: Session, activity: m.Activity, *, now: datetime) -> None:
    for entity, record_id in (
        ("opportunity", activity.opportunity_id),
        ("lead", activity.lead_id),
        ("ticket", activity.ticket_id),
    ):
        if record_id is None:
            continue
        rules = _rules(session, entity=entity, trigger="activity_done")
        if not rules:
            continue
        record = session.get(fields.MODELS[entity], record_id)
        if record is None:
            continue
        for rule in rules:
            if _in_place(session, rule, entity, record):
                schedule(session, rule, entity, record, moment=now, now=now,
                         key=f"activity:{activity.id}:{now.isoformat()}",
                         event=f"activity done: {activity.subject}")  # fmt: skip


# --- previews -----------------------------------------------------------------------------------------


def preview_stage_move(
    session: Session, deal: m.Opportunity, stage_id: int, *, now: datetime
) -> tuple[list[Planned], list[tuple[m.AutomationRule, m.AutomationJob]]]:
    """What moving the deal to the stage would schedule (exit rules of the old stage, enter and date rules of
    the new one), and the pending jobs it would cancel. Nothing is written."""
    planned: list[Planned] = []
    if depth(session) > MAX_DEPTH:
        return planned, []
    old = str(deal.stage_id)
    for rule in _rules(session, trigger="exit", **_place_rules("opportunity", "stage", old)):
        ok = conditions_hold(session, rule, deal)
        planned.append(Planned(rule, due_time(rule, now, deal) if ok else None, "on leaving the stage"))
    for rule in _rules(
        session, trigger=("enter", "date"), **_place_rules("opportunity", "stage", str(stage_id))
    ):
        ok = conditions_hold(session, rule, deal)
        planned.append(Planned(rule, due_time(rule, now, deal) if ok else None, "on entering the stage"))
    cancelled = session.execute(
        select(m.AutomationRule, m.AutomationJob)
        .join(m.AutomationJob, col(m.AutomationJob.rule_id) == m.AutomationRule.id)
        .join(m.AutomationEntry, col(m.AutomationEntry.id) == m.AutomationJob.entry_id)
        .where(
            col(m.AutomationEntry.record_type) == "opportunity",
            col(m.AutomationEntry.record_id) == deal.id,
            col(m.AutomationEntry.left_at).is_(None),
            col(m.AutomationEntry.scope).in_(("stage", "substate")),
            col(m.AutomationJob.state) == "pending",
            col(m.AutomationRule.survives_exit).is_(False),
        )
    ).all()
    return planned, [(rule, job) for rule, job in cancelled]


def completed_on_exit(session: Session, record_type: str, record_id: int) -> list[m.Activity]:
    """The planned activities rules made during the record's current stays that leaving will complete."""
    rows = session.execute(
        select(col(m.AutomationJob.created_ref), col(m.AutomationRule.params))
        .join(m.AutomationRule, col(m.AutomationRule.id) == m.AutomationJob.rule_id)
        .join(m.AutomationEntry, col(m.AutomationEntry.id) == m.AutomationJob.entry_id)
        .where(
            col(m.AutomationEntry.record_type) == record_type,
            col(m.AutomationEntry.record_id) == record_id,
            col(m.AutomationEntry.left_at).is_(None),
            col(m.AutomationJob.state) == "done",
            col(m.AutomationRule.action) == "plan_activity",
        )
    ).all()
    found = []
    for created_ref, params in rows:
        if (
            created_ref
            and created_ref.startswith("activity:")
            and json.loads(params or "{}").get("complete_on_exit")
        ):
            activity = session.get(m.Activity, int(created_ref.split(":")[1]))
            if activity is not None and activity.status == "planned":
                found.append(activity)
    return found
