"""What the dashboard (and `export` / `stats`) narrow the log by, and how that becomes SQL.

`LogFilter` is a frozen, normalised value: Streamlit hashes it for `st.cache_data`, and two
equal views are one cache entry. (The dashboard keeps the view in the address bar through its
URL-bound sidebar widgets, app/components/filters.py, which build the LogFilter; the CLI's
`export` and `stats` build it from their flags.)

Every condition here is one an index serves (see the 0001 and 0002 revisions); the prompt
search goes through SQLite's FTS5 table or PostgreSQL's GIN expression index, never LIKE.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time
from itertools import product
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Engine,
    String,
    and_,
    cast,
    exists,
    func,
    literal_column,
    select,
    text,
)

from store.schema.models import GENERATIONS, IMAGES, PG_PROMPT_TSVECTOR, as_utc

_TUPLE_FIELDS = ("providers", "models", "statuses", "url_states")


@dataclass(frozen=True)
class LogFilter:
    """The current view's filters; empty fields mean "any".

    `since` is inclusive and `until` exclusive (a day range [d1, d2] is since=d1, until=d2+1).
    `url_states` keeps calls with at least one image in one of the states (and, on the
    image-level queries, only those images). `tag` is "key=value" on the call's metadata.
    `search` is full-text over prompt and revised prompt, with websearch-like syntax on both
    backends: words (all must match), "a phrase", `OR`, `-word` (and `word*` prefix on SQLite).
    """

    providers: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    url_states: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    min_cost: float | None = None
    max_cost: float | None = None
    user: str | None = None
    tag: str | None = None
    search: str | None = None

    def __post_init__(self) -> None:
        # Normalise so equal views are equal values (one cache entry).
        for name in _TUPLE_FIELDS:
            value = getattr(self, name)
            if isinstance(value, str):
                value = (value,)
            object.__setattr__(self, name, tuple(dict.fromkeys(v for v in value if v)))
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, as_utc(value))
        for name in ("user", "tag", "search"):
            value = getattr(self, name)
            object.__setattr__(self, name, value.strip() or None if value else None)

    @property
    def is_empty(self) -> bool:
        return self == LogFilter()


def parse_utc_datetime(value: str | date | datetime | None) -> datetime | None:
    """An ISO date / datetime as aware UTC (no offset means UTC); None when it is not one."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return as_utc(value)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace(" ", "T"))
    except ValueError:
        return None
    return as_utc(parsed)


# --- SQL ----------------------------------------------------------------------------------------


def generation_conditions(
    engine: Engine, flt: LogFilter, *, url_states: bool = True, ordered: bool = True
) -> list[ColumnElement[bool]]:
    """The WHERE conditions on `generations` for `flt` (AND them together).

    `url_states=False` leaves the URL-state condition to the caller: the queries that count
    images apply it to each image (`image_conditions`) instead of asking "has any image".
    `ordered=False` is for counts and aggregates, which read every match in any order.
    """
    g = GENERATIONS.c
    conditions: list[ColumnElement[bool]] = []
    if flt.providers:
        conditions.append(g.provider.in_(flt.providers))
    if flt.models:
        conditions.append(g.model.in_(flt.models))
    if flt.statuses:
        conditions.append(g.status.in_(flt.statuses))
    if flt.since is not None:
        conditions.append(g.created_at >= flt.since)
    if flt.until is not None:
        conditions.append(g.created_at < flt.until)
    if flt.min_cost is not None:
        conditions.append(g.cost_usd >= flt.min_cost)
    if flt.max_cost is not None:
        conditions.append(g.cost_usd <= flt.max_cost)
    if flt.user:
        conditions.append(g.user_id == flt.user)
    if flt.tag:
        key, _, value = flt.tag.partition("=")
        # Compared as text, so tag=3 finds {"batch": 3} as well as {"batch": "3"}.
        conditions.append(cast(g.metadata_json[key.strip()].as_string(), String) == value.strip())
    if flt.url_states and url_states:
        conditions.append(_has_image_in_states(engine, flt.url_states))
    if flt.search:
        search = search_condition(engine, flt.search, ordered=ordered)
        if search is not None:
            conditions.append(search)
    return conditions


#: A multi-valued equality filter (provider in {a, b}) has no index order across its values:
#: up to this many value combinations are read as one ordered index range each, and merged.
MAX_ORDERED_BRANCHES = 12


