"""One deadline over a whole blocking fetch: resolving, connecting, the headers and the body.

Per-operation timeouts do not bound a fetch: a host that sends one byte of its headers every
few seconds satisfies every read timeout and keeps the fetch alive for as long as it likes.
So a fetch runs inside `with deadline(seconds):`, and every wait on the network inside it (a
name lookup, a connect, each read and write) is given at most the time left (`time_left`); once
none is left the wait fails with `DeadlineExceeded`. The guarded transports
(`store.media.guarded_transport`) apply it to every socket they open.

The deadline is a context variable, so it belongs to the thread (or task) that set it: the
threads sharing one client each keep their own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import httpx

#: (monotonic time it ends at, its length in seconds) of the innermost deadline, if any.
_DEADLINE: ContextVar[tuple[float, float] | None] = ContextVar("imagelog_deadline", default=None)


class DeadlineExceeded(httpx.TimeoutException, TimeoutError):
    """The fetch outlived its deadline, in whichever phase it was (an httpx timeout for httpx's
    callers, a TimeoutError for the rest, as `asyncio.timeout`'s is)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"no complete answer within the {seconds:g} s deadline")
        self.seconds = seconds


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Bound every network wait inside the block by one deadline `seconds` from now (or the
    enclosing deadline, when that ends sooner)."""
    ends_at = time.monotonic() + seconds
    outer = _DEADLINE.get()
    token = _DEADLINE.set(outer if outer and outer[0] <= ends_at else (ends_at, seconds))
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def time_left(timeout: float | None) -> float | None:
    """`timeout` (None: no limit) shortened to what is left of the deadline, if one is set;
    raises DeadlineExceeded when nothing is left."""
    if (current := _DEADLINE.get()) is None:
        return timeout
    ends_at, seconds = current
    left = ends_at - time.monotonic()
    if left <= 0:
        raise DeadlineExceeded(seconds)
    return left if timeout is None else min(timeout, left)


def exceeded() -> DeadlineExceeded | None:
    """The error to raise instead of a timeout when the deadline is what ran out, else None."""
    if (current := _DEADLINE.get()) is not None and time.monotonic() >= current[0]:
        return DeadlineExceeded(current[1])
    return None
