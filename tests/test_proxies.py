"""One reading of HTTP(S)_PROXY / ALL_PROXY / NO_PROXY, shared by the recording client and the
prober: the rules themselves, then both sending through a real loopback forward proxy."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest

from store.capture.transport import async_recording_client, recording_client
from store.expiry.probe import Prober
from store.media.fetch import FetchError, fetch_image, make_client
from store.media.proxies import EnvironmentProxies
from store.schema.models import UrlState
from tests.standins.forward_proxy import ForwardProxy

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
PROXY = "http://proxy.internal:3128"


@pytest.fixture(autouse=True)
def no_proxy_settings(monkeypatch) -> None:
    """Each test starts from an environment without proxy settings, in either case."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture(scope="session")
def proxy_server() -> Iterator[ForwardProxy]:
    """The loopback forward proxy of tests/standins/forward_proxy.py, one per session."""
    with ForwardProxy() as proxy:
        yield proxy


@pytest.fixture
def proxy(proxy_server: ForwardProxy) -> ForwardProxy:
    """The forward proxy with the requests it relayed cleared."""
    proxy_server.reset()
    return proxy_server


def proxy_for(url: str, **settings: str) -> str | None:
    return EnvironmentProxies(settings).proxy_for(url)


# --- the rules --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://example.com/a.png", "http://http-proxy:8080"),
        ("https://example.com/a.png", "http://https-proxy:8443"),
        ("ftp://example.com/a.png", None),  # only http and https are proxied
    ],
)
def test_each_scheme_takes_its_own_proxy(url, expected):
    assert proxy_for(url, http="http-proxy:8080", https="http://https-proxy:8443") == expected


def test_all_proxy_serves_a_scheme_without_its_own():
    settings = {"https": "http://tls-proxy:1", "all": "socks5://everything:1080"}

    assert proxy_for("http://example.com/", **settings) == "socks5://everything:1080"
    assert proxy_for("https://example.com/", **settings) == "http://tls-proxy:1"


@pytest.mark.parametrize(
    ("no_proxy", "url", "bypassed"),
    [
        ("example.com", "http://example.com/", True),
        ("example.com", "http://cdn.eu.example.com/", True),  # any depth of subdomain
        ("example.com", "http://notexample.com/", False),
        ("example.com", "http://example.com.evil.net/", False),
        (".example.com", "http://example.com/", True),  # curl: a leading dot changes nothing
        (".example.com", "http://a.example.com/", True),
        ("*.example.com", "http://example.com/", True),
        ("EXAMPLE.com.", "http://Example.COM/", True),  # case and a trailing dot do not count
        ("localhost", "http://localhost:8000/", True),
        ("example.com:8080", "http://example.com:8080/", True),
        ("example.com:8080", "http://example.com/", False),
        ("example.com:80", "http://example.com/", True),  # the scheme's default port
        ("example.com:443", "https://www.example.com/", True),
        ("10.1.2.3", "http://10.1.2.3/", True),
        ("10.1.2.3", "http://10.1.2.4/", False),
        ("10.0.0.0/8", "http://10.200.3.4:9000/", True),
        ("10.0.0.0/8", "http://11.0.0.1/", False),
        ("10.0.0.0/8", "http://10.example.com/", False),  # names are not resolved
        ("192.168.0.0/16:8080", "http://192.168.4.5:8080/", True),
        ("192.168.0.0/16:8080", "http://192.168.4.5/", False),
        ("::1", "http://[::1]:8000/", True),
        ("fd00::/8", "http://[fd12::5]/", True),
        ("fd00::/8", "http://[fe80::1]/", False),
        ("[::1]:8000", "http://[::1]:8000/", True),
        ("[::1]:8000", "http://[::1]:9000/", False),
        ("*", "http://anything.example/", True),
        ("a.test, *, b.test", "http://anything.example/", True),  # `*` anywhere in the list
        (" a.test , example.com ", "http://www.example.com/", True),  # spaces around entries
        ("", "http://example.com/", False),
        (",,", "http://example.com/", False),
    ],
)
def test_no_proxy_forms(no_proxy, url, bypassed):
    found = proxy_for(url, http=PROXY, https=PROXY, no=no_proxy)

    assert found == (None if bypassed else PROXY)


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({"HTTP_PROXY": "http://upper:1"}, "http://upper:1"),
        ({"http_proxy": "http://lower:1"}, "http://lower:1"),
        ({"HTTP_PROXY": "http://upper:1", "http_proxy": "http://lower:1"}, "http://lower:1"),
        ({"ALL_PROXY": "http://all:1"}, "http://all:1"),
        ({"HTTP_PROXY": "http://upper:1", "NO_PROXY": "example.com"}, None),
        ({"HTTP_PROXY": "http://upper:1", "no_proxy": "example.com"}, None),
        ({}, None),
    ],
)
def test_the_environment_is_read_in_either_case(monkeypatch, variables, expected):
    for name, value in variables.items():
        monkeypatch.setenv(name, value)

    assert EnvironmentProxies.from_environment().proxy_for("http://example.com/") == expected


