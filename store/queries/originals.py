"""The archived original of an image, read for the dashboard: through the store's own client,
never by handing a viewer's browser the store's address (a bucket URL would need the store to
be public, or a signed link that leaks).

Only the archive this process is configured with (`IMAGELOG_ARCHIVE`) is read, and only at a
key made of the image's sha256; the bytes must hash to it. A row's `archive_path` comes from
recorders and imports, so it names where to look, never what may be read.
"""

from __future__ import annotations

from store.media.archive import ARCHIVE_ENV, Archive, ArchiveError

__all__ = ["ARCHIVE_ENV", "ArchiveError", "archived_original"]


def archived_original(archive_path: str, sha256: str | None) -> bytes:
    """The original kept at `archive_path`, checked against `sha256`; ArchiveError says why
    it cannot be had (no archive configured here, kept elsewhere, missing, changed)."""
    archive = Archive.configured()
    if archive is None:
        raise ArchiveError(
            "this dashboard reads no archive: start it with IMAGELOG_ARCHIVE set to the "
            "location the recorders archive to"
        )
    if not archive.holds(archive_path):
        raise ArchiveError(
            f"kept outside this dashboard's archive ({archive.root}): start it with "
            "IMAGELOG_ARCHIVE set to that location to show it"
        )
    return archive.read(archive_path, sha256)
