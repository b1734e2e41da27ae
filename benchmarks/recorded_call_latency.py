"""What recording adds to an images call, as the caller sees it.

    .venv/bin/python benchmarks/recorded_call_latency.py                      # 400 calls per side
    .venv/bin/python benchmarks/recorded_call_latency.py --calls 1000 --model gpt-image-1
    .venv/bin/python benchmarks/recorded_call_latency.py --database-url postgresql+psycopg://...

The real openai SDK calls the loopback stand-in API (tests/standins/openai_server.py) through a
plain `httpx.Client` (the raw baseline) and through `recorder.httpx_client()`, alternating in
rounds (ABBA order) so drift and position hit both sides alike. Per call it prints the wall
time (median, p99) and the calling thread's CPU time (median: what the transport itself costs
the caller), with the difference and ratio. Loopback is the worst case: the baseline call takes
a millisecond or two, where a real provider takes seconds, so any overhead shows here at its
largest. The recorder's background work (parsing, inserts, thumbnails) runs on the same cores
during the recorded rounds; what is left of it after each recorded round is drained before the
other side runs (so it never slows the baseline), and its total is printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from openai import OpenAI

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from store import Recorder
from store.capture.transport import SDK_LIMITS, SDK_TIMEOUT
from store.media.thumbnails import make_thumbnail
from tests.standins.openai_server import OpenAIStandIn


def time_calls(client: OpenAI, model: str, count: int) -> tuple[list[float], list[float]]:
    """Wall seconds and caller-thread CPU seconds per `images.generate` call.

    CPU time of the calling thread is what the transport itself adds (capture and enqueue);
    wall time adds what the recorder's background threads take from the caller on shared cores.
    """
    wall, cpu = [], []
    for i in range(count):
        started, started_cpu = time.perf_counter(), time.thread_time()
        client.images.generate(model=model, prompt=f"benchmark {i % 7}", size="1024x1024")
        cpu.append(time.thread_time() - started_cpu)
        wall.append(time.perf_counter() - started)
    return wall, cpu


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=400, help="calls per side")
    parser.add_argument("--rounds", type=int, default=20, help="alternating rounds")
    parser.add_argument("--model", default="dall-e-3", help="dall-e-3: URL; gpt-image-1: b64")
    parser.add_argument("--database-url", help="default: a new SQLite file in a temp folder")
    parser.add_argument("--no-thumbnails", action="store_true")
    parser.add_argument(
        "--in-process-thumbnails",
        action="store_true",
        help="make thumbnails on the worker's threads, not in its low-priority process "
        "(the way it was, for comparison under the same load)",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder, OpenAIStandIn() as api:
        url = args.database_url or f"sqlite:///{folder}/bench.db"
        recorder = Recorder(
            url,
            thumbnails=not args.no_thumbnails,
            spool_path=Path(folder) / "spool.jsonl",
            allowed_networks="127.0.0.0/8",  # the stand-in's image URLs are on loopback
        )
        if args.in_process_thumbnails and recorder.thumbnails is not None:
            recorder.thumbnails.process.make = make_thumbnail  # type: ignore[method-assign]
        plain = OpenAI(
            base_url=api.v1,
            api_key="sk-bench",
            http_client=httpx.Client(timeout=SDK_TIMEOUT, limits=SDK_LIMITS),
        )
        recorded = OpenAI(base_url=api.v1, api_key="sk-bench", http_client=recorder.httpx_client())
        time_calls(plain, args.model, 20)  # warm up connections, the stand-in's image cache
        time_calls(recorded, args.model, 20)
        assert recorder.flush(timeout=120)

        baseline, baseline_cpu, with_recorder, with_recorder_cpu = [], [], [], []
        per_round = max(1, args.calls // args.rounds)
        drain, stored = 0.0, True
        for round_number in range(args.rounds):
            # Baseline first in even rounds, recorder first in odd ones: a side's position in
            # the round (what ran just before it) must not decide the figures.
            sides = [(plain, baseline, baseline_cpu), (recorded, with_recorder, with_recorder_cpu)]
            for client, walls, cpus in sides[:: 1 if round_number % 2 == 0 else -1]:
                wall, cpu = time_calls(client, args.model, per_round)
                walls += wall
                cpus += cpu
                if client is recorded:  # its background work must not slow the other side
                    drain_started = time.perf_counter()
                    stored = recorder.flush(timeout=600) and stored
                    drain += time.perf_counter() - drain_started
        recorder.close()

    backend = "postgresql" if url.startswith("postgresql") else "sqlite"
    thumbnails = (
        "off"
        if args.no_thumbnails
        else "on, in-process"
        if args.in_process_thumbnails
        else "on, in the thumbnail process"
    )
    print(
        f"recorded call latency: {len(baseline)} calls per side, model {args.model}, "
        f"{backend}, thumbnails {thumbnails}"
    )
    base = (statistics.median(baseline), p99(baseline), statistics.median(baseline_cpu))
    rec = (
        statistics.median(with_recorder),
        p99(with_recorder),
        statistics.median(with_recorder_cpu),
    )
    print(f"{'':18}{'median ms':>12}{'p99 ms':>12}{'caller CPU ms':>15}")
    for label, values, unit in (
        ("without recorder", base, 1000),
        ("with recorder", rec, 1000),
        ("added", [r - b for r, b in zip(rec, base, strict=True)], 1000),
        ("ratio", [r / b for r, b in zip(rec, base, strict=True)], 1),
    ):
        print(f"{label:18}{values[0] * unit:12.3f}{values[1] * unit:12.3f}{values[2] * unit:15.3f}")
    print("goal: added <= 1 ms median, <= 5 ms p99")
    print(f"background work left after the rounds: {drain:.1f} s in all (stored: {stored})")
    print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
