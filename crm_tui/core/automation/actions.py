"""What a rule does when its job fires. Each action works inside the firing transaction and only touches the
database (and the content-addressed document store), so a job's effects commit with its claim or not at all.
Mail goes through the outbox; the message itself is built by a builder the caller passes in (``mail.compose``:
the core does not import the mail layer)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from crm_tui.core import models as m
from crm_tui.core.automation import fields, reports, schedule
from crm_tui.core.automation.rendering import job_ref, merge_context, rendered
from crm_tui.core.errors import CrmError, FieldErrors
from crm_tui.core.services import (
    activities,
    custom_fields,
    email_templates,
    leads,
    mail_accounts,
    opportunities,
    outbox,
    team,
)
from crm_tui.core.services.attachments import add_document, safe_filename
from crm_tui.core.types import RecordRef, RecordType, stored_id

if TYPE_CHECKING:
    from crm_tui.core.types import RecordRef

ACTIONS: dict[str, str] = {
    "send_email": "Send an email from a template",
    "plan_activity": "Plan an activity",
    "repeat_lead": "Create a repeat lead",
    "copy_deal": "Copy the deal to another pipeline",
    "set_substate": "Open or close a sub-state",
    "assign": "Assign the owner or a partner",
    "report": "Generate a PDF report",
}
ONLY_DEALS = {"copy_deal", "set_substate"}
ROLES = ("primary_contact", "owner", "installer", "reseller", "user", "team", "group")
ASSIGN_FIELDS = ("owner", "installer", "reseller")
ASSIGN_METHODS = ("round_robin", "fewest_open", "region", "postcode")

# (from name, from address, to, subject, body, attachments [(name, type, bytes)]) -> (raw, Message-ID, envelope)
MailBuilder = Callable[
    [str, str, list[str], str, str, list[tuple[str, str, bytes]]], tuple[bytes, str, list[str]]
]


@dataclass
class FireContext:
    """What firing needs from outside the core: the time, a mail builder, where documents and report
    templates live, and who "me" is."""

    now: datetime
    build: MailBuilder | None = None
    documents: Any = None  # an attachments.DocumentStore
    report_dirs: list[Path] = field(default_factory=list)
    me_id: int | None = None
    zone: Any = None
    # Texts filled before the write lock is taken (``prerender``), by (job, kind, template name, source): a
    # result, or the TemplateFieldError it gave. An action takes its texts from here; one not here is filled
    # when the action runs.
    rendered: dict[tuple[Any, ...], Any] = field(default_factory=dict)


@dataclass
class Done:
    message: str
    created_ref: str | None = None


def params_of(rule: m.AutomationRule) -> dict[str, Any]:
    params: dict[str, Any] = json.loads(rule.params or "{}")
    return params


# --- checking a rule's parameters ---------------------------------------------------------------------


def check_params(
    session: Session, entity: str, action: str, params: dict[str, Any], errors: FieldErrors
) -> dict[str, Any]:
    """The parameters cleaned, or errors named ``params.KEY``."""
    if action not in ACTIONS:
        errors.add("action", f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
        return {}
    if action in ONLY_DEALS and entity != "opportunity":
        errors.add("action", f"{ACTIONS[action].lower()} works on opportunities only")
    clean: dict[str, Any] = {}

    def text(key: str, *, required: bool = False, default: str = "") -> str:
        value = str(params.get(key) or default).strip()
        if required and not value:
            errors.add(f"params.{key}", "required")
        if value:
            try:
                email_templates.check_template(value, "")
            except CrmError as exc:
                errors.add(f"params.{key}", str(exc).replace("subject: ", ""))
        clean[key] = value
        return value

    def user(key: str, *, allow_owner: bool = True) -> None:
        value = str(params.get(key) or ("owner" if allow_owner else "")).strip()
        if allow_owner and value == "owner":
            clean[key] = "owner"
            return
        if not value.isdigit() or session.get(m.User, int(value)) is None:
            errors.add(f"params.{key}", "choose a user" + (" or the record's owner" if allow_owner else ""))
            return
        clean[key] = int(value)

    def number(key: str, default: int, *, minimum: int | None = None) -> int:
        raw = params.get(key, default)
        try:
            value = int(raw if raw not in ("", None) else default)
        except (TypeError, ValueError):
            errors.add(f"params.{key}", "must be a whole number")
            return default
        if minimum is not None and value < minimum:
            errors.add(f"params.{key}", f"must be {minimum} or more")
        clean[key] = value
        return value

    def template(key: str, *, required: bool = True) -> None:
        name = str(params.get(key) or "").strip()
        if not name:
            if required:
                errors.add(f"params.{key}", "choose a mail template")
            clean[key] = ""
            return
        if (
            session.scalars(select(col(m.EmailTemplate.id)).where(col(m.EmailTemplate.name) == name)).first()
            is None
        ):
            errors.add(f"params.{key}", f"no mail template named {name!r}")
        clean[key] = name

    def role(key: str, *, required: bool = True) -> None:
        value = str(params.get(key) or "").strip()
        if not value and not required:
            clean[key] = ""
            return
        if value not in ROLES:
            errors.add(f"params.{key}", f"one of {', '.join(ROLES)}")
        if value in ("installer", "reseller") and entity != "opportunity":
            errors.add(f"params.{key}", "only opportunities have partners")
        if value == "team" and entity != "opportunity":
            errors.add(f"params.{key}", "only deals have a team (their owner and followers)")
        if value == "user":
            user("user_id", allow_owner=False)
        if value == "group":
            raw = str(params.get("group_id") or "").strip()
            if not raw.isdigit() or session.get(m.UserGroup, int(raw)) is None:
                errors.add("params.group_id", "choose a group (Settings > Users)")
            else:
                clean["group_id"] = int(raw)
        clean[key] = value

    if action == "send_email":
        template("template")
        role("to")
        extra = str(params.get("extra") or "").strip()
        if extra and "@" not in extra:
            errors.add("params.extra", "not an email address")
        clean["extra"] = extra
        account = str(params.get("account") or "").strip()
        if (
            account
            and session.scalars(
                select(col(m.MailAccount.id)).where(col(m.MailAccount.name) == account)
            ).first()
            is None
        ):
            errors.add("params.account", f"no mail account named {account!r}")
        clean["account"] = account
    elif action == "plan_activity":
        kind = str(params.get("type") or "task")
        if kind not in ("call", "meeting", "task"):
            errors.add("params.type", "call, meeting or task")
        clean["type"] = kind
        clean["task_type"] = str(params.get("task_type") or "").strip()
        text("subject", required=True)
        text("description")
        number("due_value", 0)
        unit = str(params.get("due_unit") or "days")
        if unit not in fields.UNITS:
            errors.add("params.due_unit", f"one of {', '.join(fields.UNITS)}")
        clean["due_unit"] = unit
        at = str(params.get("at_time") or "").strip()
        try:
            fields.parse_at_time(at)
        except CrmError as exc:
            errors.add("params.at_time", str(exc))
        clean["at_time"] = at
        number("duration_minutes", 30, minimum=0)
        user("owner")
        clean["complete_on_exit"] = bool(params.get("complete_on_exit"))
    elif action == "repeat_lead":
        text("title", required=True)
        user("owner")
    elif action == "copy_deal":
        raw = str(params.get("stage_id") or "")
        stage = session.get(m.Stage, int(raw)) if raw.isdigit() else None
        if stage is None:
            errors.add("params.stage_id", "choose the pipeline stage the copy starts in")
        clean["stage_id"] = stage.id if stage else None
        text("title", default="{{ deal.title }} (Copy)")
        user("owner")
    elif action == "set_substate":
        raw = str(params.get("substate_id") or "")
        if not raw.isdigit() or session.get(m.SubstateDefinition, int(raw)) is None:
            errors.add("params.substate_id", "choose a sub-state")
        clean["substate_id"] = int(raw) if raw.isdigit() else None
        clean["open"] = bool(params.get("open", True))
    elif action == "assign":
        target = str(params.get("field") or "owner")
        if target not in ASSIGN_FIELDS:
            errors.add("params.field", f"one of {', '.join(ASSIGN_FIELDS)}")
        elif target != "owner" and entity != "opportunity":
            errors.add("params.field", "only opportunities have partners")
        method = str(params.get("method") or "round_robin")
        if method not in ASSIGN_METHODS:
            errors.add("params.method", f"one of {', '.join(ASSIGN_METHODS)}")
        elif method in ("region", "postcode") and target == "owner":
            errors.add("params.method", "region and postcode matches choose partners (installer or reseller)")
        candidates = [int(c) for c in params.get("candidates") or [] if str(c).isdigit()]
        model = m.User if target == "owner" else m.Organization
        missing = [c for c in candidates if session.get(model, c) is None]
        if missing:
            errors.add("params.candidates", f"unknown: {', '.join(map(str, missing))}")
        clean.update(field=target, method=method, candidates=candidates)
    elif action == "report":
        name = str(params.get("template") or "").strip()
        if not name:
            errors.add("params.template", "choose a report template")
        clean["template"] = name
        role("email_to", required=False)
        template("email_template", required=False)
    return clean


# --- running ---------------------------------------------------------------------------------------------


def run(
    session: Session, rule: m.AutomationRule, job: m.AutomationJob, record: Any, ctx: FireContext
) -> Done:
    params = params_of(rule)
    handler = _HANDLERS.get(rule.action)
    if handler is None:
        raise CrmError(f"unknown action {rule.action!r}")
    return handler(session, rule, job, record, params, ctx)


def _text(
    ctx: FireContext,
    job: m.AutomationJob,
    rule: m.AutomationRule,
    key: str,
    text: str,
    context: Any,
    *,
    ahead: bool = False,
    lines: bool = False,
) -> str:
    """A rule's text filled for the job: one line (a subject, a title), or with ``lines`` a text of several lines
    (a description)."""
    pair = ("", text) if lines else (text, "")
    return rendered(ctx, job, pair, _later(context), name=f"{rule.name}: {key}", ahead=ahead)[int(lines)]


def _later(context: Any) -> Callable[[], dict[str, Any]]:
    return context if callable(context) else lambda: context


def prerender(
    session: Session, rule: m.AutomationRule, job: m.AutomationJob, record: Any, ctx: FireContext
) -> None:
    """Fill the texts the job's action will use (into ``ctx.rendered``), in a read session before the engine
    takes the write lock: a template that takes its full 2 s, or fails, holds no other writer up. Anything
    else that fails here is said when the job fires."""
    params = params_of(rule)
    made: list[dict[str, Any]] = []

    def context() -> dict[str, Any]:
        if not made:
            made.append(merge_context(session, job, ctx))
        return made[0]

    try:
        if rule.action == "plan_activity":
            _text(ctx, job, rule, "subject", params.get("subject") or "", context, ahead=True)
            if params.get("description"):
                _text(ctx, job, rule, "description", params["description"], context, ahead=True, lines=True)
        elif rule.action in ("repeat_lead", "copy_deal"):
            default = "{{ deal.title }} (Copy)" if rule.action == "copy_deal" else ""
            _text(ctx, job, rule, "title", params.get("title") or default, context, ahead=True)
        elif rule.action == "send_email":
            _mail_texts(session, ctx, job, params.get("template"), context, ahead=True)
        elif rule.action == "report":
            reports.render_text(session, params.get("template") or "", job, record, ctx, ahead=True)
            if params.get("email_to"):
                _mail_texts(session, ctx, job, params.get("email_template") or None, context, ahead=True)
    except Exception:  # noqa: BLE001 - said when the job fires (and recorded as its failure there)
        return


def _template_named(session: Session, name: str) -> m.EmailTemplate | None:
    templates = session.info.setdefault("automation_templates", {})
    if name not in templates:
        templates[name] = session.scalars(
            select(m.EmailTemplate).where(col(m.EmailTemplate.name) == name)
        ).first()
    template: m.EmailTemplate | None = templates[name]
    return template


def _mail_texts(
    session: Session,
    ctx: FireContext,
    job: m.AutomationJob,
    template_name: str | None,
    context: Any,
    *,
    ahead: bool = False,
) -> tuple[str, str] | None:
    """(subject, body) of the mail template named ``template_name`` filled for the job (None: no template)."""
    if not template_name:
        return None
    template = _template_named(session, template_name)
    if template is None:
        raise CrmError(f"the mail template {template_name!r} was deleted")
    source = (template.subject, template.body)
    return rendered(ctx, job, source, _later(context), name=template.name, ahead=ahead)


def _fill(text: str, context: dict[str, Any]) -> str:
    return email_templates.render((text, ""), context)[0]


def _owner(session: Session, value: Any, record: Any) -> int | None:
    if value == "owner" or value in (None, ""):
        return getattr(record, "owner_id", None)
    return int(value)


def _local_today(ctx: FireContext) -> date:
    return ctx.now.astimezone(ctx.zone).date() if ctx.zone else ctx.now.date()


def _plan_activity(
    session: Session,
    rule: m.AutomationRule,
    job: m.AutomationJob,
    record: Any,
    params: dict[str, Any],
    ctx: FireContext,
) -> Done:

    context = merge_context(session, job, ctx)
    start = fields.shifted(
        job.due_at if job.due_at <= ctx.now else ctx.now,
        int(params.get("due_value") or 0), params.get("due_unit") or "days",
        at_time=params.get("at_time") or None, zone=fields.zone_of(rule.zone),
    )  # fmt: skip
    if start < ctx.now - timedelta(days=3650):
        start = ctx.now
    links: dict[str, Any] = {}
    if job.record_type == "opportunity":
        links["opportunity_id"] = record.id
        links["organization_id"] = record.organization_id

        primary = email_templates.primary_contact(session, record)
        links["contact_id"] = primary.id if primary is not None else None
    elif job.record_type == "lead":
        links["lead_id"] = record.id
    elif job.record_type == "ticket":
        links.update(
            ticket_id=record.id, contact_id=record.contact_id, organization_id=record.organization_id
        )
    duration = int(params.get("duration_minutes") or 0)
    activity = activities.create_activity(
        session,
        activities.ActivityInput(
            subject=_text(ctx, job, rule, "subject", params["subject"], context),
            description=_text(ctx, job, rule, "description", params["description"], context, lines=True)
            if params.get("description")
            else None,
            type=params.get("type") or "task",
            task_type=params.get("task_type") or None,
            start_at=start,
            end_at=start + timedelta(minutes=duration) if duration else None,
            owner_id=_owner(session, params.get("owner"), record),
            **links,
        ),
        now=ctx.now,
    )
    local = start.astimezone(ctx.zone) if ctx.zone else start
    return Done(
        f"planned {activity.type} {activity.subject!r} for {local:%Y-%m-%d %H:%M}", f"activity:{activity.id}"
    )


def _repeat_lead(
    session: Session,
    rule: m.AutomationRule,
    job: m.AutomationJob,
    record: Any,
    params: dict[str, Any],
    ctx: FireContext,
) -> Done:

    context = merge_context(session, job, ctx)
    organization_id = getattr(record, "organization_id", None)
    contact = None
    if job.record_type == "opportunity":
        contact = email_templates.primary_contact(session, record)
    elif job.record_type == "ticket" and record.contact_id:
        contact = session.get(m.Contact, record.contact_id)
    organization = session.get(m.Organization, organization_id) if organization_id else None
    contact_id = contact.id if contact is not None else None
    address = email_templates.first_address_and_phone(session, contact.id)[0] if contact is not None else None
    emails = [address] if address else []
    lead = leads.create_lead(
        session,
        leads.LeadInput(
            title=_text(ctx, job, rule, "title", params["title"], context),
            person_name=contact.name if contact else None,
            company_name=organization.name if organization else None,
            emails=emails,
            source="repeat business",
            owner_id=_owner(session, params.get("owner"), record),
            organization_id=organization_id,
            contact_id=contact_id,
            description=f"Repeat business from {job.record_type}:{record.id}",
        ),
        now=ctx.now,
    )
    return Done(f"created lead {lead.title!r}", f"lead:{lead.id}")


def _copy_deal(
    session: Session,
    rule: m.AutomationRule,
    job: m.AutomationJob,
    record: Any,
    params: dict[str, Any],
    ctx: FireContext,
) -> Done:

    stage = session.get(m.Stage, params.get("stage_id"))
    if stage is None:
        raise CrmError("the target stage of the copy no longer exists")
    context = merge_context(session, job, ctx)
    contacts = opportunities.contacts_of(session, record.id)

    custom = custom_fields.get_values(session, RecordRef(RecordType.OPPORTUNITY, record.id)) or None
    copy = opportunities.create_opportunity(
        session,
        opportunities.OpportunityInput(
            title=_text(ctx, job, rule, "title", params.get("title") or "{{ deal.title }} (Copy)", context)[
                :200
            ],
            pipeline_id=stage.pipeline_id,
            stage_id=stage.id,
            amount_cents=record.amount_cents,
            currency=record.currency,
            expected_close=record.expected_close,
            owner_id=_owner(session, params.get("owner"), record),
            organization_id=record.organization_id,
            installer_id=record.installer_id,
            reseller_id=record.reseller_id,
            contact_ids=[c for c, _ in contacts],
            primary_contact_id=next((c for c, primary in contacts if primary), None),
            description=record.description,
            source_lead_id=record.source_lead_id,
            custom=custom,
        ),
        now=ctx.now,
        user_id=None,
    )
    copy.copied_from_id = record.id
    session.add(copy)
    session.flush()
    pipeline = session.get(m.Pipeline, stage.pipeline_id)
    return Done(
        f"copied to {pipeline.name if pipeline else '?'} / {stage.name}: {copy.title!r}",
        f"opportunity:{copy.id}",
    )


def _set_substate(
    session: Session,
    rule: m.AutomationRule,
    job: m.AutomationJob,
    record: Any,
    params: dict[str, Any],
    ctx: FireContext,
) -> Done:

    definition = session.get(m.SubstateDefinition, params.get("substate_id"))
    if definition is None:
        raise CrmError("the sub-state no longer exists")
    if definition.stage_id != record.stage_id:
        raise CrmError(f"{definition.name!r} is not a sub-state of the deal's current stage")
    is_open = bool(params.get("open", True))
    changed = opportunities.set_substate(
        session, record.id, stored_id(definition.id), is_open, now=ctx.now, user_id=None
    )
    verb = "opened" if is_open else "closed"
    return Done(f"{verb} {definition.name!r}" if changed else f"{definition.name!r} was already {verb}")


def _open_deal_counts(session: Session, column: Any, candidates: list[int]) -> dict[int, int]:
    open_stages = select(col(m.Stage.id)).where(col(m.Stage.kind) == "open")
    rows = session.execute(
        select(column, func.count())
        .where(column.in_(candidates), col(m.Opportunity.stage_id).in_(open_stages))
        .group_by(column)
    ).all()
    counts = dict.fromkeys(candidates, 0)
    counts.update({key: count for key, count in rows})
    return counts


def _assign(
    session: Session,
    rule: m.AutomationRule,
    job: m.AutomationJob,
    record: Any,
    params: dict[str, Any],
    ctx: FireContext,
) -> Done:
    target, method = params.get("field", "owner"), params.get("method", "round_robin")
    candidates: list[int] = list(params.get("candidates") or [])
    if not candidates:
        if target == "owner":
            candidates = list(session.scalars(
                select(col(m.User.id)).where(col(m.User.active).is_(True), col(m.User.organization_id).is_(None)).order_by(col(m.User.id))
            ))  # fmt: skip
        else:
            candidates = list(session.scalars(
                select(col(m.Organization.id)).where(col(m.Organization.kind) == target).order_by(col(m.Organization.id))
            ))  # fmt: skip
    if not candidates:
        raise CrmError(f"nobody to assign as {target}")
    column_name = {"owner": "owner_id", "installer": "installer_id", "reseller": "reseller_id"}[target]
    chosen: int | None = None
    if method == "round_robin":
        chosen = candidates[rule.cursor % len(candidates)]
        rule.cursor += 1
        session.add(rule)
    elif method == "fewest_open":
        column = (
            getattr(m.Opportunity, column_name)
            if job.record_type == "opportunity"
            else fields.MODELS[job.record_type].owner_id
        )
        counts = _open_deal_counts(session, column, candidates)
        chosen = min(candidates, key=lambda c: (counts[c], candidates.index(c)))
    else:
        organization = session.get(m.Organization, record.organization_id) if record.organization_id else None
        place = (getattr(organization, method, None) or "").strip() if organization else ""
        if not place:
            raise CrmError(f"the customer has no {method}: no {target} can be matched")
        coverage = session.execute(
            select(
                col(m.PartnerCoverage.organization_id),
                col(m.PartnerCoverage.region),
                col(m.PartnerCoverage.postcode_prefix),
            )
            .where(col(m.PartnerCoverage.organization_id).in_(candidates))
            .order_by(col(m.PartnerCoverage.organization_id))
        ).all()
        if method == "region":
            matches = [org for org, region, _ in coverage if region and region.casefold() == place.casefold()]
        else:
            best = max((len(p) for _, _, p in coverage if p and place.startswith(p)), default=0)
            matches = [org for org, _, p in coverage if p and place.startswith(p) and len(p) == best]
        matches = list(dict.fromkeys(matches))
        if not matches:
            raise CrmError(f"no {target} covers {method} {place!r}")
        column = getattr(m.Opportunity, column_name)
        counts = _open_deal_counts(session, column, matches)
        chosen = min(matches, key=lambda c: (counts[c], matches.index(c)))
    setattr(record, column_name, chosen)
    record.updated_at = ctx.now
    session.add(record)
    session.flush()

    schedule.fields_changed(session, job.record_type, record, [target], now=ctx.now)
    model = m.User if target == "owner" else m.Organization
    name = getattr(session.get(model, chosen), "name", str(chosen))
    return Done(f"assigned {target} {name} ({method.replace('_', ' ')})")


# --- mail ---------------------------------------------------------------------------------------------------


def _role_addresses(
    session: Session,
    role: str,
    record: Any,
    record_type: str,
    params: dict[str, Any],
    context: dict[str, Any],
) -> list[str]:
    if role == "owner":
        owner = (
            session.get(m.User, getattr(record, "owner_id", None))
            if getattr(record, "owner_id", None)
            else None
        )
        return [owner.email] if owner else []
    if role == "user":
        user = session.get(m.User, params.get("user_id"))
        return [user.email] if user else []
    if role in ("team", "group"):
        # Read when the mail is written: whoever follows the deal or belongs to the group then.
        ids = (
            team.team_user_ids(session, record)
            if role == "team"
            else team.group_user_ids(session, int(params.get("group_id") or 0))
        )
        addresses = [user.email for user in map(lambda i: session.get(m.User, i), ids) if user is not None]
        return list(dict.fromkeys(addresses))
    if role in ("installer", "reseller"):
        partner_id = getattr(record, f"{role}_id", None)
        if not partner_id:
            return []
        address = (
            session.scalars(
                select(col(m.OrganizationEmail.address)).where(
                    col(m.OrganizationEmail.organization_id) == partner_id
                )
            ).first()
            or session.scalars(
                select(col(m.User.email))
                .where(col(m.User.organization_id) == partner_id, col(m.User.active).is_(True))
                .order_by(col(m.User.id))
            ).first()
        )
        return [address] if address else []
    # the primary contact (or the lead), as the mail's merge fields have it
    person = context.get("lead" if record_type == "lead" else "contact")
    values = getattr(person, "_get", lambda: person)()
    address = getattr(values, "_values", {}).get("email")
    return [address] if address else []


ROLE_WORDS = {"primary_contact": "the primary contact", "owner": "the owner", "installer": "the installer",
              "reseller": "the reseller", "user": "the chosen user",
              "team": "the team (owner and followers)", "group": "the group"}  # fmt: skip


def role_words(session: Session, role: str, params: dict[str, Any]) -> str:
    """Whom a mail goes to in words; a group by its name ("the group 'Service'")."""
    if role == "group":
        name = team.group_name(session, params.get("group_id"))
        return f"the group {name!r}" if name else "a deleted group"
    return ROLE_WORDS.get(role, role)


def _identity(session: Session, record: Any, params: dict[str, Any], me_id: int | None = None) -> Any:
    # Accounts and their identities are read once per firing batch (the session).
    if "automation_identities" not in session.info:
        session.info["automation_identities"] = (
            mail_accounts.identities(session),
            {a.id: a.user_id for a in mail_accounts.list_accounts(session)},
        )
    identities, accounts = session.info["automation_identities"]
    account = params.get("account")
    if account:
        found = [i for i in identities if i.account == account]
        if not found:
            raise CrmError(f"the rule's mail account {account!r} has no address to send from")
        return found[0]
    # The owner's account; a record without an owner sends as the user running crm-tui.
    owner_id = getattr(record, "owner_id", None) or me_id
    found = [i for i in identities if accounts.get(i.account_id) == owner_id]
    if not found:
        owner = session.get(m.User, owner_id) if owner_id else None
        who = owner.name if owner else "the record (no owner)"
        raise CrmError(f"{who} has no mail account to send from; set one on the rule")
    return found[0]


def _queue_mail(
    session: Session,
    job: m.AutomationJob,
    record: Any,
    ctx: FireContext,
    *,
    role: str,
    params: dict[str, Any],
    template_name: str | None,
    attachments: list[tuple[str, str, bytes]],
    fallback: tuple[str, str] | None = None,
) -> str:
    if ctx.build is None:
        raise CrmError("mail cannot be written here (no mail builder given)")
    context = merge_context(session, job, ctx)
    to = _role_addresses(session, role, record, job.record_type, params, context)
    if not to:
        raise CrmError(f"{role_words(session, role, params)} has no email address")
    if params.get("extra"):
        to.append(params["extra"])
    texts = _mail_texts(session, ctx, job, template_name, context)
    if texts is not None:
        subject, body = texts
    elif fallback is not None:
        subject, body = fallback
    else:
        raise CrmError("no mail template")
    identity = _identity(session, record, params, ctx.me_id)
    if identity.signature:
        body = body.rstrip("\n") + "\n\n-- \n" + identity.signature.strip("\n") + "\n"
    raw, message_id, envelope = ctx.build(identity.name, identity.address, to, subject, body, attachments)
    item = outbox.queue(
        session, account_id=identity.account_id, message_id=message_id, from_address=identity.address,
        recipients=envelope, subject=subject, raw=raw, now=ctx.now, record=(job.record_type, record.id),
    )  # fmt: skip
    return f"mail {subject!r} to {', '.join(to)} queued (outbox {item.id})"


def _send_email(
    session: Session,
    rule: m.AutomationRule,
    job: m.AutomationJob,
    record: Any,
    params: dict[str, Any],
    ctx: FireContext,
) -> Done:
    message = _queue_mail(
        session, job, record, ctx, role=params.get("to", "primary_contact"), params=params,
        template_name=params.get("template"), attachments=[],
    )  # fmt: skip
    return Done(message)


def _report(
    session: Session,
    rule: m.AutomationRule,
    job: m.AutomationJob,
    record: Any,
    params: dict[str, Any],
    ctx: FireContext,
) -> Done:

    if ctx.documents is None:
        raise CrmError("reports cannot be stored here (no document store given)")
    title, pdf = reports.render_pdf(session, params["template"], job, record, ctx)
    day = _local_today(ctx)
    filename = safe_filename(f"{title.replace(':', ' -')} {day.isoformat()}.pdf")
    handle, temporary = tempfile.mkstemp(prefix="crm-tui-report-", suffix=".pdf")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(pdf)
        document = add_document(
            session, job_ref(job), Path(temporary), store=ctx.documents, added_by_id=None,
            now=ctx.now, filename=filename,
        )  # fmt: skip
    finally:
        Path(temporary).unlink(missing_ok=True)
    message = f"report {filename!r} stored ({len(pdf):,} bytes)"
    if params.get("email_to"):
        mailed = _queue_mail(
            session, job, record, ctx, role=params["email_to"], params=params,
            template_name=params.get("email_template") or None,
            attachments=[(filename, "application/pdf", pdf)],
            fallback=(title, f"Please find the report {title!r} attached.\n"),
        )  # fmt: skip
        message += f"; {mailed}"
    return Done(message, f"document:{document.id}")


_HANDLERS: dict[str, Callable[..., Done]] = {
    "send_email": _send_email,
    "plan_activity": _plan_activity,
    "repeat_lead": _repeat_lead,
    "copy_deal": _copy_deal,
    "set_substate": _set_substate,
    "assign": _assign,
    "report": _report,
}


def describe_for(
    session: Session, rule: m.AutomationRule, ref: RecordRef, *, me_id: int | None, today: date
) -> str:
    """The action in words for one record, its merge fields filled ("plan call 'Contract approval: call Elif
    Huber'"), as it will fire; a field the record cannot fill is named, never shown as ``{{ contact.name }}``."""
    context = email_templates.merge_context(session, [ref], me_id=me_id, today=today)
    try:
        return describe(session, rule, fill=lambda text: _fill(text, context))
    except CrmError as exc:
        return f"{ACTIONS.get(rule.action, rule.action).lower()}, which will fail: {exc}"


def describe(session: Session, rule: m.AutomationRule, fill: Callable[[str], str] | None = None) -> str:
    """The action in words ("send 'Reminder' to the primary contact"); ``fill`` fills the merge fields of a
    subject or title for a record (else they are shown as written in the rule)."""
    params = params_of(rule)
    action = rule.action
    if fill is not None:
        for key in ("subject", "title"):
            if params.get(key):
                params = {**params, key: fill(str(params[key]))}
    if action == "send_email":
        return f"mail {params.get('template')!r} to {role_words(session, str(params.get('to', '')), params)}"
    if action == "plan_activity":
        extra = ", completed on exit" if params.get("complete_on_exit") else ""
        return f"plan {params.get('type', 'task')} {params.get('subject')!r}{extra}"
    if action == "repeat_lead":
        return f"repeat lead {params.get('title')!r}"
    if action == "copy_deal":
        stage = session.get(m.Stage, params.get("stage_id"))
        pipeline = session.get(m.Pipeline, stage.pipeline_id) if stage else None
        return f"copy to {pipeline.name if pipeline else '?'} / {stage.name if stage else '?'}"
    if action == "set_substate":
        definition = session.get(m.SubstateDefinition, params.get("substate_id"))
        return f"{'open' if params.get('open', True) else 'close'} {definition.name if definition else '?'!r}"
    if action == "assign":
        return f"assign {params.get('field')} by {str(params.get('method', '')).replace('_', ' ')}"
    if action == "report":
        mailed = (
            f", mailed to {role_words(session, str(params['email_to']), params)}"
            if params.get("email_to")
            else ""
        )
        return f"PDF report {params.get('template')!r}{mailed}"
    return ACTIONS.get(action, action)
