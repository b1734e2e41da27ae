"""imagelog: an audit log for image-generation calls.

The public surface is small: `Recorder` (with `httpx_client()`, `async_httpx_client()`, their
httpx2 twins and `http_client_for(sdk)`, `context()`, `track()`, `record()`, `flush()`,
`close()`) and the record types it takes. They are imported
on first use, so importing a light part of the package (`store.schema.models`) stays light.
"""

from typing import TYPE_CHECKING

from store.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from store.capture.recorder import Recorder
    from store.schema.records import CallRecord, ImageRecord

__all__ = ["CallRecord", "ImageRecord", "Recorder"]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "store.capture.recorder": ["Recorder"],
        "store.schema.records": ["CallRecord", "ImageRecord"],
    },
)
