"""The two tables of the log, as typed SQLModel classes.

One `Generation` row per image-generation request and one `Image` row per returned image.
Column names are plain words and JSON lives in `*_json` columns, so the log reads well from
`sqlite3`, `psql` or Datasette without this package. All times are UTC: timestamptz on
PostgreSQL, ISO text without offset on SQLite; Python sees aware UTC datetimes.

The schema itself is created and changed only by the Alembic revisions in
`store/schema/migrations/versions`; these classes describe it for queries and inserts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, LargeBinary, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

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


class Status(StrEnum):
    ok = "ok"
    error = "error"


class UrlState(StrEnum):
    """What we know of an image's hosted URL."""

    live = "live"  # answered 200/206 at last_checked_at
    expired = "expired"  # answered 403/404/410, or its signature's expiry has passed
    unknown = "unknown"  # never checked, or the last check failed transiently
    none = "none"  # the image came as b64 bytes: there is no hosted URL


class CostSource(StrEnum):
    """How cost_usd was worked out; `unknown` rows keep cost_usd NULL."""

    per_image = "per_image"  # the price table's per-image price x images
    tokens = "tokens"  # the response's `usage` x the price table's token prices
    reported = "reported"  # the caller or the imported record gave the cost
    unknown = "unknown"  # no price known: cost_note says why


class Generation(SQLModel, table=True):
    """One image-generation request, successful or not."""

    __tablename__ = "generations"
    __table_args__ = (
        # The Logs page's default order and its keyset pagination.
        Index("ix_generations_created_at_id", "created_at", "id"),
        # Each filter of that page, read in the same order (revision 0002).
        Index("ix_generations_provider_created_at_id", "provider", "created_at", "id"),
        # ... which also carries what the Analytics page sums, for index-only aggregates (0003).
        Index(
            "ix_generations_provider_model_created_at_id_totals",
            *("provider", "model", "created_at", "id"),
            *("status", "image_count", "cost_usd", "latency_ms"),
        ),
        Index("ix_generations_model_created_at_id", "model", "created_at", "id"),
        Index("ix_generations_status_created_at_id", "status", "created_at", "id"),
        Index("ix_generations_user_id_created_at_id", "user_id", "created_at", "id"),
        # The Analytics page's percentiles: each group's latencies in order (0004). 0004 also
        # adds ix_generations_provider_model_hour_totals, over an expression of created_at
        # written per backend (HOUR_EXPRESSIONS there), so it is not declared here.
        Index(
            "ix_generations_provider_model_latency_ms",
            *("provider", "model", "latency_ms", "created_at", "status", "cost_usd"),
        ),
        Index(
            "ix_generations_provider_latency_ms",
            *("provider", "latency_ms", "model", "created_at", "status", "cost_usd"),
        ),
    )

    id: str = Field(primary_key=True, max_length=32, description="uuid4 hex, made by the caller")
    created_at: datetime = Field(default_factory=utcnow)
    provider: str = Field(max_length=100)
    model: str = Field(default="", max_length=200)
    operation: str = Field(default="generate", max_length=20)  # generate / edit / variation
    prompt: str = Field(default="", sa_type=Text)
    revised_prompt: str | None = Field(default=None, sa_type=Text)
    size: str | None = Field(default=None, max_length=40)
    quality: str | None = Field(default=None, max_length=40)
    n: int = 1
    params_json: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONColumn))
    status: str = Field(default=Status.ok, max_length=10)
    error: str | None = Field(default=None, sa_type=Text)
    http_status: int | None = None
    latency_ms: float | None = None
    cost_usd: float | None = None
    cost_source: str = Field(default=CostSource.unknown, max_length=20)
    cost_note: str | None = Field(default=None, max_length=500)
    usage_json: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONColumn))
    request_id: str | None = Field(default=None, max_length=200, index=True)
    trace_id: str | None = Field(default=None, max_length=200, index=True)
    user_id: str | None = Field(default=None, max_length=200)
    metadata_json: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONColumn))
    request_json: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONColumn))
    response_json: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONColumn))
    image_count: int = 0
    source: str = Field(default="record", max_length=20)  # httpx / track / import / demo


class Image(SQLModel, table=True):
    """One image returned by a generation, with what we know of its hosted URL and a thumbnail."""

    __tablename__ = "images"
    __table_args__ = (
        Index("ux_images_generation_position", "generation_id", "position", unique=True),
        # The URL-state filter's "has an image in this state", without reading the row.
        Index("ix_images_generation_id_url_state", "generation_id", "url_state"),
        # `check --due`: URLs whose predicted expiry has passed, or not checked for a while.
        Index("ix_images_url_state_expires_at", "url_state", "expires_at"),
        Index("ix_images_url_state_last_checked_at", "url_state", "last_checked_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    generation_id: str = Field(foreign_key="generations.id", max_length=32)
    position: int = 0
    url: str | None = Field(default=None, sa_type=Text)
    url_host: str | None = Field(default=None, max_length=255)
    revised_prompt: str | None = Field(default=None, sa_type=Text)
    expires_at: datetime | None = None
    expires_source: str | None = Field(default=None, max_length=40)  # e.g. azure-sas, provider
    url_state: str = Field(default=UrlState.unknown, max_length=10)
    last_checked_at: datetime | None = None
    last_http_status: int | None = None
    last_error_code: str | None = Field(default=None, max_length=200)
    check_failures: int = 0
    sha256: str | None = Field(default=None, max_length=64)
    width: int | None = None
    height: int | None = None
    format: str | None = Field(default=None, max_length=20)
    byte_size: int | None = None
    thumbnail: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    thumbnail_error: str | None = Field(default=None, max_length=500)
    archive_path: str | None = Field(default=None, sa_type=Text)
