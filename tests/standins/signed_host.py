"""A loopback image host whose URLs carry real signed-URL shapes, and that honours them.

Each path prefix plays one kind of host, answering as the real one does:
  /azure/<container>/<blob>?sv=&st=&se=&sp=&sr=[&skoid=...&ske=]&sig=
        Azure Blob SAS: the image before min(se, ske); after it 403 `AuthenticationFailed`
        (XML body and `x-ms-error-code`); a tampered query 403 too (signature mismatch).
  /s3/<bucket>/<key>?X-Amz-Algorithm=...&X-Amz-Date=&X-Amz-Expires=&X-Amz-Signature=
        S3 SigV4 presigned GET: the method is signed, so a HEAD is a 403 even while it is live;
        after expiry 403 `AccessDenied` "Request has expired".
  /gcs/<bucket>/<object>?X-Goog-Algorithm=...&X-Goog-Date=&X-Goog-Expires=&X-Goog-Signature=
        GCS V4: after expiry 400 `ExpiredToken`.
  /live/<name>      unsigned, always the image          /get-only/<name>  GET 200, HEAD 403
  /gone/<name>      404 (a deleted output)              /removed/<name>   410
  /unavailable/<n>  503 with Retry-After                /throttled/<n>    429 `SlowDown`
  /slow/<s>/<name>  the image after s seconds           /reset/<name>     connection reset
  /flaky/<k>/<name> 503 for the first k requests of that path, then the image
  /moved/<path>     a 302 to /<path> (relative Location)  /loop/<name>   a 302 to itself
Every image answer honours `Range: bytes=a-b` with a 206. The host checks expiry with its own
simple code, not the package's parsers, so a parser bug cannot agree with itself.

`python -m tests.standins.signed_host` serves it in its own process and prints its base URL
(the benchmark does this, so the host does not share the client's interpreter).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import sys
import threading
import time
from collections import Counter
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from urllib.parse import quote, urlencode

from tests.standins.image_host import _reset, draw_image
from tests.standins.server import LoopbackServer, Reply, Request

IMAGE = draw_image(64, 64, "png")
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")
_SIGNATURE_PARAMS = {"sig", "x-amz-signature", "x-goog-signature"}
DEFAULT_KEY = b"signed-host-test-key"


class SignedUrls:
    """Builds URLs with the real shapes, signed with the host's key, for a host at `base_url`
    (the benchmark's host runs in another process; `SignedHost` is one of these itself)."""

    def __init__(self, base_url: str, key: bytes = DEFAULT_KEY) -> None:
        self.base_url = base_url
        self.key = key

    def url(self, path: str) -> str:
        return self.base_url + path

    def azure_url(
        self,
        blob: str,
        *,
        expires_at: datetime,
        key_expires_at: datetime | None = None,
        starts_at: datetime | None = None,
        container: str = "private",
    ) -> str:
        """An Azure Blob SAS URL (user-delegation shape when `key_expires_at` is given); it is
        refused before `starts_at` (default two hours before it expires) as after it expires."""
        start = starts_at or expires_at - timedelta(hours=2)
        params = {"st": _iso(start), "se": _iso(expires_at), "sp": "r", "sv": "2021-08-06"}
        params |= {"sr": "b", "rscd": "inline", "rsct": "image/png"}
        if key_expires_at is not None:
            params |= {
                "skoid": "6aaadede-4fb3-4698-a8f6-684d7786b067",
                "sktid": "a48cca56-e6da-484e-a814-9c849652bcb3",
                "skt": _iso(start),
                "ske": _iso(key_expires_at),
                "sks": "b",
                "skv": "2021-08-06",
            }
        return self._signed(f"/azure/{container}/{blob}", params, "sig")

    def s3_url(self, key: str, *, signed_at: datetime, expires_in: int = 3600) -> str:
        """An S3 SigV4 presigned GET URL."""
        params = {
            "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
            "X-Amz-Credential": f"AKIAIOSFODNN7EXAMPLE/{signed_at:%Y%m%d}/us-west-2/s3"
            "/aws4_request",
            "X-Amz-Date": f"{signed_at.astimezone(UTC):%Y%m%dT%H%M%SZ}",
            "X-Amz-Expires": str(expires_in),
            "X-Amz-SignedHeaders": "host",
        }
        return self._signed(f"/s3/images-bucket/{key}", params, "X-Amz-Signature")

    def gcs_url(self, name: str, *, signed_at: datetime, expires_in: int = 3600) -> str:
        """A GCS V4 signed URL."""
        params = {
            "X-Goog-Algorithm": "GOOG4-RSA-SHA256",
            "X-Goog-Credential": f"signer@project.iam.gserviceaccount.com/{signed_at:%Y%m%d}"
            "/auto/storage/goog4_request",
            "X-Goog-Date": f"{signed_at.astimezone(UTC):%Y%m%dT%H%M%SZ}",
            "X-Goog-Expires": str(expires_in),
            "X-Goog-SignedHeaders": "host",
        }
        return self._signed(f"/gcs/images-bucket/{name}", params, "X-Goog-Signature")

    def plain_url(self, kind: str, name: str) -> str:
        """An unsigned URL of one of the plain hosts: live, get-only, gone, removed, ..."""
        return self.url(f"/{kind}/{name}")

    def _signed(self, path: str, params: dict[str, str], sig_name: str) -> str:
        params[sig_name] = self._signature("GET", path, params)
        return self.url(f"{path}?{urlencode(params, quote_via=quote)}")

    def _signature(self, method: str, path: str, params: dict[str, str]) -> str:
        signed = sorted((k, v) for k, v in params.items() if k.lower() not in _SIGNATURE_PARAMS)
        message = f"{method}\n{path}\n{urlencode(signed)}".encode()
        return hmac.new(self.key, message, hashlib.sha256).hexdigest()


class SignedHost(LoopbackServer, SignedUrls):
    """`with SignedHost() as host: host.azure_url("img.png", expires_at=...)`."""

    def __init__(self, *, key: bytes = DEFAULT_KEY) -> None:
        LoopbackServer.__init__(self, self._counted)
        self.key = key
        #: Per kind of path (`/slow/0.2`, ...): requests being answered now, and the peak.
        self.in_flight = Counter[str]()
        self.max_in_flight = Counter[str]()
        self._served = Counter[str]()
        self._lock = threading.Lock()

    def reset(self) -> None:
        """Forget the requests seen, the flaky paths' counters and the peak (between tests)."""
        with self._lock:
            self.requests.clear()
            self._served.clear()
            self.max_in_flight.clear()

    # --- answers -----------------------------------------------------------------------------

    def _counted(self, request: Request) -> Reply | None:
        kind = request.path.rsplit("/", 1)[0]
        with self._lock:
            self.in_flight[kind] += 1
            self.max_in_flight[kind] = max(self.max_in_flight[kind], self.in_flight[kind])
        try:
            return self.answer(request)
        finally:
            with self._lock:
                self.in_flight[kind] -= 1

    def answer(self, request: Request) -> Reply | None:
        kind = request.path.split("/", 2)[1]
        query = {name: values[0] for name, values in request.query.items()}
        if kind in ("azure", "s3", "gcs"):
            return self._signed_answer(kind, request, query)
        if kind == "live":
            return _image(request)
        if kind == "get-only":
            return _image(request) if request.method == "GET" else Reply(403, b"")
        if kind == "gone":
            return Reply(404, b"Not Found", {"Content-Type": "text/plain"})
        if kind == "removed":
            return Reply(410, b"Gone", {"Content-Type": "text/plain"})
        if kind == "unavailable":
            return Reply(503, b"Service Unavailable", {"Retry-After": "30"})
        if kind == "throttled":
            body = _xml("SlowDown", "Please reduce your request rate.")
            return Reply(429, body, {"Retry-After": "5", "Content-Type": "application/xml"})
        if kind == "slow":
            return _late(request, float(request.path.split("/")[2]))
        if kind == "reset":
            return _reset(request)
        if kind == "moved":
            return Reply(302, b"", {"Location": request.path.removeprefix("/moved")})
        if kind == "loop":
            return Reply(302, b"", {"Location": request.path})
        if kind == "flaky":
            failures = int(request.path.split("/")[2])
            with self._lock:
                self._served[request.path] += 1
                seen = self._served[request.path]
            return Reply(503, b"Service Unavailable") if seen <= failures else _image(request)
        return Reply(404, b"no such path")

    def _signed_answer(self, kind: str, request: Request, query: dict[str, str]) -> Reply:
        sig_name = {"azure": "sig", "s3": "X-Amz-Signature", "gcs": "X-Goog-Signature"}[kind]
        given = query.get(sig_name, "")
        # S3 and GCS sign the method (a HEAD on a GET URL fails); Azure SAS does not.
        method = "GET" if kind == "azure" else request.method
        if not hmac.compare_digest(given, self._signature(method, request.path, query)):
            return _signature_mismatch(kind, request)
        now = datetime.now(UTC)
        if kind == "azure":
            expiry = _parse_iso(query["se"])
            if "ske" in query:
                expiry = min(expiry, _parse_iso(query["ske"]))
            start = _parse_iso(query["st"])
            if now >= expiry or now < start:
                return _azure_expired(request, start, expiry, now)
            return _image(request)
        prefix = "X-Amz" if kind == "s3" else "X-Goog"
        signed_at = datetime.strptime(query[f"{prefix}-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        expiry = signed_at + timedelta(seconds=int(query[f"{prefix}-Expires"]))
        if now < expiry:
            return _image(request)
        if kind == "s3":
            body = _xml(
                "AccessDenied",
                "Request has expired",
                f"<X-Amz-Expires>{query['X-Amz-Expires']}</X-Amz-Expires>"
                f"<Expires>{expiry:%Y-%m-%dT%H:%M:%SZ}</Expires>"
                f"<ServerTime>{now:%Y-%m-%dT%H:%M:%SZ}</ServerTime>",
            )
            return _body_unless_head(request, 403, body)
        body = _xml(
            "ExpiredToken",
            "Invalid argument.",
            "<Details>The provided token has expired. Request signature expired at: "
            f"{expiry:%Y-%m-%dT%H:%M:%S+00:00}</Details>",
        )
        return _body_unless_head(request, 400, body)


def _image(request: Request) -> Reply:
    headers = {"Content-Type": "image/png", "Accept-Ranges": "bytes"}
    match = _RANGE.match(request.headers.get("range", ""))
    if not match:
        return Reply(200, IMAGE, headers)
    first = int(match.group(1))
    last = min(int(match.group(2) or len(IMAGE) - 1), len(IMAGE) - 1)
    headers["Content-Range"] = f"bytes {first}-{last}/{len(IMAGE)}"
    return Reply(206, IMAGE[first : last + 1], headers)


def _late(request: Request, seconds: float) -> None:
    """The image after `seconds` of silence, written here: the client may have given up."""
    time.sleep(seconds)
    reply, handler = _image(request), request.handler
    handler.close_connection = True
    with suppress(BrokenPipeError, ConnectionResetError):
        handler.send_response(reply.status)
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(reply.body)))
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.write(reply.body)


def _azure_expired(request: Request, start: datetime, expiry: datetime, now: datetime) -> Reply:
    detail = (
        "<AuthenticationErrorDetail>Signature not valid in the specified time frame: "
        f"Start [{format_datetime(start, usegmt=True)}] - Expiry "
        f"[{format_datetime(expiry, usegmt=True)}] - Current "
        f"[{format_datetime(now.replace(microsecond=0), usegmt=True)}]</AuthenticationErrorDetail>"
    )
    return _azure_auth_failed(request, detail)


def _azure_auth_failed(request: Request, detail: str) -> Reply:
    body = _xml(
        "AuthenticationFailed",
        "Server failed to authenticate the request. Make sure the value of Authorization header "
        "is formed correctly including the signature.",
        detail,
    )
    reply = _body_unless_head(request, 403, body)
    reply.headers["x-ms-error-code"] = "AuthenticationFailed"
    return reply


def _signature_mismatch(kind: str, request: Request) -> Reply:
    if kind == "azure":
        detail = "<AuthenticationErrorDetail>Signature did not match.</AuthenticationErrorDetail>"
        return _azure_auth_failed(request, detail)
    message = "The request signature we calculated does not match the signature you provided."
    return _body_unless_head(request, 403, _xml("SignatureDoesNotMatch", message))


def _body_unless_head(request: Request, status: int, body: bytes) -> Reply:
    """Real hosts answer a HEAD with the status and headers only."""
    headers = {"Content-Type": "application/xml"}
    return Reply(status, b"" if request.method == "HEAD" else body, headers)


def _xml(code: str, message: str, extra: str = "") -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
        f"<Message>{message}</Message>{extra}<RequestId>4442587FB7D0A2F9</RequestId></Error>"
    ).encode()


def _iso(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"


def _parse_iso(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


if __name__ == "__main__":
    with SignedHost() as host:
        print(host.base_url, flush=True)
        sys.stdin.read()  # serve until the parent closes our stdin (or kills us)
