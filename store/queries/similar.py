"""Look-alike images: those whose perceptual hashes are a few bits apart, found through the
hash's four indexed 16-bit bands rather than by reading every hash of the log.

Pigeonhole: two 64-bit hashes at most 4r+3 bits apart have a band at most r bits apart. So the
candidates for `max_distance` d are the images having, in some band, a value within
r = d // 4 bits of the query's own: for d <= 3 the four bands' own values (four index seeks),
for d <= 7 each band's 17 values at most one bit away, and so on. The exact distance of each
candidate is then counted, and only those within d are kept: the answer is exact, and its cost
follows the number of candidates, not the size of the log.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import combinations
from typing import Any

from sqlalchemy import CompoundSelect, Engine, Row, Select, func, select, union

from store.media.lookalike import hamming
from store.queries.filters import (
    GENERATIONS,
    IMAGES,
    LogFilter,
    generation_conditions,
    require_positive,
    where,
)
from store.queries.hints import plan_hints
from store.schema.lookalike import (
    DEFAULT_MAX_DISTANCE,
    MAX_DISTANCE,
    PHASH_BAND_BITS,
    PHASH_BANDS,
)
from store.schema.models import phash_bands

#: Prompts as much as a list shows.
PROMPT_PREVIEW_CHARS = 80


@dataclass(frozen=True)
class LookAlike:
    """One image near another: where it is in the log, and how many hash bits apart."""

    generation_id: str
    position: int
    distance: int
    phash: str
    created_at: datetime
    provider: str
    model: str
    prompt: str
    thumbnail: bytes | None


def check_distance(max_distance: int) -> None:
    """Refuse a distance the bands cannot answer exactly."""
    if not 0 <= max_distance <= MAX_DISTANCE:
        raise ValueError(f"max distance must be 0 to {MAX_DISTANCE} bits, not {max_distance}")


def band_neighbours(value: int, radius: int) -> list[int]:
    """Every 16-bit band value at most `radius` bits from `value`, itself first."""
    found = [value]
    for flips in range(1, radius + 1):
        for bits in combinations(range(PHASH_BAND_BITS), flips):
            flipped = value
            for bit in bits:
                flipped ^= 1 << bit
            found.append(flipped)
    return found


def similar_images(
    engine: Engine,
    phash: str,
    *,
    max_distance: int = DEFAULT_MAX_DISTANCE,
    limit: int = 12,
    exclude: tuple[str, int] | None = None,
) -> list[LookAlike]:
    """The images of the whole log within `max_distance` bits of `phash`, nearest first (then
    the last recorded), at most `limit`; `exclude` is the (call id, position) the lookup is
    for. Exact: every image within the distance is a candidate (see the module docstring)."""
    check_distance(max_distance)
    require_positive(limit=limit)
    wanted = limit + (exclude is not None)
    found: list[LookAlike] = []
    with engine.connect() as connection:
        hashes = connection.scalars(_candidate_hashes(phash, max_distance)).all()
        by_distance: dict[int, list[str]] = {}
        for candidate in hashes:
            if (bits := hamming(phash, candidate)) <= max_distance:
                by_distance.setdefault(bits, []).append(candidate)
        for bits in sorted(by_distance):
            rows = connection.execute(_images_with(by_distance[bits], wanted - len(found))).all()
            found += [
                LookAlike(distance=bits, prompt=row.prompt or "", **_fields(row)) for row in rows
            ]
            if len(found) >= wanted:
                break
    return [each for each in found if (each.generation_id, each.position) != exclude][:limit]


def _candidate_hashes(phash: str, max_distance: int) -> CompoundSelect:
    """The distinct hashes sharing a band value within the radius with `phash`: one index
    range read per band (the index holds the hash, so no row is read), their union. Distinct
    hashes, not images: a picture logged ten thousand times is one candidate."""
    radius = max_distance // PHASH_BANDS
    i = IMAGES.c
    reads = [
        select(i.phash).where(i[name].in_(band_neighbours(value, radius)))
        for name, value in phash_bands(phash).items()
        if value is not None
    ]
    return union(*reads)


def _images_with(hashes: list[str], limit: int) -> Select:
    """The last recorded `limit` images having one of `hashes`, with their calls: read through
    the first band's index (its values pin the hashes down), never a scan."""
    i, g = IMAGES.c, GENERATIONS.c
    first_bands = {phash_bands(phash)["phash_band0"] for phash in hashes}
    return (
        select(
            i.generation_id,
            i.position,
            i.phash,
            i.thumbnail,
            g.created_at,
            g.provider,
            g.model,
            func.substr(g.prompt, 1, PROMPT_PREVIEW_CHARS).label("prompt"),
        )
        .join_from(IMAGES, GENERATIONS, g.id == i.generation_id)
        .where(i.phash_band0.in_(first_bands), i.phash.in_(hashes))
        .order_by(i.id.desc())
        .limit(limit)
    )


