"""What the dashboard (and `export` / `stats`) narrow the log by, and how that becomes SQL.

`LogFilter` is a frozen, normalised value: Streamlit hashes it for `st.cache_data`, and two
equal views are one cache entry. (The dashboard keeps the view in the address bar through its
URL-bound sidebar widgets, app/components/filters.py, which build the LogFilter; the CLI's
`export` and `stats` build it from their flags.)

Every condition here is one an index serves (see the 0001, 0002 and 0006 revisions: a URL
state is read from each call's URL-state summary and its partial index); the prompt
search goes through SQLite's FTS5 table or PostgreSQL's GIN expression index, never LIKE.
The builders do no I/O: what they need to know about the data comes in as `PlanHints`,
probed by store/queries/hints.py on the connection that runs the query.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from itertools import product
from typing import Any
from typing import cast as cast_type

from sqlalchemy import (
    ColumnElement,
    FromClause,
    String,
    and_,
    cast,
    exists,
    false,
    literal_column,
    not_,
    or_,
    select,
    text,
)

from store.schema.enums import UNREAD, UNREVIEWED, UrlState
from store.schema.models import GENERATIONS, IMAGES, PG_PROMPT_TSVECTOR, as_utc

_TUPLE_FIELDS = ("providers", "models", "statuses", "url_states", "verdicts", "credentials")


@dataclass(frozen=True)
class LogFilter:
    """The current view's filters; empty fields mean "any".

    `since` is inclusive and `until` exclusive (a day range [d1, d2] is since=d1, until=d2+1).
    `url_states` keeps calls with at least one image in one of the states (and, on the
    image-level queries, only those images); `verdicts` likewise keeps calls with an image
    whose current verdict is one of them, `UNREVIEWED` standing for an image without one.
    `credentials` likewise keeps calls with an image whose content credentials read so
    (`Credentials`: trusted, valid, invalid, none), `UNREAD` standing for an image whose
    bytes were never read. All together ask for one image that meets each of them.
    `tag` is "key=value" on the call's metadata.
    `search` is full-text over prompt and revised prompt, with websearch-like syntax on both
    backends: words (all must match), "a phrase", `OR`, `-word` (and `word*` prefix on SQLite).
    """

    providers: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    url_states: tuple[str, ...] = ()
    verdicts: tuple[str, ...] = ()
    credentials: tuple[str, ...] = ()
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

    @property
    def asks_images(self) -> bool:
        """Whether an image condition must be read from `images` itself: verdicts and content
        credentials are an image's, which neither the URL-state summary nor the rollups hold."""
        return bool(self.verdicts or self.credentials)


@dataclass(frozen=True)
class PlanHints:
    """What the data says about how to read one filter's matches, for the builders below.

    SQLite plans without statistics and PostgreSQL underprices to_tsvector, so a URL state or
    a search word that matches few calls is best read from its own index and sorted, and one
    that matches many is best tested while the time index is walked. `hints.plan_hints`
    measures that once, on the connection that then runs the queries; the default (no
    facts) suits a filter without URL states, verdicts or search, and every count or
    aggregate.
    """

    #: Few images match the filter's image conditions, its URL states and verdicts (probed
    #: on SQLite only), so a query starts from those images.
    few_matching_images: bool = False
    #: The search matches many calls (probed for newest-first pages only), so a page tests
    #: each call along the time index instead of fetching and sorting every match.
    common_search: bool = False


def parse_utc_datetime(value: str | date | datetime | None) -> datetime | None:
    """An ISO date / datetime as aware UTC (no offset means UTC); None when it is not one, or is
    a time UTC cannot hold (year 1 at +14:00)."""
    if value is None:
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime.combine(value, time(), tzinfo=UTC)
    try:
        if isinstance(value, str):
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace(" ", "T"))
        return as_utc(value)
    except (ValueError, OverflowError):
        return None


#: The quick time ranges the dashboard's sidebar and the CLI's `--last` offer, by their name
#: in a link (`?range=24h`): the calls of the last hour, day, week or month.
QUICK_RANGES: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}


