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


def section(title: str) -> str:
    """The README's `## title` section, up to the next one."""
    text = README.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def snippets(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


def python_snippets() -> list[str]:
    """The snippets of "Record calls" (tests/test_gateway_languages.py runs the gateway's)."""
    return snippets(section("Record calls"), "python")


def stored_rows(engine):
    with engine.connect() as connection:
        generations = connection.execute(select(GENERATIONS)).mappings().all()
        images = connection.execute(select(IMAGES)).mappings().all()
    return generations, images


def test_the_readme_shows_a_recording_snippet_and_a_tracking_snippet():
    snippets = python_snippets()
    assert len(snippets) == 2
    assert "recorder.httpx_client()" in snippets[0]
    assert "recorder.track(" in snippets[1]


def test_the_readme_snippets_record_an_openai_call_and_a_tracked_call(
    db_url, openai_api, image_host, tmp_path, monkeypatch
):
    monkeypatch.setenv("IMAGELOG_DATABASE_URL", db_url)
    monkeypatch.setenv("IMAGELOG_HOME", str(tmp_path))
    monkeypatch.setenv("OPENAI_BASE_URL", openai_api.v1)
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    hosted = image_host.url("/img/flux.webp?w=1024&h=768")
    replicate = SimpleNamespace(run=lambda model, input: [hosted])
    quickstart, tracking = python_snippets()

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
