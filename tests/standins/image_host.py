"""A stand-in for the hosts that serve generated images (OpenAI's Azure blobs, S3, CDNs), on a
real loopback HTTP server, including every way such a host lets a downloader down.

Paths:
  /img/<name>.<png|jpg|webp>?w=&h=[&alpha=1]   an image drawn with Pillow, any size
  /broken.png                                  a PNG cut in half
  /not-an-image                                an HTML error page answered with 200
  /big?bytes=N[&declare=1]                     N bytes of PNG-looking filler, with or without
                                               Content-Length (without: streamed until close)
  /bomb.png?w=&h=                              a PNG header claiming w x h pixels, no real data
  /slow?seconds=S                              headers at once, the body after S seconds
  /trickle?bytes=N&interval=S                  N bytes of an image, one byte every S seconds
  /trickle-headers?interval=S&seconds=T        a status line, then header bytes one every S
                                               seconds for T seconds: the headers never end
  /status/<code>[?style=azure|s3]              an error: Azure `x-ms-error-code`, or S3 XML `<Code>`
  /reset                                       the connection is reset without an answer
  /redirect?to=PATH                            a 302 to PATH on this host
  /published/<name>                            bytes a test put there with `publish` (a signed
                                               image, a tampered one, ...)
"""

from __future__ import annotations

import random
import socket
import struct
import time
import zlib
from contextlib import suppress
from functools import lru_cache
from http.server import BaseHTTPRequestHandler
from io import BytesIO

from PIL import Image, ImageDraw

from tests.standins.server import Reply, Request

FORMATS = {
    "png": ("PNG", "image/png"),
    "jpg": ("JPEG", "image/jpeg"),
    "webp": ("WEBP", "image/webp"),
}
#: What tests made for the host to serve: name -> (bytes, content type). See `publish`.
PUBLISHED: dict[str, tuple[bytes, str]] = {}
#: What real hosts answer when a signed URL has expired or the blob is gone.
AZURE_CODES = {403: "AuthenticationFailed", 404: "BlobNotFound", 410: "BlobNotFound"}
S3_CODES = {403: "AccessDenied", 404: "NoSuchKey", 410: "NoSuchKey", 400: "ExpiredToken"}


