"""`recorder.track(...)`: record a call made through any SDK (Replicate, fal, a local model).

The caller wraps the call in a `with` block and tells us what it got back; we time the block,
and an exception inside it is recorded as an error and re-raised untouched. Nothing here
raises into the caller's code for a recording problem: a bad image is logged and noted on the
record instead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from store.capture.context import current
from store.capture.image_items import image_record
from store.capture.redaction import Scrubber, describe_exception
from store.schema.models import Status, utcnow
from store.schema.records import CallRecord

log = logging.getLogger(__name__)


#: A record field by its record name (`usage`, `user`) or its column name (`usage_json`).
FIELDS_BY_NAME = {
    key: name
    for name, info in CallRecord.model_fields.items()
    for key in (name, info.alias or name)
}


class TrackedCall:
    """One tracked call: `add_image(...)` for each result, `set(...)` for anything else known."""

    def __init__(self, sink: Callable[[CallRecord], None], **fields: Any) -> None:
        """`fields` are the record's; the caller's `recorder.context()` fills the user and
        metadata they leave out (an argument given here is the narrower scope and wins)."""
        self._sink = sink
        context = current()
        if context.user and not (fields.get("user") or fields.get("user_id")):
            fields["user"] = context.user
        if context.metadata:
            key = "metadata_json" if "metadata_json" in fields else "metadata"
            fields[key] = {**context.metadata, **(fields.get(key) or {})}
        self.record = CallRecord(source="track", **fields)
        self._started: float | None = None

    def add_image(
        self,
        url: Any = None,
        *,
        data: bytes | None = None,
        b64: str | None = None,
        revised_prompt: str | None = None,
    ) -> None:
        """Add one result: a hosted `url` (a string, or an object with `.url` such as
        Replicate's FileOutput), raw `data` bytes, or a base64 string `b64`."""
        if url is not None and not isinstance(url, str):
            url = getattr(url, "url", None) or str(url)
        try:
            image = image_record(
                {"url": url, "data": data, "b64_json": b64, "revised_prompt": revised_prompt}
            )
        except ValueError as exc:
            reason = describe_exception(exc)
            log.warning("tracked image not recorded: %s", reason)
            self.record.metadata_json.setdefault("image_notes", []).append(reason)
            return
        self.record.images.append(image)

    def set(self, **fields: Any) -> None:
        """Set record fields learnt during the call (`revised_prompt`, `usage`, `cost_usd`...)."""
        for name, value in fields.items():
            field = FIELDS_BY_NAME.get(name)
            if field is None:
                raise TypeError(f"{name!r} is not a CallRecord field")
            setattr(self.record, field, value)

    def __enter__(self) -> TrackedCall:
        self.record.created_at = utcnow()
        self._started = time.perf_counter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._started is not None:
            self.record.latency_ms = (time.perf_counter() - self._started) * 1000
        if exc is not None:
            self.record.status = Status.error
            self.record.error = describe_exception(exc, Scrubber())
        self._sink(self.record)  # the recorder's record(): never raises
