"""Full-size originals kept in any fsspec location: S3 and S3-compatible stores (s3fs), GCS
(gcsfs), Azure Blob (adlfs), or a local folder.

The archive is content-addressed: an original is kept at `<location>/<sha[:2]>/<sha>.<ext>`,
so a repeated image is stored once (its key is looked up before anything is uploaded) and the
row records where (`images.archive_path`, the full URL). Keys are made from the sha256 and the
format only, never from a text of the log, so no row can steer a write or a read outside the
location; a read also checks that the URL lies under the location and that the bytes still
hash to the key.

Credentials come from each store's own environment (AWS_* variables and profiles for S3,
`AWS_ENDPOINT_URL` for an S3-compatible server, GOOGLE_APPLICATION_CREDENTIALS, AZURE_STORAGE_*,
fsspec's `FSSPEC_<PROTOCOL>_<OPTION>` variables) or from `storage_options` given in code; never
from the location, which is stored and shown (`store.schema.locations`).

When the store cannot be written, the original waits in a local pending folder (the same
layout, under the data folder) so that even an image returned as base64, whose bytes exist
nowhere else, is archived later by `imagelog archive --missing`.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from store.media.fetch import DEFAULT_MAX_BYTES
from store.schema.config import default_data_dir
from store.schema.locations import location_problem

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

#: The environment variable that names the archive location.
ARCHIVE_ENV = "IMAGELOG_ARCHIVE"
#: Under the data folder: originals that wait for the store to answer again.
PENDING_FOLDER = "archive-pending"
#: Protocols that cannot take a write (http) or that would hide a second store (chains).
_REFUSED_PROTOCOLS = frozenset({"http", "https"})
#: S3 waits: a store that is down costs a save seconds, not the minutes of botocore's defaults.
S3_CONFIG = {"connect_timeout": 5, "read_timeout": 60, "retries": {"max_attempts": 2}}
_SHA256 = re.compile(r"[0-9a-f]{64}")
_KEY = re.compile(r"([0-9a-f]{2})/([0-9a-f]{64})\.([a-z0-9]{1,10})")
_EXTENSION = re.compile(r"[a-z0-9]{1,10}")


class ArchiveError(Exception):
    """An original could not be kept or read; the message says why (never with a secret)."""


class BadLocation(ArchiveError, ValueError):
    """The location cannot be an archive: a credential in it, a `..`, a read-only protocol."""


def extension(image_format: str | None) -> str:
    """The file extension of an image format as `make_thumbnail` names it (`jpeg` -> `jpg`)."""
    if image_format == "jpeg":
        return "jpg"
    if image_format and _EXTENSION.fullmatch(image_format):
        return image_format
    return "bin"


def archive_key(sha256: str, image_format: str | None) -> str:
    """`<sha[:2]>/<sha>.<ext>`: the one place an original of this content is kept."""
    if not _SHA256.fullmatch(sha256):
        raise ArchiveError("an archive key needs a sha256 of 64 lowercase hex characters")
    return f"{sha256[:2]}/{sha256}.{extension(image_format)}"


class Archive:
    """One archive location: keeps originals by content, finds them, reads them back.

    `location`: a folder path or an fsspec URL (`s3://bucket/prefix`). `storage_options`: the
    filesystem's own options (say `{"endpoint_url": ...}`), kept in memory only. `pending_dir`:
    where originals wait while the store is down (default: the data folder's
    `archive-pending`). Thread-safe; the filesystem is opened on first use, in the process
    that uses it (an Archive pickles as its location and options).
    """

    def __init__(
        self,
        location: str | os.PathLike[str],
        *,
        storage_options: Mapping[str, Any] | None = None,
        pending_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        text = os.fspath(location)
        if problem := location_problem(text):
            raise BadLocation(problem)
        if "::" in text:
            raise BadLocation("an archive location names one store, not a chain of them")
        scheme, separator, _ = text.partition("://")
        protocol = scheme.lower() if separator else "file"
        if protocol in _REFUSED_PROTOCOLS:
            raise BadLocation(f"an archive location cannot be {protocol}:// (it takes no writes)")
        if protocol == "file":
            folder = text.removeprefix("file://") if separator else text
            self.root = Path(folder).expanduser().resolve().as_uri()
        else:
            self.root = text.rstrip("/")
        self.protocol = protocol
        self.storage_options = dict(storage_options or {})
        self.pending_dir = Path(pending_dir or default_data_dir() / PENDING_FOLDER)
        self._fs: AbstractFileSystem | None = None
        self._root_path = ""
        self._lock = threading.Lock()

    @classmethod
    def configured(
        cls, location: str | os.PathLike[str] | None = None, **options: Any
    ) -> Archive | None:
        """The archive at `location`, else at `IMAGELOG_ARCHIVE`, else None (archiving off)."""
        chosen = location if location is not None else os.environ.get(ARCHIVE_ENV)
        return cls(chosen, **options) if chosen else None

    def __repr__(self) -> str:
        return f"Archive({self.root!r})"

    def __getstate__(self) -> dict[str, Any]:
        state = dict(vars(self))
        state.update(_fs=None, _root_path="", _lock=None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        vars(self).update(state)
        self._lock = threading.Lock()

    # --- keeping -------------------------------------------------------------------------

    def store(self, sha256: str, image_format: str | None, data: bytes) -> str:
        """Keep `data` under its key unless the store holds it already; returns its URL.

        Raises ArchiveError when the store cannot be reached or written.
        """
        key = archive_key(sha256, image_format)
        fs, path = self._path(key)
        try:
            if _is_local(fs):
                if self._size(fs, path) != len(data):  # absent, or torn by a crash
                    _write_atomically(Path(path), data)
            elif not _holds(fs, path):
                fs.pipe_file(path, data)  # one PUT: a reader never sees half an object
        except Exception as exc:
            raise ArchiveError(f"cannot write to {self.root}: {_describe(exc)}") from exc
        return self.url(key)

    def find(self, sha256: str, image_format: str | None) -> str | None:
        """The URL of this content's original if the store holds it, else None."""
        key = archive_key(sha256, image_format)
        fs, path = self._path(key)
        try:
            held = self._size(fs, path) is not None if _is_local(fs) else _holds(fs, path)
        except Exception as exc:
            raise ArchiveError(f"cannot read {self.root}: {_describe(exc)}") from exc
        return self.url(key) if held else None

    def url(self, key: str) -> str:
        return f"{self.root}/{key}"

    # --- reading back ----------------------------------------------------------------------

    def holds(self, url: str) -> bool:
        """Whether `url` names an original inside this archive (by its form alone)."""
        return self._key_of(url) is not None

    def read(
        self, url: str, sha256: str | None = None, *, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> bytes:
        """The original at `url`, checked: inside this archive, of the content its key (and
        `sha256`, the row's own) names, at most `max_bytes`. Raises ArchiveError otherwise."""
        key = self._key_of(url)
        if key is None:
            raise ArchiveError(f"not an original of the archive {self.root}")
        key_sha = key.split("/")[1].split(".")[0]
        if sha256 is not None and sha256 != key_sha:
            raise ArchiveError("the archived copy's key does not match the image's sha256")
        fs, path = self._path(key)
        try:
            size = self._size(fs, path)
            if size is None:
                raise ArchiveError(f"the archived copy is missing from {self.root}")
            if size > max_bytes:
                raise ArchiveError(f"the archived copy is {size} bytes, over {max_bytes}")
            data = fs.cat_file(path)
        except ArchiveError:
            raise
        except Exception as exc:
            raise ArchiveError(f"cannot read {self.root}: {_describe(exc)}") from exc
        if hashlib.sha256(data).hexdigest() != key_sha:
            raise ArchiveError("the archived copy no longer matches its sha256: it was changed")
        return bytes(data)

    # --- waiting for the store -----------------------------------------------------------------

    def keep_pending(self, sha256: str, image_format: str | None, data: bytes) -> Path:
        """Keep an original locally until the store takes it (`take_pending`)."""
        path = self.pending_dir / archive_key(sha256, image_format)
        if not path.is_file() or path.stat().st_size != len(data):
            _write_atomically(path, data)
        return path

    def pending(self, sha256: str, image_format: str | None) -> bytes | None:
        """The original waiting locally for this content, if any."""
        path = self.pending_dir / archive_key(sha256, image_format)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        return data if hashlib.sha256(data).hexdigest() == sha256 else None

    def drop_pending(self, sha256: str, image_format: str | None) -> None:
        (self.pending_dir / archive_key(sha256, image_format)).unlink(missing_ok=True)

    # --- the filesystem ------------------------------------------------------------------------

    def _path(self, key: str) -> tuple[AbstractFileSystem, str]:
        with self._lock:
            if self._fs is None:
                self._fs, self._root_path = self._open()
        return self._fs, f"{self._root_path.rstrip('/')}/{key}"

    def _open(self) -> tuple[AbstractFileSystem, str]:
        import fsspec

        options = dict(self.storage_options)
        if self.protocol in ("s3", "s3a"):
            options.setdefault("config_kwargs", S3_CONFIG)
        try:
            fs, root_path = fsspec.core.url_to_fs(self.root, **options)
        except ImportError as exc:  # the store's fsspec package (gcsfs, adlfs...) is missing
            raise ArchiveError(f"cannot open {self.root}: {exc}") from exc
        except Exception as exc:
            raise ArchiveError(f"cannot open {self.root}: {_describe(exc)}") from exc
        return fs, root_path

    @staticmethod
    def _size(fs: AbstractFileSystem, path: str) -> int | None:
        try:
            info = fs.info(path)
        except FileNotFoundError:
            return None
        return int(info.get("size") or 0)

    def _key_of(self, url: str) -> str | None:
        if url.startswith("/") and self.protocol == "file":  # a path kept before URLs were
            url = Path(url).as_uri()
        prefix = f"{self.root}/"
        if not url.startswith(prefix):
            return None
        key = url.removeprefix(prefix)
        return key if _KEY.fullmatch(key) and key[:2] == key[3:5] else None


def _holds(fs: AbstractFileSystem, path: str) -> bool:
    """Whether an object store holds `path`, in one request: a one-byte ranged GET. (`info`
    and `exists` also list the "folder" after a miss, to tell a prefix from nothing: three
    requests per new original instead of two.) An object is written whole or not at all, so
    being there is enough."""
    try:
        fs.cat_file(path, start=0, end=1)
    except FileNotFoundError:
        return False
    return True


def _is_local(fs: AbstractFileSystem) -> bool:
    from fsspec.implementations.local import LocalFileSystem

    return isinstance(fs, LocalFileSystem)


def _write_atomically(path: Path, data: bytes) -> None:
    """Write through a temporary file and a rename: a reader never sees half a file, and a
    crash leaves no torn original behind under the real name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.partial")
    try:
        partial.write_bytes(data)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def _describe(exc: BaseException) -> str:
    """`Type: first line`, with no credential: the store's libraries may put a signed URL or
    a key id into their messages."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return re.sub(r"(?i)(signature|credential|token|sig|key)=[^&\s\"']+", r"\1=***", text)
