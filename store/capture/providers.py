"""Which provider served a call, and through which gateway, from what the request shows.

Order of evidence: a gateway's own routing headers name the provider behind it (Portkey's
`x-portkey-provider` on the response, which names the provider that served the call even when
the request only carried a virtual key or a config with fallbacks; else on the request); else
the host: a company proxy named in `IMAGELOG_PROVIDER_HOSTS` (`llm-proxy.corp=openai`) stands for
its provider and is kept as the gateway; else a known host (`api.openai.com`,
`*.openai.azure.com`, ...); else the
Azure path shape (`/openai/deployments/{name}/...`, which a private endpoint keeps); else the
host name itself, so an unknown OpenAI-compatible host is still told apart from the others.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

#: Exact host -> provider, for OpenAI-compatible image APIs and the common others.
PROVIDER_HOSTS: dict[str, str] = {
    "api.openai.com": "openai",
    "api.together.xyz": "together",
    "api.together.ai": "together",
    "api.x.ai": "xai",
    "api.fireworks.ai": "fireworks",
    "api.deepinfra.com": "deepinfra",
    "openrouter.ai": "openrouter",
    "generativelanguage.googleapis.com": "google",
    "api.stability.ai": "stability",
    "api.bfl.ai": "bfl",
    "api.bfl.ml": "bfl",
    "api.replicate.com": "replicate",
    "fal.run": "fal",
    "queue.fal.run": "fal",
    "api.recraft.ai": "recraft",
    "api.ideogram.ai": "ideogram",
    "api.novita.ai": "novita",
    "api.hyperbolic.xyz": "hyperbolic",
    "api.siliconflow.com": "siliconflow",
    "api.siliconflow.cn": "siliconflow",
    "api.groq.com": "groq",
    "api.mistral.ai": "mistral",
    "api.segmind.com": "segmind",
    "api.runware.ai": "runware",
    "dashscope.aliyuncs.com": "alibaba",
    "dashscope-intl.aliyuncs.com": "alibaba",
    "ark.cn-beijing.volces.com": "bytedance",
    "ark.ap-southeast.bytepluses.com": "bytedance",
}
#: Host suffix -> provider, for per-customer hosts.
PROVIDER_HOST_SUFFIXES: tuple[tuple[str, str], ...] = (
    (".openai.azure.com", "azure-openai"),
    (".cognitiveservices.azure.com", "azure-openai"),
    (".services.ai.azure.com", "azure-ai"),
    (".aiplatform.googleapis.com", "vertex-ai"),
)
#: Gateways: they route to a provider and are recorded in metadata as `gateway`.
GATEWAY_HOSTS: dict[str, str] = {
    "api.portkey.ai": "portkey",
    "gateway.ai.cloudflare.com": "cloudflare",
    "oai.helicone.ai": "helicone",
    "ai-gateway.vercel.sh": "vercel",
}
#: Company proxies: `host=provider` pairs, comma-separated.
PROVIDER_HOSTS_ENV = "IMAGELOG_PROVIDER_HOSTS"
_HOST = re.compile(r"^[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?$|^[0-9a-f:]+$")
_PROVIDER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
#: Helicone's OpenAI proxy host routes to OpenAI only.
_GATEWAY_DEFAULT_PROVIDER = {"helicone": "openai"}
_AZURE_PATH = re.compile(r"/openai/deployments/(?P<deployment>[^/]+)/")
#: Cloudflare AI Gateway: /v1/{account}/{gateway}/{provider}/...
_CLOUDFLARE_PATH = re.compile(r"^/v1/[^/]+/[^/]+/(?P<provider>[^/]+)/")


#: The header in which Portkey names the provider (asked for, on a request; used, on a response).
PORTKEY_PROVIDER = "x-portkey-provider"


@dataclass(frozen=True)
class Route:
    provider: str
    gateway: str | None = None


def azure_deployment(path: str) -> str | None:
    """The deployment name in an Azure OpenAI path (it stands for the model there)."""
    match = _AZURE_PATH.search(path)
    return match.group("deployment") if match else None


def infer_route(
    host: str,
    path: str,
    headers: Mapping[str, str],
    response_headers: Mapping[str, str] | None = None,
) -> Route:
    """The provider (and gateway, if any) of a request and, when there is one, its response;
    `headers` and `response_headers` have lower-case names."""
    host = host.lower().rstrip(".")
    answered = (response_headers or {}).get(PORTKEY_PROVIDER, "").strip()
    gateway = GATEWAY_HOSTS.get(host)
    if answered or any(name.startswith("x-portkey-") for name in headers):
        gateway = "portkey"
    if gateway == "portkey":
        named = (answered or headers.get(PORTKEY_PROVIDER, "")).strip().lstrip("@")
        # Portkey's model catalog names a provider as "@slug"; a bare virtual key hides it
        # in the request, and only the response names it.
        return Route(named.split("/")[0] if named else "portkey", "portkey")
    if proxied := configured_hosts().get(host):
        return Route(proxied, host)
    if gateway == "cloudflare" and (match := _CLOUDFLARE_PATH.match(path)):
        return Route(match.group("provider"), gateway)
    if gateway:
        return Route(_GATEWAY_DEFAULT_PROVIDER.get(gateway, gateway), gateway)
    return Route(provider_for_host(host) or ("azure-openai" if azure_deployment(path) else host))


def provider_for_host(host: str) -> str | None:
    """The provider a known API host belongs to, or None."""
    host = host.lower().rstrip(".")
    if host in PROVIDER_HOSTS:
        return PROVIDER_HOSTS[host]
    return next((name for suffix, name in PROVIDER_HOST_SUFFIXES if host.endswith(suffix)), None)


def configured_hosts() -> dict[str, str]:
    """The host -> provider map of `IMAGELOG_PROVIDER_HOSTS`; ValueError names a bad entry."""
    return parse_provider_hosts(os.environ.get(PROVIDER_HOSTS_ENV, ""))


@functools.lru_cache(maxsize=8)
def parse_provider_hosts(text: str) -> dict[str, str]:
    """`llm-proxy.corp=openai,other.host=azure-openai` as {host: provider} (hosts lower-cased).

    Read once per distinct value, so every recorded call can ask.
    """
    hosts: dict[str, str] = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        host, equals, provider = (side.strip() for side in entry.partition("="))
        host = host.lower().rstrip(".")
        if not equals or not _HOST.match(host) or not _PROVIDER.match(provider):
            raise ValueError(
                f"{PROVIDER_HOSTS_ENV}: {entry!r} is not host=provider "
                "(a host name or address without port or path, and a provider name of "
                "letters, digits, '.', '_' or '-')"
            )
        hosts[host] = provider
    return hosts
