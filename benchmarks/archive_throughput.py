"""How fast originals are archived to an S3-compatible server, against a plain upload of the
same bytes in the same run.

    .venv/bin/python benchmarks/archive_throughput.py                  # 40 images, 4 threads
    .venv/bin/python benchmarks/archive_throughput.py --images 100 --threads 1 4 8

The server is moto's S3 in server mode on 127.0.0.1 (tests/standins/s3.py), so the figures
measure the client side and a loopback server, not a network. Each image is a distinct
1024x1024 PNG with grain (what gpt-image returns, about 1.5 MB). Rows:

- `archive (new)`: `store.media.saving.archive_original`, the save path's archive step
  (`Archive.store`: look the sha256 key up, then upload), into an empty prefix;
- `archive (repeat)`: the same images again: each is found and not sent (a repeated image);
- `fsspec pipe_file`, `boto3 put_object`: the raw baselines, one upload per image and nothing
  else, into a prefix of their own.

Each row is the best of `--repeat` runs (the slower ones measure the neighbours on a shared
machine); the ratio is images/s of the baseline over ours (above 1: ours is slower).
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from store.media.archive import Archive
from store.media.saving import archive_original
from store.media.thumbnails import ImageFacts
from tests.standins.image_host import draw_image
from tests.standins.s3 import S3StandIn


def facts_of(data: bytes) -> ImageFacts:
    """What the save path knows of an image when it archives it (the thumbnail is made
    before and is not what is measured here)."""
    return ImageFacts(hashlib.sha256(data).hexdigest(), 1024, 1024, "png", len(data), b"")


Job = Callable[[int], object]


def timed(work: Callable[[int], Job], count: int, threads: int, repeat: int) -> float:
    """Best seconds of `repeat` runs of `work(run)` on every image index, on `threads` threads;
    `work` gets the run number so each run can write somewhere new."""
    best = float("inf")
    for run in range(repeat):
        job = work(run)
        started = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(job, range(count)))
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=40, help="distinct images per run")
    parser.add_argument("--threads", type=int, nargs="+", default=[4])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    print(f"drawing {args.images} 1024x1024 PNGs ...", flush=True)
    images = [draw_image(1024 + index, 1024, "png") for index in range(args.images)]
    facts = [facts_of(data) for data in images]
    megabytes = sum(map(len, images)) / 1e6
    print(f"{megabytes:.1f} MB in all, {megabytes / len(images):.2f} MB per image")

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs each request
    with S3StandIn() as s3:
        os.environ.update(s3.environment())
        bucket = s3.new_bucket()
        client = s3.client()
        import fsspec

        fs = fsspec.filesystem("s3")

        def ours(run: int) -> Job:
            archive = Archive(f"s3://{bucket}/ours-{run}-{uuid.uuid4().hex[:6]}")
            return lambda i: archive_original(archive, facts[i], images[i])

        repeated = Archive(f"s3://{bucket}/repeat")
        for i in range(len(images)):  # stored once beforehand: every run finds them all
            repeated.store(facts[i].sha256, "png", images[i])

        def again(run: int) -> Job:
            return lambda i: archive_original(repeated, facts[i], images[i])

        def plain_fsspec(run: int) -> Job:
            prefix = f"{bucket}/fsspec-{run}-{uuid.uuid4().hex[:6]}"
            return lambda i: fs.pipe_file(f"{prefix}/{i}.png", images[i])

        def plain_boto3(run: int) -> Job:
            prefix = f"boto3-{run}-{uuid.uuid4().hex[:6]}"
            return lambda i: client.put_object(
                Bucket=bucket, Key=f"{prefix}/{i}.png", Body=images[i]
            )

        plain_fsspec(0)(0)  # warm both clients (connection pools, credentials)
        plain_boto3(0)(0)
        print(f"\nS3-compatible server: moto on {s3.endpoint}; best of {args.repeat} runs")
        print(f"{'threads':>8}  {'what':<20}{'images/s':>10}{'MB/s':>8}{'ratio':>8}")
        for threads in args.threads:
            rows = {
                "archive (new)": timed(ours, len(images), threads, args.repeat),
                "archive (repeat)": timed(again, len(images), threads, args.repeat),
                "fsspec pipe_file": timed(plain_fsspec, len(images), threads, args.repeat),
                "boto3 put_object": timed(plain_boto3, len(images), threads, args.repeat),
            }
            baseline = rows["fsspec pipe_file"]
            for what, seconds in rows.items():
                print(
                    f"{threads:>8}  {what:<20}{len(images) / seconds:>10.1f}"
                    f"{megabytes / seconds:>8.1f}{seconds / baseline:>8.2f}"
                )
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print("\nratio: seconds over fsspec pipe_file's (1.00 = as fast as a plain upload)")
    print(f"load average (1, 5, 15 min): {load} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
