"""A call's parameters: what its request sent, kept apart from what its response reported.

`params` holds the request's fields as they were sent (`size: "auto"` stays "auto"). A response
that says what it made (gpt-image's `size`, `quality`, `background`, `output_format`) is kept
under `params["reported"]`, so the log shows both what was asked and what was made. The size
and quality columns and the price go by what was made: the reported value, else the requested.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: The key of `params` under which the response's own account of the call is kept.
REPORTED = "reported"


def made(params: Mapping[str, Any], name: str) -> Any:
    """What the call made of parameter `name`: as its response reported it, else as asked."""
    reported = params.get(REPORTED)
    if isinstance(reported, Mapping) and reported.get(name) not in (None, ""):
        return reported[name]
    return params.get(name)
