"""Download an image's bytes from wherever its URL points, treating the host as hostile.

An image URL can point anywhere, so a download is bounded every way it can run away: only
http/https, only to public addresses or the networks opted in (`store.media.network_guard`,
checked on the address connected to and on every redirect), connect/read timeouts plus one
deadline over the whole fetch (connect, headers and body: a host trickling one byte at a time
defeats a read timeout alone; `store.media.deadline`), and a hard cap on the bytes while they
stream. A failed download still says something about its URL: `FetchError` carries the status
and the host's error code, classified as the URL probe classifies its answers
(`store.media.url_answers`).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from store.media.deadline import DeadlineExceeded, deadline, time_left
from store.media.guarded_transport import guarded_transport
from store.media.network_guard import (
    REFUSED_ADDRESS,
    AddressRefused,
    AllowedNetworks,
    NetworkGuard,
)
from store.media.proxies import ProxyRouter
from store.media.url_answers import ERROR_BODY_BYTES, classify_answer, classify_failure
from store.schema.models import UrlState

#: A full-size PNG of a 4096x4096 render is ~30 MB; anything larger is not a generated image.
DEFAULT_MAX_BYTES = 40 * 1024 * 1024
#: Connect fast or give up (the URL is probed again later); reads may be slow on a big PNG.
DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=20.0, write=10.0, pool=10.0)
#: The whole download (connect, headers and body), however the bytes trickle in.
DEFAULT_DEADLINE_SECONDS = 60.0
#: Connections the shared client keeps (httpx's own defaults).
CLIENT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)


class FetchError(Exception):
    """A download that did not yield the image's bytes.

    `status` is the HTTP status when the host answered (None for timeouts, resets and refused
    URLs); `error_code` is the host's own code when it gave one (Azure `x-ms-error-code`,
    S3/GCS XML `<Code>`), else the failure's name (`refused-address` when the network guard
    refused the host: it was never requested); `url_state` is what the answer proves about the
    URL, classified exactly as the URL probe does (only a definite answer is `expired`).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_code: str | None = None,
        url_state: UrlState = UrlState.unknown,
    ):
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.url_state = url_state


@dataclass(frozen=True)
class FetchedImage:
    """A 200 answer's bytes, read to the end within the limits."""

    url: str
    status: int
    content_type: str | None
    data: bytes


def make_client(
    timeout: httpx.Timeout = DEFAULT_TIMEOUT, *, allowed_networks: AllowedNetworks = None
) -> httpx.Client:
    """The client the worker downloads with: timeouts set, redirects followed (CDNs redirect),
    every connection checked by the network guard (`allowed_networks`, default
    `IMAGELOG_ALLOWED_NETWORKS`) and bounded by `fetch_image`'s deadline, proxies as the
    environment says (read by `ProxyRouter`, so httpx's own reading is off)."""
    guard = NetworkGuard.configured(allowed_networks)
    ssl_context = httpx.create_ssl_context()

    def make(proxy: str | None) -> httpx.BaseTransport:
        return guarded_transport(guard, proxy, ssl_context=ssl_context, limits=CLIENT_LIMITS)

    return httpx.Client(
        transport=ProxyRouter(make, guard=guard),
        trust_env=False,
        timeout=timeout,
        follow_redirects=True,
        max_redirects=5,
    )


def fetch_image(
    client: httpx.Client,
    url: str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    deadline_seconds: float = DEFAULT_DEADLINE_SECONDS,
) -> FetchedImage:
    """GET `url` and return its bytes, never more than `max_bytes` and within `deadline_seconds`
    from the first connect to the last byte; raises FetchError otherwise.

    The deadline bounds every wait of `make_client()`'s transports; a client of another kind is
    stopped between chunks of the body only.
    """
    scheme = urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise FetchError(f"refused URL scheme {scheme or '(none)'!r}: only http and https")
    try:
        with deadline(deadline_seconds), client.stream("GET", url) as response:
            if response.status_code != 200:
                raise _error_from(response)
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise FetchError(
                    f"download refused: Content-Length {declared} "
                    f"is over the {max_bytes} byte limit",
                    status=response.status_code,
                )
            chunks: list[bytes] = []
            received = 0
            for chunk in response.iter_bytes():
                received += len(chunk)
                if received > max_bytes:
                    raise FetchError(
                        f"download stopped: over the {max_bytes} byte limit",
                        status=response.status_code,
                    )
                time_left(None)  # raises once the deadline has passed, whatever the client
                chunks.append(chunk)
            return FetchedImage(
                url=url,
                status=response.status_code,
                content_type=response.headers.get("content-type"),
                data=b"".join(chunks),
            )
    except AddressRefused as exc:
        raise FetchError(str(exc), error_code=REFUSED_ADDRESS) from exc
    except DeadlineExceeded as exc:
        raise FetchError(
            f"download stopped: slower than {deadline_seconds:g} s (connect, headers and body)",
            error_code=classify_failure(exc),
        ) from exc
    except httpx.TimeoutException as exc:
        raise FetchError(
            f"timed out ({type(exc).__name__})", error_code=classify_failure(exc)
        ) from exc
    except httpx.HTTPError as exc:  # resets, refused connections, broken chunking, redirects
        raise FetchError(
            f"download failed: {type(exc).__name__}: {exc}", error_code=classify_failure(exc)
        ) from exc


def _error_from(response: httpx.Response) -> FetchError:
    """A FetchError for a non-200 answer, classified as the URL probe classifies its answers."""
    # Read a bounded piece of the body even when a header has the code: an error body read to
    # its end lets the connection be reused instead of reset.
    body = b""
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) >= ERROR_BODY_BYTES:
            break
    state, code = classify_answer(response.status_code, response.headers, body[:ERROR_BODY_BYTES])
    detail = f" {code}" if code else ""
    return FetchError(
        f"HTTP {response.status_code}{detail} from {response.url.host}",
        status=response.status_code,
        error_code=code,
        url_state=state,
    )
