"""The rows of every crm-tui table, written out as JSON lines and loaded back into any database this crm-tui
runs on: the backup of a shared PostgreSQL database (no pg_dump of the right version needed on a salesperson's
laptop), its restore, and the move of a local SQLite database onto a team's server.

Rows are read through reflected tables (never the ORM), so every value is written as the database holds it;
date-times are written in UTC. Loading runs in the caller's transaction: tables in foreign-key order, the
columns of the few references that form cycles (a user's organization, an organization's owner) filled in
after every row is in, and PostgreSQL's id sequences moved past the loaded ids.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import IO, Any

from sqlalchemy import MetaData, Table, bindparam, func, inspect, select, update
from sqlalchemy.schema import sort_tables_and_constraints

from crm_tui.core.errors import CrmError

BATCH = 1000
SKIPPED = ("alembic_version",)


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return {"$t": value.isoformat()}
    if isinstance(value, date):
        return {"$d": value.isoformat()}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$b": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, Decimal):
        return {"$n": str(value)}
    return value


def _decoder(dialect: str) -> Callable[[Any], Any]:
    def decode(value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        if "$t" in value:
            moment = datetime.fromisoformat(value["$t"])
            return moment if dialect == "sqlite" else moment.replace(tzinfo=UTC)
        if "$d" in value:
            return date.fromisoformat(value["$d"])
        if "$b" in value:
            return base64.b64decode(value["$b"])
        if "$n" in value:
            return Decimal(value["$n"])
        raise CrmError(f"unknown value in the backup: {value!r}")

    return decode


def reflect(connection: Any, only: Iterable[str] | None = None) -> MetaData:
    """The data tables: not Alembic's version, nor SQLite's full-text indexes (virtual tables and their
    shadow tables, which their triggers keep up to date as rows go in)."""
    skipped = set(SKIPPED)
    if connection.dialect.name == "sqlite":
        virtual = list(
            connection.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%'"
            ).scalars()
        )
        names = connection.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'table'").scalars()
        skipped |= {
            n
            for n in names
            if n.startswith("sqlite_") or any(n == v or n.startswith(f"{v}_") for v in virtual)
        }
    wanted = [n for n in (only if only is not None else _table_names(connection)) if n not in skipped]
    metadata = MetaData()
    metadata.reflect(connection, only=wanted)
    return metadata


def _table_names(connection: Any) -> list[str]:
    return list(inspect(connection).get_table_names())


def dump_table(connection: Any, table: Table, out: IO[bytes]) -> int:
    """Write the rows of ``table`` to ``out``, one JSON object a line (in primary-key order). Returns the count."""
    count = 0
    order = list(table.primary_key.columns) or list(table.columns)
    result = connection.execution_options(stream_results=True, yield_per=BATCH).execute(
        select(table).order_by(*order)
    )
    names = list(result.keys())
    for row in result:
        out.write(
            json.dumps({n: _encode(v) for n, v in zip(names, row, strict=True)}, ensure_ascii=False).encode()
        )
        out.write(b"\n")
        count += 1
    return count


def read_lines(handle: IO[bytes]) -> Iterator[dict[str, Any]]:
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise CrmError(f"line {number} of a table in the backup is not readable: {exc}") from None
        if not isinstance(row, dict):
            raise CrmError(f"line {number} of a table in the backup is not a row")
        yield row


RowSource = Callable[[str], Iterable[dict[str, Any]]]


def load(connection: Any, rows_of: RowSource, *, encoded: bool = True) -> dict[str, int]:
    """Replace the rows of every table of ``connection`` with ``rows_of(name)``, in the caller's transaction
    (on SQLite with foreign keys off). ``encoded``: values as written by ``dump_table`` (else plain values read from
    another database). Returns the count of rows a table."""
    dialect = connection.dialect.name
    decode = _decoder(dialect) if encoded else _plain(dialect)
    metadata = reflect(connection)
    # Migrations may have seeded rows (templates): the backup has its own, so the tables start empty.
    if dialect == "postgresql":
        names = ", ".join(f'"{name}"' for name in metadata.tables)
        connection.exec_driver_sql(f"TRUNCATE {names}")
    else:  # SQLite: the caller turned foreign keys off, so any order empties them
        for name in metadata.tables:
            connection.exec_driver_sql(f'DELETE FROM "{name}"')  # noqa: S608
    order = sort_tables_and_constraints(list(metadata.tables.values()))  # type: ignore[no-untyped-call]  # unannotated in SQLAlchemy
    # SQLite loads with its foreign keys off; PostgreSQL checks each row, so the references that form cycles
    # are filled in once every row is in.
    late = [fk for table, fks in order if table is None for fk in fks] if dialect != "sqlite" else []
    deferred: dict[str, list[str]] = {}
    for constraint in late:
        deferred.setdefault(constraint.table.name, []).extend(
            c.name for c in constraint.columns if c.nullable
        )
    counts: dict[str, int] = {}
    pending: list[tuple[Table, list[dict[str, Any]]]] = []
    for table, _ in order:
        if table is None:
            continue
        columns = set(table.columns.keys())
        later = deferred.get(table.name, [])
        keep_back: list[dict[str, Any]] = []
        batch: list[dict[str, Any]] = []
        count = 0
        for raw in rows_of(table.name):
            row = {key: decode(value) for key, value in raw.items() if key in columns}
            if later:
                keys = {c.name: row.get(c.name) for c in table.primary_key.columns}
                held = {name: row.get(name) for name in later if row.get(name) is not None}
                if held:
                    keep_back.append(
                        {**{f"k_{k}": v for k, v in keys.items()}, **{f"v_{k}": v for k, v in held.items()}}
                    )
                    row.update(dict.fromkeys(held))
            batch.append(row)
            count += 1
            if len(batch) >= BATCH:
                connection.execute(table.insert(), batch)
                batch = []
        if batch:
            connection.execute(table.insert(), batch)
        counts[table.name] = count
        if keep_back:
            pending.append((table, keep_back))
    for table, rows in pending:
        for row in rows:  # few rows (users, organizations with owners), each its own columns
            values: dict[str, Any] = {key[2:]: bindparam(key) for key in row if key.startswith("v_")}
            statement = update(table).values(**values)
            for column in table.primary_key.columns:
                statement = statement.where(column == bindparam(f"k_{column.name}"))
            connection.execute(statement, row)
    if dialect == "postgresql":
        for table in metadata.tables.values():
            if "id" in table.columns and table.columns["id"].autoincrement is not False:
                highest = connection.execute(select(func.max(table.columns["id"]))).scalar()
                sequence = connection.exec_driver_sql(
                    f"SELECT pg_get_serial_sequence('\"{table.name}\"', 'id')"
                ).scalar()
                if sequence:
                    connection.exec_driver_sql(
                        f"SELECT setval('{sequence}', {int(highest or 1)}, {'true' if highest else 'false'})"
                    )
    return counts


def _plain(dialect: str) -> Callable[[Any], Any]:
    """Values read from another database: naive date-times (SQLite's, in UTC) made aware for PostgreSQL."""

    def convert(value: Any) -> Any:
        if isinstance(value, datetime):
            if dialect == "sqlite":
                return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        return value

    return convert
