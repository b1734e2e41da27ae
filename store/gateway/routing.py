"""Where a request goes: one of the configured upstreams, chosen from its path and headers, and
the headers it carries there and back.

The request chooses among configured upstreams only; its own `Host`, an absolute URL in its
request line or a path like `//evil.example/x` never change the host it is sent to: the
upstream URL's scheme, host and port are kept and only the path and query are the caller's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import httpx

from store.gateway.config import GatewayConfig

#: The header that picks a named route, as `/routes/NAME/...` does; used up by the gateway.
ROUTE_HEADER = "x-imagelog-route"
ROUTES_PREFIX = b"/routes/"
#: Hop-by-hop headers (RFC 9110 7.6.1), which concern one connection and are never forwarded,
#: and what the gateway recomputes itself (`host` from the upstream URL, `content-length` from
#: the body, `expect` because the body is already in hand).
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
_NOT_FORWARDED = HOP_BY_HOP | {"host", "content-length", "expect", ROUTE_HEADER}
_PORTKEY_PREFIX = b"x-portkey-"


class UnknownRoute(LookupError):
    """The request names a route the configuration does not have."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        names = ", ".join(sorted(known)) or "none"
        super().__init__(f"no route named {name!r} is configured (configured routes: {names})")


@dataclass(frozen=True)
class Target:
    """The upstream a request goes to, under a name for messages ("default", "portkey", or
    "route azure")."""

    name: str
    url: httpx.URL


@dataclass(frozen=True)
class Upstreams:
    """The configured upstreams, parsed once."""

    default: httpx.URL
    portkey: httpx.URL
    routes: Mapping[str, httpx.URL]

    @classmethod
    def from_config(cls, config: GatewayConfig) -> Upstreams:
        return cls(
            httpx.URL(config.upstream),
            httpx.URL(config.portkey_upstream),
            {name: httpx.URL(url) for name, url in config.routes.items()},
        )

    def target(
        self, raw_path: bytes, query: bytes, headers: Iterable[tuple[bytes, bytes]]
    ) -> Target:
        """The upstream URL for a request (raw path and query as received, lower-case header
        names); UnknownRoute when it names a route that is not configured."""
        name, base = "default", self.default
        if raw_path.startswith(ROUTES_PREFIX):
            route, slash, rest = raw_path[len(ROUTES_PREFIX) :].partition(b"/")
            name, base = self._route(route.decode("latin-1"))
            raw_path = slash + rest
        else:
            route_header = b""
            portkey = False
            for key, value in headers:
                if key == ROUTE_HEADER.encode():
                    route_header = value
                elif key.startswith(_PORTKEY_PREFIX):
                    portkey = True
            if route_header:
                name, base = self._route(route_header.decode("latin-1").strip())
            elif portkey:
                name, base = "portkey", self.portkey
        path = base.raw_path.rstrip(b"/") + (raw_path or b"/")
        return Target(name, base.copy_with(raw_path=path + (b"?" + query if query else b"")))

    def _route(self, name: str) -> tuple[str, httpx.URL]:
        if name not in self.routes:
            raise UnknownRoute(name, self.routes)
        return f"route {name}", self.routes[name]


def forwarded_headers(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The caller's headers as they go upstream: all but the hop-by-hop ones (and those the
    `Connection` header names), `host`, `content-length`, `expect` and the route header.
    Keys go on to the upstream; the recorder drops them before anything is stored."""
    pairs = list(headers)
    dropped = _NOT_FORWARDED | _connection_names(pairs)
    return [(key, value) for key, value in pairs if key.decode("latin-1").lower() not in dropped]


def returned_headers(headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The upstream's response headers as they go back to the caller: all but the hop-by-hop
    ones. `content-length` and `content-encoding` stay, since the body goes back byte for byte
    as the upstream encoded it."""
    pairs = list(headers)
    dropped = HOP_BY_HOP | _connection_names(pairs)
    return [(key, value) for key, value in pairs if key.decode("latin-1").lower() not in dropped]


def _connection_names(pairs: Iterable[tuple[bytes, bytes]]) -> frozenset[str]:
    """The header names a `Connection` header lists: hop-by-hop for this connection only."""
    return frozenset(
        name.strip().lower()
        for key, value in pairs
        if key.lower() == b"connection"
        for name in value.decode("latin-1").split(",")
    )
