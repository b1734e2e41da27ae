"""How fast thumbnails are made from image bytes, and how big the WebP thumbnails come out.

    .venv/bin/python benchmarks/thumbnails.py                  # 5 images per shape, 1 and 2 threads
    .venv/bin/python benchmarks/thumbnails.py --per-shape 20 --threads 1 2 4

The sources are the shapes image APIs return (dall-e-3 / gpt-image sizes as PNG, JPEG, WebP)
drawn by the loopback image host with grain, so they compress like renders, not like flat
drawings. Each shape is timed as `make_thumbnail` (sha256 + decode + resize + WebP encode)
against the same run's raw baseline: Pillow decoding the same bytes to pixels and nothing
else. The ratio is thumbnails a second over decodes a second (1.0: the thumbnail costs no more
than reading the image at all; the goal for a 1024x1024 PNG is >= 0.66, each <= 16 KB); the
encodes column counts the WebP encodes a thumbnail took (one in the common case). The last
table times the same work through the worker's low-priority thumbnail process
(`store.media.thumbnail_process`), bytes over its pipe included.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from io import BytesIO
from pathlib import Path
from typing import Any

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from store.media import thumbnails
from store.media.thumbnail_process import ThumbnailProcess
from store.media.thumbnails import THUMBNAIL_TARGET_BYTES, make_thumbnail
from tests.standins.image_host import draw_image

#: (width, height, extension): what dall-e-2/3, gpt-image and FLUX return.
SHAPES = [
    (512, 512, "png"),
    (1024, 1024, "png"),
    (1024, 1536, "png"),
    (1792, 1024, "png"),
    (1024, 1024, "jpg"),
    (1792, 1024, "jpg"),
    (1024, 1024, "webp"),
    (1536, 1024, "webp"),
]


def decode_only(data: bytes) -> None:
    """The baseline: what any use of the image costs (read and decode every pixel)."""
    with Image.open(BytesIO(data)) as image:
        image.load()


def encodes_per_image(sources: list[bytes]) -> float:
    """How many WebP encodes a thumbnail of each source took, on average."""
    count = 0
    save = Image.Image.save

    def counting(image: Image.Image, *args: Any, **options: Any) -> None:
        nonlocal count
        count += options.get("format") == "WEBP"  # how make_thumbnail names it
        save(image, *args, **options)

    Image.Image.save = counting  # type: ignore[method-assign]
    try:
        for data in sources:
            thumbnails.make_thumbnail(data)
    finally:
        Image.Image.save = save  # type: ignore[method-assign]
    return count / len(sources)


def timed(
    work: Callable[[bytes], object], sources: list[bytes], threads: int, repeat: int = 3
) -> float:
    """Seconds to run `work` over every source on `threads` threads: the best of `repeat` runs,
    since on a shared machine the slower runs measure the neighbours, not the code."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        if threads == 1:
            for data in sources:
                work(data)
        else:
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(work, sources))
        best = min(best, time.perf_counter() - started)
    return best


def sources_for(width: int, height: int, extension: str, count: int) -> list[bytes]:
    """`count` different images of one shape (the width varies by a few pixels per copy)."""
    return [draw_image(width + index * 8, height, extension) for index in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-shape", type=int, default=5, help="images per shape")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()

    print(f"{len(SHAPES)} shapes x {args.per_shape} images; drawing sources ...", flush=True)
    by_shape = {shape: sources_for(*shape, args.per_shape) for shape in SHAPES}
    everything = [data for sources in by_shape.values() for data in sources]

    print("\nper shape, 1 thread (thumbnail = sha256 + decode + resize + WebP)")
    print(
        f"{'source':<16}{'src KB':>8}{'thumb/s':>9}{'decode/s':>10}{'ratio':>7}"
        f"{'encodes':>9}{'webp KB med':>13}{'max':>7}{'% of src':>10}"
    )
    all_sizes: list[int] = []
    all_shares: list[float] = []
    for (width, height, extension), sources in by_shape.items():
        decode_only(sources[0])  # warm the codec
        thumb_seconds = timed(make_thumbnail, sources, 1)
        decode_seconds = timed(decode_only, sources, 1)
        sizes = [len(make_thumbnail(data).thumbnail) for data in sources]
        shares = [size / len(data) for size, data in zip(sizes, sources, strict=True)]
        all_sizes += sizes
        all_shares += shares
        print(
            f"{f'{width}x{height} {extension}':<16}"
            f"{statistics.median(len(d) for d in sources) / 1024:>8.0f}"
            f"{len(sources) / thumb_seconds:>9.1f}"
            f"{len(sources) / decode_seconds:>10.1f}"
            f"{decode_seconds / thumb_seconds:>7.2f}"
            f"{encodes_per_image(sources):>9.1f}"
            f"{statistics.median(sizes) / 1024:>13.1f}"
            f"{max(sizes) / 1024:>7.1f}"
            f"{100 * statistics.median(shares):>9.2f}%"
        )

    quantiles = statistics.quantiles(all_sizes, n=10)
    under = sum(size <= THUMBNAIL_TARGET_BYTES for size in all_sizes) / len(all_sizes)
    print(
        f"\nWebP thumbnail bytes over all {len(all_sizes)}: min {min(all_sizes)}, "
        f"median {statistics.median(all_sizes):.0f}, p90 {quantiles[-1]:.0f}, "
        f"max {max(all_sizes)}; "
        f"{100 * under:.0f}% within {THUMBNAIL_TARGET_BYTES // 1024} KB; "
        f"median {100 * statistics.median(all_shares):.2f}% of the source's bytes"
    )

    print("\nall shapes mixed, by threads (Pillow releases the GIL while decoding and encoding)")
    print(f"{'threads':>8}{'thumb/s':>9}{'decode/s':>10}{'ratio':>7}")
    for threads in args.threads:
        thumb_seconds = timed(make_thumbnail, everything, threads)
        decode_seconds = timed(decode_only, everything, threads)
        print(
            f"{threads:>8}{len(everything) / thumb_seconds:>9.1f}"
            f"{len(everything) / decode_seconds:>10.1f}{decode_seconds / thumb_seconds:>7.2f}"
        )

    print("\nall shapes mixed, through the thumbnail process (nice +10), by threads asking it")
    print(f"{'threads':>8}{'thumb/s':>9}{'decode/s':>10}{'ratio':>7}")
    process = ThumbnailProcess()
    try:
        process.make(everything[0])  # start it: its start-up is paid once per program
        for threads in args.threads:
            thumb_seconds = timed(process.make, everything, threads)
            decode_seconds = timed(decode_only, everything, threads)
            print(
                f"{threads:>8}{len(everything) / thumb_seconds:>9.1f}"
                f"{len(everything) / decode_seconds:>10.1f}"
                f"{decode_seconds / thumb_seconds:>7.2f}"
            )
    finally:
        process.close()
    print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
