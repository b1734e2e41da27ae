"""The probe against a real loopback host that honours real signed-URL shapes, and the answer
classification the thumbnail worker shares."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from store.expiry.probe import Prober, ProbeResult, interleave_by_host
from store.media.url_answers import classify_answer, url_state_for
from store.schema.models import UrlState

NOW = datetime.now(UTC)
HOUR = timedelta(hours=1)


def probe(*urls: str, **options: Any) -> list[ProbeResult]:
    """Probe `urls` the way `check_images` does (`Prober.probe_many` over (item, url) pairs
    interleaved by host); each result goes back to its URL's place by the item it came with."""

    async def pairs():
        for pair in interleave_by_host(list(enumerate(urls))):
            yield pair

    async def run() -> dict[int, ProbeResult]:
        async with Prober(**options) as prober:
            return {index: result async for index, result in prober.probe_many(pairs())}

    found = asyncio.run(run())
    return [found[index] for index in range(len(urls))]


# --- classify_answer: the plain function ------------------------------------------------------

AZURE_EXPIRED_BODY = (
    b'<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthenticationFailed</Code>'
    b"<Message>Server failed to authenticate the request.</Message></Error>"
)
S3_EXPIRED_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Request has expired</Message></Error>"
)
GCS_EXPIRED_BODY = (
    b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>ExpiredToken</Code>"
    b"<Message>Invalid argument.</Message></Error>"
)


@pytest.mark.parametrize(
    ("status", "headers", "body", "state", "code"),
    [
        (200, {}, b"\x89", UrlState.live, None),
        (206, {"Content-Range": "bytes 0-0/10"}, b"\x89", UrlState.live, None),
        (
            403,
            {"x-ms-error-code": "AuthenticationFailed"},
            AZURE_EXPIRED_BODY,
            UrlState.expired,
            "AuthenticationFailed",
        ),
        (
            403,
            {"X-Ms-Error-Code": "AuthorizationFailure"},
            b"",
            UrlState.expired,
            "AuthorizationFailure",
        ),
        (403, {}, S3_EXPIRED_BODY, UrlState.expired, "AccessDenied"),
        (404, {"x-ms-error-code": "BlobNotFound"}, b"", UrlState.expired, "BlobNotFound"),
        (410, {}, b"Gone", UrlState.expired, None),
        (400, {}, GCS_EXPIRED_BODY, UrlState.expired, "ExpiredToken"),
        (
            400,
            {},
            b"<Error><Code>InvalidArgument</Code></Error>",
            UrlState.unknown,
            "InvalidArgument",
        ),
        (429, {}, b"<Error><Code>SlowDown</Code></Error>", UrlState.unknown, "SlowDown"),
        (500, {"x-ms-error-code": "InternalError"}, b"", UrlState.unknown, "InternalError"),
        (503, {"x-ms-error-code": "ServerBusy"}, b"", UrlState.unknown, "ServerBusy"),
        (401, {}, b"", UrlState.unknown, None),
    ],
)
def test_an_answer_is_classified_by_status_and_the_hosts_error_code(
    status, headers, body, state, code
):
    assert classify_answer(status, headers, body) == (state, code)


@pytest.mark.parametrize(
    ("status", "code", "state"),
    [
        (None, None, UrlState.unknown),
        (206, None, UrlState.live),
        (404, None, UrlState.expired),
        (400, "ExpiredToken", UrlState.expired),
        (400, None, UrlState.unknown),
    ],
)
def test_a_status_and_error_code_alone_give_the_same_verdict(status, code, state):
    assert url_state_for(status, code) is state


# --- probes on the loopback host ---------------------------------------------------------------


def test_live_signed_urls_of_every_scheme_are_live(host):
    urls = [
        host.azure_url("a.png", expires_at=NOW + HOUR),
        host.azure_url("b.png", expires_at=NOW + HOUR, key_expires_at=NOW + 2 * HOUR),
        host.s3_url("c.png", signed_at=NOW),
        host.gcs_url("d.png", signed_at=NOW),
        host.plain_url("live", "e.png"),
    ]

    results = probe(*urls)

    assert [(r.state, r.http_status) for r in results] == [(UrlState.live, 206)] * len(urls)


def test_expired_signed_urls_get_each_providers_real_error(host):
    urls = [
        host.azure_url("a.png", expires_at=NOW - timedelta(seconds=1)),
        host.azure_url("b.png", expires_at=NOW + HOUR, key_expires_at=NOW - timedelta(seconds=1)),
        host.s3_url("c.png", signed_at=NOW - 2 * HOUR),
        host.gcs_url("d.png", signed_at=NOW - 2 * HOUR),
    ]

    results = probe(*urls)

    assert [(r.state, r.http_status, r.error_code) for r in results] == [
        (UrlState.expired, 403, "AuthenticationFailed"),
        (UrlState.expired, 403, "AuthenticationFailed"),
        (UrlState.expired, 403, "AccessDenied"),
        (UrlState.expired, 400, "ExpiredToken"),
    ]


