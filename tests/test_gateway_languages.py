"""The README's "Record from any language" examples, run as written against `imagelog gateway`
in front of the Portkey stand-in: NodeJS with the real `openai` and `portkey-ai` packages of
tests/node (installed from its lockfile with `npm ci`), cURL, and Python.

Only the gateway's address in them is changed (to the test's port); the keys come from the
environment, as the examples read them. Each call must be recorded with its prompt, provider,
model, cost and thumbnail, and no key may be stored.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from openai import OpenAI
from sqlalchemy import select

from store.gateway.config import GatewayConfig
from store.gateway.server import running
from store.schema.models import GENERATIONS, IMAGES
from tests.standins.openai_server import _draw
from tests.test_readme import section, snippets

NODE_DIR = Path(__file__).parent / "node"
#: The gateway's address as the README writes it.
README_GATEWAY = "http://127.0.0.1:8790"
PROMPT = "Lucy in the sky with diamonds"
KEYS = {
    "OPENAI_API_KEY": "sk-test-languages-0123456789abcdef",
    "PORTKEY_API_KEY": "pk-test-languages-0123456789abcdef",
    "OPENAI_VIRTUAL_KEY": "openai-virtual-key",  # the Portkey stand-in serves it with OpenAI
}


def examples(language: str) -> list[str]:
    return snippets(section("Record from any language"), language)


@pytest.fixture(scope="session")
def node() -> str:
    """The node binary, with tests/node's packages installed from the lockfile."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("Node.js and npm are not installed (.ci/run installs them from Debian)")
    installed = NODE_DIR / "node_modules" / ".package-lock.json"
    lockfile = NODE_DIR / "package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lockfile.stat().st_mtime:
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True, timeout=600
        )
    return node


@pytest.fixture
def gateway(recorder, openai_api, portkey_api):
    config = GatewayConfig(
        upstream=openai_api.base_url, portkey_upstream=portkey_api.base_url, port=0
    )
    with running(config, recorder) as url:
        yield url