@lru_cache(maxsize=64)
def draw_image(width: int, height: int, extension: str = "png", alpha: bool = False) -> bytes:
    """A generated-looking picture (gradient, shapes, grain), encoded as the extension says.

    Texture matters: a flat drawing compresses to nothing and would flatter the thumbnailer.
    Renders have detail at every scale, so the texture is noise at four scales (a thumbnail
    still shows the coarse ones); it is seeded by the arguments, so a URL always serves the
    same bytes.
    """
    image_format, _ = FORMATS[extension]
    seeded = random.Random(f"{width}x{height}")
    layers = []
    for step in (32, 8, 2, 1):
        small = (max(width // step, 1), max(height // step, 1))
        noise = Image.frombytes("L", small, seeded.randbytes(small[0] * small[1]))
        layers.append(noise.resize((width, height), Image.Resampling.BICUBIC))
    red, green, blue = (Image.blend(layers[i], layers[(i + 1) % 4], 0.4) for i in range(3))
    gradient = Image.linear_gradient("L").resize((width, height))
    image = Image.merge("RGB", (Image.blend(red, gradient, 0.3), green, blue))
    draw = ImageDraw.Draw(image)
    for index in range(6):
        x, y = (index * 37 % 10) * width // 10, (index * 53 % 10) * height // 10
        draw.ellipse(
            (x, y, x + width // 4, y + height // 4), fill=(40 * index, 200 - 30 * index, 120)
        )
    if alpha:
        image.putalpha(Image.linear_gradient("L").resize((width, height)))
    buffer = BytesIO()
    image.save(buffer, format=image_format, **({"quality": 90} if image_format != "PNG" else {}))
    return buffer.getvalue()


def publish(name: str, data: bytes, content_type: str = "image/png") -> str:
    """Serve `data` at /published/<name> from now on; returns that path."""
    PUBLISHED[name] = (data, content_type)
    return f"/published/{name}"


def png_header_only(width: int, height: int) -> bytes:
    """A valid PNG claiming `width` x `height` pixels with one tiny IDAT: a decompression bomb's
    header, cheap to make (a real bomb's data would only matter once decoded, which must not
    happen)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def _int(request: Request, name: str, default: int) -> int:
    return int(request.query.get(name, [default])[0])


def _float(request: Request, name: str, default: float) -> float:
    return float(request.query.get(name, [default])[0])


def route(request: Request) -> Reply | None:
    """The image host: dispatch on the path (see the module docstring)."""
    path = request.path
    if path.startswith("/img/"):
        extension = path.rsplit(".", 1)[-1]
        if extension not in FORMATS:
            return Reply(404, b"unknown image type")
        data = draw_image(
            _int(request, "w", 1024),
            _int(request, "h", 1024),
            extension,
            request.query.get("alpha") == ["1"],
        )
        return Reply(200, data, {"Content-Type": FORMATS[extension][1]})
    if path.startswith("/published/"):
        found = PUBLISHED.get(path.removeprefix("/published/"))
        if found is None:
            return Reply(404, b"nothing published here")
        return Reply(200, found[0], {"Content-Type": found[1]})
    if path == "/broken.png":
        data = draw_image(512, 512, "png")
        return Reply(200, data[: len(data) // 2], {"Content-Type": "image/png"})
    if path == "/not-an-image":
        body = b"<!DOCTYPE html><html><body>Sign in to continue</body></html>"
        return Reply(200, body, {"Content-Type": "text/html"})
    if path == "/bomb.png":
        data = png_header_only(_int(request, "w", 100_000), _int(request, "h", 100_000))
        return Reply(200, data, {"Content-Type": "image/png"})
    if path == "/big":
        return _big(request, _int(request, "bytes", 1 << 20), request.query.get("declare") == ["1"])
    if path == "/slow":
        return _slow(request, _float(request, "seconds", 5.0))
    if path == "/trickle":
        return _trickle(request, _int(request, "bytes", 100), _float(request, "interval", 0.1))
    if path == "/trickle-headers":
        interval, seconds = _float(request, "interval", 0.1), _float(request, "seconds", 30)
        return _trickle_headers(request, interval, seconds)
    if path.startswith("/status/"):
        return _error(int(path.removeprefix("/status/")), request.query.get("style", ["s3"])[0])
    if path == "/reset":
        return _reset(request)
    if path == "/redirect":
        return Reply(302, b"", {"Location": request.query["to"][0]})
    return Reply(404, b"no such path")


def _error(status: int, style: str) -> Reply:
    if style == "azure":
        code = AZURE_CODES.get(status, "ServerBusy")
        body = f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code></Error>'
        return Reply(
            status, body.encode(), {"x-ms-error-code": code, "Content-Type": "application/xml"}
        )
    if style == "s3":
        code = S3_CODES.get(status, "InternalError")
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>'
            f"{code}</Code><Message>Request has expired</Message></Error>"
        )
        return Reply(status, body.encode(), {"Content-Type": "application/xml"})
    return Reply(status, b"error", {"Content-Type": "text/plain"})


def _big(request: Request, size: int, declare: bool) -> None:
    """Stream `size` bytes that start like a PNG, in 64 KB writes."""
    handler = _one_shot(request)
    handler.send_response(200)
    handler.send_header("Content-Type", "image/png")
    if declare:
        handler.send_header("Content-Length", str(size))
    else:  # the body ends when the connection closes
        handler.send_header("Connection", "close")
    handler.end_headers()
    block = b"\x89PNG\r\n\x1a\n" + b"\x00" * (65536 - 8)
    sent = 0
    with suppress(BrokenPipeError, ConnectionResetError):  # the client hung up at its limit
        while sent < size:
            piece = block[: min(len(block), size - sent)]
            handler.wfile.write(piece)
            sent += len(piece)


def _slow(request: Request, seconds: float) -> None:
    data = draw_image(64, 64, "png")
    handler = _one_shot(request)
    handler.send_response(200)
    handler.send_header("Content-Type", "image/png")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.flush()
    time.sleep(seconds)
    with suppress(BrokenPipeError, ConnectionResetError):  # the client timed out first
        handler.wfile.write(data)


def _trickle(request: Request, size: int, interval: float) -> None:
    data = draw_image(64, 64, "png")[:size]
    handler = _one_shot(request)
    handler.send_response(200)
    handler.send_header("Content-Type", "image/png")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    with suppress(BrokenPipeError, ConnectionResetError):  # the client gave up first
        for index in range(len(data)):
            handler.wfile.write(data[index : index + 1])
            handler.wfile.flush()
            time.sleep(interval)


def _trickle_headers(request: Request, interval: float, seconds: float) -> None:
    """Written to the socket by hand: each byte is a valid part of a header line, so a client
    that waits for the blank line ending the headers never gets it, and no read times out."""
    handler = _one_shot(request)
    ends_at = time.monotonic() + seconds
    with suppress(BrokenPipeError, ConnectionResetError):  # the client gave up first
        handler.wfile.write(b"HTTP/1.1 200 OK\r\n")
        line = 0
        while time.monotonic() < ends_at:
            for byte in f"X-Slow-{line}: 1\r\n".encode():
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()
                time.sleep(interval)
            line += 1


def _one_shot(request: Request) -> BaseHTTPRequestHandler:
    """The handler, told to close after this answer: the client may hang up mid-body, so the
    connection is never read again for a next request."""
    request.handler.close_connection = True
    return request.handler


def _reset(request: Request) -> None:
    """Close with SO_LINGER 0: the kernel sends RST, as a crashed or hostile host does."""
    connection = request.handler.connection
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    request.handler.close_connection = True
    connection.close()
    return None
