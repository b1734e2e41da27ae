"""What an image host's answer proves about a hosted URL: live, expired, or nothing (unknown).

Two parts of the store learn this: the URL probe (`store.expiry.probe`, a one-byte GET) and the
thumbnail download (`store.media.fetch`, the whole image), which doubles as the URL's
first probe. Both classify with these functions, so a download and a probe can never disagree
about the same answer. The module sits below both (it needs only `store.schema.models`), so
neither imports the other.

Only definite answers are verdicts: 200/206 live, 403/404/410 (and GCS/S3 `400 ExpiredToken`)
expired. Timeouts, resets, 5xx and 429 say nothing about the URL: a flaky host never turns a
live URL into an expired one. Nor does Azure's 403 for a SAS whose start time is still ahead
("not valid yet", code `NotYetValid`): it becomes valid on its own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

from store.schema.models import UrlState

LIVE_STATUSES = frozenset({200, 206})
EXPIRED_STATUSES = frozenset({403, 404, 410})
#: Error codes that mean "expired" whatever the status (GCS and S3 send 400 ExpiredToken).
EXPIRED_CODES = frozenset({"ExpiredToken"})
#: How much of an error body is read to find the host's `<Code>`.
ERROR_BODY_BYTES = 4096
#: Width of images.last_error_code.
ERROR_CODE_LENGTH = 200

_XML_CODE = re.compile(rb"<Code>\s*([^<\s][^<]*?)\s*</Code>")
#: Azure's detail for a SAS refused for its time frame (before its start, or after its expiry).
_AZURE_TIME_FRAME = re.compile(rb"Start \[([^\]]+)\] - Expiry \[[^\]]+\] - Current \[([^\]]+)\]")
#: The error code stored for a signed URL asked for before its start time.
NOT_YET_VALID = "NotYetValid"


def error_code(headers: Mapping[str, str], body_prefix: bytes) -> str | None:
    """The host's own error code: Azure's `x-ms-error-code` header, else an XML `<Code>`."""
    code = _header(headers, "x-ms-error-code")
    if not code and (match := _XML_CODE.search(body_prefix)):
        code = match.group(1).decode("utf-8", "replace")
    return code[:ERROR_CODE_LENGTH] if code else None


def classify_answer(
    status: int, headers: Mapping[str, str], body_prefix: bytes
) -> tuple[UrlState, str | None]:
    """The URL state an HTTP answer proves, and the host's error code if it gave one."""
    if status in LIVE_STATUSES:
        return UrlState.live, None  # nothing to explain: skip the header and body scan
    code = error_code(headers, body_prefix)
    if code == "AuthenticationFailed" and _before_its_start(body_prefix):
        return UrlState.unknown, NOT_YET_VALID
    return url_state_for(status, code), code


def url_state_for(status: int | None, code: str | None = None) -> UrlState:
    """The URL state a status (None: no answer) and the host's error code prove."""
    if status in LIVE_STATUSES:
        return UrlState.live
    if status in EXPIRED_STATUSES or (status == 400 and code in EXPIRED_CODES):
        return UrlState.expired
    return UrlState.unknown  # no answer, 5xx, 429, other 4xx, unresolved redirects


def classify_failure(exc: BaseException) -> str:
    """The error code stored for a request that got no answer: the failure's type name."""
    if isinstance(exc, TimeoutError):
        return "Timeout"  # the probe's overall deadline
    return type(exc).__name__[:ERROR_CODE_LENGTH]


def _before_its_start(body_prefix: bytes) -> bool:
    """Whether Azure's time-frame detail says the request came before the SAS's start."""
    match = _AZURE_TIME_FRAME.search(body_prefix)
    if match is None:
        return False
    try:
        start, current = (parsedate_to_datetime(part.decode("ascii")) for part in match.groups())
    except (ValueError, TypeError, UnicodeDecodeError):
        return False
    return current < start


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by name whatever the mapping's case rules (httpx's ignore case; dicts do not)."""
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return value
