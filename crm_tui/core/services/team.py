"""A deal's team (its owner and its followers: users added to the deal) and named groups of users.

Automation mail can go to either; their addresses are the users' email, read when the mail is written. The
services take a session and never commit; what they return is plain data for the UI and the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlmodel import Session, col

from crm_tui.core import models as m
from crm_tui.core.errors import CrmError, FieldErrors, NotFound
from crm_tui.core.field_checks import check_text
from crm_tui.core.services.rows import get_or_404, id_of


@dataclass(frozen=True)
class Member:
    """A user as a follower or a group member shows it."""

    id: int
    name: str
    email: str


@dataclass(frozen=True)
class GroupView:
    id: int
    name: str
    members: tuple[Member, ...]


def _members(session: Session, user_ids: list[int]) -> tuple[Member, ...]:
    if not user_ids:
        return ()
    users = session.scalars(select(m.User).where(col(m.User.id).in_(user_ids)))
    found = {id_of(u): Member(id_of(u), u.name, u.email) for u in users}
    return tuple(found[i] for i in user_ids if i in found)


# --- followers -------------------------------------------------------------------------------------------


def followers(session: Session, opportunity_id: int) -> tuple[Member, ...]:
    """The users following the deal, in the order they were added."""
    ids = list(
        session.scalars(
            select(col(m.OpportunityFollower.user_id))
            .where(col(m.OpportunityFollower.opportunity_id) == opportunity_id)
            .order_by(col(m.OpportunityFollower.added_at), col(m.OpportunityFollower.user_id))
        )
    )
    return _members(session, ids)


def follow(session: Session, opportunity_id: int, user_id: int, *, now: datetime) -> bool:
    """Adds the user to the deal's followers; False when they follow it already."""
    get_or_404(session, m.Opportunity, opportunity_id, "opportunity")
    get_or_404(session, m.User, user_id, "user")
    if session.get(m.OpportunityFollower, (opportunity_id, user_id)) is not None:
        return False
    session.add(m.OpportunityFollower(opportunity_id=opportunity_id, user_id=user_id, added_at=now))
    session.flush()
    return True


def unfollow(session: Session, opportunity_id: int, user_id: int) -> bool:
    """Takes the user off the deal's followers; False when they did not follow it."""
    get_or_404(session, m.Opportunity, opportunity_id, "opportunity")
    row = session.get(m.OpportunityFollower, (opportunity_id, user_id))
    if row is None:
        return False
    session.delete(row)
    session.flush()
    return True


def team_user_ids(session: Session, opportunity: m.Opportunity) -> list[int]:
    """The deal's team: its owner, then its followers, each once."""
    ids = [opportunity.owner_id] if opportunity.owner_id else []
    ids += [f.id for f in followers(session, id_of(opportunity))]
    return list(dict.fromkeys(ids))


# --- groups ----------------------------------------------------------------------------------------------


def _check_name(session: Session, name: str, current_id: int | None) -> str:
    errors = FieldErrors()
    clean = check_text(errors, "name", name, required=True, max_length=80) or ""
    if clean:
        other = session.scalar(
            select(col(m.UserGroup.id)).where(func.lower(col(m.UserGroup.name)) == clean.lower())
        )
        if other is not None and other != current_id:
            errors.add("name", f"a group named {clean!r} exists already")
    errors.raise_if_any()
    return clean


def groups(session: Session) -> list[GroupView]:
    """Every group by name, with its members by name."""
    rows = list(session.scalars(select(m.UserGroup).order_by(func.lower(col(m.UserGroup.name)))))
    return [group_view(session, id_of(g)) for g in rows]


def group_view(session: Session, group_id: int) -> GroupView:
    group = get_or_404(session, m.UserGroup, group_id, "group")
    ids = list(
        session.scalars(
            select(col(m.UserGroupMember.user_id)).where(col(m.UserGroupMember.group_id) == group_id)
        )
    )
    members = sorted(_members(session, ids), key=lambda u: (u.name.casefold(), u.id))
    return GroupView(group_id, group.name, tuple(members))


def group_by_name(session: Session, name: str) -> int:
    """The id of the group with that name (any case); NotFound when there is none."""
    found = session.scalar(
        select(col(m.UserGroup.id)).where(func.lower(col(m.UserGroup.name)) == name.strip().lower())
    )
    if found is None:
        raise NotFound(f"no group named {name.strip()!r}")
    return int(found)


def create_group(session: Session, name: str, *, now: datetime) -> int:
    group = m.UserGroup(name=_check_name(session, name, None), created_at=now)
    session.add(group)
    session.flush()
    return id_of(group)


def rename_group(session: Session, group_id: int, name: str) -> None:
    group = get_or_404(session, m.UserGroup, group_id, "group")
    group.name = _check_name(session, name, group_id)
    session.add(group)
    session.flush()


def delete_group(session: Session, group_id: int) -> None:
    """Deletes the group. A rule that mails it then fails when it fires, saying the group is gone."""
    group = get_or_404(session, m.UserGroup, group_id, "group")
    session.execute(delete(m.UserGroupMember).where(col(m.UserGroupMember.group_id) == group_id))
    session.delete(group)
    session.flush()


def add_member(session: Session, group_id: int, user_id: int) -> bool:
    """False when the user is a member already."""
    get_or_404(session, m.UserGroup, group_id, "group")
    get_or_404(session, m.User, user_id, "user")
    if session.get(m.UserGroupMember, (group_id, user_id)) is not None:
        return False
    session.add(m.UserGroupMember(group_id=group_id, user_id=user_id))
    session.flush()
    return True


def remove_member(session: Session, group_id: int, user_id: int) -> bool:
    """False when the user was not a member."""
    row = session.get(m.UserGroupMember, (group_id, user_id))
    if row is None:
        return False
    session.delete(row)
    session.flush()
    return True


def group_user_ids(session: Session, group_id: int) -> list[int]:
    """The group's members (ids, by name); CrmError when the group was deleted."""
    if session.get(m.UserGroup, group_id) is None:
        raise CrmError("the rule's group no longer exists")
    return [u.id for u in group_view(session, group_id).members]


def group_name(session: Session, group_id: int | None) -> str | None:
    group = session.get(m.UserGroup, group_id) if group_id is not None else None
    return group.name if group is not None else None
