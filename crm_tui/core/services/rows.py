"""Rows as the services fetch and fill them: one by id (or NotFound), a checked reference, a column of child
rows, the default owner of a new record."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from sqlalchemy import CursorResult, Result, select
from sqlmodel import Session, SQLModel

from crm_tui.core.errors import FieldErrors, NotFound
from crm_tui.core.search_text import like_pattern, search_terms
from crm_tui.core.types import stored_id

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

M = TypeVar("M", bound=SQLModel)
D = TypeVar("D", bound="DataclassInstance")


class _Stored(Protocol):
    @property
    def id(self) -> int | None: ...


def id_of(row: _Stored) -> int:
    """The id of a row read from the database or flushed to it (a model's id is None only before that)."""
    return stored_id(row.id)


def owned_by_default(data: D, me_id: int | None) -> D:
    """The input with the current user as owner when it names none: I own what I create."""
    if me_id is not None and getattr(data, "owner_id", None) is None:
        return dataclasses.replace(data, owner_id=me_id)
    return data


def stored_ids(ids: Iterable[int | None]) -> list[int]:
    """Ids read from an id column: a model types its id ``int | None`` (None until flushed), a stored one is
    never None."""
    return cast("list[int]", list(ids))


def rows_affected(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE touched: its result is a CursorResult, which sqlmodel's
    ``Session.execute`` types as a plain Result."""
    return cast("CursorResult[Any]", result).rowcount or 0


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
