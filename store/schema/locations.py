"""Where an archived original is kept: a location that may be stored in the log and shown.

An archive location is a folder path or an fsspec URL (`s3://bucket/prefix`, `gs://...`,
`abfs://...`, `file:///...`). The log keeps it in `images.archive_path`, exports carry it, and
the dashboard shows it: so it must never hold a credential. Credentials come from the store's
own environment (AWS_* variables, GOOGLE_APPLICATION_CREDENTIALS, AZURE_STORAGE_*, ...). A
location with a password in it, or a query string (where SAS tokens and signatures travel),
is refused, and the refusal never repeats the location (it would print the secret).

Dot segments are refused too: `s3://bucket/prefix/../other` must not pass for a place inside
`s3://bucket/prefix`.
"""

from __future__ import annotations

from urllib.parse import urlsplit

#: A scheme as RFC 3986 spells it, and long enough not to be a Windows drive letter.
_MIN_SCHEME = 2


def location_problem(location: str) -> str | None:
    """Why `location` may not be kept or used as an archive location, or None when it may.

    The reason names the rule broken, never the location itself.
    """
    if not location.strip():
        return "an archive location is empty"
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in location):
        return "an archive location holds control characters"
    scheme, separator, rest = location.partition("://")
    if separator and len(scheme) >= _MIN_SCHEME:
        parts = urlsplit(location)
        netloc = rest.split("/", 1)[0]
        if ":" in netloc.rpartition("@")[0] or parts.password is not None:
            return (
                "an archive location carries no password: give credentials through the "
                "store's environment (AWS_ACCESS_KEY_ID, ...), never in the location"
            )
        if parts.query or parts.fragment or "?" in location or "#" in location:
            return (
                "an archive location takes no query string (tokens and signatures travel "
                "there): give credentials through the store's environment"
            )
        path = parts.path
    else:
        path = location
    if any(segment in (".", "..") for segment in path.replace("\\", "/").split("/")):
        return "an archive location has no '.' or '..' segments"
    return None
