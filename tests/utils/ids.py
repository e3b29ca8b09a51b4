"""The id of a row the database has numbered: a model's `id` is `int | None` until the row is flushed."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol


class _HasId(Protocol):
    @property
    def id(self) -> int | None: ...


def id_of(row: _HasId) -> int:
    """`row.id` as an int; fails the test if the row was never flushed (it has no id yet)."""
    assert row.id is not None, f"{type(row).__name__} has no id: it was never flushed"
    return row.id


def column_ids(ids: Iterable[int | None]) -> list[int]:
    """Ids read from an id column (`select(col(Model.id))`): typed `int | None` by the model, never NULL."""
    checked: list[int] = []
    for value in ids:
        assert value is not None, "an id column held NULL"
        checked.append(value)
    return checked
