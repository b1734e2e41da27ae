"""The README's Python snippets, run as they are written there, so the README never lies.

The snippets are taken from README.md itself (not copied here): the environment points the
default recorder at a fresh database and the openai SDK at the loopback stand-in, and a
stand-in `replicate` module hands back a URL on the loopback image host.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

from sqlalchemy import select

from store.schema.models import GENERATIONS, IMAGES

README = Path(__file__).parent.parent / "README.md"
API_KEY = "sk-readme-0123456789abcdef"


def python_snippets() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def stored_rows(engine):
    with engine.connect() as connection:
        generations = connection.execute(select(GENERATIONS)).mappings().all()
        images = connection.execute(select(IMAGES)).mappings().all()
    return generations, images


def test_the_readme_shows_a_recording_snippet_a_tracking_snippet_and_a_lookup_snippet():
    snippets = python_snippets()
    assert len(snippets) == 3
    assert "recorder.httpx_client()" in snippets[0]
    assert "recorder.track(" in snippets[1]
    assert "similar_images(" in snippets[2]


def test_the_readme_snippets_record_an_openai_call_and_a_tracked_call(
    db_url, openai_api, image_host, tmp_path, monkeypatch
):
    monkeypatch.setenv("IMAGELOG_DATABASE_URL", db_url)
    monkeypatch.setenv("IMAGELOG_HOME", str(tmp_path))
    monkeypatch.setenv("OPENAI_BASE_URL", openai_api.v1)
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    hosted = image_host.url("/img/flux.webp?w=1024&h=768")
    replicate = SimpleNamespace(run=lambda model, input: [hosted])
    quickstart, tracking, _lookup = python_snippets()

    namespace: dict = {}
    exec(quickstart, namespace)
    recorder = namespace["recorder"]
    exec(tracking, {"recorder": recorder, "replicate": replicate, "prompt": "a red fox"})
    assert recorder.flush(timeout=60)
    generations, images = stored_rows(recorder.engine)
    recorder.close()

    by_provider = {row["provider"]: row for row in generations}
    assert by_provider["127.0.0.1"]["prompt"] == "Lucy in the sky with diamonds"
    tracked = by_provider["replicate"]
    assert (tracked["model"], tracked["prompt"], tracked["source"]) == (
        "black-forest-labs/flux-schnell",
        "a red fox",
        "track",
    )
    [tracked_image] = [image for image in images if image["generation_id"] == tracked["id"]]
    assert tracked_image["url"] == hosted
    assert (tracked_image["width"], tracked_image["height"]) == (1024, 768)
    assert tracked_image["thumbnail"]


def test_the_readme_lookup_snippet_counts_by_credentials_and_lists_look_alikes(engine, capsys):
    from store.capture.writer import insert_calls
    from store.schema.records import CallRecord, ImageRecord

    near, far = "c3a5e1f00f1e5a3d", "3c5a1e0ff0e1a5c3"  # 1 bit and 64 bits from the README's
    insert_calls(
        engine,
        [
            CallRecord(
                provider="openai",
                prompt=prompt,
                images=[ImageRecord(phash=phash, c2pa_state=state)],
            )
            for prompt, phash, state in (
                ("a fox", near, "none"),
                ("a lighthouse", far, "valid"),
            )
        ],
    )
    *_, lookup = python_snippets()
    namespace = {"recorder": SimpleNamespace(engine=engine)}

    exec(lookup, namespace)

    assert namespace["unsigned_or_altered"] == 1
    [line] = capsys.readouterr().out.splitlines()
    assert line.startswith("1 ") and line.endswith(" 0 a fox")
