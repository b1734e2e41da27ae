"""The record of one call as it travels: from a transport, `track()`, a JSONL line or the demo,
through the recorder's queue and spool, into the two tables, and back out by `export`.

A record is the table's columns (`GenerationFields`, `ImageFields`) plus what only travels:
the images of a call, an image's raw bytes, and the trail of verdicts it was given (its
`reviews` rows, which export, import and copy carry along). Pydantic validates it, so a
malformed JSONL line fails with a message that names the field, and the same shape is the
import and the export format: every stored column, by its record name (`params`, `user`,
`metadata`, ...).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from pydantic import field_validator, model_validator
from sqlmodel import Field

from store.schema.locations import location_problem
from store.schema.models import GenerationFields, ImageFields, ReviewFields, UrlState, new_id

__all__ = ["CallRecord", "ImageRecord", "ReviewRecord", "new_id"]


class ReviewRecord(ReviewFields):
    """One verdict of an image's trail, as an exported image carries it (its `reviews` row
    but the row's own id). The image it judges is the one it travels in: the writer stores it
    under that image's call and position, whatever `generation_id` and `position` say."""


class ImageRecord(ImageFields):
    """One returned image: a hosted URL, inline bytes, or both.

    `data` (raw bytes) never reaches the database; the thumbnail worker turns it into a
    thumbnail and, when archiving is on, a file. JSON gives it as base64 (`b64_json`).
    A record that does not say its URL's state starts `unknown` (`none` without a URL).
    """

    data: bytes | None = Field(default=None, exclude=True, repr=False)
    #: The image's verdicts, oldest first (the last is its current verdict). Only a record
    #: that comes back from a log has them; a recorded call has not been judged yet.
    reviews: list[ReviewRecord] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _decode_b64_json_and_state(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        value = dict(value)
        if value.get("b64_json") and not value.get("data"):
            try:
                value["data"] = base64.b64decode(value.pop("b64_json"), validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ValueError(f"b64_json is not valid base64: {exc}") from exc
        if value.get("url_state") is None:
            value["url_state"] = UrlState.unknown if value.get("url") else UrlState.none
        return value

    @field_validator("url")
    @classmethod
    def _url_is_http(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https://")
        return url

    @field_validator("archive_path")
    @classmethod
    def _archive_path_is_safe(cls, path: str | None) -> str | None:
        """An archive location is stored and shown: never one with a credential in it."""
        if path is not None and (problem := location_problem(path)):
            raise ValueError(problem)
        return path


class CallRecord(GenerationFields):
    """One image-generation call, the unit the recorder queues and writes."""

    images: list[ImageRecord] = Field(default_factory=list)
