"""What the Settings mode lists and edits, as plain data: users, pipelines with their stages and sub-states,
custom field definitions, mail accounts and mail templates. The services that change them are ``users``,
``pipelines``, ``custom_fields``, ``mail_accounts`` and ``email_templates``; these views only read."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import select
from sqlmodel import Session, col

from crm_tui.core import models as m
from crm_tui.core.services import (
    custom_fields,
    email_templates,
    mail_accounts,
    mailbox,
    opportunities,
    organizations,
    pipelines,
    users,
)
from crm_tui.core.services.rows import id_of

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

V = TypeVar("V", bound="DataclassInstance")


def _view(cls: type[V], row: Any, **extra: Any) -> V:
    """A frozen copy of a row's columns that ``cls`` names (``extra`` fills the rest; a field the row lacks
    keeps its default)."""
    names = [f.name for f in dataclasses.fields(cls) if f.name not in extra and hasattr(row, f.name)]
    return cls(**{name: getattr(row, name) for name in names}, **extra)


@dataclass(frozen=True)
class UserView:
    id: int
    name: str
    email: str
    organization_id: int | None
    active: bool
    belongs_to: str  # the partner organization's name, or "our company"
    is_me: bool


@dataclass(frozen=True)
class PipelineView:
    id: int
    name: str


@dataclass(frozen=True)
class StageView:
    id: int
    pipeline_id: int
    name: str
    position: int
    kind: str
    probability: int
    substates: tuple[str, ...] = ()
    deals: int = 0


@dataclass(frozen=True)
class SubstateView:
    id: int
    name: str


@dataclass(frozen=True)
class FieldView:
    id: int
    entity_type: str
    key: str
    label: str
    field_type: str
    choices: str | None
    required: bool


@dataclass(frozen=True)
class AccountView:
    id: int
    name: str
    preset: str
    imap_host: str
    imap_port: int
    imap_security: str
    ca_cert: str | None
    username: str
    password_source: str
    password_ref: str | None
    smtp_host: str | None
    smtp_port: int | None
    smtp_security: str | None
    addresses: str
    refresh_minutes: int
    sync_since: date | None
    signature: str
    sent_copy: str = "server"  # server | folder | none (mail_accounts.SENT_COPIES)
    sent_copy_folder: str | None = None
    folders: tuple[str, ...] = ()  # its synced folders (account_view only): where sent copies may go


@dataclass(frozen=True)
class TemplateView:
    id: int
    name: str
    subject: str
    body: str
    description: str | None


def user_views(session: Session, *, me: str | None) -> list[UserView]:
    """Every user (inactive too), with the partner organization each belongs to; ``me``: the configured address."""
    current = users.current_user(session, me)
    names = dict(session.execute(select(col(m.Organization.id), col(m.Organization.name))).all())
    return [
        _view(
            UserView,
            user,
            belongs_to=names.get(user.organization_id, "our company")
            if user.organization_id
            else "our company",
            is_me=current is not None and current.id == user.id,
        )
        for user in users.list_users(session)
    ]


def current_user_name(session: Session, me: str | None) -> str | None:
    """The name of the user who is "me" (the configured address, else the first user), or None."""
    user = users.current_user(session, me)
    return user.name if user is not None else None


def user_view(session: Session, user_id: int) -> UserView | None:
    user = session.get(m.User, user_id)
    if user is None:
        return None
    partner = session.get(m.Organization, user.organization_id) if user.organization_id else None
    return _view(UserView, user, belongs_to=partner.name if partner else "our company", is_me=False)


def partner_choices(session: Session) -> list[tuple[int, str]]:
    """The organizations a user can belong to: installers, then resellers (id, name)."""
    return [
        (id_of(o), o.name)
        for kind in ("installer", "reseller")
        for o in organizations.search_organizations(session, kind=kind, limit=None)
    ]


def pipeline_views(session: Session) -> list[PipelineView]:
    return [_view(PipelineView, p) for p in pipelines.pipelines(session)]


def stage_views(session: Session, pipeline_id: int, *, counted: bool = True) -> list[StageView]:
    """A pipeline's stages in order; ``counted``: each with its sub-states' names and how many deals are in it."""
    if not counted:
        return [_view(StageView, stage) for stage in pipelines.stages_of(session, pipeline_id)]
    return [
        _view(
            StageView,
            stage,
            substates=tuple(s.name for s in pipelines.substates_of(session, id_of(stage))),
            deals=opportunities.count_in_stage(session, id_of(stage)),
        )
        for stage in pipelines.stages_of(session, pipeline_id)
    ]


def adjacent_stage(session: Session, deal_id: int, step: int) -> StageView | None:
    """The stage ``step`` places after (before, if negative) the deal's current one; None at either end."""
    stage = opportunities.adjacent_stage(session, deal_id, step)
    return _view(StageView, stage) if stage is not None else None


def deal_substates(session: Session, deal_id: int) -> list[tuple[int, str, bool]]:
    """The sub-states of the deal's current stage: (id, name, open on the deal)."""
    deal = session.get(m.Opportunity, deal_id)
    if deal is None:
        return []
    open_ids = {s.id for s in opportunities.open_substates(session, deal_id)}
    return [(id_of(s), s.name, s.id in open_ids) for s in pipelines.substates_of(session, deal.stage_id)]


def stage_view(session: Session, stage_id: int) -> StageView | None:
    stage = session.get(m.Stage, stage_id)
    return _view(StageView, stage) if stage is not None else None


def substate_views(session: Session, stage_id: int) -> list[SubstateView]:
    return [_view(SubstateView, s) for s in pipelines.substates_of(session, stage_id)]


def field_views(session: Session, entity_type: str) -> list[FieldView]:
    return [_view(FieldView, d) for d in custom_fields.definitions_for(session, entity_type)]


def field_view(session: Session, definition_id: int) -> FieldView | None:
    definition = session.get(m.CustomFieldDefinition, definition_id)
    return _view(FieldView, definition) if definition is not None else None


def account_views(session: Session) -> list[AccountView]:
    return [_view(AccountView, a) for a in mail_accounts.list_accounts(session)]


def account_view(session: Session, account_id: int) -> AccountView | None:
    account = session.get(m.MailAccount, account_id)
    if account is None:
        return None
    return _view(AccountView, account, folders=tuple(f.name for f in mailbox.folders_of(session, account_id)))


def template_views(session: Session) -> list[TemplateView]:
    return [_view(TemplateView, t) for t in email_templates.list_templates(session)]


def template_view(session: Session, template_id: int) -> TemplateView | None:
    template = session.get(m.EmailTemplate, template_id)
    return _view(TemplateView, template) if template is not None else None
