"""imagelog: an audit log for image-generation calls.

The public surface is small: `Recorder` (with `httpx_client()`, `async_httpx_client()`,
`track()`, `record()`, `flush()`, `close()`) and the record types it takes.
"""

from store.capture.recorder import Recorder
from store.schema.records import CallRecord, ImageRecord

__all__ = ["CallRecord", "ImageRecord", "Recorder"]
