"""Many-row inserts and updates for the sync's batches, without the per-row cost of SQLAlchemy's execution.

A batch of 500 header rows went through SQLAlchemy's executemany at about 50 µs a row, of which SQLite itself
took 20. On SQLite these helpers convert the values with the columns' own bind processors (the same stored
form as any other write: dates, booleans, custom types) and hand them to the driver's ``executemany`` on the
session's connection, inside the caller's transaction. Elsewhere (PostgreSQL, later) they are plain Core
statements.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import ColumnElement, Table, bindparam, func, insert, inspect, select, update
from sqlmodel import Session, SQLModel

from crm_tui.core.db import sqlite_driver


def table_of(model: type[SQLModel]) -> Table:
    """A table model's Table, for Core statements (SQLModel leaves ``__table__`` out of its types)."""
    table = inspect(model).local_table  # the mapper's table: ``model.__table__``
    assert isinstance(table, Table)
    return table


def _processors(table: Table, columns: Sequence[str], dialect: Any) -> list[Any]:
    """Each column's bind processor as the dialect's own statements use it: of the dialect's form of the type
    (``dialect_impl``). The type's own ``bind_processor`` skips that for a TypeDecorator: a UTC date-time then
    reached SQLite as a datetime and was stored without its ``.000000``, unlike every other write."""
    return [table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in columns]


def _tuples(rows: list[dict[str, Any]], columns: Sequence[str]) -> list[Sequence[Any]]:
    """The dicts' values as tuples in ``columns`` order."""
    if len(columns) == 1:
        name = columns[0]
        return [(row[name],) for row in rows]
    return list(map(itemgetter(*columns), rows))


_NONE = object()


def _stored(rows: list[Sequence[Any]], processors: list[Any]) -> list[Any]:
    """Tuples of values, each in its column's stored form (only the columns with a processor are touched).

    A value that is the very object of the row before in its column (a batch's booleans, its one arrival
    time) reuses that row's stored form: a processor is a function of its value, and most of a batch's
    conversions were repeats (a third of the store's Python time, measured)."""
    converting = [(index, process) for index, process in enumerate(processors) if process is not None]
    if not converting:
        return rows
    last: list[Any] = [(_NONE, None)] * len(converting)
    result = []
    for row in rows:
        values = list(row)
        for slot, (index, process) in enumerate(converting):
            value = values[index]
            before, stored = last[slot]
            if value is not before:
                stored = process(value)
                last[slot] = (value, stored)
            values[index] = stored
        result.append(values)
    return result


def among(session: Session, column: Any, values: Sequence[Any]) -> ColumnElement[bool]:
    """``column IN values`` for a batch's hundreds of values (ints or strings).

    On SQLite the values travel as one JSON parameter, read by ``json_each``: SQLAlchemy renders an IN list
    parameter by parameter at every execution, which cost the body store a tenth of its Python time (81,000
    parameters for 10,000 messages). The column's index is used either way. Elsewhere a plain IN."""
    # ``column`` is Any: a model's attribute, which the type checker sees as its value's type.
    condition: ColumnElement[bool]
    if session.get_bind().dialect.name != "sqlite":
        condition = column.in_(list(values))
        return condition
    listed = func.json_each(json.dumps(list(values))).table_valued("value")
    condition = column.in_(select(listed.c.value))
    return condition


def insert_rows(session: Session, table: Table, rows: list[dict[str, Any]]) -> list[int]:
    """Insert ``rows`` (dicts with the same keys) into ``table``; returns their new ids, in order."""
    if not rows:
        return []
    columns = list(rows[0])
    return insert_tuples(session, table, columns, _tuples(rows, columns))


