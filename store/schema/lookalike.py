"""The look-alike numbers: how a perceptual hash is cut into indexed bands, and which
distances a lookup answers. Plain constants (no imports), so the command line's `--help` can
name them without loading the database code.

A 64-bit hash is cut into PHASH_BANDS bands of PHASH_BAND_BITS bits, each an indexed column.
Pigeonhole: two hashes at most 4r+3 bits apart have a band at most r bits apart, so a lookup
reads the band values within r bits of the query's (store/queries/similar.py).
"""

PHASH_BANDS = 4
PHASH_BAND_BITS = 16
#: What "look-alike" means unless asked otherwise: a re-encode or a resize is 0-4 bits away, a
#: light edit up to about 8; unrelated pictures are about 32 apart.
DEFAULT_MAX_DISTANCE = 6
#: Radius 2 per band (d <= 11) is 137 values per band; beyond that the bands stop paying.
MAX_DISTANCE = 11
