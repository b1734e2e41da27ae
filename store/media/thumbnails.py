"""Download an image and turn its bytes into the facts the log keeps: sha256, size, format and
a small WebP thumbnail.

The thumbnail is what survives the provider: hosted URLs die within the hour, so the log keeps
a <= 256 px WebP (a few KB) that the dashboard can show forever. Everything here treats its
input as hostile, because an image URL can point anywhere and a b64 payload can hold anything:
only http/https, connect/read timeouts plus an overall deadline (a host trickling one byte at a
time defeats a read timeout alone), a hard cap on the download while it streams, a pixel limit
checked from the header before any pixel is decoded (a decompression bomb is a tiny file that
decodes to gigabytes), and only the raster formats providers actually serve (so an "image"
never reaches Pillow's EPS plugin and Ghostscript).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from io import BytesIO
from urllib.parse import urlsplit

import httpx
from PIL import Image, ImageOps, UnidentifiedImageError

from store.media.url_answers import ERROR_BODY_BYTES, classify_answer, classify_failure
from store.schema.models import UrlState

#: Longest side of a thumbnail, in pixels.
THUMBNAIL_SIDE = 256
#: WebP qualities tried in turn until the thumbnail fits THUMBNAIL_TARGET_BYTES; the last one
#: is kept whatever its size, so a noisy image still gets a thumbnail.
WEBP_QUALITIES = (80, 65, 50)
THUMBNAIL_TARGET_BYTES = 16 * 1024
#: Images larger than this are refused before decoding: 64 MP is 4x a 4096x4096 render, well
#: below Pillow's own guard (89 MP warns, 179 MP raises), which stays on as a second line.
MAX_IMAGE_PIXELS = 64_000_000
#: A full-size PNG of a 4096x4096 render is ~30 MB; anything larger is not a generated image.
DEFAULT_MAX_BYTES = 40 * 1024 * 1024
#: Connect fast or give up (the URL is probed again later); reads may be slow on a big PNG.
DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=20.0, write=10.0, pool=10.0)
#: The whole download, however the bytes trickle in.
DEFAULT_DEADLINE_SECONDS = 60.0
#: Only the formats image APIs serve; each one is decoded by Pillow's own code, no helpers.
ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "AVIF", "BMP", "TIFF")


class ImageError(ValueError):
    """The bytes are not an image we can (or should) decode; the message says which case."""


class FetchError(Exception):
    """A download that did not yield the image's bytes.

    `status` is the HTTP status when the host answered (None for timeouts, resets and refused
    URLs); `error_code` is the host's own code when it gave one (Azure `x-ms-error-code`,
    S3/GCS XML `<Code>`), else the failure's name; `url_state` is what the answer proves about
    the URL, classified exactly as the URL probe does (only a definite answer is `expired`).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_code: str | None = None,
        url_state: UrlState = UrlState.unknown,
    ):
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.url_state = url_state


@dataclass(frozen=True)
class ImageFacts:
    """What the `images` row keeps of one image."""

    sha256: str  # of the original bytes, so duplicates and archive files are found by content
    width: int
    height: int
    format: str  # lower case: png, jpeg, webp, ...
    byte_size: int
    thumbnail: bytes  # WebP, longest side <= THUMBNAIL_SIDE


@dataclass(frozen=True)
class FetchedImage:
    url: str
    status: int
    content_type: str | None
    data: bytes


def make_thumbnail(data: bytes) -> ImageFacts:
    """The facts and WebP thumbnail of an image's bytes; raises ImageError if it is not one."""
    if not data:
        raise ImageError("empty content: no image bytes")
    try:
        image = Image.open(BytesIO(data), formats=ALLOWED_FORMATS)
    except UnidentifiedImageError as exc:
        raise ImageError(f"not an image ({_sniff(data)}, {len(data)} bytes)") from exc
    except Image.DecompressionBombError as exc:
        raise ImageError(f"decompression bomb refused: {exc}") from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ImageError(f"broken image header: {exc}") from exc
    with image:
        width, height = image.size
        if width * height > MAX_IMAGE_PIXELS:
            raise ImageError(
                f"decompression bomb refused: {width}x{height} = {width * height} pixels "
                f"is over the {MAX_IMAGE_PIXELS} pixel limit"
            )
        image_format = (image.format or "unknown").lower()
        try:
            thumbnail = _webp_thumbnail(image)
        except Image.DecompressionBombError as exc:
            raise ImageError(f"decompression bomb refused: {exc}") from exc
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            raise ImageError(f"broken {image_format} image: {exc}") from exc
    return ImageFacts(
        sha256=hashlib.sha256(data).hexdigest(),
        width=width,
        height=height,
        format=image_format,
        byte_size=len(data),
        thumbnail=thumbnail,
    )


