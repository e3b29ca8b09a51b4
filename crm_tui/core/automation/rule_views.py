"""The automation screen's data as plain values: the rules listed (where, when, what, how many pending), what a
rule's form offers to choose from, a stored rule's values, and a rule being written described in words."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session

from crm_tui.core import models as m
from crm_tui.core.automation import actions, events, rules
from crm_tui.core.automation.rules import STATUSES, RuleInput
from crm_tui.core.services import email_templates, mail_accounts, pipelines, users
from crm_tui.core.types import stored_id


@dataclass(frozen=True)
class RuleRow:
    id: int
    enabled: bool
    name: str
    where: str
    when: str
    does: str
    pending: int


@dataclass(frozen=True)
class RuleChoices:
    """What a rule's form offers: (value, label) pairs."""

    places: list[tuple[str, str]]
    templates: list[tuple[str, str]]
    people: list[tuple[str, str]]
    accounts: list[tuple[str, str]]
    stages: list[tuple[str, str]]
    substates: list[tuple[str, str]]
    events: list[tuple[str, str]] = field(default_factory=list)  # record events a rule can wait for


def rule_rows(session: Session) -> list[RuleRow]:
    """Every rule, sorted by where it applies, then by name."""
    rows = []
    for r in rules.list_rules(session):
        assert r.id is not None  # read from the database
        rows.append(
            RuleRow(r.id, r.enabled, r.name, rules.place(session, r), rules.when(r),
                    actions.describe(session, r), rules.pending_count(session, r.id))
        )  # fmt: skip
    return sorted(rows, key=lambda r: (r.where, r.name))


def choices(session: Session) -> RuleChoices:
    places: list[tuple[str, str]] = []
    stages: list[tuple[str, str]] = []
    substates: list[tuple[str, str]] = []
    for pipeline in pipelines.pipelines(session):
        places.append((f"record:opportunity:{pipeline.id}", f"Every deal in {pipeline.name}"))
        for stage in pipelines.stages_of(session, stored_id(pipeline.id)):
            places.append((f"stage:{stage.id}", f"Stage {pipeline.name} / {stage.name}"))
            stages.append((str(stage.id), f"{pipeline.name} / {stage.name}"))
            for substate in pipelines.substates_of(session, stored_id(stage.id)):
                named = f"{pipeline.name} / {stage.name} / {substate.name}"
                places.append((f"substate:{substate.id}", f"Sub-state {named}"))
                substates.append((str(substate.id), named))
    places.append(("record:opportunity", "Every deal"))
    for entity in ("lead", "ticket"):
        places.append((f"record:{entity}", f"Every {entity}"))
        places.extend(
            (f"status:{entity}:{status}", f"{entity.title()} status {status}") for status in STATUSES[entity]
        )
    return RuleChoices(
        places=places,
        templates=[(t.name, t.name) for t in email_templates.list_templates(session)],
        people=[(str(u.id), u.name) for u in users.list_users(session, include_inactive=False)],
        accounts=[(a.name, a.name) for a in mail_accounts.list_accounts(session)],
        stages=stages,
        substates=substates,
        events=[(name, event.words) for name, event in events.EVENTS.items()],
    )


def place_value(rule: m.AutomationRule) -> str:
    """Where a rule applies as the form's place field holds it ("stage:3", "status:lead:new", "record:lead")."""
    if rule.scope == "stage":
        return f"stage:{rule.stage_id}"
    if rule.scope == "substate":
        return f"substate:{rule.substate_id}"
    if rule.scope == "status":
        return f"status:{rule.entity}:{rule.status}"
    return f"record:{rule.entity}" + (f":{rule.pipeline_id}" if rule.pipeline_id else "")


def stored_rule(session: Session, rule_id: int) -> tuple[RuleInput, str]:
    """A stored rule's values and its place field (NotFound: gone)."""
    rule = rules.get_rule(session, rule_id)
    return rules.rule_input(rule), place_value(rule)


def described(session: Session, data: RuleInput) -> tuple[str, str]:
    """A rule being written, in words: (when it fires, what it does). Nothing is stored."""
    probe = m.AutomationRule(
        name=data.name, action=data.action, entity=data.entity, scope=data.scope, trigger=data.trigger,
        delay_value=data.delay_value, delay_unit=data.delay_unit, date_field=data.date_field,
        at_time=data.at_time, watch_field=data.watch_field, record_event=data.record_event,
        params=json.dumps(data.params, default=str), substate_id=data.substate_id, stage_id=data.stage_id, status=data.status, pipeline_id=data.pipeline_id,
    )  # fmt: skip
    return rules.when(probe), actions.describe(session, probe)


def saved_rule(session: Session, rule_id: int | None, data: RuleInput, *, now: datetime) -> tuple[int, str]:
    """Create (``rule_id`` None) or update a rule: (its id, what the save did in words)."""
    if rule_id is None:
        rule = rules.create_rule(session, data, now=now)
        return stored_id(rule.id), f"Rule {rule.name!r} saved: it schedules from the next change on."
    change = rules.update_rule(session, rule_id, data, now=now)
    return rule_id, f"Rule {change.rule.name!r} saved: {change.message}."
