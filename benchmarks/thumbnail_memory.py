"""Peak memory of thumbnailing the largest images the store accepts, one and four at once.

    .venv/bin/python benchmarks/thumbnail_memory.py            # 8000x8000 RGBA PNG
    .venv/bin/python benchmarks/thumbnail_memory.py --side 4000 --threads 8

The source is what a hostile host would serve: an 8000 x 8000 RGBA PNG (64 MP, at the store's
pixel limit) of flat colour and a few shapes, so it downloads as ~300 KB and decodes to 256 MB.
Each case runs in a fresh subprocess that thumbnails the same bytes on N threads started
together and reports its own peak RSS (`resource.getrusage(...).ru_maxrss`), so no case sees
another's memory (the source is drawn in a subprocess of its own too: Linux carries a parent's
peak RSS into the children it forks). The ratio is against one image alone: with the decode
budget, four at once cost about what one does. The last row turns the budget off (a capacity
nothing reaches) to show what it saves.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from io import BytesIO
from pathlib import Path

from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from store.media import thumbnails  # noqa: E402
from store.media.decode_budget import DecodeBudget  # noqa: E402

#: The goal from issue 9: four 8000x8000 RGBA PNGs at once stay under this peak RSS.
GOAL_MB = 700


def hostile_png(side: int) -> bytes:
    """A `side` x `side` RGBA PNG that compresses about as far as zlib goes (~1000:1)."""
    image = Image.new("RGBA", (side, side), (30, 120, 200, 160))
    draw = ImageDraw.Draw(image)
    for index in range(6):
        left, top = index * side // 8, index * side // 9
        draw.ellipse((left, top, left + side // 5, top + side // 5), fill=(200, 40 * index, 90))
    buffer = BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def child(source: Path, threads: int, budget: bool) -> None:
    """In the subprocess: thumbnail the source on `threads` threads at once, print JSON."""
    if not budget:
        thumbnails.DECODE_BUDGET = DecodeBudget(1 << 62)
    data = source.read_bytes()
    before = peak_mb()
    start = threading.Barrier(threads)

    def work() -> None:
        start.wait()
        thumbnails.make_thumbnail(data)

    started = time.perf_counter()
    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    seconds = time.perf_counter() - started
    print(json.dumps({"before_mb": before, "peak_mb": peak_mb(), "seconds": seconds}))


def measure(source: Path, threads: int, budget: bool) -> dict[str, float]:
    command = [sys.executable, __file__, "--child", str(source), "--threads", str(threads)]
    if not budget:
        command.append("--no-budget")
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--side", type=int, default=8000, help="width and height in pixels")
    parser.add_argument("--threads", type=int, default=4, help="images thumbnailed at once")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--draw", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--no-budget", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.draw:
        args.draw.write_bytes(hostile_png(args.side))
        return
    if args.child:
        child(args.child, args.threads, budget=not args.no_budget)
        return

    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "hostile.png"
        draw = [sys.executable, __file__, "--draw", str(source), "--side", str(args.side)]
        subprocess.run(draw, check=True)
        decoded_mb = args.side * args.side * 4 / 2**20
        print(
            f"source: {args.side}x{args.side} RGBA PNG, {source.stat().st_size / 1024:.0f} KB "
            f"download, {decoded_mb:.0f} MB decoded; budget "
            f"{thumbnails.DECODE_BUDGET.capacity / 2**20:.0f} MB"
        )
        cases = [
            ("1 image", 1, True),
            (f"{args.threads} at once", args.threads, True),
            (f"{args.threads} at once, no budget", args.threads, False),
        ]
        print(f"{'case':<26}{'before MB':>10}{'peak MB':>9}{'ratio':>7}{'seconds':>9}")
        single = None
        for name, threads, budget in cases:
            result = measure(source, threads, budget)
            single = single or result["peak_mb"]
            print(
                f"{name:<26}{result['before_mb']:>10.0f}{result['peak_mb']:>9.0f}"
                f"{result['peak_mb'] / single:>7.2f}{result['seconds']:>9.2f}"
            )
        print(f"goal: {args.threads} at once under {GOAL_MB} MB peak RSS (issue 9)")


if __name__ == "__main__":
    main()
