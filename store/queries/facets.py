"""The values the sidebar's filters offer (providers, models, users, ...), read from indexes.

`SELECT DISTINCT provider` reads every index entry: a million for a handful of providers.
A loose index scan (a recursive query that asks the index for the next value greater than
the last one) reads one entry per distinct value instead, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, func, select, text

from store.queries.filters import GENERATIONS

#: At most this many users are offered; past that the sidebar wants a text box, not a list.
MAX_FACET_VALUES = 1000

#: table -> columns whose index leads with them (0001's indexes); only these are scanned.
_INDEXED = {
    "generations": ("provider", "model", "status", "user_id"),
    "images": ("url_state",),
}


@dataclass(frozen=True)
class Facets:
    """Distinct values present in the log, sorted; `models_by_provider` lists each one's models."""

    providers: list[str]
    models: list[str]
    models_by_provider: dict[str, list[str]]
    users: list[str]
    statuses: list[str]
    url_states: list[str]
    first_at: datetime | None
    last_at: datetime | None


def facets(engine: Engine) -> Facets:
    """Every filter's choices, each from an index (milliseconds at a million rows)."""
    g = GENERATIONS.c
    with engine.connect() as connection:
        providers = distinct_values(connection, "generations", "provider")
        # Two statements: SQLite answers a lone min() or max() with one index seek, but
        # both in one SELECT with a scan of the whole index.
        first_at = connection.execute(select(func.min(g.created_at))).scalar_one()
        last_at = connection.execute(select(func.max(g.created_at))).scalar_one()
        return Facets(
            providers=providers,
            models=distinct_values(connection, "generations", "model"),
            models_by_provider={
                provider: distinct_values(connection, "generations", "model", provider=provider)
                for provider in providers
            },
            users=distinct_values(connection, "generations", "user_id"),
            statuses=distinct_values(connection, "generations", "status"),
            url_states=distinct_values(connection, "images", "url_state"),
            first_at=first_at,
            last_at=last_at,
        )


def distinct_values(
    connection: Connection,
    table: str,
    column: str,
    *,
    provider: str | None = None,
    cap: int = MAX_FACET_VALUES,
) -> list[str]:
    """Sorted distinct non-null values of an indexed column, by a loose index scan.

    With `provider`, only that provider's values (served by (provider, model, created_at)).
    """
    if column not in _INDEXED.get(table, ()):
        raise ValueError(f"{table}.{column} has no index to scan")
    scope = "provider = :provider AND " if provider is not None else ""
    # Identifiers come from _INDEXED above, never from the caller's text.
    query = text(
        f"WITH RECURSIVE found(value, k) AS ("
        f" SELECT (SELECT min({column}) FROM {table} WHERE {scope}{column} IS NOT NULL), 1"
        f" UNION ALL"
        f" SELECT (SELECT min({column}) FROM {table} WHERE {scope}{column} > found.value),"
        f" k + 1 FROM found WHERE found.value IS NOT NULL AND k < :cap"
        f") SELECT value FROM found WHERE value IS NOT NULL"
    )
    params: dict[str, object] = {"cap": cap}
    if provider is not None:
        params["provider"] = provider
    return list(connection.execute(query, params).scalars())
