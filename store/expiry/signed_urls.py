"""Read the expiry that a signed URL carries in its query string, without any network.

A signed URL's signature covers its expiry, so the host refuses it from that moment on: the
expiry read here is a fact, not an estimate (see `Prediction.is_signed`). One parser per
signing scheme, tried in a fixed order; each needs its scheme's signature parameter as well as
the time, so an unsigned URL that merely has an `Expires=` or `exp=` parameter yields nothing.

Schemes: Azure Blob SAS (`se`, and `ske` for user-delegation keys: OpenAI dall-e, Azure OpenAI,
BFL), S3 SigV4, S3 SigV2 / GCS V2 / CloudFront canned (`Expires=` epoch), GCS V4, CloudFront
custom policy (base64 `Policy` JSON), `exp=` epoch with `sig` (Ideogram), a JWT's `exp` in
`_jwt` / `token`, and imgproxy URLs whose last path segment is a base64url source URL (Together).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlsplit

from store.expiry.prediction import Prediction
from store.schema.models import as_utc

#: Query parameters a JWT with an `exp` claim travels in.
JWT_PARAMS = ("_jwt", "jwt", "token")
#: Epoch values outside these bounds are not times (ids, sizes); milliseconds are above the top.
_EPOCH_MIN, _EPOCH_MAX = 946_684_800, 7_258_118_400  # 2000-01-01, 2200-01-01
#: How deep imgproxy-style nesting is followed (a URL inside a URL inside a URL is not real).
_MAX_NESTING = 2

Query = Mapping[str, str]  # lower-cased names -> first value


def signed_expiry(url: str) -> Prediction | None:
    """The expiry a signed URL carries, or None if it carries none we can read."""
    return _signed_expiry(url, depth=0)


def _signed_expiry(url: str, depth: int) -> Prediction | None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    query: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        query.setdefault(name.lower(), value)
    for parser in _PARSERS:
        if prediction := parser(query):
            return prediction
    if depth < _MAX_NESTING:
        return _imgproxy(parts.path, depth)
    return None


def azure_sas(query: Query) -> Prediction | None:
    """Azure Blob SAS: `se`, or `ske` if the user-delegation key expires first."""
    if "sig" not in query or "se" not in query:
        return None
    expiry = _iso_time(query["se"])
    key_expiry = _iso_time(query["ske"]) if "ske" in query else None
    if expiry is None:
        return None
    if key_expiry is not None:
        expiry = min(expiry, key_expiry)
    # A SAS is refused (403) before its start time too: that answer is "not yet", not "gone".
    starts = _iso_time(query["st"]) if "st" in query else None
    return Prediction(expiry, "azure-sas", not_before=starts)


def s3_sigv4(query: Query) -> Prediction | None:
    """S3 SigV4 presigned URL: signed at `X-Amz-Date`, valid `X-Amz-Expires` seconds."""
    return _dated(query, "x-amz-date", "x-amz-expires", "x-amz-signature", "s3-sigv4")


def gcs_v4(query: Query) -> Prediction | None:
    """GCS V4 signed URL: signed at `X-Goog-Date`, valid `X-Goog-Expires` seconds."""
    return _dated(query, "x-goog-date", "x-goog-expires", "x-goog-signature", "gcs-v4")


def expires_epoch(query: Query) -> Prediction | None:
    """`Expires=` epoch: CloudFront canned policy, GCS V2, S3 SigV2 (told apart by key name)."""
    if "signature" not in query or "expires" not in query:
        return None
    expiry = _epoch(query["expires"])
    if expiry is None:
        return None
    if "key-pair-id" in query:
        return Prediction(expiry, "cloudfront")
    if "googleaccessid" in query:
        return Prediction(expiry, "gcs-v2")
    return Prediction(expiry, "s3-sigv2")


def cloudfront_policy(query: Query) -> Prediction | None:
    """CloudFront custom policy: the earliest `DateLessThan` in the base64 `Policy` JSON."""
    if "policy" not in query or "signature" not in query or "key-pair-id" not in query:
        return None
    # CloudFront's URL-safe base64 swaps + = / for - _ ~.
    encoded = query["policy"].translate(str.maketrans("-_~", "+=/"))
    try:
        policy = json.loads(base64.b64decode(encoded + "=" * (-len(encoded) % 4)))
        limits = [
            statement["Condition"]["DateLessThan"]["AWS:EpochTime"]
            for statement in policy["Statement"]
        ]
    except (binascii.Error, ValueError, KeyError, TypeError):
        return None
    expiries = [_epoch(str(limit)) for limit in limits]
    known = [expiry for expiry in expiries if expiry is not None]
    if not known or len(known) < len(expiries):
        return None
    return Prediction(min(known), "cloudfront-policy")


def exp_epoch(query: Query) -> Prediction | None:
    """`exp=` epoch next to a `sig` (Ideogram's ephemeral image URLs)."""
    if "exp" not in query or not ("sig" in query or "signature" in query):
        return None
    expiry = _epoch(query["exp"])
    return Prediction(expiry, "exp-param") if expiry else None


def jwt_exp(query: Query) -> Prediction | None:
    """The `exp` claim of a JWT carried in `_jwt`, `jwt` or `token`."""
    for name in JWT_PARAMS:
        token = query.get(name, "")
        segments = token.split(".")
        if len(segments) != 3:
            continue
        try:
            header = json.loads(_b64url(segments[0]))
            claims = json.loads(_b64url(segments[1]))
        except (binascii.Error, ValueError):
            continue
        if not isinstance(header, dict) or not isinstance(claims, dict) or "alg" not in header:
            continue
        if (expiry := _numeric_date(claims.get("exp"))) is not None:
            return Prediction(expiry, "jwt-exp")
    return None


def _imgproxy(path: str, depth: int) -> Prediction | None:
    """An imgproxy URL (Together's): the last path segment is the base64url source URL."""
    segment = path.rstrip("/").rsplit("/", 1)[-1].split(".", 1)[0]
    if len(segment) < 16:
        return None
    try:
        inner = _b64url(segment).decode("ascii")
    except (binascii.Error, ValueError):
        return None
    if not inner.startswith(("http://", "https://")):
        return None
    prediction = _signed_expiry(inner, depth + 1)
    if prediction is None:
        return None
    return Prediction(prediction.expires_at, f"imgproxy+{prediction.source}")


def _dated(query: Query, date_key: str, expires_key: str, sig_key: str, source: str):
    if sig_key not in query or date_key not in query or expires_key not in query:
        return None
    try:
        signed_at = datetime.strptime(query[date_key], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        seconds = int(query[expires_key])
    except ValueError:
        return None
    if seconds < 0:
        return None
    return Prediction(signed_at + timedelta(seconds=seconds), source)


def _iso_time(text: str) -> datetime | None:
    """An Azure SAS time: `2024-01-01T12:00:00Z`, with or without seconds, or a bare date."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return as_utc(moment)


def _epoch(text: str) -> datetime | None:
    try:
        seconds = int(text)
    except ValueError:
        return None
    if not _EPOCH_MIN <= seconds <= _EPOCH_MAX:
        return None
    return datetime.fromtimestamp(seconds, UTC)


def _numeric_date(value: object) -> datetime | None:
    """A JWT NumericDate (RFC 7519): seconds since the epoch, a fraction allowed."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not _EPOCH_MIN <= value <= _EPOCH_MAX:  # also refuses NaN and infinities
        return None
    return datetime.fromtimestamp(value, UTC)


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_PARSERS: tuple[Callable[[Query], Prediction | None], ...] = (
    azure_sas,
    s3_sigv4,
    gcs_v4,
    cloudfront_policy,
    expires_epoch,
    exp_epoch,
    jwt_exp,
)
