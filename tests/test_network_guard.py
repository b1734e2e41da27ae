"""The network guard: server-side fetches (thumbnail downloads, URL probes, `check`, the recorder's
thumbnails) refuse every address that is not public unless it is opted in, before connecting,
on every redirect hop and through a proxy; a refused URL is never requested and never expired.

The session opts loopback in for the stand-in hosts (tests/conftest.py); these tests drop that
opt-in. Only loopback stand-ins ever receive traffic: other addresses are refused by address,
and `connects()` (Python's `socket.connect` audit event) shows that no socket even tried them.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import select

from store import Recorder
from store.cli import main
from store.expiry import CheckOptions, check_images
from store.expiry.probe import Prober, ProbeResult
from store.media.fetch import FetchError, fetch_image, make_client
from store.media.network_guard import (
    ALLOWED_NETWORKS_ENV,
    REFUSED_ADDRESS,
    NetworkGuard,
    allowed_networks_from_environment,
    refusal_reason,
)
from store.schema.models import IMAGES, UrlState
from store.schema.records import CallRecord, ImageRecord
from tests.standins import image_host as image_host_routes
from tests.standins.server import LoopbackServer
from tests.test_check import add_images, rows_by_id

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")

# --- the socket.connect audit event, recorded while a test asks ---------------------------------

_RECORDING: list[list[Any]] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "socket.connect" and _RECORDING:
        _RECORDING[-1].append(args[1])


sys.addaudithook(_audit)  # hooks stay for the process: it records only inside `connects()`


@contextmanager
def connects() -> Iterator[list[Any]]:
    """Every address a socket of this process tried to connect to inside the block."""
    seen: list[Any] = []
    _RECORDING.append(seen)
    try:
        yield seen
    finally:
        _RECORDING.remove(seen)


@pytest.fixture(autouse=True)
def no_opt_in(monkeypatch) -> None:
    """No allowed networks and no proxy: each test opts in (or proxies) only what it says."""
    monkeypatch.delenv(ALLOWED_NETWORKS_ENV)
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


def probe(url: str, **options: Any) -> ProbeResult:
    async def run() -> ProbeResult:
        async with Prober(concurrency=1, **options) as prober:
            return await prober.probe(url)

    return asyncio.run(run())


def fetch(url: str, **options: Any) -> FetchError:
    """The error a download of `url` by the thumbnail client (`make_client(**options)`) raises."""
    with make_client(**options) as client, pytest.raises(FetchError) as raised:
        fetch_image(client, url)
    return raised.value


# --- the rules ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "a loopback address"),
        ("127.255.0.9", "a loopback address"),
        ("::1", "a loopback address"),
        ("0.0.0.0", "an unspecified address"),
        ("0.1.2.3", "an unspecified address"),
        ("::", "an unspecified address"),
        ("10.0.0.5", "a private address"),
        ("172.16.0.1", "a private address"),
        ("172.31.255.254", "a private address"),
        ("192.168.1.1", "a private address"),
        ("fd12:3456::1", "a private address"),
        ("fc00::1", "a private address"),
        ("100.64.0.1", "a shared (carrier-grade NAT) address"),
        ("169.254.169.254", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("fec0::1", "a site-local address"),
        ("224.0.0.1", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("ff0e::1", "a multicast address"),
        ("255.255.255.255", "a reserved address"),
        ("240.0.0.1", "a reserved address"),
        ("192.0.2.1", "a reserved address"),
        ("198.18.0.1", "a reserved address"),
        ("2001:db8::1", "a reserved address"),
        ("::ffff:127.0.0.1", "an IPv4-mapped address for 127.0.0.1, a loopback address"),
        ("::ffff:8.8.8.8", "an IPv4-mapped address for 8.8.8.8"),
        ("::7f00:1", "an IPv4-compatible address for 127.0.0.1, a loopback address"),
        ("2002:a00:5::1", "a 6to4 address for 10.0.0.5, a private address"),
        ("2002:a9fe:a9fe::1", "a 6to4 address for 169.254.169.254, a link-local address"),
        ("64:ff9b::a00:5", "a NAT64 address for 10.0.0.5, a private address"),
        ("64:ff9b:1::1", "a local-use NAT64 address"),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "a Teredo tunnel address for 192.0.2.45"),
    ],
)
def test_every_address_that_is_not_public_is_refused_with_its_kind(address, reason):
    assert (refusal_reason(ipaddress.ip_address(address)) or "").startswith(reason)


#: Public addresses, and the 6to4 and NAT64 forms of a public IPv4 address.
PUBLIC = ["93.184.216.34", "8.8.8.8", "172.32.0.1", "2606:4700::1111"]
PUBLIC_WRAPPED = ["2002:5db8:d822::1", "64:ff9b::5db8:d822"]


@pytest.mark.parametrize("address", PUBLIC + PUBLIC_WRAPPED)
def test_public_addresses_and_their_ipv6_forms_may_be_fetched(address):
    assert refusal_reason(ipaddress.ip_address(address)) is None


def test_an_allowed_network_lets_its_addresses_through_and_no_others():
    guard = NetworkGuard.configured("127.0.0.2/32, 10.20.0.0/16")

    assert guard.refusal(ipaddress.ip_address("127.0.0.2")) is None
    assert guard.refusal(ipaddress.ip_address("10.20.3.4")) is None
    assert guard.refusal(ipaddress.ip_address("127.0.0.1")) == "a loopback address"
    assert guard.refusal(ipaddress.ip_address("10.21.0.1")) == "a private address"


def test_the_opt_in_is_read_from_the_environment(monkeypatch):
    monkeypatch.setenv(ALLOWED_NETWORKS_ENV, "127.0.0.0/8,::1/128, 10.20.0.0/16,")

    assert [str(network) for network in allowed_networks_from_environment()] == [
        "127.0.0.0/8",
        "::1/128",
        "10.20.0.0/16",
    ]


@pytest.mark.parametrize("value", ["127.0.0.0/8,localhost", "10.0.0.0/33", "10.0.0.0/8;::1"])
def test_a_bad_network_in_the_environment_is_a_clear_error(monkeypatch, tmp_path, value):
    monkeypatch.setenv(ALLOWED_NETWORKS_ENV, value)

    with pytest.raises(ValueError, match=rf"^{ALLOWED_NETWORKS_ENV}: '.+' is not a network"):
        allowed_networks_from_environment()
    with pytest.raises(ValueError, match=ALLOWED_NETWORKS_ENV):
        Recorder(f"sqlite:///{tmp_path / 'log.db'}", spool_path=tmp_path / "spool.jsonl")


def test_allowed_networks_given_replace_the_environment(monkeypatch, image_host):
    monkeypatch.setenv(ALLOWED_NETWORKS_ENV, "127.0.0.0/8")
    seen = len(image_host.requests)

    error = fetch(image_host.url("/img/a.png?w=8&h=8"), allowed_networks=[])

    assert error.error_code == REFUSED_ADDRESS
    assert len(image_host.requests) == seen


# --- refused before connecting: loopback spellings against a stand-in that counts -------------

LOOPBACK_SPELLINGS = [
    ("127.0.0.1", "127.0.0.1 is a loopback address"),
    ("localhost", "localhost resolves to 127.0.0.1, a loopback address"),
    ("0x7f000001", "0x7f000001 resolves to 127.0.0.1, a loopback address"),
    ("2130706433", "2130706433 resolves to 127.0.0.1, a loopback address"),
    ("017700000001", "017700000001 resolves to 127.0.0.1, a loopback address"),
    ("127.1", "127.1 resolves to 127.0.0.1, a loopback address"),
    ("[::1]", "::1 is a loopback address"),
    (
        "[::ffff:127.0.0.1]",
        "::ffff:127.0.0.1 is an IPv4-mapped address for 127.0.0.1, a loopback address",
    ),
]


def _spelt(url: str, host: str) -> str:
    return url.replace("127.0.0.1", host, 1)


@pytest.mark.parametrize(("host", "message"), LOOPBACK_SPELLINGS)
def test_a_download_from_loopback_however_spelt_is_refused_unrequested(image_host, host, message):
    url = _spelt(image_host.url("/img/a.png?w=8&h=8"), host)
    seen = len(image_host.requests)

    with connects() as tried:
        error = fetch(url)

    assert str(error) == f"refused: {message}; allow it with {ALLOWED_NETWORKS_ENV}"
    assert (error.error_code, error.status, error.url_state) == (
        REFUSED_ADDRESS,
        None,
        UrlState.unknown,
    )
    assert len(image_host.requests) == seen
    assert tried == []


@pytest.mark.parametrize(("host", "message"), LOOPBACK_SPELLINGS)
def test_a_probe_of_loopback_however_spelt_is_refused_unrequested(image_host, host, message):
    url = _spelt(image_host.url("/img/a.png?w=8&h=8"), host)
    seen = len(image_host.requests)

    with connects() as tried:
        result = probe(url)

    assert (result.state, result.http_status, result.error_code) == (
        UrlState.unknown,
        None,
        REFUSED_ADDRESS,
    )
    assert len(image_host.requests) == seen
    assert tried == []


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://10.0.0.5/a.png",
        "http://192.168.1.1/a.png",
        "http://172.16.0.1/a.png",
        "https://100.64.0.1/a.png",
        "http://0.0.0.0/a.png",
        "http://[fd00::1]/a.png",
        "http://[fe80::1]/a.png",
        "http://[::ffff:169.254.169.254]/a.png",
        "http://[2002:a9fe:a9fe::1]/a.png",
    ],
)
def test_private_and_metadata_addresses_are_refused_without_a_connection_attempt(url):
    with connects() as tried:
        error = fetch(url)
        result = probe(url)

    assert str(error).startswith("refused: ") and error.error_code == REFUSED_ADDRESS
    assert (result.state, result.error_code) == (UrlState.unknown, REFUSED_ADDRESS)
    assert tried == []


def test_a_name_is_looked_up_once_and_the_checked_address_is_the_one_connected(
    image_host, monkeypatch
):
    # A rebinding name server: the allowed address first, a refused one on every later lookup
    # (another loopback address, so a guard that looked up twice would send nothing off the
    # machine, and would fail here).
    lookups: list[str] = []
    real_getaddrinfo = socket.getaddrinfo

    def rebinding(host, port, *args, **kwargs):
        if host != "rebind.test":
            return real_getaddrinfo(host, port, *args, **kwargs)
        lookups.append(host)
        address = "127.0.0.1" if len(lookups) == 1 else "127.0.0.3"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    url = _spelt(image_host.url("/img/a.png?w=8&h=8"), "rebind.test")
    port = int(url.split(":")[2].split("/")[0])

    with connects() as tried, make_client(allowed_networks="127.0.0.1/32") as client:
        fetched = fetch_image(client, url)

    assert fetched.status == 200
    assert lookups == ["rebind.test"]
    assert tried == [("127.0.0.1", port)]
    assert image_host.requests[-1].headers["host"] == f"rebind.test:{port}"  # Host kept


# --- redirects: every hop is checked -------------------------------------------------------------


@pytest.fixture(scope="module")
def redirector() -> Iterator[LoopbackServer]:
    """The image host's routes on 127.0.0.2: the one address these tests opt in."""
    with LoopbackServer(image_host_routes.route, address="127.0.0.2") as server:
        yield server


