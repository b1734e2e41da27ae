"""The provider lifetime table: how long an unsigned image URL lives after the call.

Unsigned hosts (replicate.delivery, ...) carry no expiry of their own, so the only thing we know
is what the provider documents. The table ships in `store/data/lifetimes.toml`; a team extends or
overrides it with its own TOML files named in `IMAGELOG_LIFETIMES`, without touching the package.
The table is read once per value of that variable: `predict_expiry` runs for every recorded
image, on the writer's hot path.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from functools import lru_cache
from pathlib import Path

from store.expiry.prediction import PROVIDER_LIFETIME, Prediction

LIFETIMES_ENV = "IMAGELOG_LIFETIMES"
BUILTIN_TABLE = Path(__file__).resolve().parent.parent / "data" / "lifetimes.toml"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class LifetimesError(ValueError):
    """A lifetimes file that cannot be used; the message names the file and the entry."""


@dataclass(frozen=True)
class Lifetime:
    name: str
    lifetime: timedelta
    hosts: tuple[str, ...]  # lower-case globs
    providers: tuple[str, ...]  # lower-case names
    source: str


def lifetime_expiry(host: str | None, provider: str, created_at: datetime) -> Prediction | None:
    """`created_at` + the matching entry's lifetime (host match first, then provider), or None."""
    entry = find_lifetime(host, provider)
    if entry is None:
        return None
    return Prediction(created_at + entry.lifetime, PROVIDER_LIFETIME)


def find_lifetime(host: str | None, provider: str) -> Lifetime | None:
    table = load_table(os.environ.get(LIFETIMES_ENV, ""))
    host = (host or "").lower().rstrip(".")
    if host:
        for entry in table:
            if any(fnmatchcase(host, pattern) for pattern in entry.hosts):
                return entry
    provider = provider.lower()
    return next((entry for entry in table if provider in entry.providers), None)


@lru_cache(maxsize=8)
def load_table(extra_paths: str = "") -> tuple[Lifetime, ...]:
    """The built-in table with the files in `extra_paths` (os.pathsep-separated) laid over it."""
    entries = _read_file(BUILTIN_TABLE)
    for raw in filter(None, extra_paths.split(os.pathsep)):
        entries.update(_read_file(Path(raw).expanduser()))
    return tuple(entries.values())


def parse_duration(value: object) -> timedelta:
    """`"10m"`, `"24h"`, `"1d"`, `"90s"` or a number of seconds."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value.lower())):
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    else:
        raise ValueError(f"not a duration: {value!r} (use e.g. 90s, 10m, 24h, 7d)")
    if seconds <= 0:
        raise ValueError(f"a lifetime must be positive, not {value!r}")
    return timedelta(seconds=seconds)


def _read_file(path: Path) -> dict[str, Lifetime]:
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise LifetimesError(f"{LIFETIMES_ENV}: cannot read {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise LifetimesError(f"{path}: not valid TOML: {exc}") from exc
    entries = {}
    for name, fields in document.items():
        if not isinstance(fields, dict):
            raise LifetimesError(f"{path}: [{name}] must be a table with a lifetime")
        try:
            entries[name] = Lifetime(
                name=name,
                lifetime=parse_duration(fields["lifetime"]),
                hosts=_names(fields.get("hosts", [])),
                providers=_names(fields.get("providers", [name])),
                source=str(fields.get("source", "")),
            )
        except (KeyError, ValueError, TypeError) as exc:
            detail = "lifetime is missing" if isinstance(exc, KeyError) else str(exc)
            raise LifetimesError(f"{path}: [{name}]: {detail}") from exc
    return entries


def _names(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise TypeError(f"expected a list of strings, got {value!r}")
    return tuple(item.lower() for item in value)
