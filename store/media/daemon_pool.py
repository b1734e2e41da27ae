"""A fixed pool of daemon threads: background work that still runs while `atexit` handlers do.

A `concurrent.futures` pool stops taking work as soon as the interpreter starts to exit, before
any `atexit` handler runs (its threads are joined first). The recorder drains its queue in an
`atexit` handler and hands the last images to the thumbnail worker then, so that worker runs
on this pool instead: daemon threads are not joined at exit, and serve until `shutdown()`.
Its `submit`, `map` and `shutdown` take what `ThreadPoolExecutor`'s do; `submit` returns
nothing.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from typing import TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")


class DaemonPool:
    """`workers` daemon threads named `name_0`, `name_1`..., started at once."""

    def __init__(self, workers: int, name: str) -> None:
        if workers < 1:
            raise ValueError("a pool needs at least one worker")
        self._jobs: queue.SimpleQueue[Callable[[], object] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._shut = False
        self._threads = [
            threading.Thread(target=self._serve, name=f"{name}_{index}", daemon=True)
            for index in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[..., object], /, *args: object) -> None:
        """Run `fn(*args)` on a pool thread; RuntimeError once the pool is shut down."""
        with self._lock:
            if self._shut:
                raise RuntimeError("cannot submit to a pool that is shut down")
            self._jobs.put(functools.partial(fn, *args))

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        """Run `fn` on every item on the pool (all queued at once); yield the results in the
        items' order as they come, re-raising a job's exception at its turn."""
        futures: list[Future[R]] = []
        for item in items:
            future: Future[R] = Future()
            self.submit(_settle, future, fn, item)
            futures.append(future)
        return (future.result() for future in futures)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop the threads after the queued jobs (dropped instead with `cancel_futures`);
        `wait`: until the threads have finished."""
        with self._lock:
            self._shut = True
        if cancel_futures:
            while True:
                try:
                    self._jobs.get_nowait()
                except queue.Empty:
                    break
        for _ in self._threads:
            self._jobs.put(None)
        if wait:
            for thread in self._threads:
                thread.join()

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                job()
            except Exception:  # a failed job must not take its thread with it
                log.exception("background job failed")


def _settle(future: Future[R], fn: Callable[[T], R], item: T) -> None:
    try:
        future.set_result(fn(item))
    except BaseException as exc:  # the caller of map() sees it, at this item's turn
        future.set_exception(exc)
