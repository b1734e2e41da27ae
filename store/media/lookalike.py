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
from sqlalchemy import Engine, bindparam, select, update

from store.schema.models import IMAGES, phash_bands

#: 8 x 8 DCT bits: the 64-bit hash the `images.phash` column holds as 16 hex digits.
HASH_SIZE = 8
#: A thumbnail is at most 256 x 256; anything far larger is not one and is not decoded.
MAX_THUMBNAIL_PIXELS = 1024 * 1024
#: Rows read and written at a time by `hash_missing`.
BATCH = 500


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


def hash_missing(engine: Engine, batch: int = BATCH) -> int:
    """Hash every image that has a thumbnail but no hash (rows stored before hashes were
    kept), from its thumbnail, with no network; returns how many got one. An image whose
    thumbnail is not a picture is left without, and passed over."""
    i = IMAGES.c
    hashed, after = 0, 0
    write = (
        update(IMAGES)
        .where(i.id == bindparam("image_id"))
        .values(phash=bindparam("phash"), **{name: bindparam(name) for name in phash_bands(None)})
    )
    while True:
        with engine.connect() as connection:
            rows = connection.execute(
                select(i.id, i.thumbnail)
                .where(i.phash.is_(None), i.thumbnail.is_not(None), i.id > after)
                .order_by(i.id)
                .limit(batch)
            ).all()
        if not rows:
            return hashed
        after = rows[-1].id
        values = [
            {"image_id": row.id, "phash": phash, **phash_bands(phash)}
            for row in rows
            if (phash := perceptual_hash(row.thumbnail)) is not None
        ]
        if values:
            with engine.begin() as connection:
                connection.execute(write, values)
        hashed += len(values)
