"""Keep credentials out of the log: request headers, request query strings, and free text.

Three layers, because a key can leak three ways. Headers that carry credentials are dropped by
name. Query values whose *name* looks like a credential (`key`, `token`, `sig`...) are masked
in request URLs. And the exact secret values seen in a request are scrubbed from everything
else recorded about that call (an error body that echoes the key, an exception message), with a
pattern pass for well-known key shapes as a last net for text that never met the request.

Image URLs in *responses* are left alone: their signature is the evidence of what was served
and tells when it expires.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import BaseModel, ValidationError

from store.capture.json_values import map_strings
from store.schema.records import CallRecord

MASK = "[redacted]"

#: Headers that carry credentials, by exact (lower-case) name.
SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "api-key",
        "x-api-key",
        "x-goog-api-key",
        "ocp-apim-subscription-key",
        "cookie",
        "set-cookie",
        "x-portkey-api-key",
        "x-portkey-virtual-key",
    }
)
#: Any header whose name contains one of these words is treated as a credential too.
_SECRET_NAME_WORDS = re.compile(
    r"auth|key|token|secret|cookie|passw|signature|credential|session", re.IGNORECASE
)
#: Query parameter names that carry credentials (`sig` for SAS, `X-Amz-Signature`...).
_SECRET_QUERY_NAME = re.compile(
    r"(^|[-_.])(key|apikey|api[-_]key|token|access[-_]token|sig|signature|secret|password"
    r"|credential|code|auth)$|signature|token|secret|passw|credential",
    re.IGNORECASE,
)
#: Provider key shapes, by their prefixes: safe to mask anywhere, URLs included.
_PROVIDER_KEYS = (
    r"\bsk-[A-Za-z0-9_-]{8,}"  # OpenAI (sk-, sk-proj-), Anthropic (sk-ant-)
    r"|\bxai-[A-Za-z0-9_-]{16,}"  # xAI
    r"|\bAIza[0-9A-Za-z_-]{30,}"  # Google API keys
    r"|\bhf_[A-Za-z0-9]{20,}"  # Hugging Face
    r"|\br8_[A-Za-z0-9]{8,}"  # Replicate
    r"|\bpk-[A-Za-z0-9_-]{8,}"  # Portkey
    # fal: key_id:secret
    r"|\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}:[0-9a-f]{32}\b"
    r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"  # AWS access key ids
)
#: Shapes that are credentials in free text but evidence inside a signed image URL (a JWT
#: `token=`, a SAS `sig=`): masked in text, not in URLs.
_TEXT_ONLY_KEYS = (
    r"(?i:bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"
    r"|\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"  # JWTs
    r"|(?i:(?:api[-_]?key|token|sig|signature|secret|password)=)[^&\s\"']+"
)
#: Well-known credential shapes, for text that never passed through a request.
_KEY_SHAPES = re.compile(f"{_PROVIDER_KEYS}|{_TEXT_ONLY_KEYS}")
_URL_KEY_SHAPES = re.compile(_PROVIDER_KEYS)
#: A literal every key shape above holds (in a lower-cased text), but the fal key's, which
#: holds `_FAL_KEY_HINT`. A text with none of them cannot match: most stored texts are let
#: through by these two fast scans, where the full pattern (a `\b` at the head of each
#: branch) is tried at every position of a text.
_URL_KEY_HINTS = re.compile(r"sk-|xai-|aiza|hf_|r8_|pk-|akia|asia")
_KEY_HINTS = re.compile(
    f"{_URL_KEY_HINTS.pattern}|bearer|basic|eyj|key=|token=|sig=|signature=|secret=|password="
)
_FAL_KEY_HINT = re.compile(r"[0-9a-f]{12}:[0-9a-f]{32}")
#: What no hint and no secret holds: texts joined by it are checked in one scan each way.
_SEPARATOR = "\x00"
#: Shorter "secrets" would scrub ordinary words; real keys are far longer.
MIN_SECRET_LENGTH = 8


#: Portkey headers that describe the route, not the credentials; kept for provider inference.
PORTKEY_PUBLIC_HEADERS = frozenset(
    {"x-portkey-provider", "x-portkey-trace-id", "x-portkey-metadata", "x-portkey-cache-status"}
)


def is_secret_header(name: str) -> bool:
    """True for a header that must never be stored (by name or by a credential-like word)."""
    lowered = name.lower()
    if lowered.startswith("x-portkey-"):
        return lowered not in PORTKEY_PUBLIC_HEADERS
    return lowered in SECRET_HEADERS or bool(_SECRET_NAME_WORDS.search(lowered))


def safe_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The headers worth keeping, lower-cased, with every credential-bearing one dropped."""
    return {name.lower(): value for name, value in headers if not is_secret_header(name)}


def secret_values(headers: Iterable[tuple[str, str]], url: str) -> tuple[str, ...]:
    """The credential strings a request carries, so they can be scrubbed from anything else."""
    found: set[str] = set()
    for name, value in headers:
        if not is_secret_header(name):
            continue
        # Split on what separates a credential from its label in a header value: `Bearer x`,
        # `session=x; other=y`, and JSON such as x-portkey-config's `{"api_key": "x"}`.
        for part in re.split(r"[\s;,=:\"'{}\[\]]+", value):
            if len(part) >= MIN_SECRET_LENGTH:
                found.add(part)
        if len(value) >= MIN_SECRET_LENGTH:
            found.add(value)
    parts = urlsplit(url)
    if parts.password and len(parts.password) >= MIN_SECRET_LENGTH:
        found.add(parts.password)
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if _SECRET_QUERY_NAME.search(name) and len(value) >= MIN_SECRET_LENGTH:
            found.add(value)
    # Longest first, so a value is never half-replaced by a shorter one it contains.
    return tuple(sorted(found, key=len, reverse=True))