def quick_range_start(name: str, now: datetime) -> datetime:
    """When the quick range `name` starts, seen at `now`, floored to the minute: every view
    drawn within one minute is one filter (one cache entry), not a new query per second."""
    return as_utc(now).replace(second=0, microsecond=0) - QUICK_RANGES[name]


# --- SQL ----------------------------------------------------------------------------------------
#
# The builders below are pure: the same (dialect name, filter, hints) always gives the same SQL.
# What a builder must know about the data (does a search word match many prompts?) comes in
# as `PlanHints`, measured once by `hints.plan_hints` on the connection that runs the query.


def generation_conditions(
    dialect: str, flt: LogFilter, hints: PlanHints, *, image_filters: bool = True
) -> list[ColumnElement[bool]]:
    """The WHERE conditions on `generations` for `flt` (AND them together).

    `image_filters=False` leaves the URL-state and verdict conditions to the caller: the
    queries that count images apply them to each image (`image_conditions`) instead of asking
    "has any image".
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
    if image_filters and (matching := _has_matching_image(flt, hints)) is not None:
        conditions.append(matching)
    if flt.search:
        search = search_condition(dialect, flt.search, hints)
        if search is not None:
            conditions.append(search)
    return conditions


#: A multi-valued equality filter (provider in {a, b}) has no index order across its values:
#: up to this many value combinations are read as one ordered index range each, and merged.
MAX_ORDERED_BRANCHES = 12


def ordered_branches(
    dialect: str, flt: LogFilter, hints: PlanHints, *, image_filters: bool = True
) -> list[list[ColumnElement[bool]]]:
    """`flt`'s conditions as AND-lists whose union is `flt`, each with single-valued equalities.

    An index (column, created_at, id) reads one branch's calls already newest first, so a page
    is at most `limit` rows per branch and a merge of those, never a sort of every match.
    """
    states = url_state_branches(flt) if image_filters else [[]]
    combinations = list(
        product(flt.providers or (None,), flt.models or (None,), flt.statuses or (None,), states)
    )
    if len(combinations) == 1 or len(combinations) > MAX_ORDERED_BRANCHES:
        return [generation_conditions(dialect, flt, hints, image_filters=image_filters)]
    shared = generation_conditions(
        dialect,
        replace(
            flt,
            providers=(),
            models=(),
            statuses=(),
            url_states=flt.url_states if states == [[]] else (),
        ),
        hints,
        image_filters=image_filters,
    )
    g = GENERATIONS.c
    branches = []
    for provider, model, status, state in combinations:
        branch = [*shared, *state]
        for column, value in ((g.provider, provider), (g.model, model), (g.status, status)):
            if value is not None:
                branch.append(column == value)
        branches.append(branch)
    return branches


def image_conditions(
    flt: LogFilter, image: FromClause = IMAGES, *, dialect: str | None = None
) -> list[ColumnElement[bool]]:
    """`flt`'s conditions on an image itself (URL state, verdict, credentials), on `images` or an
    alias of it. With `dialect`, they are filters only (`filter_only`): on images joined to a
    page of calls, they must not choose the join's index."""

    def column(name: str) -> ColumnElement[Any]:
        found = image.c[name]
        return filter_only(dialect, found) if dialect else found

    conditions: list[ColumnElement[bool]] = []
    if flt.url_states:
        conditions.append(column("url_state").in_(flt.url_states))
    if flt.verdicts:
        conditions.append(_one_of(column("verdict"), flt.verdicts, UNREVIEWED))
    if flt.credentials:
        conditions.append(_one_of(column("c2pa_state"), flt.credentials, UNREAD))
    return conditions


def has_url_state(state: str) -> ColumnElement[bool]:
    """The call has an image in `state`, from its URL-state summary: the very condition of the
    state's partial index (written out, not bound, so SQLite sees that it is)."""
    if state not in UrlState.__members__:
        return false()  # a state no image can be in (a hostile link's value)
    return GENERATIONS.c[f"images_{state}"] > literal_column("0")


