"""The models are the schema's one truth: the Alembic revisions must build exactly them.

`alembic upgrade head` on a new database, then Alembic's own comparison against the models
(columns, types, nullability, indexes, expression indexes on PostgreSQL) must find nothing.
SQLite's reflection cannot read expression indexes or the FTS5 objects, so those are compared
as DDL text with what the models compile to.
"""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, text
from sqlalchemy.schema import CreateIndex

from store.schema.models import (
    GENERATIONS,
    IMAGES,
    PROMPT_SEARCH_SQLITE,
    REVIEWS,
    SQLModel,
    applies_to,
    is_compared,
)


def _differences(engine: Engine) -> list:
    dialect = engine.dialect.name
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "compare_server_default": True,
                "include_object": is_compared(dialect),
            },
        )
        return compare_metadata(context, SQLModel.metadata)


# SQLite cannot reflect expression indexes; the next test compares those as DDL text.
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based")
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
def test_the_revisions_build_exactly_the_models(engine):
    assert _differences(engine) == []


def test_sqlite_expression_indexes_and_prompt_search_match_the_models(sqlite_url):
    from store.schema.db import make_engine

    engine = make_engine(sqlite_url)
    with engine.connect() as connection:
        stored = dict(
            connection.execute(
                text("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL")
            ).all()
        )
    for table in (GENERATIONS, IMAGES, REVIEWS):
        for index in table.indexes:
            if applies_to(index, "sqlite"):
                expected = str(CreateIndex(index).compile(dialect=engine.dialect)).strip()
                assert _normal(stored[index.name]) == _normal(expected), index.name
    # The FTS5 table and its triggers (not the shadow tables FTS5 makes for itself).
    search = [sql for name, sql in stored.items() if name == "generations_fts" or "TRIGGER" in sql]
    assert sorted(map(_normal, search)) == sorted(map(_normal, PROMPT_SEARCH_SQLITE))


def _normal(sql: str) -> str:
    return " ".join(sql.replace('"', "").split()).upper()