ONLY_THE_REDIRECTOR = "127.0.0.2/32"


@pytest.mark.parametrize("target", ["loopback", "metadata"])
def test_a_redirect_to_a_refused_address_is_refused_on_that_hop(redirector, image_host, target):
    to = {
        "loopback": image_host.url("/img/a.png?w=8&h=8"),  # 127.0.0.1: not opted in
        "metadata": "http://169.254.169.254/latest/meta-data/",
    }[target]
    url = redirector.url("/redirect") + "?to=" + to.replace("?", "%3F").replace("&", "%26")
    seen_redirector, seen_host = len(redirector.requests), len(image_host.requests)

    with connects() as tried:
        error = fetch(url, allowed_networks=ONLY_THE_REDIRECTOR)
        result = probe(url, allowed_networks=ONLY_THE_REDIRECTOR)

    assert str(error).startswith("refused: ") and error.error_code == REFUSED_ADDRESS
    assert error.url_state is UrlState.unknown
    assert (result.state, result.error_code) == (UrlState.unknown, REFUSED_ADDRESS)
    assert len(redirector.requests) == seen_redirector + 2  # each asked the redirector once
    assert len(image_host.requests) == seen_host  # and never followed it
    assert {address[0] for address in tried} == {"127.0.0.2"}


def test_a_redirect_within_the_allowed_networks_is_followed(redirector):
    url = redirector.url("/redirect?to=/img/a.png%3Fw%3D8%26h%3D8")

    with make_client(allowed_networks=ONLY_THE_REDIRECTOR) as client:
        assert fetch_image(client, url).status == 200
    assert probe(url, allowed_networks=ONLY_THE_REDIRECTOR).state is UrlState.live


