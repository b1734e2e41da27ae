"""The values the sidebar's filters offer (providers, models, users, the time range), from indexes.

`SELECT DISTINCT provider` reads every index entry: a million for a handful of providers.
A loose index scan (a recursive query that asks the index for the next value greater than
the last one) reads one entry per distinct value instead, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, Engine, func, select, text

from store.queries.filters import GENERATIONS

#: At most this many values of a column are offered (users may be many): past that the
#: sidebar wants a text box, not a list.
MAX_FACET_VALUES = 1000

#: Columns of `generations` whose index leads with them (0001's); only these are scanned.
_INDEXED = ("provider", "model", "user_id")


@dataclass(frozen=True)
class Facets:
    """Distinct values present in the log, sorted, and the time of the first and last call."""

    providers: list[str]
    models: list[str]
    users: list[str]
    first_at: datetime | None
    last_at: datetime | None
    #: Each provider's models, so the sidebar offers only the models of the chosen providers.
    models_by_provider: dict[str, list[str]] = field(default_factory=dict)

    def models_of(self, providers: Iterable[str]) -> list[str]:
        """The models of these providers, sorted (every model when none is given)."""
        chosen = [provider for provider in providers if provider in self.models_by_provider]
        if not chosen:
            return self.models
        return sorted({model for provider in chosen for model in self.models_by_provider[provider]})


def facets(engine: Engine) -> Facets:
    """Every filter's choices, each from an index (milliseconds at a million rows)."""
    g = GENERATIONS.c
    with engine.connect() as connection:
        # Two statements: SQLite answers a lone min() or max() with one index seek, but
        # both in one SELECT with a scan of the whole index.
        first_at = connection.execute(select(func.min(g.created_at))).scalar_one()
        last_at = connection.execute(select(func.max(g.created_at))).scalar_one()
        providers = distinct_values(connection, "provider")
        return Facets(
            providers=providers,
            models=distinct_values(connection, "model"),
            users=distinct_values(connection, "user_id"),
            first_at=first_at,
            last_at=last_at,
            models_by_provider={
                provider: models_of_provider(connection, provider) for provider in providers
            },
        )


def distinct_values(connection: Connection, column: str) -> list[str]:
    """Sorted distinct non-null values of an indexed `generations` column, by a loose index
    scan."""
    if column not in _INDEXED:
        raise ValueError(f"generations.{column} has no index to scan")
    # The identifier comes from _INDEXED above, never from the caller's text.
    query = text(
        f"WITH RECURSIVE found(value, k) AS ("
        f" SELECT (SELECT min({column}) FROM generations WHERE {column} IS NOT NULL), 1"
        f" UNION ALL"
        f" SELECT (SELECT min({column}) FROM generations WHERE {column} > found.value),"
        f" k + 1 FROM found WHERE found.value IS NOT NULL AND k < :cap"
        f") SELECT value FROM found WHERE value IS NOT NULL"
    )
    return list(connection.execute(query, {"cap": MAX_FACET_VALUES}).scalars())


def models_of_provider(connection: Connection, provider: str) -> list[str]:
    """Sorted distinct models of one provider: the same loose scan, on the index that leads
    with (provider, model), one seek per model."""
    query = text(
        "WITH RECURSIVE found(value, k) AS ("
        " SELECT (SELECT min(model) FROM generations"
        "  WHERE provider = :provider AND model IS NOT NULL), 1"
        " UNION ALL"
        " SELECT (SELECT min(model) FROM generations"
        "  WHERE provider = :provider AND model > found.value),"
        " k + 1 FROM found WHERE found.value IS NOT NULL AND k < :cap"
        ") SELECT value FROM found WHERE value IS NOT NULL"
    )
    found = connection.execute(query, {"provider": provider, "cap": MAX_FACET_VALUES})
    return list(found.scalars())
