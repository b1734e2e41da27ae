"""Review: a reviewer's verdict on each image, kept as an append-only trail.

- `give_verdict`: approved, flagged (with one of the configured reasons) or needs another
  look, with a note, the reviewer and the time; a new `reviews` row and the image's current
  verdict, in one transaction. `trail` and `recent_changes` read the changes back, each with
  the verdict it replaced.
- `next_unreviewed` / `count_unreviewed`: the Review page's walk through a view's unreviewed
  images; `list_images`: a view's images with their verdicts (`imagelog review list`).
- `configured_reasons`: store/data/reasons.toml, extended or replaced by the file that
  `IMAGELOG_REVIEW_REASONS` names.

Names are imported on first use.
"""

from typing import TYPE_CHECKING

from store.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from store.review.listing import ImageVerdictRow, list_images
    from store.review.reasons import configured_reasons
    from store.review.verdicts import (
        Change,
        NoSuchImage,
        ReviewError,
        give_verdict,
        recent_changes,
        trail,
    )
    from store.review.walk import count_unreviewed, next_unreviewed

__all__ = [
    "Change",
    "ImageVerdictRow",
    "NoSuchImage",
    "ReviewError",
    "configured_reasons",
    "count_unreviewed",
    "give_verdict",
    "list_images",
    "next_unreviewed",
    "recent_changes",
    "trail",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "store.review.listing": ["ImageVerdictRow", "list_images"],
        "store.review.reasons": ["configured_reasons"],
        "store.review.verdicts": [
            "Change",
            "NoSuchImage",
            "ReviewError",
            "give_verdict",
            "recent_changes",
            "trail",
        ],
        "store.review.walk": ["count_unreviewed", "next_unreviewed"],
    },
)
