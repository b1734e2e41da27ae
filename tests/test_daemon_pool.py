"""The daemon pool's per-key limit: one key's jobs never take every thread."""

from __future__ import annotations

import threading

from store.media.daemon_pool import DaemonPool


def test_jobs_over_their_keys_limit_wait_while_other_keys_run():
    pool = DaemonPool(4, "test-pool", per_key=2)
    release = threading.Event()
    started: list[str] = []
    lock = threading.Lock()

    def job(name: str) -> None:
        with lock:
            started.append(name)
        if name.startswith("slow"):
            release.wait(timeout=30)

    for index in range(6):
        pool.submit(job, f"slow{index}", key="slow.example")
    other = threading.Event()
    pool.submit(lambda: other.set(), key="fast.example")

    assert other.wait(timeout=30)  # not queued behind the slow key's six jobs
    with lock:
        assert sorted(started) == ["slow0", "slow1"]
    release.set()
    pool.shutdown(wait=True)
    assert sorted(started) == [f"slow{index}" for index in range(6)]  # the held ones ran too


def test_shutdown_with_cancel_drops_queued_and_held_jobs_and_counts_them():
    pool = DaemonPool(1, "test-pool", per_key=1)
    running, release = threading.Event(), threading.Event()
    ran: list[int] = []

    def busy() -> None:
        running.set()
        release.wait(timeout=30)

    pool.submit(busy, key="a")  # takes the one thread
    assert running.wait(timeout=30)
    for index in range(3):
        pool.submit(ran.append, index, key="a")  # held: over the key's limit
    pool.submit(ran.append, 99)  # queued behind the running job

    dropped = pool.shutdown(wait=False, cancel_futures=True)
    release.set()

    assert dropped == 4
    assert ran == []


def test_map_keeps_the_items_order_under_a_per_key_limit():
    pool = DaemonPool(3, "test-pool", per_key=1)

    results = list(pool.map(lambda n: n * n, range(10), key=lambda n: n % 2))

    assert results == [n * n for n in range(10)]
    pool.shutdown()