# --- the recording client and the prober, through a real proxy ----------------------------------


def send_through_recording_client(url: str, **client_options) -> int:
    """One images call through a sync recording client; the captured exchange's status."""
    captured = []
    with recording_client(captured.append, **client_options) as client:
        client.post(url, json={"prompt": "via whom?", "model": "dall-e-3"}).read()
    [exchange] = captured
    return exchange.status


def probe_once(url: str) -> UrlState:
    async def run() -> UrlState:
        async with Prober(concurrency=1) as prober:
            return (await prober.probe(url)).state

    return asyncio.run(run())


@pytest.mark.parametrize(
    ("no_proxy", "proxied"),
    [
        ("", True),
        ("127.0.0.1", False),
        ("127.0.0.0/8", False),
        ("10.0.0.0/8", True),
        ("*", False),
        ("example.com, 127.0.0.1", False),
    ],
)
def test_recording_client_and_prober_read_no_proxy_alike(
    proxy, openai_api, host, monkeypatch, no_proxy, proxied
):
    monkeypatch.setenv("HTTP_PROXY", proxy.base_url)
    monkeypatch.setenv("NO_PROXY", no_proxy)
    images_url = f"{openai_api.v1}/images/generations"
    image_url = host.plain_url("live", "a.png")

    status = send_through_recording_client(images_url)
    state = probe_once(image_url)

    assert (status, state) == (200, UrlState.live)  # answered, by either route
    assert proxy.relayed == ([images_url, image_url] if proxied else [])
    assert [r.path for r in host.requests] == ["/live/a.png"]  # the host got the probe either way


def test_no_proxy_with_a_port_bypasses_only_that_port(proxy, openai_api, host, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", proxy.base_url)
    monkeypatch.setenv("NO_PROXY", openai_api.base_url.removeprefix("http://"))  # 127.0.0.1:port
    image_url = host.plain_url("live", "a.png")  # the same address, another port

    send_through_recording_client(f"{openai_api.v1}/images/generations")
    probe_once(image_url)

    assert proxy.relayed == [image_url]


def test_a_loopback_name_in_no_proxy_is_bypassed_by_name(proxy, host, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", proxy.base_url)
    monkeypatch.setenv("NO_PROXY", "localhost")
    by_name = host.plain_url("live", "a.png").replace("127.0.0.1", "localhost")
    by_address = host.plain_url("live", "b.png")

    assert probe_once(by_name) is UrlState.live
    assert probe_once(by_address) is UrlState.live
    assert proxy.relayed == [by_address]


def test_async_recording_client_goes_through_the_environments_proxy(proxy, openai_api, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", proxy.base_url)
    url = f"{openai_api.v1}/images/generations"
    captured = []

    async def send() -> None:
        async with async_recording_client(captured.append) as client:
            await (await client.post(url, json={"prompt": "async", "model": "dall-e-3"})).aread()

    asyncio.run(send())

    assert proxy.relayed == [url]
    assert [exchange.status for exchange in captured] == [200]


def test_an_explicit_proxy_wins_over_no_proxy(proxy, openai_api, monkeypatch):
    monkeypatch.setenv("NO_PROXY", "*")  # as in httpx: `proxy=` ignores the environment
    url = f"{openai_api.v1}/images/generations"

    assert send_through_recording_client(url, proxy=proxy.base_url) == 200

    assert proxy.relayed == [url]


def test_trust_env_false_ignores_the_environments_proxy(proxy, openai_api, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", proxy.base_url)

    assert send_through_recording_client(f"{openai_api.v1}/images/generations", trust_env=False)

    assert proxy.relayed == []


def test_mounts_given_by_the_caller_are_used_as_given(proxy, openai_api, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # would fail: nothing listens there
    mounts = {"all://": httpx.HTTPTransport(proxy=proxy.base_url)}
    captured = []

    with recording_client(captured.append, mounts=mounts) as client:
        assert client.get(f"{openai_api.v1}/models").status_code == 200

    assert proxy.relayed == [f"{openai_api.v1}/models"]


def test_a_download_through_the_proxy_keeps_its_one_deadline(proxy, image_host, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", proxy.base_url)
    url = image_host.url("/trickle-headers?interval=0.05&seconds=30")
    started = time.monotonic()

    with make_client() as client, pytest.raises(FetchError, match=r"slower than 1 s"):
        fetch_image(client, url, deadline_seconds=1.0)

    assert time.monotonic() - started < 1.5
    assert proxy.relayed == [url]
