"""Which proxy a request goes through, as the environment says, and a transport that follows it.

The recording client (`store.capture.transport`) wraps the transports the SDK would use, the
URL prober (`store.expiry.probe`) keeps its own small transport pools for speed, and the thumbnail
download (`store.media.fetch`) sends through the network guard's transports: none can use
`httpx.Client`'s proxy mounts, so all route through `ProxyRouter`, and `EnvironmentProxies` is
the one reading of the environment behind it. It lives here, in the lowest layer that talks
HTTP, because `store.expiry` must not import `store.capture`.

The variables, read through `urllib.request.getproxies` (the public reader httpx uses too, so
lower case wins over upper case): `HTTP_PROXY` for http URLs, `HTTPS_PROXY` for https ones,
`ALL_PROXY` for either when the scheme's own is unset; a proxy without a scheme is `http://`.
`NO_PROXY` is a comma-separated list read as curl documents it:

- `*`: no proxy for any URL;
- a name (`example.com`, `.example.com` or `*.example.com`): that host and all its subdomains;
- an address or a network (`10.1.2.3`, `::1`, `10.0.0.0/8`, `fd00::/8`): URLs whose host is an
  address in it (names are not resolved);
- any of these with `:port` (`example.com:8080`, `[::1]:8080`): only that port.

httpx's own reading differs at three edges, where this one follows curl (and the stdlib):
it ignores networks, `*.example.com`, and takes `.example.com` to exclude `example.com`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import threading
from collections.abc import Callable, Mapping
from typing import Any
from urllib.request import getproxies

import httpx

from store.media.deadline import time_left
from store.media.network_guard import PROXIED_LOOKUP_SECONDS, NetworkGuard

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
#: One NO_PROXY entry: a host name or a network, and the port it is limited to (None: any).
Exclusion = tuple[str | Network, int | None]

DEFAULT_PORTS = {"http": 80, "https": 443}


class EnvironmentProxies:
    """The proxy settings of the environment as they were when made; `proxy_for(url)` answers.

    Answers are kept per (scheme, host, port): the prober asks once per request.
    """

    def __init__(self, settings: Mapping[str, str]) -> None:
        """`settings`: scheme -> value, as `urllib.request.getproxies()` returns them."""
        self.proxies = {
            scheme: value if "://" in value else f"http://{value}"
            for scheme in ("http", "https", "all")
            if (value := settings.get(scheme, "").strip())
        }
        entries = [entry.strip() for entry in settings.get("no", "").split(",")]
        self.bypass_all = "*" in entries
        self.exclusions = [parse_exclusion(entry) for entry in entries if entry]
        self._answers: dict[tuple[str, str, int | None], str | None] = {}

    @classmethod
    def from_environment(cls) -> EnvironmentProxies:
        return cls(getproxies())

    def proxy_for(self, url: httpx.URL | str) -> str | None:
        """The proxy URL a request to `url` goes through, or None to go direct."""
        if not self.proxies or self.bypass_all:
            return None
        url = httpx.URL(url) if isinstance(url, str) else url
        key = (url.scheme, url.host, url.port)
        if key not in self._answers:
            proxy = self.proxies.get(url.scheme) or self.proxies.get("all")
            port = url.port or DEFAULT_PORTS.get(url.scheme)
            self._answers[key] = None if self.excluded(url.host, port) else proxy
        return self._answers[key]

    def excluded(self, host: str, port: int | None) -> bool:
        """Whether NO_PROXY names `host` (a name or an address, without brackets) on `port`."""
        host = host.lower().rstrip(".")
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            address = None
        for target, only_port in self.exclusions:
            if only_port is not None and only_port != port:
                continue
            if isinstance(target, str):
                if host == target or host.endswith(f".{target}"):
                    return True
            elif address is not None and address.version == target.version and address in target:
                return True
        return False


def parse_exclusion(entry: str) -> Exclusion:
    """One NO_PROXY entry as (name or network, port or None); see the module's docstring."""
    entry = entry.lower()
    host, port = entry, None
    if entry.startswith("["):  # [v6] or [v6]:port
        host, _, rest = entry[1:].partition("]")
        port = _port(rest.removeprefix(":"))
    elif entry.count(":") == 1:  # name:port or v4:port (a bare v6 address has several colons)
        name, _, digits = entry.partition(":")
        if (port := _port(digits)) is not None:
            host = name
    try:
        return ipaddress.ip_network(host, strict=False), port
    except ValueError:
        return host.removeprefix("*").lstrip(".").rstrip("."), port


def _port(text: str) -> int | None:
    return int(text) if text.isdigit() else None


class ProxyRouter(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Sends each request through the transport for its URL's proxy (or the direct one).

    `make(proxy)` makes that transport on first use: `httpx.HTTPTransport` for a sync client,
    `httpx.AsyncHTTPTransport` for an async one (one class serves both, as httpx's
    `MockTransport` does). This is what `httpx.Client` does with the environment's proxies,
    with `EnvironmentProxies` deciding.

    `guard`, for server-side fetches: a proxy resolves the target's host itself, so the direct
    transports' check of the connected address cannot see it; the target's host is checked
    here instead, before the request reaches the proxy (`NetworkGuard.check_proxied`).
    """

    def __init__(
        self,
        make: Callable[[str | None], Any],
        proxies: EnvironmentProxies | None = None,
        guard: NetworkGuard | None = None,
    ) -> None:
        self.proxies = proxies or EnvironmentProxies.from_environment()
        self.guard = guard
        self._make = make
        self._transports: dict[str | None, Any] = {}
        self._lock = threading.Lock()  # a sync client is shared by the caller's threads

    def transport_for(self, proxy: str | None) -> Any:
        """The transport for `proxy` (None: direct), made on first use."""
        if (transport := self._transports.get(proxy)) is None:
            with self._lock:
                if (transport := self._transports.get(proxy)) is None:
                    transport = self._transports[proxy] = self._make(proxy)
        return transport

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        proxy = self.proxies.proxy_for(request.url)
        if proxy is not None and self.guard is not None:
            self.guard.check_proxied(request.url.host, time_left(PROXIED_LOOKUP_SECONDS))
        return self.transport_for(proxy).handle_request(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        proxy = self.proxies.proxy_for(request.url)
        if proxy is not None and self.guard is not None:
            await self.guard.check_proxied_async(request.url.host)
        return await self.transport_for(proxy).handle_async_request(request)

    def close(self) -> None:
        for transport in self._transports.values():
            transport.close()

    async def aclose(self) -> None:
        await asyncio.gather(*(transport.aclose() for transport in self._transports.values()))