def insert_tuples(
    session: Session, table: Table, columns: Sequence[str], rows: list[Sequence[Any]]
) -> list[int]:
    """Insert ``rows`` (tuples of values in ``columns`` order) into ``table``; returns their new ids, in order.
    The form the sync's batches come in: no dict per row."""
    if not rows:
        return []
    session.flush()  # pending ORM changes first, as session.execute would do
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
        return list(session.scalars(statement, [dict(zip(columns, row, strict=True)) for row in rows]))
    sql = (
        f"INSERT INTO {table.name} ({', '.join(_quoted(name) for name in columns)}) "
        f"VALUES ({', '.join('?' * len(columns))})"
    )
    cursor = sqlite_driver(connection).cursor()
    try:
        cursor.executemany(sql, _stored(rows, _processors(table, columns, connection.dialect)))
        # Within a write transaction SQLite gives each new row the largest id + 1 (no AUTOINCREMENT, no other
        # writer), so the batch's ids are the consecutive run ending at the largest.
        last = cursor.execute(f"SELECT max(id) FROM {table.name}").fetchone()[0]
    finally:
        cursor.close()
    return list(range(last - len(rows) + 1, last + 1))


def insert_plain(session: Session, table: Table, columns: Sequence[str], rows: list[Sequence[Any]]) -> None:
    """``insert_tuples`` for a table without an id to return (link rows): one executemany."""
    if not rows:
        return
    session.flush()
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        session.execute(insert(table), [dict(zip(columns, row, strict=True)) for row in rows])
        return
    sql = (
        f"INSERT INTO {table.name} ({', '.join(_quoted(name) for name in columns)}) "
        f"VALUES ({', '.join('?' * len(columns))})"
    )
    cursor = sqlite_driver(connection).cursor()
    try:
        cursor.executemany(sql, _stored(rows, _processors(table, columns, connection.dialect)))
    finally:
        cursor.close()


def update_rows(
    session: Session, table: Table, rows: list[dict[str, Any]], *, expected: Sequence[str] = ()
) -> None:
    """``UPDATE table SET ... WHERE id = :id`` for each row (dicts with the same keys, one of them ``id``).

    ``expected``: columns that most rows already hold with these values (the sync writes a message's header
    fields with its headers, then again with its body). On SQLite they go into the WHERE clause instead of
    the SET list, so SQLite leaves their indexes alone (a fifth of the update's time with four indexed header
    columns, measured); a row that holds other values is then written in full. The result is the same."""
    if not rows:
        return
    columns = [name for name in rows[0] if name != "id"]
    session.flush()
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        statement = (
            update(table)
            .where(table.c.id == bindparam("_id"))
            .values({name: bindparam(name) for name in columns})
        )
        session.execute(
            statement, [{**{k: v for k, v in row.items() if k != "id"}, "_id": row["id"]} for row in rows]
        )
        return
    cursor = sqlite_driver(connection).cursor()
    try:
        if not expected:
            order = [*columns, "id"]
            cursor.executemany(
                f"UPDATE {table.name} SET {', '.join(f'{_quoted(name)} = ?' for name in columns)} WHERE id = ?",
                _stored(_tuples(rows, order), _processors(table, order, connection.dialect)),
            )
            return
        assigned = [name for name in columns if name not in expected]
        same = " AND ".join(f"{_quoted(name)} IS ?" for name in expected)
        order = [*assigned, "id", *expected]
        cursor.executemany(
            f"UPDATE {table.name} SET {', '.join(f'{_quoted(name)} = ?' for name in assigned)} "
            f"WHERE id = ? AND {same}",
            _stored(_tuples(rows, order), _processors(table, order, connection.dialect)),
        )
        if cursor.rowcount < len(rows):  # the rows that held other values, in full (no row written twice)
            order = [*columns, "id", *expected]
            cursor.executemany(
                f"UPDATE {table.name} SET {', '.join(f'{_quoted(name)} = ?' for name in columns)} "
                f"WHERE id = ? AND NOT ({same})",
                _stored(_tuples(rows, order), _processors(table, order, connection.dialect)),
            )
    finally:
        cursor.close()


def _quoted(name: str) -> str:
    return f'"{name}"'
