"""How a long job reports progress: a callback, so the library never draws a bar itself.

The CLI turns the callback into a tqdm bar, the dashboard into `st.progress`, tests into a list.
It lives at the bottom layer so every job (import, demo, thumbnails, check) takes the same type.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

#: `on_progress(done, total)`: called with (0, total) before the first step and after each
#: step; `total` is None while it is not known (a JSONL stream read from standard input).
Progress: TypeAlias = Callable[[int, int | None], None]


def no_progress(done: int, total: int | None) -> None:
    """The callback of a caller that wants no progress."""
