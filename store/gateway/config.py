"""What the gateway listens on and where it may send requests: from flags, the environment and a
TOML file, which say the same things under the same names.

Upstreams come from here only, never from a request (the gateway is not an open proxy): the
default upstream, the Portkey upstream for requests that carry `x-portkey-*` headers, and named
routes (`/routes/NAME/...` or the `x-imagelog-route: NAME` header) for the others, an Azure
resource or a company proxy. Precedence, highest first: flags, environment, file, defaults.

    # gateway.toml (`imagelog gateway --config gateway.toml`, or IMAGELOG_GATEWAY_CONFIG)
    upstream = "https://api.openai.com"
    portkey_upstream = "https://api.portkey.ai"
    host = "127.0.0.1"
    port = 8790
    max_body_bytes = 67108864
    timeout = 600
    [routes]
    azure = "https://my-resource.openai.azure.com"

The environment: `IMAGELOG_GATEWAY_UPSTREAM`, `..._PORTKEY_UPSTREAM`, `..._HOST`, `..._PORT`,
`..._MAX_BODY_BYTES`, `..._TIMEOUT` and `..._ROUTES` (`azure=https://...,corp=https://...`).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import httpx

CONFIG_ENV = "IMAGELOG_GATEWAY_CONFIG"
ENV_PREFIX = "IMAGELOG_GATEWAY_"
DEFAULT_UPSTREAM = "https://api.openai.com"
#: Portkey's public gateway (its SDKs' base URL is this host's `/v1`).
DEFAULT_PORTKEY_UPSTREAM = "https://api.portkey.ai"
DEFAULT_PORT = 8790
#: Larger than any images request OpenAI takes (16 input images of up to 50 MB are the extreme
#: case, and are better sent as file ids); a bigger body is answered 413 without going upstream.
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
#: The openai SDK's own read timeout: an image can take minutes to make.
DEFAULT_TIMEOUT = 600.0
_ROUTE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class ConfigError(ValueError):
    """A setting the gateway cannot use; the message names the setting, where it came from
    and what it should look like."""


@dataclass(frozen=True)
class GatewayConfig:
    upstream: str = DEFAULT_UPSTREAM
    portkey_upstream: str = DEFAULT_PORTKEY_UPSTREAM
    routes: Mapping[str, str] = field(default_factory=dict)
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    timeout: float = DEFAULT_TIMEOUT


def upstream_url(text: str, source: str) -> str:
    """`text` as an upstream base URL: http(s), a host, no credentials, query or fragment (a
    key in the URL would be a secret in the configuration), no trailing slash."""
    try:
        url = httpx.URL(text.strip())
    except Exception:
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        raise ConfigError(f"{source}: {text!r} is not an http(s) URL, e.g. {DEFAULT_UPSTREAM}")
    if url.userinfo or url.query or url.fragment:
        raise ConfigError(
            f"{source}: an upstream URL carries no credentials, query or fragment: the caller's "
            "own headers carry the keys"
        )
    return str(url.copy_with(path=url.path.rstrip("/") or "/")).rstrip("/")


def _routes(value: Any, source: str) -> dict[str, str]:
    """Routes from a TOML table, `NAME=URL` strings (flags) or `NAME=URL,NAME=URL` (environment)."""
    if isinstance(value, str):
        value = [item for item in value.split(",") if item.strip()]
    if isinstance(value, list | tuple):
        pairs = {}
        for item in value:
            name, equals, url = str(item).partition("=")
            if not equals:
                raise ConfigError(f"{source}: {item!r} is not NAME=URL, e.g. azure=https://...")
            pairs[name.strip()] = url.strip()
        value = pairs
    if not isinstance(value, Mapping):
        raise ConfigError(f"{source}: routes are a table of NAME = URL")
    routes = {}
    for name, url in value.items():
        if not isinstance(name, str) or not _ROUTE_NAME.match(name):
            raise ConfigError(
                f"{source}: route name {name!r}: use lower-case letters, digits, - and _"
            )
        if not isinstance(url, str):
            raise ConfigError(f"{source}: route {name!r} needs a URL string")
        routes[name] = upstream_url(url, f"{source} route {name!r}")
    return routes


def _port(value: Any, source: str) -> int:
    number = _whole(value, source)
    if not 0 <= number <= 65535:
        raise ConfigError(f"{source}: {value!r} is not a port (0-65535)")
    return number


def _whole(value: Any, source: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = -1
    if isinstance(value, bool | float) or number < 0:
        raise ConfigError(f"{source}: {value!r} is not a whole number >= 0")
    return number


def _seconds(value: Any, source: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = 0.0
    if isinstance(value, bool) or not number > 0 or number == float("inf"):
        raise ConfigError(f"{source}: {value!r} is not a number of seconds > 0")
    return number


def _text(value: Any, source: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{source}: {value!r} is not a host name or address")
    return value.strip()


#: Each setting and how its value is read; the names are the file's keys, and the flags' and
#: environment variables' names follow from them.
_READERS: dict[str, Callable[[Any, str], Any]] = {
    "upstream": upstream_url,
    "portkey_upstream": upstream_url,
    "routes": _routes,
    "host": _text,
    "port": _port,
    "max_body_bytes": _whole,
    "timeout": _seconds,
}
assert set(_READERS) == {item.name for item in fields(GatewayConfig)}


def env_name(setting: str) -> str:
    return ENV_PREFIX + setting.upper()


def load_config(
    flags: Mapping[str, Any] | None = None,
    *,
    file: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> GatewayConfig:
    """The configuration from the file (`file`, else `IMAGELOG_GATEWAY_CONFIG`, else none),
    then the environment, then `flags` (setting name -> value; None means not given).

    Raises ConfigError for an unreadable file, an unknown key or a bad value.
    """
    environ = os.environ if environ is None else environ
    config = GatewayConfig()
    path = file or (Path(environ[CONFIG_ENV]) if environ.get(CONFIG_ENV) else None)
    if path is not None:
        config = _apply(config, _read_file(path), str(path))
    from_env = {name: environ[env_name(name)] for name in _READERS if environ.get(env_name(name))}
    config = _apply(config, from_env, "environment")
    given = {name: value for name, value in (flags or {}).items() if value is not None}
    return _apply(config, given, "command line")


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read the gateway configuration {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None


def _apply(config: GatewayConfig, values: Mapping[str, Any], source: str) -> GatewayConfig:
    unknown = sorted(set(values) - set(_READERS))
    if unknown:
        raise ConfigError(
            f"{source}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(_READERS)}"
        )
    changes = {}
    for name, value in values.items():
        where = f"{env_name(name)}" if source == "environment" else f"{source}: {name}"
        changes[name] = _READERS[name](value, where)
    return replace(config, **changes)
