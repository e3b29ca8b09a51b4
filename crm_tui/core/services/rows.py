"""Rows as the services fetch and fill them: one by id (or NotFound), a checked reference, a column of child
rows, the default owner of a new record."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from sqlalchemy import select
from sqlmodel import Session, SQLModel

from crm_tui.core.errors import FieldErrors, NotFound
from crm_tui.core.search_text import like_pattern, search_terms

M = TypeVar("M", bound=SQLModel)
D = TypeVar("D")


def owned_by_default(data: D, me_id: int | None) -> D:
    """The input with the current user as owner when it names none: I own what I create."""
    if me_id is not None and getattr(data, "owner_id", None) is None:
        return dataclasses.replace(data, owner_id=me_id)  # type: ignore[type-var]
    return data


def child_values(session: Session, value: Any, parent: Any, parent_id: int, order: Any) -> list[Any]:
    """One column of a record's child rows, in order: a contact's addresses, an organization's domains."""
    return list(session.scalars(select(value).where(parent == parent_id).order_by(order)))


def get_or_404(session: Session, model: type[M], record_id: int | None, what: str | None = None) -> M:
    """The row with that id, or NotFound naming it (``contact:42 does not exist``)."""
    row = session.get(model, record_id) if record_id is not None else None
    if row is None:
        raise NotFound(f"{what or model.__tablename__}:{record_id} does not exist")
    return row


def check_exists(
    session: Session, errors: FieldErrors, field: str, model: type[SQLModel], record_id: int | None
) -> Any | None:
    """Look up an optional reference; a dangling one becomes a field error. Returns the row or None."""
    if record_id is None:
        return None
    row = session.get(model, record_id)
    if row is None:
        errors.add(field, f"{model.__tablename__}:{record_id} does not exist")
    return row


def matching_every_word(statement: Any, search_column: Any, text: str | None) -> Any:
    """``statement`` narrowed to the rows whose ``search_column`` (a record's search text) holds every word of
    ``text``: the lists' search and their counts use the same condition."""
    for term in search_terms(text):
        statement = statement.where(search_column.like(like_pattern(term), escape="\\"))
    return statement
