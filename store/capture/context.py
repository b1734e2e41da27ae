"""Call context: which provider, user and metadata (team, feature...) a call belongs to.

A call gets its context on every way in, from four scopes. The narrowest scope wins:

1. the request itself: `x-imagelog-provider`, `x-imagelog-user` and `x-imagelog-metadata`
   headers (any language can send them; the recording transport removes them before the
   request leaves), then what the request tells its provider (the body's `user`, Portkey's
   `x-portkey-metadata` with `_user` as the user);
2. the block: `with recorder.context(user=..., metadata=...)`, held in a `ContextVar`, so each
   thread and each asyncio task sees its own (a task starts with its creator's context; a new
   thread starts with none), and nested blocks merge, the inner one winning;
3. the client: `recorder.httpx_client(provider=..., user=..., metadata=...)`;
4. what imagelog infers: the provider from gateway headers, `IMAGELOG_PROVIDER_HOSTS` or the
   host (`store.capture.providers`).

Metadata merges key by key in the same order (a narrower scope's key replaces a wider one's);
the keys imagelog writes itself (`host`, `gateway`, `retry_count`...) are evidence and are
never replaced by a caller's.

Header values are hostile: a metadata header must be a JSON object of at most
`MAX_METADATA_BYTES`; one that is not is ignored, and the call's metadata says why
(`context_errors`). Arguments given in code are checked when given, and a bad one raises.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from store.capture.redaction import describe_exception

PROVIDER_HEADER = "x-imagelog-provider"
USER_HEADER = "x-imagelog-user"
METADATA_HEADER = "x-imagelog-metadata"
#: Every header of ours starts so; none of them ever leaves for the provider.
HEADER_PREFIX = "x-imagelog-"
#: Longest metadata header (or `x-portkey-metadata`) read, in bytes, and most keys kept.
MAX_METADATA_BYTES = 8192
MAX_METADATA_KEYS = 64
MAX_KEY_LENGTH = 100


@dataclass(frozen=True)
class CallContext:
    """What a scope says about its calls; None and empty mean "this scope does not say"."""

    provider: str | None = None
    user: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    errors: tuple[str, ...] = ()  # why a hostile header was ignored

    def over(self, wider: CallContext) -> CallContext:
        """This (narrower) context laid over a wider one."""
        return CallContext(
            provider=self.provider or wider.provider,
            user=self.user or wider.user,
            metadata={**wider.metadata, **self.metadata},
            errors=wider.errors + self.errors,
        )


EMPTY = CallContext()
_CURRENT: ContextVar[CallContext] = ContextVar("imagelog_call_context", default=EMPTY)


def current() -> CallContext:
    """The context of the innermost `call_context` block around the caller (else EMPTY)."""
    return _CURRENT.get()


@contextlib.contextmanager
def call_context(
    *,
    provider: str | None = None,
    user: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Iterator[CallContext]:
    """Every call recorded inside the block (in this thread or task) gets this context."""
    context = checked(provider=provider, user=user, metadata=metadata).over(_CURRENT.get())
    token = _CURRENT.set(context)
    try:
        yield context
    finally:
        _CURRENT.reset(token)


def checked(
    *,
    provider: str | None = None,
    user: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> CallContext:
    """A context from arguments given in code; TypeError/ValueError says what is wrong."""
    for name, value in (("provider", provider), ("user", user)):
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{name} must be a string, not {type(value).__name__}")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, Mapping):
        raise TypeError(f"metadata must be a mapping, not {type(metadata).__name__}")
    if any(not isinstance(key, str) for key in metadata):
        raise TypeError("metadata keys must be strings")
    try:
        json.dumps(dict(metadata), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"metadata must be JSON: {exc}") from exc
    return CallContext(provider=provider or None, user=user or None, metadata=dict(metadata))


def from_headers(headers: Mapping[str, str]) -> CallContext:
    """The context a request's own `x-imagelog-*` headers give (lower-case names)."""
    metadata: dict[str, Any] = {}
    errors: tuple[str, ...] = ()
    if (raw := headers.get(METADATA_HEADER)) is not None:
        try:
            metadata = json_object(raw)
        except ValueError as exc:
            errors = (f"{METADATA_HEADER} ignored: {exc}",)
    return CallContext(
        provider=headers.get(PROVIDER_HEADER, "").strip() or None,
        user=headers.get(USER_HEADER, "").strip() or None,
        metadata=metadata,
        errors=errors,
    )


def json_object(text: str) -> dict[str, Any]:
    """A hostile header's JSON object, within the limits; ValueError says why not."""
    if len(text.encode("utf-8", "replace")) > MAX_METADATA_BYTES:
        raise ValueError(f"longer than {MAX_METADATA_BYTES} bytes")
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"not JSON ({describe_exception(exc)})") from exc
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    if len(value) > MAX_METADATA_KEYS:
        raise ValueError(f"more than {MAX_METADATA_KEYS} keys")
    if any(len(key) > MAX_KEY_LENGTH for key in value):
        raise ValueError(f"a key longer than {MAX_KEY_LENGTH} characters")
    return value


def _no_constant(name: str) -> Any:
    """NaN and Infinity are not JSON, and PostgreSQL refuses them inside a JSON column."""
    raise ValueError(f"{name} is not a JSON value")
