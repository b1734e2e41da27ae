"""`imagelog gateway`: real uvicorn on 127.0.0.1 in front of the loopback stand-ins, driven by
the real openai SDK and by raw HTTP."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import openai
import pytest
from openai import OpenAI
from sqlalchemy import select

from store.cli import main
from store.gateway.config import GatewayConfig
from store.gateway.server import running
from store.media.network_guard import ALLOWED_NETWORKS_ENV
from store.schema.db import make_engine
from store.schema.models import GENERATIONS, IMAGES
from tests.databases import generations, images_of
from tests.standins.openai_server import SCENARIO_HEADER, _draw

API_KEY = "sk-test-gateway-0123456789abcdef"
PORTKEY_KEY = "pk-test-gateway-0123456789abcdef"
VIRTUAL_KEY = "openai-virtual-key"


@pytest.fixture
def config(openai_api, portkey_api):
    return GatewayConfig(
        upstream=openai_api.base_url,
        portkey_upstream=portkey_api.base_url,
        routes={"azure": openai_api.base_url + "/openai"},
        port=0,
    )


@pytest.fixture
def gateway(recorder, config):
    with running(config, recorder) as url:
        yield url


@pytest.fixture
def client(gateway):
    """The openai SDK pointed at the gateway, with a plain httpx client of its own."""
    with OpenAI(base_url=gateway + "/v1", api_key=API_KEY) as client:
        yield client


# --- images calls are recorded as the Python transport records them ---------------------------

#: Columns that differ between two recordings of the same call (identity, time, randomness).
_PER_CALL = {"id", "created_at", "latency_ms", "request_id", "response_json", "request_json"}


def test_generation_is_recorded_as_the_python_transport_records_it(recorder, client, openai_api):
    with OpenAI(
        base_url=openai_api.v1, api_key=API_KEY, http_client=recorder.httpx_client()
    ) as direct:
        direct.images.generate(model="dall-e-3", prompt="a red fox", size="1024x1024")
    client.images.generate(model="dall-e-3", prompt="a red fox", size="1024x1024")

    by_python, by_gateway = sorted(generations(recorder), key=lambda row: row["created_at"])
    assert {k: v for k, v in by_gateway.items() if k not in _PER_CALL} == {
        k: v for k, v in by_python.items() if k not in _PER_CALL
    }
    assert by_gateway["request_json"]["body"] == by_python["request_json"]["body"]
    assert by_gateway["request_json"]["url"] == by_python["request_json"]["url"]
    assert (by_gateway["prompt"], by_gateway["model"]) == ("a red fox", "dall-e-3")
    [image] = images_of(recorder, by_gateway["id"])
    assert image["thumbnail"] and image["url_state"] == "live"


def test_multipart_edit_goes_through_whole_and_is_recorded(recorder, client, openai_api):
    png = _draw("256x256", "edit input")

    client.images.edit(
        model="gpt-image-1",
        image=("a.png", io.BytesIO(png), "image/png"),
        mask=("mask.png", io.BytesIO(png), "image/png"),
        prompt="add a red hat",
        size="1024x1024",
    )

    [row] = generations(recorder)
    assert (row["operation"], row["prompt"]) == ("edit", "add a red hat")
    assert row["model"] == "gpt-image-1"
    assert row["request_json"]["body"]["mask"]["bytes"] == len(png)
    assert openai_api.image_requests()[-1].body.count(png) == 2  # both files reached upstream
    [image] = images_of(recorder, row["id"])
    assert image["thumbnail"]


@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")  # the SDK's own notice
def test_variation_is_recorded_as_a_variation(recorder, client):
    client.images.create_variation(image=("in.png", _draw("256x256", "v"), "image/png"), n=2)

    [row] = generations(recorder)
    assert (row["operation"], row["image_count"], row["status"]) == ("variation", 2, "ok")


def test_streamed_images_are_recorded_from_their_completed_events(recorder, client):
    stream = client.images.generate(
        model="gpt-image-1",
        prompt="a streamed otter",
        stream=True,
        extra_headers={SCENARIO_HEADER: "stream"},
    )
    kinds = [event.type for event in stream]

    assert kinds == ["image_generation.partial_image", "image_generation.completed"]
    [row] = generations(recorder)
    assert (row["status"], row["image_count"]) == ("ok", 1)


def test_caller_gets_the_upstreams_status_headers_and_bytes(gateway, recorder, openai_api):
    with (
        httpx.Client() as http,
        http.stream(
            "POST",
            gateway + "/v1/images/generations",
            json={"model": "dall-e-3", "prompt": "bytes"},
            headers={"Authorization": f"Bearer {API_KEY}", "Accept-Encoding": "gzip"},
        ) as response,
    ):
        raw = b"".join(response.iter_raw())

    sent = openai_api.sent[-1]
    assert raw == sent.body  # still gzip-encoded, byte for byte
    assert response.status_code == sent.status
    for name, value in sent.headers.items():
        assert response.headers[name] == value
    assert response.headers["content-length"] == str(len(sent.body))
    assert response.headers["server"].startswith("BaseHTTP")  # the upstream's, not uvicorn's
    assert len(response.headers.get_list("date")) == 1
    [row] = generations(recorder)
    assert row["prompt"] == "bytes"


def test_a_caller_that_asks_for_no_encoding_gets_none(gateway, openai_api):
    answer = httpx.post(
        gateway + "/v1/images/generations",
        json={"prompt": "plain"},
        headers={"Accept-Encoding": "identity"},
    )

    assert "content-encoding" not in answer.headers
    assert answer.json()["data"][0]["url"]
    assert openai_api.requests[-1].headers["accept-encoding"] == "identity"


def test_upstream_errors_reach_the_caller_unchanged_and_are_recorded(recorder, client):
    with pytest.raises(openai.BadRequestError, match="safety system"):
        client.images.generate(
            model="dall-e-3", prompt="x", extra_headers={SCENARIO_HEADER: "error-400"}
        )

    [row] = generations(recorder)
    assert (row["status"], row["http_status"]) == ("error", 400)
    assert "safety system" in row["error"]


# --- everything else passes through unrecorded -------------------------------------------------


def test_chat_embeddings_and_models_pass_through_unrecorded(recorder, client, openai_api):
    chat = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
    )
    embedding = client.embeddings.create(model="text-embedding-3-small", input="hi")
    models = client.models.list()

    assert chat.choices[0].message.content == "Hello"
    assert embedding.data[0].embedding == [0.1, 0.2]
    assert [model.id for model in models] == ["dall-e-3"]
    assert [r.path for r in openai_api.requests[-3:]] == [
        "/v1/chat/completions",
        "/v1/embeddings",
        "/v1/models",
    ]
    assert generations(recorder) == []


def test_a_streaming_response_is_relayed_as_it_arrives(gateway, recorder, openai_api):
    openai_api.chat_gate.clear()  # the stand-in holds everything after the first event
    try:
        with (
            httpx.Client(timeout=10) as http,
            http.stream(
                "POST",
                gateway + "/v1/chat/completions",
                json={"model": "gpt-4o", "messages": [], "stream": True},
            ) as response,
        ):
            lines = response.iter_lines()
            first = next(lines)
            assert not openai_api.chat_gate.is_set()  # it came before the rest was even sent
            openai_api.chat_gate.set()
            rest = [line for line in lines if line]
    finally:
        openai_api.chat_gate.set()

    assert response.headers["content-type"] == "text/event-stream"
    assert json.loads(first.removeprefix("data: "))["choices"][0]["delta"]["content"] == "Hel"
    assert rest[-1] == "data: [DONE]"
    assert generations(recorder) == []


def test_hop_by_hop_headers_stay_on_their_own_connection(gateway, openai_api):
    httpx.get(
        gateway + "/v1/models",
        headers={
            "Connection": "keep-alive, x-hop",
            "x-hop": "for the gateway only",
            "Keep-Alive": "timeout=5",
            "x-end-to-end": "kept",
        },
    )

    seen = openai_api.requests[-1].headers
    assert "x-hop" not in seen and "keep-alive" not in seen
    assert seen["x-end-to-end"] == "kept"
    assert seen["host"] == openai_api.base_url.removeprefix("http://")


# --- upstreams come from configuration only ------------------------------------------------------


def test_portkey_headers_go_to_the_portkey_upstream(recorder, gateway, portkey_api):
    with OpenAI(
        base_url=gateway + "/v1",
        api_key=API_KEY,
        default_headers={"x-portkey-api-key": PORTKEY_KEY, "x-portkey-provider": "openai"},
    ) as client:
        client.images.generate(model="dall-e-3", prompt="via portkey")

    assert portkey_api.requests[-1].path == "/v1/images/generations"
    assert portkey_api.requests[-1].headers["x-portkey-api-key"] == PORTKEY_KEY  # forwarded
    [row] = generations(recorder)
    assert (row["provider"], row["metadata_json"]["gateway"]) == ("openai", "portkey")
    assert row["cost_usd"] is not None


@pytest.mark.parametrize("by", ["path", "header"])
def test_a_named_route_reaches_its_configured_upstream(recorder, gateway, openai_api, by):
    path = "/deployments/dalle3/images/generations?api-version=2024-02-01"
    url, headers = gateway + "/routes/azure" + path, {"api-key": API_KEY}
    if by == "header":
        url, headers = gateway + path, {**headers, "x-imagelog-route": "azure"}

    answer = httpx.post(url, json={"prompt": "routed"}, headers=headers)

    assert answer.status_code == 200
    seen = openai_api.requests[-1]
    assert seen.path == "/openai/deployments/dalle3/images/generations"
    assert seen.query == {"api-version": ["2024-02-01"]}
    assert "x-imagelog-route" not in seen.headers
    [row] = generations(recorder)
    assert (row["provider"], row["model"]) == ("azure-openai", "dalle3")


@pytest.mark.parametrize("by", ["path", "header"])
def test_an_unknown_route_is_a_404_that_goes_nowhere(gateway, openai_api, by):
    before = len(openai_api.requests)
    if by == "path":
        answer = httpx.post(gateway + "/routes/elsewhere/v1/images/generations", json={})
    else:
        answer = httpx.post(
            gateway + "/v1/images/generations", json={}, headers={"x-imagelog-route": "nope"}
        )

    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "unknown_route"
    assert "azure" in answer.json()["error"]["message"]
    assert len(openai_api.requests) == before


def test_the_request_never_chooses_the_host(gateway, openai_api):
    """An absolute URL in the request line, a Host header and a `//host` path all still go to
    the configured upstream."""
    host, port = gateway.removeprefix("http://").split(":")
    before = len(openai_api.requests)
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(
            b"GET http://169.254.169.254/latest/meta-data HTTP/1.1\r\n"
            b"Host: 169.254.169.254\r\nConnection: close\r\n\r\n"
        )
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    httpx.get(gateway + "//169.254.169.254/v1/models", headers={"Host": "evil.example"})

    assert answer.startswith(b"HTTP/1.1 404")  # the stand-in's own "no route" answer
    first, second = openai_api.requests[before:]
    assert first.path == "/latest/meta-data"
    assert second.path.endswith("/169.254.169.254/v1/models")


def test_upstreams_go_through_the_network_guard(recorder, config, monkeypatch):
    monkeypatch.delenv(ALLOWED_NETWORKS_ENV)  # loopback is no longer opted in

    with running(config, recorder) as gateway:
        answer = httpx.post(gateway + "/v1/images/generations", json={"prompt": "guarded"})

    assert answer.status_code == 502
    assert "a loopback address" in answer.json()["error"]["message"]
    [row] = generations(recorder)
    assert row["status"] == "error" and "loopback" in row["error"]


# --- the upstream down or slow, limits, health, shutdown ---------------------------------------


def free_port() -> int:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        return unused.getsockname()[1]


def test_an_upstream_that_is_down_is_a_502_recorded_as_an_error(recorder, config):
    closed_port = free_port()
    down = GatewayConfig(upstream=f"http://127.0.0.1:{closed_port}", port=0)

    with running(down, recorder) as gateway:
        answer = httpx.post(gateway + "/v1/images/generations", json={"prompt": "nobody home"})

    assert answer.status_code == 502
    error = answer.json()["error"]
    assert error["code"] == "upstream_unreachable"
    assert f"http://127.0.0.1:{closed_port}" in error["message"]
    [row] = generations(recorder)
    assert (row["status"], row["prompt"]) == ("error", "nobody home")


def test_a_slow_upstream_is_a_504_recorded_as_an_error(recorder, config):
    slow = GatewayConfig(upstream=config.upstream, port=0, timeout=0.5)

    with running(slow, recorder) as gateway:
        answer = httpx.post(
            gateway + "/v1/images/generations",
            json={"prompt": "too slow"},
            headers={SCENARIO_HEADER: "slow:2"},
        )

    assert answer.status_code == 504
    assert answer.json()["error"]["code"] == "upstream_timeout"
    assert "0.5 s" in answer.json()["error"]["message"]
    [row] = generations(recorder)
    assert row["status"] == "error" and "Timeout" in row["error"]


def test_an_upstream_reset_is_a_502_recorded_as_an_error(recorder, client):
    with pytest.raises(openai.InternalServerError, match="could not be reached"):
        client.with_options(max_retries=0).images.generate(
            prompt="reset", extra_headers={SCENARIO_HEADER: "reset"}
        )

    [row] = generations(recorder)
    assert row["status"] == "error"


def test_a_body_over_the_limit_is_a_413_that_goes_nowhere(recorder, config, openai_api):
    small = GatewayConfig(upstream=config.upstream, port=0, max_body_bytes=1000)
    before = len(openai_api.image_requests())

    def chunked():  # no content-length: the limit is found while reading
        yield b'{"prompt": "'
        yield b"x" * 2000
        yield b'"}'

    with running(small, recorder) as gateway:
        declared = httpx.post(gateway + "/v1/images/generations", json={"prompt": "x" * 2000})
        streamed = httpx.post(gateway + "/v1/images/generations", content=chunked())
        fits = httpx.post(gateway + "/v1/images/generations", json={"prompt": "x" * 900})

    assert (declared.status_code, streamed.status_code, fits.status_code) == (413, 413, 200)
    assert declared.json()["error"]["code"] == "request_too_large"
    assert len(openai_api.image_requests()) == before + 1
    assert len(generations(recorder)) == 1


def test_healthz_answers_without_going_upstream(gateway, openai_api):
    before = len(openai_api.requests)

    answer = httpx.get(gateway + "/healthz")

    assert answer.status_code == 200
    assert answer.json() == {"status": "ok", "recorder": {"dropped": 0, "spool_pending": False}}
    assert len(openai_api.requests) == before


def test_shutdown_drains_the_recorder(recorder, config, db_url):
    with running(config, recorder) as gateway:
        calls = [
            threading.Thread(
                target=httpx.post,
                args=(gateway + "/v1/images/generations",),
                kwargs={"json": {"prompt": f"last call {n}"}},
            )
            for n in range(5)
        ]
        for call in calls:
            call.start()
        for call in calls:
            call.join()

    engine = make_engine(db_url)  # the recorder is closed: read with an engine of our own
    try:
        with engine.connect() as connection:
            rows = connection.execute(select(GENERATIONS.c.prompt)).scalars().all()
    finally:
        engine.dispose()
    assert sorted(rows) == [f"last call {n}" for n in range(5)]


# --- secrets -------------------------------------------------------------------------------------


def test_keys_are_forwarded_upstream_and_never_stored(recorder, gateway, portkey_api, db_url):
    headers = {
        "Authorization": f"Bearer {API_KEY}",
        "x-portkey-api-key": PORTKEY_KEY,
        "x-portkey-virtual-key": VIRTUAL_KEY,
    }
    httpx.post(gateway + "/v1/images/generations", json={"prompt": "keys"}, headers=headers)
    httpx.post(
        gateway + "/v1/images/generations",
        json={"prompt": "echoed keys"},
        headers={**headers, SCENARIO_HEADER: "echo-key"},
    )

    seen = portkey_api.requests[-1].headers
    assert seen["authorization"] == f"Bearer {API_KEY}"
    assert seen["x-portkey-virtual-key"] == VIRTUAL_KEY
    rows = generations(recorder)
    assert len(rows) == 2
    with recorder.engine.connect() as connection:
        stored = repr(connection.execute(select(GENERATIONS)).all())
        stored += repr(connection.execute(select(IMAGES)).all())
    for key in (API_KEY, PORTKEY_KEY, VIRTUAL_KEY):
        assert key not in stored


# --- the command ---------------------------------------------------------------------------------


def test_the_command_serves_and_drains_the_recorder_on_sigterm(db_url, openai_api, tmp_path):
    port = free_port()
    command = [sys.executable, "-m", "store", "--database-url", db_url, "gateway"]
    command += ["--upstream", openai_api.base_url, "--port", str(port)]
    gateway = f"http://127.0.0.1:{port}"
    environment = {**os.environ, "IMAGELOG_HOME": str(tmp_path)}
    process = subprocess.Popen(command, env=environment, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                assert httpx.get(gateway + "/healthz").status_code == 200
                break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        answer = httpx.post(
            gateway + "/v1/images/generations",
            json={"prompt": "from the command", "model": "dall-e-3"},
            headers={"Authorization": f"Bearer {API_KEY}"},
        )
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)

    assert answer.status_code == 200
    # uvicorn re-raises the signal once it has shut down, as a program stopped by it exits.
    assert process.returncode in (0, -signal.SIGTERM), stderr
    assert "Application shutdown complete" in stderr
    assert f"default upstream {openai_api.base_url}" in stderr
    assert API_KEY not in stderr
    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            [row] = connection.execute(select(GENERATIONS)).mappings().all()
    finally:
        engine.dispose()
    assert (row["prompt"], row["model"], row["status"]) == ("from the command", "dall-e-3", "ok")


def test_the_command_refuses_a_bad_setting_before_listening(capsys):
    assert main(["gateway", "--upstream", "ftp://files.example"]) == 2
    assert "is not an http(s) URL" in capsys.readouterr().err
