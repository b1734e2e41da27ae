"""One returned image as a record, keeping what is good of it when part of it is not.

A provider (or a `track()` caller) can hand back base64 that does not decode. The image still
happened: its row is kept, with its URL and revised prompt when it has them, and its
`thumbnail_error` says why there is no thumbnail, so the call's image count and the Gallery
tell the truth. Only an image with nothing usable (a URL that is not http(s)) is left out,
and the caller notes why.
"""

from __future__ import annotations

from typing import Any

from store.capture.redaction import describe_exception
from store.schema.records import ImageRecord


def image_record(fields: dict[str, Any]) -> ImageRecord:
    """The image of `fields` (`url`, `b64_json`, `data`, `revised_prompt`); ValueError only
    when even its row cannot be kept."""
    try:
        return ImageRecord.model_validate(fields)
    except ValueError as exc:
        if not fields.get("b64_json"):
            raise
        reason = describe_exception(exc)
    kept = {key: value for key, value in fields.items() if key not in ("b64_json", "data")}
    return ImageRecord.model_validate({**kept, "thumbnail_error": reason[:500]})
