"""The record of one call as it travels: from a transport, `track()`, a JSONL line or the demo,
through the recorder's queue and spool, into the two tables, and back out by `export`.

Pydantic validates it, so a malformed JSONL line fails with a message that names the field,
and the same shape is the import and the export format.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from store.schema.models import CostSource, Status, as_utc, utcnow


def new_id() -> str:
    """A generation id: uuid4 hex, made by the caller so records can be spooled and re-imported."""
    return uuid.uuid4().hex


class ImageRecord(BaseModel):
    """One returned image: a hosted URL, inline bytes, or both.

    `data` (raw bytes) never reaches the database; the thumbnail worker turns it into a
    thumbnail and, when archiving is on, a file. JSON holds it as base64 (`b64_json`).
    """

    model_config = ConfigDict(extra="ignore")

    url: str | None = None
    data: bytes | None = Field(default=None, exclude=True, repr=False)
    revised_prompt: str | None = None
    # Filled by later stages or carried by an import / export round trip:
    url_state: str | None = None
    expires_at: datetime | None = None
    last_checked_at: datetime | None = None
    sha256: str | None = None
    width: int | None = None
    height: int | None = None
    format: str | None = None
    byte_size: int | None = None
    # A ready WebP thumbnail, for ways in that made one already (the demo); never in JSON.
    thumbnail: bytes | None = Field(default=None, exclude=True, repr=False)

    @model_validator(mode="before")
    @classmethod
    def _decode_b64_json(cls, value: Any) -> Any:
        if isinstance(value, dict) and value.get("b64_json") and not value.get("data"):
            value = dict(value)
            try:
                value["data"] = base64.b64decode(value.pop("b64_json"), validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ValueError(f"b64_json is not valid base64: {exc}") from exc
        return value

    @field_validator("url")
    @classmethod
    def _url_is_http(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https://")
        return url


class CallRecord(BaseModel):
    """One image-generation call, the unit the recorder queues and writes."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(default_factory=new_id, pattern=r"^[0-9a-f]{32}$")
    created_at: datetime = Field(default_factory=utcnow)
    provider: str = Field(min_length=1, max_length=100)
    model: str = Field(default="", max_length=200)
    operation: str = Field(default="generate", pattern=r"^(generate|edit|variation)$")
    prompt: str = ""
    revised_prompt: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    status: Status = Status.ok
    error: str | None = None
    http_status: int | None = None
    latency_ms: float | None = Field(default=None, ge=0)
    cost_usd: float | None = Field(default=None, ge=0)
    cost_source: CostSource | None = None
    cost_note: str | None = None
    usage: dict[str, Any] | None = None
    request_id: str | None = None
    trace_id: str | None = None
    user: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    request: dict[str, Any] | None = None
    response: dict[str, Any] | None = None
    source: str = "record"
    images: list[ImageRecord] = Field(default_factory=list)

    @field_validator("created_at")
    @classmethod
    def _as_utc(cls, value: datetime) -> datetime:
        """Aware times are converted to UTC; naive ones are taken to be UTC already."""
        return as_utc(value)