def _webp_thumbnail(image: Image.Image) -> bytes:
    # thumbnail() lets JPEG decode at 1/2..1/8 scale (draft mode) instead of full size.
    image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS, reducing_gap=2.0)
    image = ImageOps.exif_transpose(image)
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    image = image.convert("RGBA" if has_alpha else "RGB")
    encoded = b""
    for quality in WEBP_QUALITIES:
        buffer = BytesIO()
        image.save(buffer, format="WEBP", quality=quality, method=4)
        encoded = buffer.getvalue()
        if len(encoded) <= THUMBNAIL_TARGET_BYTES:
            break
    return encoded


def _sniff(data: bytes) -> str:
    """A short description of non-image content for the error message."""
    head = data[:64].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")):
        return "HTML"
    if head.startswith((b"<?xml", b"<error")):
        return "XML"
    if head.startswith((b"{", b"[")):
        return "JSON"
    return "unrecognised bytes"


def make_client(timeout: httpx.Timeout = DEFAULT_TIMEOUT) -> httpx.Client:
    """The client the worker downloads with: timeouts set, redirects followed (CDNs redirect)."""
    return httpx.Client(timeout=timeout, follow_redirects=True, max_redirects=5)


def fetch_image(
    client: httpx.Client,
    url: str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    deadline_seconds: float = DEFAULT_DEADLINE_SECONDS,
) -> FetchedImage:
    """GET `url` and return its bytes, never more than `max_bytes`; raises FetchError otherwise."""
    scheme = urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise FetchError(f"refused URL scheme {scheme or '(none)'!r}: only http and https")
    started = time.monotonic()
    try:
        with client.stream("GET", url) as response:
            if response.status_code != 200:
                raise _error_from(response)
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise FetchError(
                    f"download refused: Content-Length {declared} "
                    f"is over the {max_bytes} byte limit",
                    status=response.status_code,
                )
            chunks: list[bytes] = []
            received = 0
            for chunk in response.iter_bytes():
                received += len(chunk)
                if received > max_bytes:
                    raise FetchError(
                        f"download stopped: over the {max_bytes} byte limit",
                        status=response.status_code,
                    )
                if time.monotonic() - started > deadline_seconds:
                    raise FetchError(f"download stopped: slower than {deadline_seconds:g} s")
                chunks.append(chunk)
            return FetchedImage(
                url=url,
                status=response.status_code,
                content_type=response.headers.get("content-type"),
                data=b"".join(chunks),
            )
    except httpx.TimeoutException as exc:
        raise FetchError(
            f"timed out ({type(exc).__name__})", error_code=classify_failure(exc)
        ) from exc
    except httpx.HTTPError as exc:  # resets, refused connections, broken chunking, redirects
        raise FetchError(
            f"download failed: {type(exc).__name__}: {exc}", error_code=classify_failure(exc)
        ) from exc


def _error_from(response: httpx.Response) -> FetchError:
    """A FetchError for a non-200 answer, classified as the URL probe classifies its answers."""
    # Read a bounded piece of the body even when a header has the code: an error body read to
    # its end lets the connection be reused instead of reset.
    body = b""
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) >= ERROR_BODY_BYTES:
            break
    state, code = classify_answer(response.status_code, response.headers, body[:ERROR_BODY_BYTES])
    detail = f" {code}" if code else ""
    return FetchError(
        f"HTTP {response.status_code}{detail} from {response.url.host}",
        status=response.status_code,
        error_code=code,
        url_state=state,
    )
