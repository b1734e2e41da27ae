"""Thumbnails from bytes: what comes out for good images, and the clear error for every kind
of bad input."""

from __future__ import annotations

import hashlib
import random
import threading
import time
from io import BytesIO

import pytest
from PIL import Image

from store.media import thumbnails
from store.media.decode_budget import DecodeBudget
from store.media.thumbnails import (
    MAX_IMAGE_PIXELS,
    THUMBNAIL_SIDE,
    ImageError,
    ImageFacts,
    make_thumbnail,
)
from store.schema.models import IMAGES
from tests.standins.image_host import draw_image, png_header_only


@pytest.mark.parametrize(
    ("width", "height", "extension", "image_format"),
    [(1024, 1024, "png", "png"), (1792, 1024, "jpg", "jpeg"), (1024, 1536, "webp", "webp")],
)
def test_thumbnail_is_a_small_webp_with_the_original_facts(width, height, extension, image_format):
    data = draw_image(width, height, extension)

    facts = make_thumbnail(data)

    assert facts.sha256 == hashlib.sha256(data).hexdigest()
    assert (facts.width, facts.height, facts.format) == (width, height, image_format)
    assert facts.byte_size == len(data)
    thumbnail = Image.open(BytesIO(facts.thumbnail))
    assert thumbnail.format == "WEBP"
    assert max(thumbnail.size) == THUMBNAIL_SIDE
    assert thumbnail.size[0] / thumbnail.size[1] == pytest.approx(width / height, rel=0.01)
    assert len(facts.thumbnail) < 16 * 1024


def webp_encodes(monkeypatch) -> list[int]:
    """The quality of every WebP encode make_thumbnail runs, in order."""
    qualities: list[int] = []
    save = Image.Image.save

    def counting(image, fp, format=None, **options):
        if format == "WEBP":
            qualities.append(options["quality"])
        return save(image, fp, format, **options)

    monkeypatch.setattr(Image.Image, "save", counting)
    return qualities


@pytest.mark.parametrize(
    ("width", "height", "extension"),
    [(1024, 1024, "png"), (1792, 1024, "jpg"), (1024, 1536, "webp"), (200, 120, "png")],
)
def test_a_render_is_encoded_once_at_a_quality_that_fits(monkeypatch, width, height, extension):
    qualities = webp_encodes(monkeypatch)

    facts = make_thumbnail(draw_image(width, height, extension))

    assert len(qualities) == 1
    assert len(facts.thumbnail) <= thumbnails.THUMBNAIL_TARGET_BYTES


def test_a_thumbnail_over_the_target_is_encoded_again_at_the_next_quality(monkeypatch):
    # Even a small thumbnail of pure noise comes out over a 1 KB target at its first quality.
    monkeypatch.setattr(thumbnails, "THUMBNAIL_TARGET_BYTES", 1024)
    qualities = webp_encodes(monkeypatch)
    noise = Image.frombytes("RGB", (150, 150), random.Random(7).randbytes(150 * 150 * 3))
    buffer = BytesIO()
    noise.save(buffer, format="PNG")
    qualities.clear()

    facts = make_thumbnail(buffer.getvalue())

    assert qualities == list(thumbnails.WEBP_QUALITIES)  # 80 first: 22,500 pixels
    assert facts.thumbnail  # the last quality is kept whatever its size


def test_thumbnail_keeps_transparency():
    facts = make_thumbnail(draw_image(512, 512, "png", alpha=True))

    assert Image.open(BytesIO(facts.thumbnail)).mode == "RGBA"


def test_small_image_is_not_enlarged():
    facts = make_thumbnail(draw_image(100, 60, "png"))

    assert Image.open(BytesIO(facts.thumbnail)).size == (100, 60)


