"""Thumbnails from bytes: what comes out for good images, and the clear error for every kind
of bad input."""

from __future__ import annotations

import hashlib
from io import BytesIO

import pytest
from PIL import Image

from store.media.thumbnails import MAX_IMAGE_PIXELS, THUMBNAIL_SIDE, ImageError, make_thumbnail
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
