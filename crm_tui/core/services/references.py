"""A record typed into a form's reference field: found by name (for completion), or resolved from
``Name [type:id]``, ``type:id`` or a name that matches one record."""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlmodel import Session, col

from crm_tui.core import models as m
from crm_tui.core.form_text import ref_text
from crm_tui.core.services import contacts, leads, opportunities, organizations
from crm_tui.core.services.records import record_exists
from crm_tui.core.services.rows import id_of
from crm_tui.core.types import RecordRef

_REF_IN_TEXT = re.compile(r"\[([a-z]+):(\d+)\]\s*$")


def matching_names(session: Session, ref_type: str, text: str, limit: int) -> list[tuple[int, str]]:
    """(id, label) of records of ``ref_type`` whose name matches ``text``."""
    if ref_type == "contact":
        return [(c.id, c.name) for c in contacts.search_contacts(session, text, limit=limit)]
    if ref_type == "organization":
        return [(id_of(o), o.name) for o in organizations.search_organizations(session, text, limit=limit)]
    if ref_type == "lead":
        return [(id_of(lead), lead.title) for lead in leads.search_leads(session, text, limit=limit)]
    if ref_type == "opportunity":
        return [(d.id, d.title) for d in opportunities.list_opportunities(session, text=text, limit=limit)]
    if ref_type == "user":
        pattern = f"%{text.lower()}%"
        rows = session.execute(
            select(col(m.User.id), col(m.User.name))
            .where(func.lower(col(m.User.name)).like(pattern) | func.lower(col(m.User.email)).like(pattern))
            .limit(limit)
        )
        return [(user_id, name) for user_id, name in rows]
    raise ValueError(f"cannot look up {ref_type} records by name")


def resolve_reference(session: Session, ref_type: str, text: str) -> int:
    """The id of the record typed as ``Name [type:id]``, ``type:id`` or a name that matches one record;
    ValueError says why there is none."""
    marked = _REF_IN_TEXT.search(text)
    candidate = f"{marked.group(1)}:{marked.group(2)}" if marked else text
    if re.fullmatch(r"[a-z]+:\d+", candidate.strip().lower()):
        ref = RecordRef.parse(candidate)
        if ref.type.value != ref_type:
            raise ValueError(f"{ref} is not a {ref_type}")
        if not record_exists(session, ref):
            raise ValueError(f"{ref} does not exist")
        return ref.id
    matches = matching_names(session, ref_type, text, 2)
    exact = [(i, label) for i, label in matches if label.lower() == text.strip().lower()]
    if len(exact) == 1 or len(matches) == 1:
        return (exact or matches)[0][0]
    if not matches:
        raise ValueError(f"no {ref_type} matches {text.strip()!r}")
    raise ValueError(
        f"several {ref_type}s match {text.strip()!r}: type more, or pick one from the completion"
    )


def suggest_reference(session: Session, ref_type: str, text: str) -> str | None:
    """The completion of ``text`` as ``Name [type:id]`` (the first record whose name starts with it)."""
    matches = matching_names(session, ref_type, text, 1)
    if not matches:
        return None
    record_id, label = matches[0]
    completion = ref_text(label, ref_type, record_id)
    return completion if completion.lower().startswith(text.lower()) else None