# --- through a proxy: the target's host is checked before the proxy gets it ----------------------


def test_through_a_proxy_a_refused_target_never_reaches_the_proxy(host, monkeypatch):
    # The signed host answers absolute-form requests itself, so it stands in for the proxy: the
    # connection to the proxy (on loopback, not opted in) is the user's choice and goes ahead.
    monkeypatch.setenv("HTTP_PROXY", host.base_url)
    refused = _spelt(host.plain_url("live", "a.png"), "localhost")
    passed = "http://images.unreachable.invalid/live/b.png"  # resolved by the proxy alone

    assert fetch(refused).error_code == REFUSED_ADDRESS
    assert probe(refused).error_code == REFUSED_ADDRESS
    assert probe("http://10.0.0.5/live/c.png").error_code == REFUSED_ADDRESS
    assert host.requests == []
    assert probe(passed).state is UrlState.live
    with make_client() as client:
        assert fetch_image(client, passed).status == 200
    assert [request.path for request in host.requests] == ["/live/b.png", "/live/b.png"]


# --- what the log records ------------------------------------------------------------------------


def image_rows(engine, generation_id: str) -> list[Any]:
    query = (
        select(IMAGES).where(IMAGES.c.generation_id == generation_id).order_by(IMAGES.c.position)
    )
    with engine.connect() as connection:
        return list(connection.execute(query))


