"""What reading an image's content credentials (C2PA) and hashing its picture add to saving it.

    .venv/bin/python benchmarks/c2pa_read.py                 # 20 images per case
    .venv/bin/python benchmarks/c2pa_read.py --per-case 50

Each case is a 1024 x 1024 render as providers return it: a PNG and a JPEG signed with a
manifest (under a test certificate chain, as tests/standins/c2pa_signer.py makes), the same
PNG unsigned (the reader finds no manifest), and a tampered signed PNG (the reader hashes it
and finds the mismatch). Per image it times `read_credentials` and `perceptual_hash` (from the
stored thumbnail) against the same run's raw baselines: Pillow decoding the original to
pixels, and `make_thumbnail`, the save path's decode, resize and encode. The best of three
runs counts: on a shared machine the slower runs measure the neighbours. Load is printed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from io import BytesIO
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from store.media.credentials import read_credentials
from store.media.lookalike import perceptual_hash
from store.media.thumbnails import make_thumbnail
from tests.standins.c2pa_signer import sign, tampered
from tests.standins.image_host import draw_image


def decode_only(data: bytes) -> None:
    """The raw baseline: what any use of the image costs (read and decode every pixel)."""
    with Image.open(BytesIO(data)) as image:
        image.load()


def per_image_ms(work: Callable[[bytes], object], sources: list[bytes], repeat: int = 3) -> float:
    """Milliseconds per image of `work` over `sources`, best of `repeat` runs."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for data in sources:
            work(data)
        best = min(best, time.perf_counter() - started)
    return best / len(sources) * 1000


def cases(count: int) -> dict[str, tuple[str, list[bytes]]]:
    """(Pillow's format name, `count` distinct images) per case."""
    pngs = [draw_image(1024 + index, 1024, "png") for index in range(count)]
    jpegs = [draw_image(1024 + index, 1024, "jpg") for index in range(count)]
    signed_pngs = [sign(data) for data in pngs]
    return {
        "signed PNG": ("png", signed_pngs),
        "signed JPEG": ("jpeg", [sign(data, "image/jpeg") for data in jpegs]),
        "unsigned PNG": ("png", pngs),
        "tampered PNG": ("png", [tampered(data) for data in signed_pngs]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-case", type=int, default=20, help="images per case")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    print(f"load average before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}")
    print(f"{args.per_case} images of 1024x1024 per case; ms per image, best of 3 runs\n")
    header = (
        f"{'case':<14} {'decode':>8} {'thumbnail':>10} {'c2pa read':>10} {'phash':>7} "
        f"{'c2pa/decode':>12} {'c2pa/thumb':>11}  state"
    )
    print(header)
    for name, (image_format, sources) in cases(args.per_case).items():
        thumbnails = [make_thumbnail(data).thumbnail for data in sources]
        decode = per_image_ms(decode_only, sources)
        thumbnail = per_image_ms(make_thumbnail, sources)
        read = per_image_ms(lambda data, f=image_format: read_credentials(data, f), sources)
        phash = per_image_ms(perceptual_hash, thumbnails)
        found = read_credentials(sources[0], image_format)
        state = found.state.value if found else "not read"
        print(
            f"{name:<14} {decode:>8.2f} {thumbnail:>10.2f} {read:>10.2f} {phash:>7.2f} "
            f"{read / decode:>11.2f}x {read / thumbnail:>10.2f}x  {state}"
        )
    load_after = os.getloadavg()
    print(f"\nload average after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