def ordered_branches(
    engine: Engine, flt: LogFilter, *, url_states: bool = True
) -> list[list[ColumnElement[bool]]]:
    """`flt`'s conditions as AND-lists whose union is `flt`, each with single-valued equalities.

    An index (column, created_at, id) reads one branch's calls already newest first, so a page
    is at most `limit` rows per branch and a merge of those, never a sort of every match.
    """
    combinations = list(
        product(flt.providers or (None,), flt.models or (None,), flt.statuses or (None,))
    )
    if len(combinations) == 1 or len(combinations) > MAX_ORDERED_BRANCHES:
        return [generation_conditions(engine, flt, url_states=url_states)]
    shared = generation_conditions(
        engine, replace(flt, providers=(), models=(), statuses=()), url_states=url_states
    )
    g = GENERATIONS.c
    branches = []
    for provider, model, status in combinations:
        branch = list(shared)
        for column, value in ((g.provider, provider), (g.model, model), (g.status, status)):
            if value is not None:
                branch.append(column == value)
        branches.append(branch)
    return branches


def image_conditions(flt: LogFilter) -> list[ColumnElement[bool]]:
    """Conditions on `images` itself, for the queries that count images one by one."""
    if flt.url_states:
        return [IMAGES.c.url_state.in_(flt.url_states)]
    return []


#: SQLite plans without statistics, so where a condition can drive the query or filter it,
#: these queries count (up to this) how many rows match and steer it: fewer matches are read
#: through their own index and sorted; more are tested while the time index is walked, which
#: fills a page after reading about page size / share of matches rows.
SELECTIVE_BELOW = 5_000


def _has_image_in_states(engine: Engine, states: tuple[str, ...]) -> ColumnElement[bool]:
    g = GENERATIONS.c
    if engine.dialect.name == "sqlite" and _few_images_in(engine, states):
        # Rare states ("unknown" may match nothing at all): start from those images.
        return g.id.in_(select(IMAGES.c.generation_id).where(IMAGES.c.url_state.in_(states)))
    image = IMAGES.alias("state_image")
    return exists(
        select(1)
        .select_from(image)
        .where(image.c.generation_id == g.id, image.c.url_state.in_(states))
    )


def _few_images_in(engine: Engine, states: tuple[str, ...]) -> bool:
    probe = select(IMAGES.c.id).where(IMAGES.c.url_state.in_(states)).limit(SELECTIVE_BELOW)
    with engine.connect() as connection:
        found = connection.execute(select(func.count()).select_from(probe.subquery()))
        return found.scalar_one() < SELECTIVE_BELOW


def filter_only(engine: Engine, column: ColumnElement[Any]) -> ColumnElement[Any]:
    """`column` as a condition that must not choose the query's index (SQLite's documented
    `+column`): a join whose outer side is a page of calls stays driven by those calls."""
    if engine.dialect.name != "sqlite":
        return column
    return literal_column(f"+{column.table.name}.{column.name}", column.type)


def require_positive(**sizes: int) -> None:
    """Reject a page size below 1: SQLite reads a negative LIMIT as "no limit at all"."""
    for name, size in sizes.items():
        if size < 1:
            raise ValueError(f"{name} must be at least 1, not {size}")


def where(conditions: Iterable[ColumnElement[bool]]) -> ColumnElement[bool]:
    """AND of the conditions (TRUE when there are none)."""
    return and_(True, *conditions)


def pg_tsvector(table: str) -> str:
    """PG_PROMPT_TSVECTOR with its columns qualified by `table`, so it stays unambiguous
    beside `images` (which has a revised_prompt too). The planner matches columns, not text:
    the GIN index over the unqualified expression still serves it (see the plan tests)."""
    return PG_PROMPT_TSVECTOR.replace("coalesce(", f"coalesce({table}.")


#: PostgreSQL walks the time index and computes each prompt's tsvector when it expects many
#: matches, which is right for a common word and slow for a rarer one (it underprices
#: to_tsvector). Below this many estimated matches the matches are fetched from the GIN index
#: first; at a million calls the two plans break even near 30 000 matches.
PG_FETCH_MATCHES_BELOW = 20_000


