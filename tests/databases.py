"""What the transfer tests read from, and do to, whole log databases on either backend."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select, text

from store.schema.models import GENERATIONS, IMAGES, as_utc

#: Rows by table: generations by id, images by (generation_id, position).
LogRows = dict[str, dict[tuple[Any, ...], dict[str, Any]]]


def log_rows(engine: Engine) -> LogRows:
    """Every column of every row of the log, except the images' surrogate `id` (a database
    numbers its own rows); times as aware UTC, so SQLite and PostgreSQL rows compare equal."""
    rows: LogRows = {}
    with engine.connect() as connection:
        for table, key in ((GENERATIONS, ("id",)), (IMAGES, ("generation_id", "position"))):
            found = connection.execute(select(table)).mappings()
            rows[table.name] = {
                tuple(row[name] for name in key): {
                    name: as_utc(value) if isinstance(value, datetime) else value
                    for name, value in row.items()
                    if not (table is IMAGES and name == "id")
                }
                for row in found
            }
    return rows


def refuse_images_ending(engine: Engine, suffix: str) -> None:
    """Make the database itself refuse to store an image whose URL ends in `suffix`: a real
    trigger that aborts the insert, the way a constraint a DBA added would."""
    message = f"images ending in {suffix} are refused here"
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            connection.execute(
                text(
                    "CREATE TRIGGER refuse_images BEFORE INSERT ON images "
                    f"WHEN new.url LIKE '%{suffix}' "
                    f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
                )
            )
            return
        connection.execute(
            text(
                "CREATE FUNCTION refuse_images() RETURNS trigger LANGUAGE plpgsql AS "
                f"$$ BEGIN RAISE EXCEPTION '{message}' USING ERRCODE = 'check_violation'; END $$"
            )
        )
        connection.execute(
            text(
                "CREATE TRIGGER refuse_images BEFORE INSERT ON images FOR EACH ROW "
                f"WHEN (new.url LIKE '%{suffix}') EXECUTE FUNCTION refuse_images()"
            )
        )


def differences(expected: LogRows, actual: LogRows) -> list[str]:
    """Where `actual` differs from `expected`, one line per row or column (a readable failure)."""
    found = []
    for table, rows in expected.items():
        other = actual.get(table, {})
        found += [f"{table} {key}: missing" for key in rows.keys() - other.keys()]
        found += [f"{table} {key}: not expected" for key in other.keys() - rows.keys()]
        for key in rows.keys() & other.keys():
            found += [
                f"{table} {key} {name}: {value!r} became {other[key].get(name)!r}"
                for name, value in rows[key].items()
                if other[key].get(name) != value
            ]
    return sorted(found)
