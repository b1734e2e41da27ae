"""One walk over JSON-shaped values, for the places that rewrite every string in one.

Secrets are scrubbed from request and response JSON (`store.capture.redaction`), inline
`data:` uploads are shortened (`store.capture.openai_exchange`) and NUL characters are
replaced before PostgreSQL sees them (`store.capture.writer`): three string rewrites over
the same shapes, one walk.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


def map_strings(value: Any, change: Callable[[str], Any], *, keys: bool = False) -> Any:
    """A copy of `value` with `change` applied to every string in it (and to the keys of its
    mappings when `keys`).

    Mappings become dicts and tuples become lists (their JSON shapes); other values are kept.
    """
    if isinstance(value, str):
        return change(value)
    if isinstance(value, Mapping):
        return {
            (change(key) if keys and isinstance(key, str) else key): map_strings(
                item, change, keys=keys
            )
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [map_strings(item, change, keys=keys) for item in value]
    return value