def test_exif_rotated_photo_is_thumbnailed_upright():
    buffer = BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    Image.new("RGB", (400, 200), "red").save(buffer, format="JPEG", exif=exif)

    facts = make_thumbnail(buffer.getvalue())

    assert (facts.width, facts.height) == (400, 200)  # as stored in the file
    assert Image.open(BytesIO(facts.thumbnail)).size == (128, 256)  # as shown


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty content"),
        (b"<!DOCTYPE html><html>Access denied</html>", "not an image (HTML, 41 bytes)"),
        (b'{"error": "expired"}', "not an image (JSON"),
        (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", "not an image"),
    ],
)
def test_content_that_is_not_an_image_is_refused(data, message):
    with pytest.raises(ImageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make_thumbnail(data)


def test_truncated_image_is_refused_as_broken():
    data = draw_image(512, 512, "png")

    with pytest.raises(ImageError, match="broken png image"):
        make_thumbnail(data[: len(data) // 2])


def test_decompression_bomb_beyond_pillows_guard_is_refused():
    with pytest.raises(ImageError, match="decompression bomb refused"):
        make_thumbnail(png_header_only(100_000, 100_000))


def test_image_over_the_pixel_limit_is_refused_before_decoding():
    side = int(MAX_IMAGE_PIXELS**0.5) + 100  # over our limit, under Pillow's own warning

    with pytest.raises(ImageError, match=f"over the {MAX_IMAGE_PIXELS} pixel limit"):
        make_thumbnail(png_header_only(side, side))


def test_the_facts_map_onto_images_columns_of_the_same_names():
    data = draw_image(64, 48, "png")
    facts = make_thumbnail(data)

    columns = facts.columns()

    assert set(columns) <= set(IMAGES.columns.keys())
    assert columns == {
        "sha256": hashlib.sha256(data).hexdigest(),
        "width": 64,
        "height": 48,
        "format": "png",
        "byte_size": len(data),
        "thumbnail": facts.thumbnail,
    }


def thumbnail_in_threads(sources: list[bytes]) -> tuple[list[ImageFacts], list[BaseException]]:
    """make_thumbnail on one thread per source, all at once."""
    results: list[ImageFacts] = []
    errors: list[BaseException] = []

    def run(data: bytes) -> None:
        try:
            results.append(make_thumbnail(data))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(data,)) for data in sources]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results, errors


@pytest.fixture
def watched_decodes(monkeypatch) -> dict[str, int]:
    """Counts the decodes in progress (`active`, `most` at once) as make_thumbnail runs them;
    each one dwells a moment, so decodes the budget did not keep apart would overlap."""
    seen = {"active": 0, "most": 0}
    lock = threading.Lock()
    reduce = thumbnails._reduce_in_strips

    def watched(image, mode, size):
        with lock:
            seen["active"] += 1
            seen["most"] = max(seen["most"], seen["active"])
        try:
            time.sleep(0.2)
            return reduce(image, mode, size)
        finally:
            with lock:
                seen["active"] -= 1

    monkeypatch.setattr(thumbnails, "_reduce_in_strips", watched)
    return seen


def test_decodes_that_together_exceed_the_budget_never_overlap(monkeypatch, watched_decodes):
    sources = [draw_image(600 + index * 8, 600, "png", alpha=True) for index in range(4)]
    one_decode = 600 * 600 * 4
    monkeypatch.setattr(thumbnails, "DECODE_BUDGET", DecodeBudget(one_decode * 3 // 2))

    results, errors = thumbnail_in_threads(sources)

    assert errors == []
    assert len(results) == 4 and all(facts.thumbnail for facts in results)
    assert watched_decodes["most"] == 1


def test_decodes_that_fit_the_budget_together_run_side_by_side(monkeypatch, watched_decodes):
    sources = [draw_image(600 + index * 8, 600, "png") for index in range(4)]
    monkeypatch.setattr(thumbnails, "DECODE_BUDGET", DecodeBudget(700 * 600 * 4 * 4))

    results, errors = thumbnail_in_threads(sources)

    assert errors == [] and len(results) == 4
    assert watched_decodes["most"] > 1


def test_a_decode_waits_while_the_budget_is_spent_and_runs_once_it_is_given_back(monkeypatch):
    budget = DecodeBudget(1_000_000)
    monkeypatch.setattr(thumbnails, "DECODE_BUDGET", budget)
    data = draw_image(300, 200, "png")

    with budget.spend(budget.capacity):
        waiting = threading.Thread(target=make_thumbnail, args=(data,))
        waiting.start()
        waiting.join(timeout=1.0)
        finished_while_spent = not waiting.is_alive()
    waiting.join(timeout=30)

    assert not finished_while_spent
    assert not waiting.is_alive()


def test_an_image_larger_than_the_whole_budget_still_gets_its_thumbnail(monkeypatch):
    monkeypatch.setattr(thumbnails, "DECODE_BUDGET", DecodeBudget(1000))

    facts = make_thumbnail(draw_image(640, 480, "png"))

    assert Image.open(BytesIO(facts.thumbnail)).size == (256, 192)


def test_a_large_jpeg_is_decoded_at_a_reduced_scale(monkeypatch):
    spent: list[int] = []
    budget = DecodeBudget(1 << 30)
    spend = budget.spend
    monkeypatch.setattr(budget, "spend", lambda cost: spent.append(cost) or spend(cost))
    monkeypatch.setattr(thumbnails, "DECODE_BUDGET", budget)

    facts = make_thumbnail(draw_image(4000, 3000, "jpg"))

    assert (facts.width, facts.height) == (4000, 3000)
    assert spent == [1000 * 750 * 4]  # 1/4 scale: still over twice the 256 x 192 thumbnail
    assert Image.open(BytesIO(facts.thumbnail)).size == (256, 192)


@pytest.mark.parametrize("alpha", [True, False])
def test_reducing_strip_by_strip_gives_the_pixels_of_one_whole_reduce(alpha):
    # 2000 x 1001 reduces by 3 in strips of 522 rows, the last one short and uneven.
    image = Image.open(BytesIO(draw_image(2000, 1001, "png", alpha=alpha)))
    mode = "RGBA" if alpha else "RGB"

    reduced = thumbnails._reduce_in_strips(image, mode, (256, 128))

    whole = image.convert(mode).reduce(3)
    assert reduced.size == whole.size == (667, 334)
    assert reduced.tobytes() == whole.tobytes()
