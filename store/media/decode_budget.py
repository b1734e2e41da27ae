"""A process-wide allowance of memory for decoded pixels, so concurrent thumbnails stay bounded.

A 250 KB PNG can decode to 256 MB of pixels (8000 x 8000 RGBA, zlib's ratio at its best), and
the thumbnail worker decodes on several threads at once: without a budget, four such images
take a gigabyte. Each decode first spends its cost from the one budget and gives it back when
its pixels are freed, so decodes that together would exceed the budget run one after another,
while small ones still run side by side.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager


class DecodeBudget:
    """`with budget.spend(cost):` waits until `cost` bytes are free, in the order asked.

    Turns are first come, first served: a large decode waiting for room is not overtaken by a
    stream of small ones. A cost above the whole capacity spends all of it (such an image is
    still decoded, alone), so nothing waits forever.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("a decode budget needs a positive capacity")
        self.capacity = capacity
        self._free = capacity
        self._queue: deque[object] = deque()  # one ticket per waiting spend(), in arrival order
        self._changed = threading.Condition()

    @contextmanager
    def spend(self, cost: int) -> Iterator[None]:
        """Hold `cost` bytes (at most the capacity) for the duration of the block."""
        cost = max(0, min(cost, self.capacity))
        ticket = object()
        with self._changed:
            self._queue.append(ticket)
            self._changed.wait_for(lambda: self._queue[0] is ticket and self._free >= cost)
            self._queue.popleft()
            self._free -= cost
            self._changed.notify_all()  # the next in line may fit beside this one
        try:
            yield
        finally:
            with self._changed:
                self._free += cost
                self._changed.notify_all()
