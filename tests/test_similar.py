"""Look-alike images: a perceptual hash stored with every saved image, and the banded lookup
that finds near hashes across the log, exactly, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import random
from io import BytesIO

import pytest
from PIL import Image
from pydantic import ValidationError
from sqlalchemy import select

from store.capture.writer import insert_calls
from store.cli import main
from store.media.lookalike import hamming, perceptual_hash
from store.media.thumbnails import make_thumbnail
from store.queries import LogFilter, clusters, similar_images
from store.queries.similar import band_neighbours, group_lookalikes, page_groups
from store.schema.models import IMAGES, phash_bands
from store.schema.records import CallRecord, ImageRecord
from tests.standins.image_host import draw_image


def resized(data: bytes, side: int) -> bytes:
    buffer = BytesIO()
    Image.open(BytesIO(data)).resize((side, side)).save(buffer, format="PNG")
    return buffer.getvalue()


def record(recorder, prompt: str, *, url: str | None = None, data: bytes | None = None) -> str:
    with recorder.track(provider="openai", model="gpt-image-1", prompt=prompt) as call:
        if url:
            call.add_image(url=url)
        if data:
            call.add_image(b64=base64.b64encode(data).decode())
    assert recorder.flush(timeout=60)
    return call.record.id


def test_a_reencoded_and_a_resized_copy_are_found_near_and_another_picture_is_not(
    recorder, image_host
):
    original = record(recorder, "a red fox", url=image_host.url("/img/fox.png?w=1024&h=1024"))
    jpeg = record(recorder, "a red fox again", url=image_host.url("/img/fox.jpg?w=1024&h=1024"))
    small = record(recorder, "a smaller fox", data=resized(draw_image(1024, 1024), 512))
    record(recorder, "a lighthouse", url=image_host.url("/img/other.png?w=800&h=600"))
    with recorder.engine.connect() as connection:
        rows = {row.generation_id: row for row in connection.execute(select(IMAGES)).all()}
    assert all(len(row.phash) == 16 for row in rows.values())
    assert {name: getattr(rows[original], name) for name in phash_bands(None)} == phash_bands(
        rows[original].phash
    )

    found = similar_images(recorder.engine, rows[original].phash, exclude=(original, 0))

    assert {(each.generation_id, each.position) for each in found} == {(jpeg, 0), (small, 0)}
    assert all(each.distance == hamming(rows[original].phash, each.phash) for each in found)
    assert all(each.distance <= 6 and each.thumbnail for each in found)
    assert [each.distance for each in found] == sorted(each.distance for each in found)
    assert found[0].provider == "openai" and "fox" in found[0].prompt


def calls_with_hashes(hashes: list[str]) -> list[CallRecord]:
    return [
        CallRecord(provider="demo", prompt=f"image {index}", images=[ImageRecord(phash=phash)])
        for index, phash in enumerate(hashes)
    ]


def flipped(phash: str, bits: int, rng: random.Random) -> str:
    value = int(phash, 16)
    for bit in rng.sample(range(64), bits):
        value ^= 1 << bit
    return f"{value:016x}"


@pytest.mark.parametrize("max_distance", [0, 3, 6, 11])
def test_the_banded_lookup_finds_exactly_what_a_full_scan_finds(engine, max_distance):
    rng = random.Random(max_distance)
    query = f"{rng.getrandbits(64):016x}"
    near = [flipped(query, rng.randint(0, 14), rng) for _ in range(120)]
    hashes = near + [f"{rng.getrandbits(64):016x}" for _ in range(300)]
    insert_calls(engine, calls_with_hashes(hashes))

    found = similar_images(engine, query, max_distance=max_distance, limit=1000)

    expected = sorted(
        hamming(query, phash) for phash in hashes if hamming(query, phash) <= max_distance
    )
    assert sorted(each.distance for each in found) == expected
    assert len(expected) > 0 or max_distance == 0


def test_clusters_chain_look_alikes_and_leave_loners_out(engine, db_url, capsys):
    rng = random.Random(7)
    base = [f"{rng.getrandbits(64):016x}" for _ in range(3)]
    hashes = [
        base[0],
        flipped(base[0], 2, rng),
        base[0],  # a picture, a near copy, an exact copy
        base[1],
        flipped(base[1], 5, rng),  # a pair
        base[2],  # alone
    ]
    insert_calls(engine, calls_with_hashes(hashes))

    found = clusters(engine, LogFilter(), max_distance=6)
    code = main(["--database-url", db_url, "similar", "--max-distance", "6"])

    assert [len(cluster) for cluster in found] == [3, 2]
    assert code == 0
    out = capsys.readouterr().out
    assert "cluster 1: 3 images within 6 bits" in out and "2 clusters, 5 images" in out
    assert base[2] not in out
    assert main(["--database-url", db_url, "similar", "--max-distance", "0"]) == 0
    assert "1 clusters, 2 images" in capsys.readouterr().out  # only the exact copy


def test_a_distance_the_bands_cannot_answer_is_refused_with_the_range(db_url, capsys):
    with pytest.raises(SystemExit):
        main(["--database-url", db_url, "similar", "--max-distance", "40"])
    assert "a distance is 0 to 11 bits, not 40" in capsys.readouterr().err


def test_a_records_bands_always_follow_its_hash_and_a_bad_hash_is_refused():
    image = ImageRecord.model_validate(
        {"phash": "00ff00ff00ff00ff", "phash_band0": 1, "phash_band3": 999}
    )
    assert (image.phash_band0, image.phash_band1, image.phash_band3) == (0x00FF, 0x00FF, 0x00FF)
    with pytest.raises(ValidationError, match="phash must be 16 lowercase hex digits"):
        ImageRecord.model_validate({"phash": "not-a-hash"})


def test_band_neighbours_and_page_groups():
    assert len(band_neighbours(0, 0)) == 1
    assert len(set(band_neighbours(0xBEEF, 2))) == 1 + 16 + 120
    hashes = ["0000000000000000", None, "0000000000000001", "ffffffffffffffff"]
    assert list(page_groups(hashes, 3)) == [[0, 2], [1], [3]]
    assert sorted(map(sorted, group_lookalikes(["ab" * 8] * 3, 0))) == [[0, 1, 2]]


def test_images_stored_before_hashes_were_kept_are_hashed_from_their_thumbnails(
    engine, db_url, capsys
):
    thumbnail = make_thumbnail(draw_image(512, 512)).thumbnail
    insert_calls(
        engine,
        [
            CallRecord(provider="import", images=[ImageRecord(thumbnail=thumbnail)]),
            CallRecord(provider="import", images=[ImageRecord(thumbnail=thumbnail)]),
            CallRecord(provider="import", images=[ImageRecord(thumbnail=b"not a picture")]),
        ],
    )

    assert main(["--database-url", db_url, "similar", "--hash-missing"]) == 0

    out = capsys.readouterr().out
    assert "hashed 2 images from their thumbnails" in out
    assert "cluster 1: 2 images within 6 bits" in out
    with engine.connect() as connection:
        stored = connection.execute(select(IMAGES.c.phash, IMAGES.c.phash_band2)).all()
    expected = perceptual_hash(thumbnail)
    assert sorted(stored, key=str) == sorted(
        [(expected, phash_bands(expected)["phash_band2"])] * 2 + [(None, None)], key=str
    )


def test_a_flood_of_one_picture_is_one_candidate_and_the_nearest_come_first(engine):
    rng = random.Random(3)
    flood = f"{rng.getrandbits(64):016x}"
    near, farther = flipped(flood, 1, rng), flipped(flood, 5, rng)
    insert_calls(engine, calls_with_hashes([farther, near] + [flood] * 2000))

    nearest = similar_images(engine, near, max_distance=6, limit=3)
    found = similar_images(engine, farther, max_distance=11, limit=2001)

    assert [each.distance for each in nearest] == [0, 1, 1]
    assert len(found) == 2001 and found[0].phash == farther
    assert {each.phash for each in found[1:]} <= {near, flood}