def test_deleted_images_404_and_410_are_expired(host):
    results = probe(host.plain_url("gone", "a.png"), host.plain_url("removed", "b.png"))

    assert [(r.state, r.http_status) for r in results] == [
        (UrlState.expired, 404),
        (UrlState.expired, 410),
    ]


def test_the_probe_is_a_one_byte_range_get_so_get_only_hosts_are_live(host):
    s3_live = host.s3_url("c.png", signed_at=NOW)
    get_only = host.plain_url("get-only", "a.png")

    results = probe(s3_live, get_only)

    assert [r.state for r in results] == [UrlState.live, UrlState.live]
    assert {(r.method, r.headers.get("range")) for r in host.requests} == {("GET", "bytes=0-0")}


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("unavailable", 503, None),
        ("throttled", 429, "SlowDown"),
        ("reset", None, "RemoteProtocolError"),
        ("slow/3", None, "ReadTimeout"),
    ],
)
def test_a_flaky_host_is_unknown_never_expired(host, kind, status, code):
    url = host.plain_url(kind, "a.png")

    (result,) = probe(url, timeout=1.5)

    assert result.state is UrlState.unknown
    assert result.http_status == status
    assert (
        result.error_code in (code, "ReadError", "ConnectError")
        if kind == "reset"
        else result.error_code == code
    )


def test_redirects_are_followed_to_the_answer_that_counts(host):
    results = probe(
        host.plain_url("moved/live", "a.png"),
        host.plain_url("moved/gone", "b.png"),
        host.plain_url("loop", "c.png"),
    )

    assert [(r.state, r.http_status, r.error_code) for r in results] == [
        (UrlState.live, 206, None),
        (UrlState.expired, 404, None),
        (UrlState.unknown, None, "TooManyRedirects"),
    ]


def test_probes_go_through_the_environments_proxy(host, monkeypatch):
    # The signed host answers absolute-form requests too, so it can stand in for the proxy.
    monkeypatch.setenv("HTTP_PROXY", host.base_url)
    monkeypatch.setenv("NO_PROXY", "")

    (result,) = probe("http://images.unreachable.invalid/live/a.png")

    assert (result.state, result.http_status) == (UrlState.live, 206)
    assert [r.path for r in host.requests] == ["/live/a.png"]


def test_a_host_trickling_its_headers_is_unknown_at_the_deadline(image_host):
    # A header byte every 50 ms: no read ever times out, and the headers never end.
    url = image_host.url("/trickle-headers?interval=0.05&seconds=30")
    started = time.monotonic()

    (result,) = probe(url, timeout=0.5)  # each wait 0.5 s, the whole probe 1 s

    assert 1.0 <= time.monotonic() - started < 1.5
    assert (result.state, result.http_status, result.error_code) == (
        UrlState.unknown,
        None,
        "Timeout",
    )


def test_an_unreachable_host_is_unknown(host):
    (result,) = probe("http://127.0.0.1:9/closed-port.png", timeout=1)

    assert (result.state, result.http_status, result.error_code) == (
        UrlState.unknown,
        None,
        "ConnectError",
    )


def test_probes_per_host_never_exceed_the_per_host_limit(host):
    urls = [host.plain_url("slow/0.2", f"{index}.png") for index in range(12)]

    results = probe(*urls, concurrency=8, per_host=3)

    assert all(r.state is UrlState.live for r in results)
    assert host.max_in_flight["/slow/0.2"] == 3


def test_probes_never_exceed_the_overall_concurrency(host):
    urls = [host.plain_url("slow/0.2", f"{index}.png") for index in range(12)]

    results = probe(*urls, concurrency=4, per_host=16)

    assert all(r.state is UrlState.live for r in results)
    assert host.max_in_flight["/slow/0.2"] == 4


def test_each_result_comes_back_with_the_item_it_was_probed_for(host):
    urls = [host.plain_url("live", "a.png"), host.plain_url("gone", "b.png")] * 20

    results = probe(*urls, concurrency=7)

    assert [r.state for r in results] == [UrlState.live, UrlState.expired] * 20


def test_hosts_are_interleaved_so_one_backlog_does_not_block_the_others():
    items = [
        (1, "https://a.example/1"),
        (2, "https://a.example/2"),
        (3, "https://a.example/3"),
        (4, "https://b.example/1"),
        (5, "https://c.example/1"),
    ]

    assert [item for item, _ in interleave_by_host(items)] == [1, 4, 5, 2, 3]


def test_a_failing_source_of_urls_raises_instead_of_ending_the_run_short(host):
    async def urls():
        yield 1, host.plain_url("live", "a.png")
        raise RuntimeError("database went away")

    async def run() -> list:
        async with Prober(concurrency=2) as prober:
            return [result async for result in prober.probe_many(urls())]

    with pytest.raises(RuntimeError, match="database went away"):
        asyncio.run(run())


def test_a_prober_refuses_nonsense_limits():
    with pytest.raises(ValueError):
        Prober(concurrency=0)
