"""Turn an image's bytes into the facts the log keeps: sha256, size, format and a small WebP
thumbnail.

The thumbnail is what survives the provider: hosted URLs die within the hour, so the log keeps
a <= 256 px WebP (a few KB) that the dashboard can show forever. The bytes are treated as
hostile, because a b64 payload or a download can hold anything: a pixel limit checked from the
header before any pixel is decoded (a decompression bomb is a tiny file that decodes to
gigabytes), and only the raster formats providers actually serve (so an "image" never reaches
Pillow's EPS plugin and Ghostscript).

Memory is bounded too: an image at the pixel limit still decodes to 256 MB, and the worker
thumbnails on several threads. Every decode spends its size from one process-wide
`DECODE_BUDGET` first (so large decodes take turns), a JPEG is decoded at a reduced scale
(`draft`), and a large image is reduced strip by strip, so the decoded image is the only
full-size copy ever held.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from io import BytesIO

from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from store.media.decode_budget import DecodeBudget

#: Longest side of a thumbnail, in pixels.
THUMBNAIL_SIDE = 256
#: WebP qualities, best first: a thumbnail starts at the one its pixel count fits the target
#: at (`_first_quality`) and steps down only when it came out over THUMBNAIL_TARGET_BYTES; the
#: last one is kept whatever its size, so a noisy image still gets a thumbnail.
WEBP_QUALITIES = (80, 65, 50)
THUMBNAIL_TARGET_BYTES = 16 * 1024
#: The most pixels a thumbnail can have and still fit the target at each quality but the last:
#: a render's grain costs ~0.34 byte a pixel at 80 and ~0.25 at 65 (benchmarks/thumbnails.py's
#: sources; a flat picture costs less), so a full 256x256 thumbnail starts at 50 and is
#: encoded once, where trying 80 and 65 first encoded it three times.
WEBP_MAX_PIXELS = (40_000, 55_000)
#: Images larger than this are refused before decoding: 64 MP is 4x a 4096x4096 render, well
#: below Pillow's own guard (89 MP warns, 179 MP raises), which stays on as a second line.
MAX_IMAGE_PIXELS = 64_000_000
#: Only the formats image APIs serve; each one is decoded by Pillow's own code, no helpers.
ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "AVIF", "BMP", "TIFF")
#: Bytes of decoded pixels all threads together may hold: one image at the pixel limit (64 MP
#: RGBA is 256 MB) plus a few ordinary ones beside it. Decodes that would exceed it wait.
DECODE_BUDGET = DecodeBudget(320 * 1024 * 1024)
#: An image is box-averaged (`reduce`) down to this many times the thumbnail's size before
#: the final Lanczos resize: as sharp as resizing from full size, at a fraction of the cost.
REDUCING_GAP = 2
#: Pixels per strip when reducing a large image: a few MB held beside the decoded image.
STRIP_PIXELS = 1 << 20


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
    """Decode within the budget, shrink strip by strip, then resize and encode the small copy."""
    size = _fitted(image.size)
    # JPEG only: decode straight at 1/2..1/8 scale, still at least twice the thumbnail's size.
    image.draft(None, (size[0] * REDUCING_GAP, size[1] * REDUCING_GAP))
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    with DECODE_BUDGET.spend(decoded_bytes(image)):
        small = _reduce_in_strips(image, "RGBA" if has_alpha else "RGB", size)
        exif = image.getexif()  # after decoding: a PNG may keep its eXIf chunk after the pixels
    if small.size != size:
        small = small.resize(size, Image.Resampling.LANCZOS)
    small = _upright(small, exif)
    encoded = b""
    for quality in WEBP_QUALITIES[_first_quality(small.size) :]:
        buffer = BytesIO()
        small.save(buffer, format="WEBP", quality=quality, method=4)
        encoded = buffer.getvalue()
        if len(encoded) <= THUMBNAIL_TARGET_BYTES:
            break
    return encoded


def _first_quality(size: tuple[int, int]) -> int:
    """The index in WEBP_QUALITIES of the best quality a thumbnail of `size` is expected to
    fit THUMBNAIL_TARGET_BYTES at, judged from its pixel count before any encode."""
    pixels = size[0] * size[1]
    fitting = (index for index, most in enumerate(WEBP_MAX_PIXELS) if pixels <= most)
    return next(fitting, len(WEBP_QUALITIES) - 1)


def decoded_bytes(image: Image.Image) -> int:
    """What decoding `image` at its (drafted) size holds in memory: Pillow keeps 1 byte a pixel
    for 1/L/P, 2 for 16-bit grey and 4 for every other mode (RGB included); WebP and AVIF hand
    over a full decoded buffer before the image is made, so they hold twice that."""
    if image.mode in ("1", "L", "P"):
        per_pixel = 1
    elif image.mode.startswith("I;16"):
        per_pixel = 2
    else:
        per_pixel = 4
    copies = 2 if image.format in ("WEBP", "AVIF") else 1
    return image.size[0] * image.size[1] * per_pixel * copies


def _fitted(size: tuple[int, int]) -> tuple[int, int]:
    """The thumbnail's size: longest side THUMBNAIL_SIDE, same aspect, never enlarged."""
    width, height = size
    scale = THUMBNAIL_SIDE / max(width, height)
    if scale >= 1:
        return width, height
    return max(1, round(width * scale)), max(1, round(height * scale))


def _reduce_in_strips(image: Image.Image, mode: str, size: tuple[int, int]) -> Image.Image:
    """`image` in `mode`, box-averaged down to at least REDUCING_GAP times `size`.

    Converting or reducing the whole decoded image at once would hold a second full-size copy
    (Pillow premultiplies RGBA into a new image before it scales one), so each strip of rows
    is cut, converted and reduced alone, and pasted into the small result.
    """
    width, height = image.size
    factors = (
        max(1, int(width / size[0] / REDUCING_GAP)),
        max(1, int(height / size[1] / REDUCING_GAP)),
    )
    if factors == (1, 1):
        return image.convert(mode)
    reduced = Image.new(mode, (-(-width // factors[0]), -(-height // factors[1])))
    rows = max(1, STRIP_PIXELS // (width * factors[1])) * factors[1]
    for top in range(0, height, rows):
        strip = image.crop((0, top, width, min(top + rows, height)))
        if strip.mode != mode:
            strip = strip.convert(mode)
        reduced.paste(strip.reduce(factors), (0, top // factors[1]))
    return reduced


def _upright(image: Image.Image, exif: Image.Exif) -> Image.Image:
    """`image` turned as the original's EXIF orientation says a viewer shows it."""
    if exif.get(ExifTags.Base.Orientation, 1) == 1:
        return image
    image.info["exif"] = exif.tobytes()
    return ImageOps.exif_transpose(image)


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