def test_the_recorder_records_why_a_private_image_url_was_not_downloaded(
    db_url, tmp_path, image_host
):
    seen = len(image_host.requests)
    recorder = Recorder(db_url, spool_path=tmp_path / "spool.jsonl", allowed_networks=[])
    record = CallRecord(
        provider="p",
        images=[
            ImageRecord(url="http://10.0.0.5/generated/a.png"),
            ImageRecord(url=image_host.url("/img/b.png?w=8&h=8")),
        ],
    )
    try:
        recorder.record(record)
        assert recorder.flush(timeout=30)
        rows = image_rows(recorder.engine, record.id)
    finally:
        recorder.close(timeout=30)

    assert [row.thumbnail_error for row in rows] == [
        "refused: 10.0.0.5 is a private address; allow it with IMAGELOG_ALLOWED_NETWORKS",
        "refused: 127.0.0.1 is a loopback address; allow it with IMAGELOG_ALLOWED_NETWORKS",
    ]
    assert [(row.url_state, row.last_error_code) for row in rows] == [
        (UrlState.unknown, REFUSED_ADDRESS),
        (UrlState.unknown, REFUSED_ADDRESS),
    ]
    assert all(row.thumbnail is None and row.last_http_status is None for row in rows)
    assert len(image_host.requests) == seen


def test_check_keeps_a_refused_url_unknown_and_says_why(engine, host):
    [image_id] = add_images(engine, host.plain_url("gone", "a.png"))  # would answer 404

    summary = check_images(engine, CheckOptions(mode="all"))

    [row] = rows_by_id(engine, [image_id])
    assert (row.url_state, row.last_error_code, row.last_http_status) == (
        UrlState.unknown,
        REFUSED_ADDRESS,
        None,
    )
    assert host.requests == []
    assert (summary.refused, summary.errors) == (1, 0)
    assert "1 refused by the network guard" in summary.describe()


def test_the_check_and_thumbnails_commands_read_the_opt_in(
    engine, db_url, host, monkeypatch, capsys
):
    [image_id] = add_images(engine, host.plain_url("live", "a.png"))

    assert main(["--database-url", db_url, "check", "--all", "--no-progress"]) == 0
    assert "1 refused by the network guard" in capsys.readouterr().out
    assert main(["--database-url", db_url, "thumbnails", "--no-progress"]) == 0
    assert "1 failed" in capsys.readouterr().out
    assert host.requests == []

    monkeypatch.setenv(ALLOWED_NETWORKS_ENV, "127.0.0.0/8")
    assert main(["--database-url", db_url, "check", "--all", "--no-progress"]) == 0
    [row] = rows_by_id(engine, [image_id])
    assert row.url_state == UrlState.live and row.thumbnail is not None

    monkeypatch.setenv(ALLOWED_NETWORKS_ENV, "127.0.0.0/8,loopback")
    for command in ("check", "thumbnails"):
        with pytest.raises(SystemExit) as exited:
            main(["--database-url", db_url, command, "--no-progress"])
        assert str(exited.value) == (
            f"imagelog {command}: {ALLOWED_NETWORKS_ENV}: 'loopback' is not a network: write "
            "addresses or CIDR networks, comma-separated, e.g. 127.0.0.0/8,::1/128,10.20.0.0/16"
        )
