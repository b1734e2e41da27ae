"""The planner probes behind `PlanHints`: run once, on the caller's connection.

The SQL builders in filters.py are pure; what they must know about the data (does this URL
state, verdict or search word match few calls or many?) is measured here, once per read, on the
connection (and so in the transaction or snapshot) that then runs the read's queries.
"""

from __future__ import annotations

from sqlalchemy import Connection, func, select, text

from store.queries.filters import (
    IMAGES,
    LogFilter,
    PlanHints,
    fts5_match_expression,
    has_word,
    image_conditions,
    pg_search_match,
)

#: SQLite plans without statistics, so where a condition can drive the query or filter it,
#: these probes count (up to this) how many rows match and steer it: fewer matches are read
#: through their own index and sorted; more are tested while the time index is walked, which
#: fills a page after reading about page size / share of matches rows.
SELECTIVE_BELOW = 5_000

#: PostgreSQL walks the time index and computes each prompt's tsvector when it expects many
#: matches, which is right for a common word and slow for a rarer one (it underprices
#: to_tsvector). Below this many estimated matches the matches are fetched from the GIN index
#: first; at a million calls the two plans break even near 30 000 matches.
PG_FETCH_MATCHES_BELOW = 20_000


def plan_hints(connection: Connection, flt: LogFilter, *, ordered: bool = True) -> PlanHints:
    """The hints for `flt`'s queries on `connection`.

    `ordered=False` is for counts and aggregates, which read every match in any order and so
    always start from a search's matches: the search probe is skipped.
    """
    return PlanHints(
        few_matching_images=flt.asks_images  # URL states alone: the summary answers
        and connection.dialect.name == "sqlite"
        and _few_images_match(connection, flt),
        common_search=ordered
        and flt.search is not None
        and _many_prompts_match(connection, flt.search),
    )


def _few_images_match(connection: Connection, flt: LogFilter) -> bool:
    probe = select(IMAGES.c.id).where(*image_conditions(flt)).limit(SELECTIVE_BELOW)
    found = connection.execute(select(func.count()).select_from(probe.subquery()))
    return found.scalar_one() < SELECTIVE_BELOW


def _many_prompts_match(connection: Connection, query: str) -> bool:
    """Whether the search box text matches many calls: on PostgreSQL by the planner's own
    estimate (from its lexeme statistics: free, where counting a common word's matches would
    read thousands of rows), on SQLite by counting up to SELECTIVE_BELOW of them."""
    if connection.dialect.name == "postgresql":
        if not has_word(query):
            return False
        matches = pg_search_match("generations")
        explain = text(f"EXPLAIN (FORMAT JSON) SELECT 1 FROM generations WHERE {matches}")
        plan = connection.execute(explain, {"search_q": query}).scalar_one()
        return int(plan[0]["Plan"]["Plan Rows"]) >= PG_FETCH_MATCHES_BELOW
    match = fts5_match_expression(query)
    if match is None or match[1]:  # no word, or only excluded ones: always walked in order
        return False
    probe = text(
        "SELECT count(*) FROM (SELECT rowid FROM generations_fts "
        "WHERE generations_fts MATCH :search_q LIMIT :cap)"
    )
    found = connection.execute(probe, {"search_q": match[0], "cap": SELECTIVE_BELOW})
    return found.scalar_one() >= SELECTIVE_BELOW
