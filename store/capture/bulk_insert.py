"""Insert many rows the lean way, skipping those whose key the table already holds.

SQLAlchemy's own executemany spends more time a row processing parameters (a dict per row,
its compiled-statement machinery) than SQLite spends inserting it. Here each column's value is
converted once by SQLAlchemy's own bind processor for the dialect (so a time, a JSON value or
an enum is stored exactly as SQLAlchemy would store it) into a plain tuple, and the rows go to
the driver in key order:
- SQLite: the driver's `executemany` of one `INSERT ... ON CONFLICT DO NOTHING`;
- PostgreSQL: `COPY ... FROM STDIN` (psycopg's copy), which has no ON CONFLICT: it runs in a
  savepoint, and when a key is already present (a spool replayed twice, a concurrent import)
  the batch is inserted again with SQLAlchemy's `INSERT ... ON CONFLICT DO NOTHING` instead.
A driver error comes back as SQLAlchemy's exception of the same kind (`DataError`,
`IntegrityError`, `OperationalError`...), so callers tell a refused row from an absent
database as they always did.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Insert, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, IntegrityError

Processor = Callable[[Any], Any] | None


def insert_skipping_present(
    connection: Connection, table: Table, rows: Sequence[dict[str, Any]], key: Sequence[str]
) -> None:
    """Insert `rows` into `table` in the order of `key` (its primary or unique key's columns),
    leaving out those whose key is present already.

    Rows must all give the same columns, and any column they leave out must have no Python
    default (it is NULL or the server's default); otherwise SQLAlchemy inserts them itself.
    """
    if not rows:
        return
    columns = tuple(rows[0])
    if len(columns) < 2 or not _lean_fits(table, columns, rows):
        connection.execute(insert_ignoring_duplicates(connection.dialect, table), list(rows))
        return
    ordered = sorted(rows, key=lambda row: tuple(row[name] for name in key))
    values = _tuples(ordered, columns, _processors(connection.dialect, table, columns))
    if connection.dialect.name == "postgresql":
        try:
            with connection.begin_nested():
                _copy(connection, table, columns, values)
            return
        except IntegrityError:  # a key already present: COPY cannot skip it, ON CONFLICT can
            connection.execute(insert_ignoring_duplicates(connection.dialect, table), ordered)
            return
    placeholders = ", ".join("?" * len(columns))
    statement = (
        f"INSERT INTO {_quoted(connection.dialect, table.name)} "
        f"({', '.join(_quoted(connection.dialect, name) for name in columns)}) "
        f"VALUES ({placeholders}) ON CONFLICT DO NOTHING"
    )
    connection.exec_driver_sql(statement, values)


def insert_ignoring_duplicates(dialect: Dialect, table: Table) -> Insert:
    """SQLAlchemy's `INSERT ... ON CONFLICT DO NOTHING` into `table` for `dialect`."""
    module = postgresql if dialect.name == "postgresql" else sqlite
    return module.insert(table).on_conflict_do_nothing()


def _lean_fits(table: Table, columns: tuple[str, ...], rows: Sequence[dict[str, Any]]) -> bool:
    """Whether the lean path stores exactly what SQLAlchemy would: same columns in every row,
    and no Python-side default for a column they leave out."""
    given = set(columns)
    if any(column.default is not None for column in table.c if column.name not in given):
        return False
    if not given <= set(table.c.keys()):
        return False
    return all(len(row) == len(columns) and row.keys() == given for row in rows)


def _processors(dialect: Dialect, table: Table, columns: tuple[str, ...]) -> list[Processor]:
    """SQLAlchemy's bind processor of each column for `dialect` (None: the value as it is)."""
    return [table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in columns]


def _tuples(
    rows: Sequence[dict[str, Any]], columns: tuple[str, ...], processors: list[Processor]
) -> list[tuple[Any, ...]]:
    """Each row as a tuple of driver values, in `columns` order."""
    take = itemgetter(*columns)
    converting = [(index, process) for index, process in enumerate(processors) if process]
    if not converting:
        return [take(row) for row in rows]
    values = []
    for row in rows:
        row_values = list(take(row))
        for index, process in converting:
            row_values[index] = process(row_values[index])
        values.append(tuple(row_values))
    return values


def _copy(
    connection: Connection, table: Table, columns: tuple[str, ...], values: list[tuple[Any, ...]]
) -> None:
    """COPY the tuples into `table` on the connection's own transaction."""
    import psycopg  # only PostgreSQL logs get here, and psycopg is their driver

    dialect = connection.dialect
    statement = (
        f"COPY {_quoted(dialect, table.name)} "
        f"({', '.join(_quoted(dialect, name) for name in columns)}) FROM STDIN"
    )
    cursor = connection.connection.cursor()
    try:
        with cursor.copy(statement) as copy:
            for row in values:
                copy.write_row(row)
    except psycopg.Error as exc:
        raise DBAPIError.instance(statement, None, exc, psycopg.Error) from exc
    finally:
        cursor.close()


def _quoted(dialect: Dialect, name: str) -> str:
    return dialect.identifier_preparer.quote(name)
