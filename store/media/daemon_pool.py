"""A fixed pool of daemon threads: background work that still runs while `atexit` handlers do.

A `concurrent.futures` pool stops taking work as soon as the interpreter starts to exit, before
any `atexit` handler runs (its threads are joined first). The recorder drains its queue in an
`atexit` handler and hands the last images to the thumbnail worker then, so that worker runs
on this pool instead: daemon threads are not joined at exit, and serve until `shutdown()`.
Its `submit`, `map` and `shutdown` take what `ThreadPoolExecutor`'s do; `submit` returns
nothing.

A job may name a `key` (the thumbnail worker names the image's host): with `per_key` set, at
most that many jobs of one key run at once and the rest of that key wait their turn, so one
slow key cannot take every thread while the jobs of other keys queue behind it.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
from collections import Counter, deque
from collections.abc import Callable, Hashable, Iterable, Iterator
from concurrent.futures import Future
from typing import TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")
Job = Callable[[], object]


class DaemonPool:
    """`workers` daemon threads named `name_0`, `name_1`..., started at once; `per_key`: at
    most that many jobs of one key at a time (None: no limit)."""

    def __init__(self, workers: int, name: str, *, per_key: int | None = None) -> None:
        if workers < 1:
            raise ValueError("a pool needs at least one worker")
        if per_key is not None and per_key < 1:
            raise ValueError("a per-key limit must let at least one job run")
        self.per_key = per_key
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._shut = False
        self._running: Counter[Hashable] = Counter()  # jobs of each key queued or running
        self._held: dict[Hashable, deque[Job]] = {}  # jobs over their key's limit, in order
        self._threads = [
            threading.Thread(target=self._serve, name=f"{name}_{index}", daemon=True)
            for index in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[..., object], /, *args: object, key: Hashable = None) -> None:
        """Run `fn(*args)` on a pool thread, once `key` is under its limit; RuntimeError once
        the pool is shut down."""
        job = functools.partial(fn, *args)
        with self._lock:
            if self._shut:
                raise RuntimeError("cannot submit to a pool that is shut down")
            if key is None or self.per_key is None:
                self._jobs.put(job)
            elif self._running[key] >= self.per_key:
                self._held.setdefault(key, deque()).append(job)
            else:
                self._running[key] += 1
                self._jobs.put(functools.partial(self._run_keyed, key, job))

    def map(
        self,
        fn: Callable[[T], R],
        items: Iterable[T],
        *,
        key: Callable[[T], Hashable] | None = None,
    ) -> Iterator[R]:
        """Run `fn` on every item on the pool (all queued at once, `key(item)` naming each
        one's key); yield the results in the items' order as they come, re-raising a job's
        exception at its turn."""
        futures: list[Future[R]] = []
        for item in items:
            future: Future[R] = Future()
            self.submit(_settle, future, fn, item, key=key(item) if key else None)
            futures.append(future)
        return (future.result() for future in futures)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> int:
        """Stop the threads after the queued jobs (dropped instead with `cancel_futures`);
        `wait`: until the threads have finished. Returns how many jobs were dropped."""
        dropped = 0
        with self._lock:
            self._shut = True
            if cancel_futures:
                dropped = sum(len(held) for held in self._held.values())
                self._held.clear()
                while True:
                    try:
                        self._jobs.get_nowait()
                    except queue.Empty:
                        break
                    dropped += 1
            for _ in self._threads:
                self._jobs.put(None)
        if wait:
            for thread in self._threads:
                thread.join()
        return dropped

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            _run(job)

    def _run_keyed(self, key: Hashable, job: Job) -> None:
        """Run `job`, then the jobs of its key held back meanwhile, on this same thread (so
        they never queue again behind the stop signals of `shutdown`)."""
        next_job: Job | None = job
        while next_job is not None:
            _run(next_job)
            with self._lock:
                held = self._held.get(key)
                if held:
                    next_job = held.popleft()
                    if not held:
                        del self._held[key]
                else:
                    next_job = None
                    self._running[key] -= 1
                    if not self._running[key]:
                        del self._running[key]


def _run(job: Job) -> None:
    try:
        job()
    except Exception:  # a failed job must not take its thread with it
        log.exception("background job failed")


def _settle(future: Future[R], fn: Callable[[T], R], item: T) -> None:
    try:
        future.set_result(fn(item))
    except BaseException as exc:  # the caller of map() sees it, at this item's turn
        future.set_exception(exc)