#: The LookAlike fields a row of `_images_with` gives as they are.
_ROW_FIELDS = ("generation_id", "position", "phash", "thumbnail", "created_at", "provider", "model")


def _fields(row: Row[Any]) -> dict[str, Any]:
    return {name: getattr(row, name) for name in _ROW_FIELDS}


# --- clusters (the CLI) ---------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    """One image of a cluster."""

    generation_id: str
    position: int
    phash: str
    created_at: datetime
    provider: str
    model: str
    prompt: str


def clusters(
    engine: Engine, flt: LogFilter, *, max_distance: int = DEFAULT_MAX_DISTANCE
) -> list[list[Member]]:
    """The images of `flt`'s calls grouped by look-alikeness: two images share a cluster
    when a chain of images each within `max_distance` bits of the next joins them. Only
    clusters of two or more; the largest first, each newest first.

    Reads each hashed image once (its hash and where it is), then joins look-alikes in
    memory through the same band buckets the lookup uses.
    """
    check_distance(max_distance)
    i, g = IMAGES.c, GENERATIONS.c
    with engine.connect() as connection:
        hints = plan_hints(connection, flt, ordered=False)
        conditions = generation_conditions(connection.dialect.name, flt, hints)
        rows = connection.execute(
            select(
                i.generation_id,
                i.position,
                i.phash,
                g.created_at,
                g.provider,
                g.model,
                func.substr(g.prompt, 1, PROMPT_PREVIEW_CHARS).label("prompt"),
            )
            .join_from(IMAGES, GENERATIONS, g.id == i.generation_id)
            .where(i.phash.is_not(None), where(conditions))
        ).all()
    members = [Member(*row) for row in rows]
    groups = group_lookalikes([member.phash for member in members], max_distance)
    found = [
        sorted((members[index] for index in group), key=lambda m: m.created_at, reverse=True)
        for group in groups
        if len(group) > 1
    ]
    found.sort(key=lambda group: (-len(group), group[0].phash))
    return found


def group_lookalikes(hashes: list[str], max_distance: int) -> list[list[int]]:
    """Indexes of `hashes` grouped into connected look-alikes (union-find over the pairs
    within `max_distance` that the band buckets propose). Equal hashes are joined first,
    so a flood of one picture costs one bucket entry, not a pairwise comparison; hashes are
    compared as integers (parsing hex per comparison would cost more than the comparison)."""
    check_distance(max_distance)
    parent = list(range(len(hashes)))

    def root(index: int) -> int:
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = parent[index]
        return index

    def join(first: int, second: int) -> None:
        parent[root(first)] = root(second)

    unique: dict[int, int] = {}  # hash value -> the first index holding it
    for index, phash in enumerate(hashes):
        join(index, unique.setdefault(int(phash, 16), index))
    radius = max_distance // PHASH_BANDS
    mask = (1 << PHASH_BAND_BITS) - 1
    shifts = [PHASH_BAND_BITS * (PHASH_BANDS - 1 - band) for band in range(PHASH_BANDS)]
    buckets: list[dict[int, list[int]]] = [{} for _ in range(PHASH_BANDS)]
    for value in unique:
        for band, shift in enumerate(shifts):
            buckets[band].setdefault((value >> shift) & mask, []).append(value)
    for value, index in unique.items():
        for band, shift in enumerate(shifts):
            bucket = buckets[band]
            for neighbour in band_neighbours((value >> shift) & mask, radius):
                for other in bucket.get(neighbour, ()):
                    if other > value and (value ^ other).bit_count() <= max_distance:
                        join(index, unique[other])
    grouped: dict[int, list[int]] = {}
    for index in range(len(hashes)):
        grouped.setdefault(root(index), []).append(index)
    return list(grouped.values())


def page_groups(hashes: Iterable[str | None], max_distance: int) -> Iterator[list[int]]:
    """Positions of a page's images grouped by look-alikeness (an image without a hash alone),
    in the order of each group's first image: the Gallery's grouping."""
    listed = list(hashes)
    hashed = [index for index, phash in enumerate(listed) if phash]
    groups = group_lookalikes([listed[index] or "" for index in hashed], max_distance)
    by_first = {hashed[group[0]]: [hashed[member] for member in group] for group in groups}
    for index, phash in enumerate(listed):
        if not phash:
            yield [index]
        elif index in by_first:
            yield sorted(by_first[index])
