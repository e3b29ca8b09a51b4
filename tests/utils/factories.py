"""Factories: the smallest valid records, made through the services (so they obey the rules).

Their keyword arguments are typed Any: they go on to the service's input dataclass as its fields."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session

from crm_tui.core import models as m
from crm_tui.core.services import activities, contacts, leads, opportunities, organizations, pipelines, users
from tests.utils.ids import id_of

_counter = itertools.count(1)


def user(session: Session, now: datetime, name: str | None = None, **kwargs: Any) -> m.User:
    n = next(_counter)
    return users.create_user(
        session,
        users.UserInput(name=name or f"User {n}", email=f"user{n}@example.com", **kwargs),
        now=now,
    )


def organization(session: Session, now: datetime, name: str | None = None, **kwargs: Any) -> m.Organization:
    n = next(_counter)
    return organizations.create_organization(
        session,
        organizations.OrganizationInput(name=name or f"Org {n}", **kwargs),
        now=now,
    )


def contact(session: Session, now: datetime, last_name: str | None = None, **kwargs: Any) -> m.Contact:
    n = next(_counter)
    kwargs.setdefault("first_name", "Eva")
    return contacts.create_contact(
        session,
        contacts.ContactInput(last_name=last_name or f"Person{n}", **kwargs),
        now=now,
    )


def pipeline(session: Session, name: str | None = None) -> m.Pipeline:
    S = pipelines.StageInput
    return pipelines.create_pipeline(
        session,
        name or f"Pipeline {next(_counter)}",
        [
            S("Lead in", "open", 10, ["Call booked"]),
            S("Proposal", "open", 50, ["Offer sent", "Visit done"]),
            S("Won", "won", 100),
            S("Lost", "lost", 0),
        ],
    )


def deal(session: Session, now: datetime, pipe: m.Pipeline, **kwargs: Any) -> m.Opportunity:
    kwargs.setdefault("title", f"Deal {next(_counter)}")
    return opportunities.create_opportunity(
        session,
        opportunities.OpportunityInput(pipeline_id=id_of(pipe), **kwargs),
        now=now,
        user_id=None,
    )


def lead(session: Session, now: datetime, **kwargs: Any) -> m.Lead:
    kwargs.setdefault("title", f"Lead {next(_counter)}")
    return leads.create_lead(session, leads.LeadInput(**kwargs), now=now)


def activity(session: Session, now: datetime, **kwargs: Any) -> m.Activity:
    kwargs.setdefault("subject", "Call back")
    kwargs.setdefault("start_at", now + timedelta(hours=1))
    return activities.create_activity(session, activities.ActivityInput(**kwargs), now=now)


def mail_inbox(session: Session, now: datetime) -> m.MailFolder:
    """A mail account (of a new user) with its INBOX at UIDVALIDITY 1, for tests of the mail store."""
    from crm_tui.core.services import mailbox

    account = m.MailAccount(
        name=f"account{next(_counter)}", user_id=id_of(user(session, now)), preset="other", imap_host="h",
        imap_port=993, imap_security="ssl", username="u", password_source="env", addresses="",
        refresh_minutes=5, created_at=now,
    )  # fmt: skip
    session.add(account)
    session.flush()
    folder = mailbox.ensure_folder(session, id_of(account), "INBOX", "inbox")
    folder.uidvalidity = 1
    return folder