def run(command: list[str], **kwargs) -> str:
    done = subprocess.run(
        command,
        env={**os.environ, **KEYS},
        capture_output=True,
        text=True,
        timeout=120,
        **kwargs,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def as_the_python_transport_records(recorder, portkey_api, headers: dict[str, str]) -> str:
    """The provider the Python transport records for the same Portkey request (a virtual key
    alone does not say which provider serves it; Portkey's answer does)."""
    with OpenAI(
        base_url=portkey_api.base_url + "/v1",
        api_key=KEYS["PORTKEY_API_KEY"],
        default_headers={"x-portkey-api-key": KEYS["PORTKEY_API_KEY"], **headers},
        http_client=recorder.httpx_client(),
    ) as client:
        client.images.generate(model="dall-e-3", prompt="reference", size="1024x1024")
    assert recorder.flush(timeout=30)
    with recorder.engine.connect() as connection:
        query = select(GENERATIONS.c.provider).where(GENERATIONS.c.prompt == "reference")
        return connection.execute(query).scalar_one()


def recorded(recorder, provider: str):
    """The example's call as stored, checked for what every example must record."""
    assert recorder.flush(timeout=60)
    with recorder.engine.connect() as connection:
        [row] = connection.execute(
            select(GENERATIONS).where(GENERATIONS.c.prompt == PROMPT)
        ).mappings()
        [image] = connection.execute(
            select(IMAGES).where(IMAGES.c.generation_id == row["id"])
        ).mappings()
        stored = repr(connection.execute(select(GENERATIONS)).all())
        stored += repr(connection.execute(select(IMAGES)).all())
    assert (row["status"], row["http_status"], row["operation"]) == ("ok", 200, "generate")
    assert (row["provider"], row["model"]) == (provider, "dall-e-3")
    assert row["params_json"]["size"] == "1024x1024"
    assert row["cost_usd"] == pytest.approx(0.04)  # dall-e-3, standard, 1024x1024
    assert row["metadata_json"]["gateway"] == "portkey"
    assert row["trace_id"]  # Portkey's x-portkey-trace-id answer
    assert image["thumbnail"] and image["url_state"] == "live"
    for key in KEYS.values():
        assert key not in stored
    return row


def test_the_readme_shows_nodejs_curl_and_python_examples_pointed_at_the_gateway():
    blocks = examples("js") + examples("sh") + examples("python")
    assert len(examples("js")) == 2 and len(examples("python")) == 1
    assert all(README_GATEWAY in block for block in blocks if "imagelog gateway" not in block)


def test_the_portkey_sdk_with_a_virtual_key(node, gateway, recorder, portkey_api):
    provider = as_the_python_transport_records(
        recorder, portkey_api, {"x-portkey-virtual-key": KEYS["OPENAI_VIRTUAL_KEY"]}
    )
    portkey_sdk, _ = examples("js")

    url = run(
        [node, "--input-type=module", "-e", portkey_sdk.replace(README_GATEWAY, gateway)],
        cwd=NODE_DIR,
    )

    assert url.startswith(portkey_api.api.base_url + "/files/")
    assert portkey_api.requests[-1].headers["x-portkey-virtual-key"] == KEYS["OPENAI_VIRTUAL_KEY"]
    recorded(recorder, provider)


def test_the_openai_sdk_with_portkeys_create_headers(node, gateway, recorder, portkey_api):
    _, openai_sdk = examples("js")

    url = run(
        [node, "--input-type=module", "-e", openai_sdk.replace(README_GATEWAY, gateway)],
        cwd=NODE_DIR,
    )

    assert url.startswith(portkey_api.api.base_url + "/files/")
    seen = portkey_api.requests[-1].headers
    assert seen["authorization"] == f"Bearer {KEYS['OPENAI_API_KEY']}"
    assert seen["x-portkey-api-key"] == KEYS["PORTKEY_API_KEY"]
    row = recorded(recorder, "openai")
    assert row["request_json"]["headers"]["x-portkey-provider"] == "openai"


def test_curl_with_the_portkey_headers(gateway, recorder, portkey_api):
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    provider = as_the_python_transport_records(
        recorder, portkey_api, {"x-portkey-virtual-key": KEYS["OPENAI_VIRTUAL_KEY"]}
    )
    [curl] = [block for block in examples("sh") if block.startswith("curl")]

    answer = run(["bash", "-c", curl.replace(README_GATEWAY, gateway)])

    assert portkey_api.api.base_url + "/files/" in answer
    recorded(recorder, provider)


def test_python_pointed_at_the_gateway(gateway, recorder, portkey_api, monkeypatch):
    for name, value in KEYS.items():
        monkeypatch.setenv(name, value)
    [python] = examples("python")

    namespace: dict = {}
    exec(python.replace(README_GATEWAY, gateway), namespace)

    assert namespace["image"].data[0].url.startswith(portkey_api.api.base_url + "/files/")
    recorded(recorder, "openai")


def test_curl_uploads_an_edit_as_multipart(gateway, recorder, openai_api, tmp_path):
    """cURL's `-F` form upload reaches the upstream whole and is recorded as an edit, also when
    it waits for `100 Continue` first (as curl does for large uploads)."""
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    png = _draw("256x256", "curl edit")
    (tmp_path / "otter.png").write_bytes(png)

    key = f"Authorization: Bearer {KEYS['OPENAI_API_KEY']}"
    form = ["-F", "model=gpt-image-1", "-F", "image=@otter.png", "-F", "prompt=a red hat"]

    expect = ["-H", "Expect: 100-continue"]

    answer = run(
        ["curl", "-sS", gateway + "/v1/images/edits", "-H", key, *expect, *form], cwd=tmp_path
    )

    assert '"b64_json"' in answer
    assert openai_api.image_requests()[-1].body.count(png) == 1
    assert recorder.flush(timeout=60)
    with recorder.engine.connect() as connection:
        [row] = connection.execute(select(GENERATIONS)).mappings()
    assert (row["operation"], row["prompt"], row["model"]) == ("edit", "a red hat", "gpt-image-1")
    assert row["request_json"]["body"]["image"]["bytes"] == len(png)
