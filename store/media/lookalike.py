"""A perceptual hash of an image (imagehash's pHash), so the log can find look-alikes: the
same picture re-encoded, resized or slightly edited, which a sha256 tells apart.

The hash is taken from the image's stored thumbnail, not its original: pHash looks at a 32 x 32
grey copy of the picture anyway, so the 256 px thumbnail gives the same bits (or a bit away,
well inside any look-alike distance), and it is the copy every row keeps. A call whose hosted
URL died before the download still has its thumbnail from an import, and is hashed the same
way as one saved today, so hashes from any source compare.
"""

from __future__ import annotations

from io import BytesIO

from PIL import Image, UnidentifiedImageError

#: 8 x 8 DCT bits: the 64-bit hash the `images.phash` column holds as 16 hex digits.
HASH_SIZE = 8
#: A thumbnail is at most 256 x 256; anything far larger is not one and is not decoded.
MAX_THUMBNAIL_PIXELS = 1024 * 1024


def perceptual_hash(thumbnail: bytes) -> str | None:
    """The 16-hex-digit pHash of a thumbnail's picture; None when the bytes are not an image
    (an imported row may carry anything in its thumbnail column)."""
    import imagehash  # numpy and scipy: loaded with the first image hashed, not on import

    try:
        with Image.open(BytesIO(thumbnail), formats=("WEBP", "PNG", "JPEG")) as image:
            if image.size[0] * image.size[1] > MAX_THUMBNAIL_PIXELS:
                return None
            return str(imagehash.phash(image, hash_size=HASH_SIZE))
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        return None


def hamming(first: str, second: str) -> int:
    """The Hamming distance between two hashes: how many of their 64 bits differ."""
    return (int(first, 16) ^ int(second, 16)).bit_count()