def redact_url(url: str) -> str:
    """The request URL without user info, credential-like query values masked (names and order
    kept) and no fragment."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    if not parts.query:
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    masked = [(name, MASK if _SECRET_QUERY_NAME.search(name) else value) for name, value in pairs]
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(masked, safe="[]"), ""))


class Scrubber:
    """Replaces the secret values a request carried wherever they reappear.

    `exact()` replaces only those values, so a response's image URL keeps its own signature;
    `text()` (for error messages and exception text) also masks well-known key shapes.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = tuple(s for s in secrets if len(s) >= MIN_SECRET_LENGTH)

    def exact(self, value: str) -> str:
        for secret in self.secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        return value

    def text(self, value: str) -> str:
        value = self.exact(value)
        return _KEY_SHAPES.sub(MASK, value) if _may_hold_key(value, _KEY_HINTS) else value

    def json(self, value: Any) -> Any:
        """A copy of `value` (dicts, lists, strings...) with the known secrets replaced."""
        return map_strings(value, self.exact)

    def stored(self, value: str) -> str:
        """What a stored text keeps: `text()`, but a URL keeps its signature (evidence)."""
        if value.startswith(("http://", "https://")):
            value = self.exact(value)
            if _may_hold_key(value, _URL_KEY_HINTS):
                return _URL_KEY_SHAPES.sub(MASK, value)
            return value
        return self.text(value)

    def record(self, record: CallRecord) -> None:
        """Scrub every stored text of `record` in place: text columns, JSON keys and values,
        its images' texts; an image's own URL is kept whole (its signature is the evidence).

        Most records hold nothing to scrub: their texts are gathered and checked in one scan
        first (`_may_change`), and only a record that may hold a key is scrubbed field by field.
        """
        fields = [(record, ("id",))] + [(image, ("url", "sha256")) for image in record.images]
        texts: list[str] = []
        urls: list[str] = []
        for model, keep in fields:
            _gather(model, keep, texts, urls)
        if not self._may_change(texts, urls):
            return
        for model, keep in fields:
            _scrub_fields(model, self.stored, keep)

    def _may_change(self, texts: list[str], urls: list[str]) -> bool:
        """False when `stored()` leaves every one of `texts` (and of `urls`, the texts that
        are URLs) as it is: none holds a secret of this scrubber or a hint of a key shape."""
        joined_texts, joined_urls = _SEPARATOR.join(texts), _SEPARATOR.join(urls)
        return (
            _may_hold_key(joined_texts, _KEY_HINTS)
            or _may_hold_key(joined_urls, _URL_KEY_HINTS)
            or any(secret in joined_texts or secret in joined_urls for secret in self.secrets)
        )


def _may_hold_key(text: str, hints: re.Pattern[str]) -> bool:
    """False when `text` cannot hold a key shape (`hints` holds a literal of each one of
    them, `_FAL_KEY_HINT` the fal key's)."""
    return bool(hints.search(text.lower()) or _FAL_KEY_HINT.search(text))


def _gather(model: BaseModel, keep: tuple[str, ...], texts: list[str], urls: list[str]) -> None:
    """Every text `_scrub_fields` would scrub in `model`: URLs (as `stored()` tells them) into
    `urls`, the rest into `texts`."""
    for name, value in model.__dict__.items():
        if name not in keep and (type(value) is str or isinstance(value, dict | list)):
            _gather_json(value, texts, urls)


def _gather_json(value: Any, texts: list[str], urls: list[str]) -> None:
    if isinstance(value, str):
        (urls if value.startswith(("http://", "https://")) else texts).append(value)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _gather_json(key, texts, urls)
            _gather_json(item, texts, urls)
    elif isinstance(value, list | tuple):
        for item in value:
            _gather_json(item, texts, urls)


def _scrub_fields(model: BaseModel, scrub: Callable[[str], str], keep: tuple[str, ...]) -> None:
    # Set only what changed: a field assignment on a model costs more than the scrub itself.
    for name, value in list(model.__dict__.items()):
        if name in keep:
            continue
        if type(value) is str:  # not a StrEnum member: those are validated values
            scrubbed = scrub(value)
        elif isinstance(value, dict | list):
            scrubbed = map_strings(value, scrub, keys=True)
        else:
            continue
        if scrubbed != value:
            setattr(model, name, scrubbed)


def describe_exception(exc: BaseException, scrubber: Scrubber | None = None) -> str:
    """`Type: first line of the message`, scrubbed: what the log and the `error` column get.

    Only the first line: SQLAlchemy appends the statement and its parameters on later lines.
    A pydantic error gives its messages instead (its first line only names the model).
    """
    if isinstance(exc, ValidationError):
        message = "; ".join(error["msg"] for error in exc.errors(include_url=False))
    else:
        cause = getattr(exc, "orig", None) or exc
        lines = str(cause).strip().splitlines()
        message = lines[0] if lines else ""
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return (scrubber or Scrubber()).text(text)
