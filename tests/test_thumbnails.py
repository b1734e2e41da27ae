"""Thumbnails from bytes, and downloads from the loopback image host: what comes out for good
images, and the clear error for every kind of bad input."""

from __future__ import annotations

import hashlib
from io import BytesIO

import httpx
import pytest
from PIL import Image

from store.media.thumbnails import (
    MAX_IMAGE_PIXELS,
    THUMBNAIL_SIDE,
    FetchError,
    ImageError,
    fetch_image,
    make_client,
    make_thumbnail,
)
from store.schema.models import UrlState
from tests.standins.image_host import draw_image, png_header_only


@pytest.fixture
def client():
    with make_client() as client:
        yield client


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


def test_fetch_returns_the_bytes_and_content_type(client, image_host):
    url = image_host.url("/img/fetch.jpg?w=300&h=200")

    fetched = fetch_image(client, url)

    assert fetched.data == draw_image(300, 200, "jpg")
    assert (fetched.status, fetched.content_type) == (200, "image/jpeg")


def test_fetch_follows_a_redirect(client, image_host):
    url = image_host.url("/redirect?to=/img/moved.png%3Fw%3D50%26h%3D50")

    fetched = fetch_image(client, url)

    assert fetched.data == draw_image(50, 50, "png")


@pytest.mark.parametrize(
    ("path", "status", "code", "state"),
    [
        ("/status/403?style=azure", 403, "AuthenticationFailed", UrlState.expired),
        ("/status/404?style=azure", 404, "BlobNotFound", UrlState.expired),
        ("/status/403?style=s3", 403, "AccessDenied", UrlState.expired),
        ("/status/400?style=s3", 400, "ExpiredToken", UrlState.expired),
        ("/status/410?style=plain", 410, None, UrlState.expired),
        ("/status/503?style=azure", 503, "ServerBusy", UrlState.unknown),
        ("/status/429?style=plain", 429, None, UrlState.unknown),
    ],
)
def test_fetch_error_carries_the_status_the_hosts_code_and_what_it_proves(
    client, image_host, path, status, code, state
):
    with pytest.raises(FetchError) as raised:
        fetch_image(client, image_host.url(path))

    assert (raised.value.status, raised.value.error_code) == (status, code)
    assert raised.value.url_state is state
    assert str(raised.value).startswith(f"HTTP {status}")


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/a.png", "data:,x"])
def test_fetch_refuses_urls_that_are_not_http(client, url):
    with pytest.raises(FetchError, match="refused URL scheme"):
        fetch_image(client, url)


def test_fetch_refuses_a_declared_size_over_the_limit_without_reading_it(client, image_host):
    url = image_host.url("/big?bytes=5000000&declare=1")

    with pytest.raises(FetchError, match="Content-Length 5000000 is over the 1000000 byte limit"):
        fetch_image(client, url, max_bytes=1_000_000)


def test_fetch_stops_an_undeclared_download_at_the_limit(client, image_host):
    url = image_host.url("/big?bytes=5000000")

    with pytest.raises(FetchError, match="download stopped: over the 1000000 byte limit"):
        fetch_image(client, url, max_bytes=1_000_000)


def test_fetch_of_a_stalled_host_times_out(image_host):
    with (
        httpx.Client(timeout=httpx.Timeout(5.0, read=0.3)) as client,
        pytest.raises(FetchError, match="timed out") as raised,
    ):
        fetch_image(client, image_host.url("/slow?seconds=3"))

    assert (raised.value.status, raised.value.url_state) == (None, UrlState.unknown)


def test_fetch_of_a_trickling_host_stops_at_the_deadline(client, image_host):
    url = image_host.url("/trickle?bytes=200&interval=0.05")

    with pytest.raises(FetchError, match=r"slower than 0\.3 s"):
        fetch_image(client, url, deadline_seconds=0.3)


def test_fetch_of_a_reset_connection_is_a_fetch_error_without_status(client, image_host):
    with pytest.raises(FetchError, match="download failed") as raised:
        fetch_image(client, image_host.url("/reset"))

    assert (raised.value.status, raised.value.url_state) == (None, UrlState.unknown)
    assert raised.value.error_code in ("RemoteProtocolError", "ReadError", "ConnectError")
