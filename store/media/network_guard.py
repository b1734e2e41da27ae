"""Which addresses a server-side fetch may connect to: public ones, and the networks opted in.

A logged image URL comes from whoever made the call, an import or a gateway, so it is anyone's
URL. Fetching it from the server (a thumbnail, a URL probe) must not turn the log into a way to
reach what only the server can reach: its own loopback, the private network around it, or the
cloud metadata service at 169.254.169.254. So a fetch connects only to public addresses, and
refuses (before any packet is sent) every address that is:

- loopback (127.0.0.0/8, ::1), unspecified (0.0.0.0/8, ::; 0.0.0.0 reaches the local host);
- private (10/8, 172.16/12, 192.168/16, IPv6 ULA fc00::/7), shared CGNAT space (100.64/10);
- link-local (169.254/16 with the cloud metadata service, fe80::/10), site-local (fec0::/10);
- multicast (224/4, ff00::/8), broadcast, reserved or documentation space, and any other
  address Python's `ipaddress` does not call global;
- an IPv4 address wrapped in IPv6: IPv4-mapped (::ffff:127.0.0.1) and IPv4-compatible (::7f00:1)
  forms, always; 6to4 (2002::/16) and NAT64 (64:ff9b::/96) forms when the IPv4 address inside
  is refused; Teredo (2001::/32) and local-use NAT64 (64:ff9b:1::/48), always.

The numeric tricks (`0x7f000001`, `2130706433`, `017700000001`, `127.1`) need no rule of their
own: the check runs on the address a host *resolves to*, as the system resolver reads it, and
those all resolve to 127.0.0.1. The transports (`store.media.guarded_transport`) resolve the
host, check every address here, and connect to a checked address itself, so no second lookup
can answer differently (DNS rebinding); a redirect is a new connection and is checked the same.

The opt-in is `IMAGELOG_ALLOWED_NETWORKS`, a comma-separated list of networks
(`127.0.0.0/8,::1/128,10.20.0.0/16`), or the `allowed_networks=` argument of `Recorder`,
`ThumbnailWorker`, `Prober` and `CheckOptions`, which replaces the variable when given. An
address inside an allowed network is fetched whatever its kind.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import threading
from collections.abc import Iterable, Sequence
from typing import Any

import httpx

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
#: What `allowed_networks=` takes: None (read the environment), a comma-separated string, or
#: networks (strings or `ipaddress` networks).
AllowedNetworks = str | Iterable[str | Network] | None

ALLOWED_NETWORKS_ENV = "IMAGELOG_ALLOWED_NETWORKS"
#: The `last_error_code` of a URL the guard refused: it was never requested.
REFUSED_ADDRESS = "refused-address"
#: How long the check of a proxied host waits for this machine's resolver before leaving the
#: name to the proxy.
PROXIED_LOOKUP_SECONDS = 5.0

_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_SHARED = ipaddress.ip_network("100.64.0.0/10")
#: RFC 1918 and IPv6 unique local addresses (`is_private` also means loopback, reserved, ...).
_PRIVATE = tuple(
    ipaddress.ip_network(network)
    for network in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")


class AddressRefused(httpx.TransportError):
    """A fetch the guard stopped before connecting: its host is (or resolves to) an address
    that is not public and not opted in. The message is what the log records."""

    def __init__(self, host: str, address: Address, reason: str) -> None:
        where = f"{host} is" if _literal(host) == address else f"{host} resolves to {address},"
        super().__init__(f"refused: {where} {reason}; allow it with {ALLOWED_NETWORKS_ENV}")
        self.host = host
        self.address = address
        self.reason = reason


def refusal_reason(address: Address) -> str | None:
    """Why a fetch must not connect to `address` ("a private address"), or None if public."""
    if isinstance(address, ipaddress.IPv6Address):
        if (wrapped := _wrapped_ipv4(address)) is not None:
            form, inner, always = wrapped
            inner_reason = refusal_reason(inner) if inner is not None else None
            if not (always or inner_reason):
                return None
            if inner is None:
                return form
            return f"{form} for {inner}" + (f", {inner_reason}" if inner_reason else "")
        if address.is_site_local:
            return "a site-local address"
    if address.is_unspecified or address in _THIS_NETWORK:
        return "an unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address in _SHARED:
        return "a shared (carrier-grade NAT) address"
    if any(address in network for network in _PRIVATE):
        return "a private address"
    if not address.is_global:  # reserved, documentation, benchmarking, broadcast, ...
        return "a reserved address"
    return None


def _wrapped_ipv4(
    address: ipaddress.IPv6Address,
) -> tuple[str, ipaddress.IPv4Address | None, bool] | None:
    """For an IPv6 form that carries an IPv4 address: its name, the IPv4 address inside, and
    whether the form is refused whatever that address is. None for any other address."""
    value = int(address)
    if address.ipv4_mapped is not None:
        return "an IPv4-mapped address", address.ipv4_mapped, True
    if value >> 32 == 0 and value > 1:  # ::a.b.c.d (:: and ::1 are judged as themselves)
        return "an IPv4-compatible address", ipaddress.IPv4Address(value), True
    if address in _NAT64_LOCAL:
        return "a local-use NAT64 address", None, True
    if address.teredo is not None:
        return "a Teredo tunnel address", address.teredo[1], True
    if address.sixtofour is not None:
        return "a 6to4 address", address.sixtofour, False
    if address in _NAT64:  # how an IPv6-only network reaches IPv4 hosts: judged by the host
        return "a NAT64 address", ipaddress.IPv4Address(value & 0xFFFFFFFF), False
    return None


def parse_networks(value: AllowedNetworks, *, source: str = "allowed_networks") -> list[Network]:
    """The networks of `value` (see `AllowedNetworks`; a bare address is a one-address network).

    Raises ValueError naming `source` and the entry for anything that is not a network.
    """
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else value
    networks: list[Network] = []
    for item in items:
        if not isinstance(item, str):
            networks.append(item)
            continue
        if not (text := item.strip()):
            continue
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise ValueError(
                f"{source}: {text!r} is not a network: write addresses or CIDR networks, "
                "comma-separated, e.g. 127.0.0.0/8,::1/128,10.20.0.0/16"
            ) from None
    return networks


def allowed_networks_from_environment() -> list[Network]:
    """The networks `IMAGELOG_ALLOWED_NETWORKS` opts in (none when unset); ValueError if bad."""
    return parse_networks(os.environ.get(ALLOWED_NETWORKS_ENV), source=ALLOWED_NETWORKS_ENV)


class NetworkGuard:
    """The addresses a fetch may connect to: public ones, and those in `allowed`.

    `addresses(host, port, timeout)` resolves a host (within `timeout` seconds) to the addresses
    a connection may use; `check_proxied(host)` checks a host a proxy will resolve.
    """

    def __init__(self, allowed: Iterable[Network] = ()) -> None:
        self.allowed = tuple(allowed)

    @classmethod
    def configured(cls, allowed_networks: AllowedNetworks = None) -> NetworkGuard:
        """The guard for `allowed_networks`, or when None for `IMAGELOG_ALLOWED_NETWORKS`."""
        if allowed_networks is None:
            return cls(allowed_networks_from_environment())
        return cls(parse_networks(allowed_networks))

    def refusal(self, address: Address) -> str | None:
        """Why `address` is refused, or None when a fetch may connect to it."""
        if any(address.version == net.version and address in net for net in self.allowed):
            return None
        return refusal_reason(address)

    def permitted(self, host: str, found: Sequence[Address]) -> list[Address]:
        """The addresses of `found` a connection to `host` may use, in order; AddressRefused
        (naming the first refused address) when there is none."""
        reasons = [self.refusal(address) for address in found]
        permitted = [
            address for address, reason in zip(found, reasons, strict=True) if reason is None
        ]
        if not permitted:
            raise AddressRefused(host, found[0], reasons[0] or "")
        return permitted

    def addresses(self, host: str, port: int, timeout: float | None) -> list[Address]:
        """Resolve `host` and return the addresses a connection may use (see `permitted`)."""
        return self.permitted(host, _resolve(host, port, timeout))

    async def addresses_async(self, host: str, port: int) -> list[Address]:
        """`addresses` for an event loop; the caller bounds how long it may take."""
        return self.permitted(host, await _resolve_async(host, port))

    def check_proxied(self, host: str, timeout: float | None = None) -> None:
        """Check a host a proxy will resolve and connect to: every address it resolves to here
        must be allowed (the proxy may pick any). A name that does not resolve here (within
        `timeout`, default PROXIED_LOOKUP_SECONDS) is left to the proxy, which may see names
        this machine does not."""
        try:
            found = _resolve(host, None, timeout=timeout or PROXIED_LOOKUP_SECONDS)
        except OSError:
            return
        self._check_all(host, found)

    async def check_proxied_async(self, host: str) -> None:
        """`check_proxied` for an event loop."""
        try:
            async with asyncio.timeout(PROXIED_LOOKUP_SECONDS):
                found = await _resolve_async(host, None)
        except (OSError, TimeoutError):
            return
        self._check_all(host, found)

    def _check_all(self, host: str, found: Sequence[Address]) -> None:
        for address in found:
            if (reason := self.refusal(address)) is not None:
                raise AddressRefused(host, address, reason)


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _addresses(infos: Iterable[tuple[Any, ...]]) -> list[Address]:
    """The distinct addresses of getaddrinfo's answer, in its order (it lists each per proto)."""
    found = dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos)
    if not found:
        raise socket.gaierror(socket.EAI_NONAME, "no address")
    return list(found)


def _resolve(host: str, port: int | None, timeout: float | None) -> list[Address]:
    """The addresses of `host`, as the system resolver reads it (so `127.1` is 127.0.0.1);
    within `timeout` seconds (a stalled name server must not outlast the deadline), raising
    OSError (TimeoutError when out of time)."""
    if (literal := _literal(host)) is not None:
        return [literal]
    if timeout is None:
        return _addresses(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
    answer: list[object] = []

    def lookup() -> None:
        try:
            answer.append(_addresses(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)))
        except OSError as exc:
            answer.append(exc)

    # A daemon thread: a lookup that never returns is abandoned, and never holds up the exit.
    thread = threading.Thread(target=lookup, name="imagelog-resolve", daemon=True)
    thread.start()
    thread.join(timeout)
    if not answer:
        raise TimeoutError(f"no address for {host} within {timeout:g} s")
    if isinstance(result := answer[0], OSError):
        raise result
    return result  # type: ignore[return-value]  # a list of addresses when not an error


async def _resolve_async(host: str, port: int | None) -> list[Address]:
    if (literal := _literal(host)) is not None:
        return [literal]
    loop = asyncio.get_running_loop()
    return _addresses(await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM))
