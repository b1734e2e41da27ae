"""One walk over JSON-shaped values, for the places that rewrite every string in one.

Secrets are scrubbed from request and response JSON (`store.capture.redaction`), inline
`data:` uploads are shortened (`store.capture.openai_exchange`) and NUL characters are
replaced before PostgreSQL sees them (`store.capture.writer`): three string rewrites over
the same shapes, one walk.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


def map_strings(value: Any, change: Callable[[str], Any]) -> Any:
    """A copy of `value` with `change` applied to every string in it, keys excepted.

    Mappings become dicts and tuples become lists (their JSON shapes); other values are kept.
    """
    if isinstance(value, str):
        return change(value)
    if isinstance(value, Mapping):
        return {key: map_strings(item, change) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [map_strings(item, change) for item in value]
    return value
