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

from sqlalchemy import Engine, func, select, union

from store.media.lookalike import hamming
from store.queries.filters import GENERATIONS, IMAGES, LogFilter, generation_conditions, where
from store.queries.hints import plan_hints
from store.schema.lookalike import (
    DEFAULT_MAX_DISTANCE,
    MAX_DISTANCE,
    PHASH_BAND_BITS,
    PHASH_BANDS,
)
from store.schema.models import phash_bands

#: At most this many candidates are weighed for one lookup: a flood of one picture (a test
#: suite logging the same image all day) still answers at once, nearest first.
MAX_CANDIDATES = 5_000
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
    newest), at most `limit`; `exclude` is the (call id, position) the lookup is for."""
    check_distance(max_distance)
    i, g = IMAGES.c, GENERATIONS.c
    with engine.connect() as connection:
        candidates = connection.execute(_candidates(phash, max_distance)).all()
        near = sorted(
            (hamming(phash, found), image_id)
            for image_id, found in candidates
            if hamming(phash, found) <= max_distance
        )
        if not near:
            return []
        distances = dict((image_id, distance) for distance, image_id in near)
        rows = connection.execute(
            select(
                i.id,
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
            .where(i.id.in_([image_id for _, image_id in near[: limit + 1]]))
        ).all()
    found = [
        LookAlike(
            generation_id=row.generation_id,
            position=row.position,
            distance=distances[row.id],
            phash=row.phash,
            created_at=row.created_at,
            provider=row.provider,
            model=row.model,
            prompt=row.prompt or "",
            thumbnail=row.thumbnail,
        )
        for row in rows
        if (row.generation_id, row.position) != exclude
    ]
    found.sort(key=lambda each: (each.distance, -each.created_at.timestamp()))
    return found[:limit]


def _candidates(phash: str, max_distance: int):
    """(id, phash) of every image sharing a band value within the radius with `phash`: one
    index range read per band (the index holds the hash too), their union, capped."""
    radius = max_distance // PHASH_BANDS
    i = IMAGES.c
    reads = [
        select(i.id, i.phash).where(i[name].in_(band_neighbours(value, radius)))
        for name, value in phash_bands(phash).items()
        if value is not None
    ]
    return union(*reads).limit(MAX_CANDIDATES)


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
    so a flood of one picture costs one bucket entry, not a pairwise comparison."""
    check_distance(max_distance)
    parent = list(range(len(hashes)))

    def root(index: int) -> int:
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = parent[index]
        return index

    def join(first: int, second: int) -> None:
        parent[root(first)] = root(second)

    unique: dict[str, int] = {}
    for index, phash in enumerate(hashes):
        join(index, unique.setdefault(phash, index))
    radius = max_distance // PHASH_BANDS
    buckets: list[dict[int, list[str]]] = [{} for _ in range(PHASH_BANDS)]
    for phash in unique:
        for band, value in enumerate(phash_bands(phash).values()):
            assert value is not None
            buckets[band].setdefault(value, []).append(phash)
    for phash, index in unique.items():
        for band, value in enumerate(phash_bands(phash).values()):
            assert value is not None
            for neighbour in band_neighbours(value, radius):
                for other in buckets[band].get(neighbour, ()):
                    if other > phash and hamming(phash, other) <= max_distance:
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
