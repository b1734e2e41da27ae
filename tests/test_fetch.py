"""Downloads from the loopback image host: the bytes of a good answer, and for every other
answer a FetchError that says what happened and what it proves about the URL."""

from __future__ import annotations

import time

import httpx
import pytest

from store.media.fetch import FetchError, fetch_image, make_client
from store.schema.models import UrlState
from tests.standins.image_host import draw_image


@pytest.fixture
def client():
    with make_client() as client:
        yield client


def test_fetch_returns_the_bytes_and_content_type(client, image_host):
    url = image_host.url("/img/fetch.jpg?w=300&h=200")

    fetched = fetch_image(client, url)

    assert fetched.data == draw_image(300, 200, "jpg")
    assert (fetched.status, fetched.content_type) == (200, "image/jpeg")


def test_fetch_follows_a_redirect(client, image_host):
    url = image_host.url("/redirect?to=/img/moved.png%3Fw%3D50%26h%3D50")

    fetched = fetch_image(client, url)

    assert fetched.data == draw_image(50, 50, "png")


@pytest.mark.parametrize(
    ("path", "status", "code", "state"),
    [
        ("/status/403?style=azure", 403, "AuthenticationFailed", UrlState.expired),
        ("/status/404?style=azure", 404, "BlobNotFound", UrlState.expired),
        ("/status/403?style=s3", 403, "AccessDenied", UrlState.expired),
        ("/status/400?style=s3", 400, "ExpiredToken", UrlState.expired),
        ("/status/410?style=plain", 410, None, UrlState.expired),
        ("/status/503?style=azure", 503, "ServerBusy", UrlState.unknown),
        ("/status/429?style=plain", 429, None, UrlState.unknown),
    ],
)
def test_fetch_error_carries_the_status_the_hosts_code_and_what_it_proves(
    client, image_host, path, status, code, state
):
    with pytest.raises(FetchError) as raised:
        fetch_image(client, image_host.url(path))

    assert (raised.value.status, raised.value.error_code) == (status, code)
    assert raised.value.url_state is state
    assert str(raised.value).startswith(f"HTTP {status}")


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/a.png", "data:,x"])
def test_fetch_refuses_urls_that_are_not_http(client, url):
    with pytest.raises(FetchError, match="refused URL scheme"):
        fetch_image(client, url)


def test_fetch_refuses_a_declared_size_over_the_limit_without_reading_it(client, image_host):
    url = image_host.url("/big?bytes=5000000&declare=1")

    with pytest.raises(FetchError, match="Content-Length 5000000 is over the 1000000 byte limit"):
        fetch_image(client, url, max_bytes=1_000_000)


def test_fetch_stops_an_undeclared_download_at_the_limit(client, image_host):
    url = image_host.url("/big?bytes=5000000")

    with pytest.raises(FetchError, match="download stopped: over the 1000000 byte limit"):
        fetch_image(client, url, max_bytes=1_000_000)


def test_fetch_of_a_stalled_host_times_out(image_host):
    with (
        httpx.Client(timeout=httpx.Timeout(5.0, read=0.3)) as client,
        pytest.raises(FetchError, match="timed out") as raised,
    ):
        fetch_image(client, image_host.url("/slow?seconds=3"))

    assert (raised.value.status, raised.value.url_state) == (None, UrlState.unknown)


def test_fetch_of_a_trickling_host_stops_at_the_deadline(client, image_host):
    url = image_host.url("/trickle?bytes=200&interval=0.05")

    with pytest.raises(FetchError, match=r"slower than 0\.3 s"):
        fetch_image(client, url, deadline_seconds=0.3)


def test_fetch_of_a_host_trickling_its_headers_stops_at_the_deadline(client, image_host):
    # A header byte every 50 ms: no read ever times out, and the headers never end.
    url = image_host.url("/trickle-headers?interval=0.05&seconds=30")
    started = time.monotonic()

    with pytest.raises(FetchError, match=r"slower than 1 s") as raised:
        fetch_image(client, url, deadline_seconds=1.0)

    assert 1.0 <= time.monotonic() - started < 1.5
    assert (raised.value.status, raised.value.url_state) == (None, UrlState.unknown)
    assert raised.value.error_code == "Timeout"


def test_a_fetchs_deadline_ends_with_it(client, image_host):
    with pytest.raises(FetchError, match="slower than"):
        fetch_image(
            client, image_host.url("/trickle?bytes=200&interval=0.05"), deadline_seconds=0.3
        )
    time.sleep(0.3)

    fetched = fetch_image(client, image_host.url("/img/again.png?w=8&h=8"), deadline_seconds=5)

    assert fetched.data == draw_image(8, 8, "png")


def test_fetch_of_a_reset_connection_is_a_fetch_error_without_status(client, image_host):
    with pytest.raises(FetchError, match="download failed") as raised:
        fetch_image(client, image_host.url("/reset"))

    assert (raised.value.status, raised.value.url_state) == (None, UrlState.unknown)
    assert raised.value.error_code in ("RemoteProtocolError", "ReadError", "ConnectError")