def search_condition(
    engine: Engine, query: str, *, ordered: bool = True
) -> ColumnElement[bool] | None:
    """The full-text condition for a user's search box text; None when it holds no word.

    A text without any word ('"', '*', '-') is no search on either backend, so both agree.
    `ordered` queries (pages, newest first) test a common word's matches along the time
    index; unordered ones (counts, aggregates) always start from the matches.
    """
    if not _WORD.search(query):
        return None
    if engine.dialect.name == "postgresql":
        matches = f"{pg_tsvector('generations')} @@ websearch_to_tsquery('english', :search_q)"
        if ordered and _pg_estimated_rows(engine, matches, query) >= PG_FETCH_MATCHES_BELOW:
            return text(matches).bindparams(search_q=query)
        # OFFSET 0 keeps the subquery whole: PostgreSQL reads the matches from the GIN index,
        # then only tests membership (no tsvector per row).
        return text(
            "generations.id IN (SELECT matched.id FROM generations AS matched WHERE "
            f"{pg_tsvector('matched')} @@ websearch_to_tsquery('english', :search_q) OFFSET 0)"
        ).bindparams(search_q=query)
    match = fts5_match_expression(query)
    if match is None:
        return None
    expression, exclude = match
    membership = "NOT IN" if exclude else "IN"
    # A common word matches too many calls to fetch and sort: test membership while the
    # time index is walked instead (`+rowid` keeps the match list from driving the query).
    rowid = (
        "+generations.rowid"
        if exclude or (ordered and _many_prompts_match(engine, expression))
        else ("generations.rowid")
    )
    return text(
        f"{rowid} {membership} (SELECT rowid FROM generations_fts "
        "WHERE generations_fts MATCH :search_q)"
    ).bindparams(search_q=expression)


def _pg_estimated_rows(engine: Engine, condition: str, query: str) -> int:
    """PostgreSQL's own estimate of the calls matching (from its lexeme statistics): free,
    where counting the matches of a common word would read thousands of rows."""
    explain = text(f"EXPLAIN (FORMAT JSON) SELECT 1 FROM generations WHERE {condition}")
    with engine.connect() as connection:
        plan = connection.execute(explain, {"search_q": query}).scalar_one()
    return int(plan[0]["Plan"]["Plan Rows"])


def _many_prompts_match(engine: Engine, expression: str) -> bool:
    probe = text(
        "SELECT count(*) FROM (SELECT rowid FROM generations_fts "
        "WHERE generations_fts MATCH :search_q LIMIT :cap)"
    )
    with engine.connect() as connection:
        found = connection.execute(probe, {"search_q": expression, "cap": SELECTIVE_BELOW})
        return found.scalar_one() >= SELECTIVE_BELOW


_SEARCH_TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')
_WORD = re.compile(r"\w", re.UNICODE)


def fts5_match_expression(query: str) -> tuple[str, bool] | None:
    """Translate search-box text into a safe FTS5 MATCH expression, and whether to exclude it.

    Every word or phrase is double-quoted (FTS5 syntax characters in user input are then
    plain text), so no input can raise a syntax error. Supported, as PostgreSQL's
    websearch_to_tsquery does: words (AND), "a phrase", `-word` (NOT), `OR`; and `word*`
    (prefix, SQLite only: PostgreSQL stems words instead). Only `-word`s give
    (their OR, True): FTS5 cannot say "everything except", so the caller excludes the
    matches. None when the text holds no word at all.
    """
    positives: list[str] = []
    negatives: list[str] = []
    pending_or = False
    for negate, phrase, bare in _SEARCH_TOKEN.findall(query):
        if bare == "OR":
            pending_or = bool(positives)
            continue
        if bare.startswith("-") and len(bare) > 1:
            negate, bare = "-", bare[1:]
        prefix = bool(bare) and bare.endswith("*")
        term = phrase if not bare else bare.rstrip("*")
        if not _WORD.search(term):
            continue
        quoted = '"' + term.replace('"', '""') + '"' + ("*" if prefix else "")
        if negate:
            negatives.append(quoted)
        elif pending_or:
            positives[-1] = f"({positives[-1]} OR {quoted})"
        else:
            positives.append(quoted)
        pending_or = False
    if positives:
        return " ".join(positives) + "".join(f" NOT {term}" for term in negatives), False
    if negatives:
        return " OR ".join(negatives), True
    return None
