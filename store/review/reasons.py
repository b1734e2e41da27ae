"""Why an image can be flagged: the list in store/data/reasons.toml, plus the team's own file.

Like the price table (store/capture/pricing.py), the list is data, not code: a team adds the
reasons of its own policy (or replaces the shipped ones) with `IMAGELOG_REVIEW_REASONS`, a
path to a file of the same shape, without a release. A flagged verdict must name one of them.
"""

from __future__ import annotations

import logging
import os
import tomllib
from functools import lru_cache
from pathlib import Path

log = logging.getLogger(__name__)

REASONS_ENV = "IMAGELOG_REVIEW_REASONS"
SHIPPED_REASONS = Path(__file__).resolve().parent.parent / "data" / "reasons.toml"
#: Width of reviews.reason.
REASON_LENGTH = 200


class ReasonListError(ValueError):
    """A reasons file that does not follow the format in reasons.toml's header."""


def load_reasons(*paths: Path) -> tuple[str, ...]:
    """The reasons of the files in order: each file's are added after the earlier ones',
    unless it says `replace = true`, which starts the list again."""
    found: dict[str, None] = {}
    for path in paths:
        replace, reasons = _read(path)
        if replace:
            found.clear()
        found.update(dict.fromkeys(reasons))
    return tuple(found)


def _read(path: Path) -> tuple[bool, list[str]]:
    try:
        document = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ReasonListError(f"{path}: cannot read the reasons file: {exc}") from exc
    reasons, replace = document.get("reasons"), document.get("replace", False)
    if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
        raise ReasonListError(f'{path}: expected reasons = ["<reason>", ...]')
    if not isinstance(replace, bool):
        raise ReasonListError(f"{path}: replace must be true or false")
    reasons = [reason.strip() for reason in reasons]
    if too_long := [reason for reason in reasons if not 0 < len(reason) <= REASON_LENGTH]:
        raise ReasonListError(
            f"{path}: a reason is 1 to {REASON_LENGTH} characters, not {too_long[0]!r}"
        )
    return replace, reasons


def configured_reasons() -> tuple[str, ...]:
    """The shipped reasons, with `$IMAGELOG_REVIEW_REASONS` merged over them when set."""
    return _cached_reasons(os.environ.get(REASONS_ENV) or None)


@lru_cache(maxsize=4)
def _cached_reasons(user_path: str | None) -> tuple[str, ...]:
    shipped = load_reasons(SHIPPED_REASONS)
    if user_path is None:
        return shipped
    try:
        return load_reasons(SHIPPED_REASONS, Path(user_path))
    except ReasonListError as exc:  # a typo in the team's file must not stop reviewing
        log.error("%s is ignored, offering the shipped reasons: %s", REASONS_ENV, exc)
        return shipped
