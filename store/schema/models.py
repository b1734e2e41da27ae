"""The shape of the log, declared once: the tables, their columns, widths and indexes.

One `generations` row per image-generation request, one `images` row per returned image, and
one `reviews` row per verdict a reviewer gave an image (appended, never changed).
Column names are plain words and JSON lives in `*_json` columns, so the log reads well from
`sqlite3`, `psql` or Datasette without this package. All times are UTC: timestamptz on
PostgreSQL, ISO text without offset on SQLite; Python sees aware UTC datetimes.

Everything else derives from these classes (SQLModel's base / table / public pattern):
`GenerationFields` and `ImageFields` hold the columns; `Generation` and `Image` add the
indexes and are the tables; the record a call travels as (`store.schema.records`), the rows
the writer inserts, the export format and the Detail page's read models inherit the same
fields. Adding a column is this file and an Alembic revision; a test holds the revisions
equal to these classes (tests/test_schema_parity.py). A revision never imports this module:
it keeps a frozen copy of what it creates, so later changes here cannot rewrite history.
"""

from __future__ import annotations

import functools
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from annotated_types import MaxLen
from pydantic import ConfigDict, field_validator, model_validator
from sqlalchemy import (
    JSON,
    Index,
    LargeBinary,
    ScalarSelect,
    String,
    Table,
    Text,
    literal_column,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement
from sqlalchemy.types import DateTime
from sqlmodel import Field, SQLModel

from store.schema.enums import CostSource, Operation, Status, UrlState, Verdict

#: JSON on SQLite, JSONB on PostgreSQL (indexable, compact); Python None is SQL NULL, not JSON null.
JSONColumn = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


def utcnow() -> datetime:
    """Now, as the aware UTC datetime every time column of the log takes and returns."""
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """`moment` as aware UTC: an aware time is converted, a naive one is taken to be UTC.

    Naive means UTC throughout the log: SQLite hands stored times back naive, and a time typed
    on the command line or in a link without an offset is read as UTC, never as local time.
    """
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def new_id() -> str:
    """A generation id: uuid4 hex, made by the caller so records can be spooled and re-imported."""
    return uuid.uuid4().hex


# --- index expressions ----------------------------------------------------------------------

#: The text PostgreSQL's prompt-search GIN index is built over; `store.queries` searches with
#: the same expression, or the planner would not use the index. Parenthesised as PostgreSQL
#: prints it back, so the schema check compares like with like.
PG_PROMPT_TSVECTOR = (
    "to_tsvector('english', (coalesce(prompt, '') || ' ') || coalesce(revised_prompt, ''))"
)

#: The UTC hour of `created_at` per backend: 'YYYY-MM-DD HH' of SQLite's ISO text (every row
#: is written by SQLAlchemy in one fixed-width format), a timestamp on PostgreSQL. The
#: Analytics index is built over it and the Analytics queries group by the same text.
HOUR_EXPRESSIONS = {
    "sqlite": "substr(created_at, 1, 13)",
    "postgresql": "date_trunc('hour', (created_at AT TIME ZONE 'UTC'))",
}


class CreatedHour(ColumnElement[Any]):
    """`HOUR_EXPRESSIONS` as one index element, written out for whichever backend compiles it."""

    inherit_cache = True
    type = DateTime()


@compiles(CreatedHour)
def _compile_created_hour(_element: CreatedHour, compiler: Any, **_kw: Any) -> str:
    return HOUR_EXPRESSIONS[compiler.dialect.name]


def only_on(dialect: str, index: Index) -> Index:
    """`index` created on `dialect` alone (`ddl_if`), marked so the schema check skips it elsewhere.

    The mark lives in `info` because Alembic's comparison does not read `ddl_if`.
    """
    index.info["dialect"] = dialect
    return index.ddl_if(dialect=dialect)


def applies_to(index: Index, dialect: str) -> bool:
    """Whether `index` exists on `dialect` (see `only_on`)."""
    return index.info.get("dialect", dialect) == dialect


# --- the columns ----------------------------------------------------------------------------

#: How records and read models take and give the columns: by their record names (`params`,
#: `user`, `metadata`, ...) or their column names; JSON out uses the record names; bytes travel
#: in JSON as base64.
RECORD_CONFIG = ConfigDict(
    extra="ignore",
    allow_inf_nan=False,  # JSON cannot carry them back out
    validate_by_name=True,
    validate_by_alias=True,
    serialize_by_alias=True,
    ser_json_bytes="base64",
    val_json_bytes="base64",
)


#: Where a record notes the columns it was cut to fit: metadata key -> {column: length given}.
TRUNCATED_NOTE = "imagelog_truncated"
_HEX_ID = re.compile(r"[0-9a-f]{32}")
#: The range of an SQL INTEGER column on both backends (PostgreSQL's is 32-bit).
INTEGER_RANGE = (-(2**31), 2**31 - 1)


def utc_in_range(moment: datetime | None) -> datetime | None:
    """`as_utc`, with a time that UTC cannot hold (year 1 at +14:00) refused as a bad value."""
    if moment is None:
        return None
    try:
        return as_utc(moment)
    except OverflowError:
        raise ValueError(f"{moment.isoformat()} is outside the times UTC can hold") from None


def integers_in_range(model: SQLModel) -> None:
    """Refuse an integer field too large for its column, naming the field."""
    low, high = INTEGER_RANGE
    for name, value in model:
        if isinstance(value, int) and not isinstance(value, bool) and not low <= value <= high:
            raise ValueError(f"{name} {value} is out of the range of an integer column")


def fit_to_columns(model: type[SQLModel], value: Any) -> tuple[Any, dict[str, int]]:
    """`value` (a record's input) with every text longer than its column cut to the width.

    A long user or provider name is data to keep, not a reason to lose a call: it is cut
    (ending in "…"), and the caller is told which columns and how long they were.
    """
    if not isinstance(value, dict):
        return value, {}
    cut: dict[str, int] = {}
    for name, keys, width in _text_widths(model):
        for key in keys:
            text = value.get(key)
            if isinstance(text, str) and len(text) > width:
                value = {**value, key: text[: width - 1] + "…"}
                cut[name] = len(text)
    return value, cut


@functools.cache
def _text_widths(model: type[SQLModel]) -> tuple[tuple[str, tuple[str, ...], int], ...]:
    """(field, the input keys it is read from, its width) for each field with a width: read off
    the model once, not for every record validated."""
    widths = []
    for name, field in model.model_fields.items():
        width = next((m.max_length for m in field.metadata if isinstance(m, MaxLen)), None)
        if width is not None:
            alias = field.serialization_alias
            widths.append((name, (name, alias) if alias else (name,), width))
    return tuple(widths)


class GenerationFields(SQLModel):
    """The columns of one image-generation request, successful or not."""

    model_config = RECORD_CONFIG  # type: ignore[assignment]  # SQLModel types it as its own superset of ConfigDict

    id: str = Field(
        default_factory=new_id,
        primary_key=True,
        max_length=32,
        description="uuid4 hex, made by the caller",
    )
    created_at: datetime = Field(default_factory=utcnow)
    provider: str = Field(min_length=1, max_length=100)
    model: str = Field(default="", max_length=200)
    operation: Operation = Field(default=Operation.generate, sa_type=String(20))
    prompt: str = Field(default="", sa_type=Text)
    revised_prompt: str | None = Field(default=None, sa_type=Text)
    size: str | None = Field(default=None, max_length=40)
    quality: str | None = Field(default=None, max_length=40)
    n: int = 1
    params_json: dict[str, Any] = Field(
        default_factory=dict, sa_type=JSONColumn, nullable=True, alias="params"
    )
    status: Status = Field(default=Status.ok, sa_type=String(10))
    error: str | None = Field(default=None, sa_type=Text)
    http_status: int | None = None
    latency_ms: float | None = Field(default=None, ge=0)
    cost_usd: float | None = Field(default=None, ge=0)
    cost_source: CostSource = Field(default=CostSource.unknown, sa_type=String(20))
    cost_note: str | None = Field(default=None, max_length=500)
    usage_json: dict[str, Any] | None = Field(default=None, sa_type=JSONColumn, alias="usage")
    request_id: str | None = Field(default=None, max_length=200, index=True)
    trace_id: str | None = Field(default=None, max_length=200, index=True)
    user_id: str | None = Field(default=None, max_length=200, alias="user")
    metadata_json: dict[str, Any] = Field(
        default_factory=dict,
        sa_type=JSONColumn,
        nullable=True,
        alias="metadata",
    )
    request_json: dict[str, Any] | None = Field(default=None, sa_type=JSONColumn, alias="request")
    response_json: dict[str, Any] | None = Field(default=None, sa_type=JSONColumn, alias="response")
    image_count: int = 0
    source: str = Field(default="record", max_length=20)  # httpx / track / import / demo

    @model_validator(mode="before")
    @classmethod
    def _fit_to_columns(cls, value: Any) -> Any:
        value, cut = fit_to_columns(cls, value)
        if cut:
            key = "metadata" if "metadata" in value else "metadata_json"
            metadata = dict(value.get(key) or {})
            metadata[TRUNCATED_NOTE] = {**metadata.get(TRUNCATED_NOTE, {}), **cut}
            value = {**value, key: metadata}
        return value

    @field_validator("id")
    @classmethod
    def _id_is_hex(cls, value: str) -> str:
        if not _HEX_ID.fullmatch(value):
            raise ValueError("id must be 32 lowercase hex characters (a uuid4 hex)")
        return value

    @field_validator("created_at")
    @classmethod
    def _created_at_utc(cls, value: datetime) -> datetime | None:
        """Aware times are converted to UTC; naive ones are taken to be UTC already."""
        return utc_in_range(value)

    @model_validator(mode="after")
    def _integers_fit(self) -> GenerationFields:
        integers_in_range(self)
        return self

    @field_validator("params_json", "metadata_json", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        """A stored NULL (or JSON null) reads as an empty object."""
        return {} if value is None else value


class ImageFields(SQLModel):
    """The columns of one returned image: its hosted URL, what we know of it, a thumbnail."""

    model_config = RECORD_CONFIG  # type: ignore[assignment]  # SQLModel types it as its own superset of ConfigDict

    url: str | None = Field(default=None, sa_type=Text)
    url_host: str | None = Field(default=None, max_length=255)
    revised_prompt: str | None = Field(default=None, sa_type=Text)
    expires_at: datetime | None = None
    expires_source: str | None = Field(default=None, max_length=40)  # e.g. azure-sas, provider
    url_state: UrlState = Field(default=UrlState.unknown, sa_type=String(10))
    last_checked_at: datetime | None = None
    last_http_status: int | None = None
    last_error_code: str | None = Field(default=None, max_length=200)
    check_failures: int = 0
    sha256: str | None = Field(default=None, max_length=64)
    width: int | None = None
    height: int | None = None
    format: str | None = Field(default=None, max_length=20)
    byte_size: int | None = None
    thumbnail: bytes | None = Field(default=None, sa_type=LargeBinary, repr=False)
    thumbnail_error: str | None = Field(default=None, max_length=500)
    archive_path: str | None = Field(default=None, sa_type=Text)  # where the original is kept
    archive_error: str | None = Field(default=None, max_length=500)  # why it is not (yet)

    @model_validator(mode="before")
    @classmethod
    def _fit_to_columns(cls, value: Any) -> Any:
        return fit_to_columns(cls, value)[0]  # machine-made texts (codes, errors): cut only

    @field_validator("expires_at", "last_checked_at")
    @classmethod
    def _times_utc(cls, value: datetime | None) -> datetime | None:
        return utc_in_range(value)

    @model_validator(mode="after")
    def _integers_fit(self) -> ImageFields:
        integers_in_range(self)
        return self


class ImageKeys(SQLModel):
    """Where an image row sits: its own id and its call's id and position (not record content)."""

    id: int | None = Field(default=None, primary_key=True)
    generation_id: str = Field(foreign_key="generations.id", max_length=32)
    position: int = 0


class ImageVerdict(SQLModel):
    """An image's current verdict: that of its last `reviews` row, written in the same
    transaction (store/review/), so the verdict filters and the Review page's walk read an
    index instead of every image's trail. NULL: no one has judged the image yet. Derived
    state, not record content: the record of a call does not carry it."""

    verdict: Verdict | None = Field(default=None, sa_type=String(20))


class ReviewFields(SQLModel):
    """One verdict given to one image: who judged it, when, how, and why.

    The image is named by its call and position (an image's own id is a surrogate that
    export and import do not keep). Reviews are only ever appended: a changed mind is a new
    row, so the trail shows every change, from what to what (store/review/trail.py).
    """

    model_config = RECORD_CONFIG  # type: ignore[assignment]  # SQLModel types it as its own superset of ConfigDict

    generation_id: str = Field(foreign_key="generations.id", max_length=32)
    position: int = Field(ge=0)
    verdict: Verdict = Field(sa_type=String(20))
    reason: str | None = Field(default=None, max_length=200)
    note: str | None = Field(default=None, sa_type=Text)
    reviewer: str = Field(min_length=1, max_length=200)
    created_at: datetime = Field(default_factory=utcnow)

    @field_validator("reviewer", "reason", "note", mode="before")
    @classmethod
    def _stripped(cls, value: Any) -> Any:
        """Surrounding blanks are no part of a name or a note; a blank reason or note is none."""
        if not isinstance(value, str):
            return value
        return value.strip() or None

    @field_validator("created_at")
    @classmethod
    def _created_at_utc(cls, value: datetime) -> datetime | None:
        return utc_in_range(value)

    @model_validator(mode="after")
    def _integers_fit(self) -> ReviewFields:
        integers_in_range(self)
        return self


# --- the tables -----------------------------------------------------------------------------


class Generation(GenerationFields, table=True):
    """The `generations` table."""

    __tablename__ = "generations"
    __table_args__ = (
        # The Logs page's default order and its keyset pagination.
        Index("ix_generations_created_at_id", "created_at", "id"),
        # Each filter of that page, read in the same order.
        Index("ix_generations_provider_created_at_id", "provider", "created_at", "id"),
        # ... which also carries what the Analytics page sums, for index-only aggregates.
        Index(
            "ix_generations_provider_model_created_at_id_totals",
            *("provider", "model", "created_at", "id"),
            *("status", "image_count", "cost_usd", "latency_ms"),
        ),
        Index("ix_generations_model_created_at_id", "model", "created_at", "id"),
        Index("ix_generations_status_created_at_id", "status", "created_at", "id"),
        Index("ix_generations_user_id_created_at_id", "user_id", "created_at", "id"),
        # The Analytics page's grouped pass: calls by provider, model and UTC hour, no sort.
        Index(
            "ix_generations_provider_model_hour_totals",
            *("provider", "model", CreatedHour(), "created_at"),
            *("status", "image_count", "cost_usd", "latency_ms"),
        ),
        # The Analytics page's percentiles: each group's latencies in order.
        Index(
            "ix_generations_provider_model_latency_ms",
            *("provider", "model", "latency_ms", "created_at", "status", "cost_usd"),
        ),
        Index(
            "ix_generations_provider_latency_ms",
            *("provider", "latency_ms", "model", "created_at", "status", "cost_usd"),
        ),
        # Prompt search on PostgreSQL; SQLite searches an FTS5 table (PROMPT_SEARCH_SQLITE).
        only_on(
            "postgresql",
            Index(
                "ix_generations_prompt_fts",
                literal_column(PG_PROMPT_TSVECTOR),
                postgresql_using="gin",
            ),
        ),
    )


class Image(ImageVerdict, ImageKeys, ImageFields, table=True):
    """The `images` table."""

    __tablename__ = "images"
    __table_args__ = (
        Index("ux_images_generation_position", "generation_id", "position", unique=True),
        # The URL-state filter's "has an image in this state", without reading the row.
        Index("ix_images_generation_id_url_state", "generation_id", "url_state"),
        # The verdict filter's "has an image with this verdict" (NULL: unreviewed, which the
        # Review page walks), from either side: a call's images, or the images of a verdict.
        Index("ix_images_verdict_generation_id", "verdict", "generation_id"),
        # `check --due`: URLs whose predicted expiry has passed, or not checked for a while.
        Index("ix_images_url_state_expires_at", "url_state", "expires_at"),
        Index("ix_images_url_state_last_checked_at", "url_state", "last_checked_at"),
    )


class Review(ReviewFields, table=True):
    """The `reviews` table: the append-only trail of verdicts."""

    __tablename__ = "reviews"
    __table_args__ = (
        # One image's trail in order.
        Index(
            "ix_reviews_generation_id_position_created_at",
            "generation_id",
            "position",
            "created_at",
        ),
        # The most recent verdicts, whichever the image.
        Index("ix_reviews_created_at", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)


def _table(model: type[SQLModel]) -> Table:
    table = model.__table__  # type: ignore[attr-defined]  # set by SQLModel for table=True
    assert isinstance(table, Table)
    return table


#: The tables as SQLAlchemy Core sees them: every query and insert of the store uses these.
GENERATIONS: Table = _table(Generation)
IMAGES: Table = _table(Image)
REVIEWS: Table = _table(Review)


def current_verdict(generation_id: Any, position: Any) -> ScalarSelect[Any]:
    """The verdict of an image's last review, by time then id (NULL: none yet): what
    `images.verdict` holds. Values or columns: the writer sets the verdicts of the trails an
    import or copy carries with it, correlated to the `images` row it updates."""
    r = REVIEWS.c
    return (
        select(r.verdict)
        .where(r.generation_id == generation_id, r.position == position)
        .order_by(r.created_at.desc(), r.id.desc())
        .limit(1)
        .scalar_subquery()
    )


#: Prompt search on SQLite: an external-content FTS5 table over the prompts (the text is stored
#: once, in generations) kept in step by triggers. Not a table SQLAlchemy manages, so it is
#: declared here as its DDL, statement by statement, in creation order.
PROMPT_SEARCH_SQLITE = (
    "CREATE VIRTUAL TABLE generations_fts USING fts5("
    "prompt, revised_prompt, content='generations', content_rowid='rowid')",
    "CREATE TRIGGER generations_fts_ai AFTER INSERT ON generations BEGIN "
    "INSERT INTO generations_fts(rowid, prompt, revised_prompt) "
    "VALUES (new.rowid, new.prompt, new.revised_prompt); END",
    "CREATE TRIGGER generations_fts_ad AFTER DELETE ON generations BEGIN "
    "INSERT INTO generations_fts(generations_fts, rowid, prompt, revised_prompt) "
    "VALUES ('delete', old.rowid, old.prompt, old.revised_prompt); END",
    "CREATE TRIGGER generations_fts_au "
    "AFTER UPDATE OF prompt, revised_prompt ON generations BEGIN "
    "INSERT INTO generations_fts(generations_fts, rowid, prompt, revised_prompt) "
    "VALUES ('delete', old.rowid, old.prompt, old.revised_prompt); "
    "INSERT INTO generations_fts(rowid, prompt, revised_prompt) "
    "VALUES (new.rowid, new.prompt, new.revised_prompt); END",
)


def is_compared(dialect: str) -> Any:
    """Alembic's `include_object` for comparing the database with these models on `dialect`.

    Skips what Alembic cannot see as a model: the FTS5 table and its shadow tables (checked
    against `PROMPT_SEARCH_SQLITE` instead) and indexes that exist on another backend only.
    """

    def include(obj: Any, name: str | None, type_: str, _reflected: bool, _other: Any) -> bool:
        if type_ == "table" and name is not None and name.startswith("generations_fts"):
            return False
        return not (type_ == "index" and isinstance(obj, Index) and not applies_to(obj, dialect))

    return include
