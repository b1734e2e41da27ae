"""How long a caller's `record()` takes while the recorder replays a large spool.

    .venv/bin/python benchmarks/spool_replay.py                       # SQLite, 50,000 spooled
    .venv/bin/python benchmarks/spool_replay.py --database-url postgresql+psycopg://...
    .venv/bin/python benchmarks/spool_replay.py --max-queue 100       # the queue overflows

A recorder starts on a database that was down for a while: `--spooled` records wait in its
spool. A caller thread records a call every `--interval` seconds while the writer replays the
spool, and every `record()` is timed. The baseline is the same caller against a recorder with
an empty spool. The replay runs a batch at a time between the queue's batches, so the caller
should not notice it; with a small `--max-queue` the calls overflow to the spooler thread's
queue, which appends to the spool without waiting for the replay.

The max is the odd outlier of a busy machine: the interpreter's garbage collection and the
scheduler pause any thread for tens of milliseconds now and then, with a replay or without.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from store import Recorder
from store.capture.spool import Spool
from store.schema.db import make_engine
from store.schema.models import GENERATIONS
from store.schema.records import CallRecord


def a_call(index: int, source: str) -> CallRecord:
    return CallRecord(
        provider="openai",
        model="gpt-image-1",
        prompt=f"a lighthouse at dusk, take {index}",
        params={"size": "1024x1024", "quality": "medium"},
        latency_ms=12_000,
        source=source,
    )


def stored(url: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(select(func.count()).select_from(GENERATIONS)).scalar_one()
    finally:
        engine.dispose()


def run(url: str, spool_path: Path, args: argparse.Namespace, spooled: int) -> dict[str, float]:
    """Time every record() of a paced caller; with `spooled` records waiting to be replayed,
    the caller runs until the replay is done."""
    if spooled:
        Spool(spool_path).append([a_call(index, "spooled") for index in range(spooled)])
    before = stored(url)
    took: list[float] = []
    started = time.perf_counter()
    recorder = Recorder(url, spool_path=spool_path, thumbnails=False, max_queue=args.max_queue)

    def caller() -> None:
        index = 0
        while index < args.calls or (spooled and recorder.spool.pending()):
            began = time.perf_counter()
            recorder.record(a_call(index, "live"))
            took.append(time.perf_counter() - began)
            index += 1
            time.sleep(args.interval)

    thread = threading.Thread(target=caller)
    thread.start()
    thread.join()
    replayed_in = time.perf_counter() - started
    assert recorder.flush(timeout=600), "not every record was stored"
    recorder.close()
    assert stored(url) - before == spooled + len(took), "records went missing"
    took.sort()
    return {
        "calls": len(took),
        "p50": statistics.median(took),
        "p99": took[int(len(took) * 0.99)],
        "max": took[-1],
        "seconds": replayed_in,
        "dropped": recorder.dropped,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="default: a new SQLite file")
    parser.add_argument("--spooled", type=int, default=50_000, help="records in the spool")
    parser.add_argument("--calls", type=int, default=5_000, help="at least this many calls")
    parser.add_argument("--interval", type=float, default=0.0005, help="seconds between calls")
    parser.add_argument("--max-queue", type=int, default=10_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{Path(folder) / 'imagelog.db'}"
        make_engine(url).dispose()  # the schema, so neither run pays for creating it
        baseline = run(url, Path(folder) / "empty.spool.jsonl", args, 0)
        replay = run(url, Path(folder) / "full.spool.jsonl", args, args.spooled)

    print(
        f"{args.spooled} spooled records; a record() every {args.interval * 1e3:g} ms; "
        f"max_queue {args.max_queue}"
    )
    print(f"{'case':<22}{'calls':>7}{'p50 us':>9}{'p99 us':>9}{'max ms':>9}{'dropped':>9}")
    for name, result in (("no replay", baseline), ("during the replay", replay)):
        print(
            f"{name:<22}{result['calls']:>7}{result['p50'] * 1e6:>9.0f}"
            f"{result['p99'] * 1e6:>9.0f}{result['max'] * 1e3:>9.2f}{result['dropped']:>9}"
        )
    print(
        f"replay of {args.spooled} records took {replay['seconds']:.1f} s "
        f"({args.spooled / replay['seconds']:.0f}/s beside the caller); "
        f"p99 ratio during/without: {replay['p99'] / baseline['p99']:.2f}"
    )


if __name__ == "__main__":
    main()
