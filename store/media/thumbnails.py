"""Turn an image's bytes into the facts the log keeps: sha256, size, format and a small WebP
thumbnail.

The thumbnail is what survives the provider: hosted URLs die within the hour, so the log keeps
a <= 256 px WebP (a few KB) that the dashboard can show forever. The bytes are treated as
hostile, because a b64 payload or a download can hold anything: a pixel limit checked from the
header before any pixel is decoded (a decompression bomb is a tiny file that decodes to
gigabytes), and only the raster formats providers actually serve (so an "image" never reaches
Pillow's EPS plugin and Ghostscript).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from io import BytesIO

from PIL import Image, ImageOps, UnidentifiedImageError

#: Longest side of a thumbnail, in pixels.
THUMBNAIL_SIDE = 256
#: WebP qualities tried in turn until the thumbnail fits THUMBNAIL_TARGET_BYTES; the last one
#: is kept whatever its size, so a noisy image still gets a thumbnail.
WEBP_QUALITIES = (80, 65, 50)
THUMBNAIL_TARGET_BYTES = 16 * 1024
#: Images larger than this are refused before decoding: 64 MP is 4x a 4096x4096 render, well
#: below Pillow's own guard (89 MP warns, 179 MP raises), which stays on as a second line.
MAX_IMAGE_PIXELS = 64_000_000
#: Only the formats image APIs serve; each one is decoded by Pillow's own code, no helpers.
ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "AVIF", "BMP", "TIFF")


class ImageError(ValueError):
    """The bytes are not an image we can (or should) decode; the message says which case."""


@dataclass(frozen=True)
class ImageFacts:
    """What the `images` row keeps of one image."""

    sha256: str  # of the original bytes, so duplicates and archive files are found by content
    width: int
    height: int
    format: str  # lower case: png, jpeg, webp, ...
    byte_size: int
    thumbnail: bytes  # WebP, longest side <= THUMBNAIL_SIDE

    def columns(self) -> dict[str, object]:
        """The facts as `images` columns: each field is named after the column it fills, so
        this is the one mapping from facts to a row (or to an ImageRecord's same-named fields)."""
        return dict(vars(self))  # not dataclasses.asdict: no deep copy (the demo calls it a lot)


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