def url_state_branches(flt: LogFilter) -> list[list[ColumnElement[bool]]]:
    """`flt`'s URL states as disjoint AND-lists, one per state, each led by that state's
    partial index (a call with two of the states is in the first one's branch only); [[]]
    when the summary cannot answer (no URL states, or verdicts or credentials that must hold
    on the same image, which `images` answers)."""
    if not flt.url_states or flt.asks_images:
        return [[]]
    return [
        [has_url_state(state), *[not_(has_url_state(before)) for before in flt.url_states[:at]]]
        for at, state in enumerate(flt.url_states)
    ]


def _one_of(column: ColumnElement[Any], values: tuple[str, ...], null: str) -> ColumnElement[bool]:
    """`column` is one of `values`, the value `null` standing for SQL NULL."""
    given = [value for value in values if value != null]
    either = [column.in_(given)] if given else []
    if null in values:
        either.append(column.is_(None))
    return or_(*either)


def _has_matching_image(flt: LogFilter, hints: PlanHints) -> ColumnElement[bool] | None:
    """The call has an image that meets every image condition of `flt` (None: it has none):
    its URL-state summary says so for URL states alone; with verdicts or credentials, `images`
    is asked."""
    if not image_conditions(flt):
        return None
    if not flt.asks_images:
        return or_(*(has_url_state(state) for state in flt.url_states))
    g = GENERATIONS.c
    if hints.few_matching_images:
        # Rare states or verdicts ("unknown" may match nothing at all): start from the images.
        return g.id.in_(select(IMAGES.c.generation_id).where(*image_conditions(flt)))
    image = IMAGES.alias("matching_image")
    return exists(
        select(1)
        .select_from(image)
        .where(image.c.generation_id == g.id, *image_conditions(flt, image))
    )


def filter_only(dialect: str, column: ColumnElement[Any]) -> ColumnElement[Any]:
    """`column` as a condition that must not choose the query's index (SQLite's documented
    `+column`): a join whose outer side is a page of calls stays driven by those calls."""
    if dialect != "sqlite":
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


def pg_search_match(table: str) -> str:
    """PostgreSQL's full-text match of `table`'s prompts against the bound `:search_q`."""
    return f"{pg_tsvector(table)} @@ websearch_to_tsquery('english', :search_q)"


def search_condition(dialect: str, query: str, hints: PlanHints) -> ColumnElement[bool] | None:
    """The full-text condition for a user's search box text; None when it holds no word.

    A text without any word ('"', '*', '-') is no search on either backend, so both agree.
    A common word (`hints.common_search`, probed for ordered pages only) is tested along the
    time index; otherwise, and always for counts and aggregates, the query starts from the
    matches.
    """
    if not has_word(query):
        return None
    if dialect == "postgresql":
        if hints.common_search:
            return textual_condition(pg_search_match("generations"), search_q=query)
        # OFFSET 0 keeps the subquery whole: PostgreSQL reads the matches from the GIN index,
        # then only tests membership (no tsvector per row).
        return textual_condition(
            "generations.id IN (SELECT matched.id FROM generations AS matched WHERE "
            f"{pg_search_match('matched')} OFFSET 0)",
            search_q=query,
        )
    match = fts5_match_expression(query)
    if match is None:
        return None
    expression, exclude = match
    membership = "NOT IN" if exclude else "IN"
    # A common word matches too many calls to fetch and sort: test membership while the
    # time index is walked instead (`+rowid` keeps the match list from driving the query).
    rowid = "+generations.rowid" if exclude or hints.common_search else "generations.rowid"
    return textual_condition(
        f"{rowid} {membership} (SELECT rowid FROM generations_fts "
        "WHERE generations_fts MATCH :search_q)",
        search_q=expression,
    )


def textual_condition(sql: str, **params: object) -> ColumnElement[bool]:
    """A WHERE condition written as SQL text (what the search indexes need), with bound values.

    SQLAlchemy takes a TextClause wherever a condition goes; its types only name column
    expressions, hence the cast.
    """
    return cast_type(ColumnElement[bool], text(sql).bindparams(**params))


_SEARCH_TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')
_WORD = re.compile(r"\w", re.UNICODE)


def has_word(query: str) -> bool:
    """Whether search-box text holds a word at all (without one it is no search)."""
    return _WORD.search(query) is not None


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
