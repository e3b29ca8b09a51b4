"""Users (ours or a partner's) and who "me" is."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlmodel import Session, col

from crm_tui.core import models as m
from crm_tui.core.errors import ConfigError, FieldErrors, NotFound
from crm_tui.core.field_checks import check_emails, check_text
from crm_tui.core.services.rows import check_exists, get_or_404, id_of

PARTNER_KINDS = (m.OrganizationKind.INSTALLER.value, m.OrganizationKind.RESELLER.value)


@dataclass
class UserInput:
    name: str
    email: str
    organization_id: int | None = None
    active: bool = True


def _check(session: Session, data: UserInput, current_id: int | None) -> tuple[str, str]:
    errors = FieldErrors()
    name = check_text(errors, "name", data.name, required=True, max_length=120) or ""
    emails = check_emails(errors, "email", [data.email])
    if not emails and "email" not in errors.errors:
        errors.add("email", "is required")
    email = emails[0] if emails else ""
    if email:
        other = session.scalars(select(m.User).where(col(m.User.email) == email)).first()
        if other is not None and other.id != current_id:
            errors.add("email", f"{email} belongs to another user")
    organization = check_exists(session, errors, "organization_id", m.Organization, data.organization_id)
    if organization is not None and organization.kind not in PARTNER_KINDS:
        errors.add("organization_id", "a user belongs to our company (none) or to a partner organization")
    errors.raise_if_any()
    return name, email


def create_user(session: Session, data: UserInput, *, now: datetime) -> m.User:
    name, email = _check(session, data, None)
    user = m.User(
        name=name, email=email, organization_id=data.organization_id, active=data.active, created_at=now
    )
    session.add(user)
    session.flush()
    return user


def update_user(session: Session, user_id: int, data: UserInput) -> m.User:
    user = get_or_404(session, m.User, user_id, "user")
    user.name, user.email = _check(session, data, user_id)
    user.organization_id = data.organization_id
    user.active = data.active
    session.add(user)
    session.flush()
    return user


def list_users(session: Session, *, include_inactive: bool = True) -> list[m.User]:
    query = select(m.User).order_by(col(m.User.id))
    if not include_inactive:
        query = query.where(col(m.User.active).is_(True))
    return list(session.scalars(query))


def current_user(session: Session, me: str | None) -> m.User | None:
    """The user the config names as ``me`` (by e-mail), else the first user; None in an empty database."""
    if me:
        user = session.scalars(
            select(m.User).where(func.lower(col(m.User.email)) == me.strip().lower())
        ).first()
        if user is None:
            raise ConfigError(f"config: me = {me!r} is not a user in this database")
        return user
    return session.scalars(select(m.User).order_by(col(m.User.id))).first()


def user_by_email(session: Session, address: str) -> int:
    """The id of the user with that e-mail address (any case); NotFound when there is none."""
    user_id = session.scalar(
        select(col(m.User.id)).where(func.lower(col(m.User.email)) == address.strip().lower())
    )
    if user_id is None:
        raise NotFound(f"no user with the address {address.strip()!r}")
    return int(user_id)


def user_choices(session: Session) -> list[tuple[int, str]]:
    """(id, name) of every user, as an owner field offers them."""
    return [(id_of(user), user.name) for user in list_users(session)]
