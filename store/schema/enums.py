"""The log's closed vocabularies: a call's status and operation, an image's URL state, a cost's
source, a reviewer's verdict.

They live apart from the tables (store/schema/models.py re-exports them) so that naming them
loads no SQLAlchemy: `imagelog --help` lists the status and URL-state choices from here.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    ok = "ok"
    error = "error"


class Operation(StrEnum):
    """Which images endpoint was called."""

    generate = "generate"
    edit = "edit"
    variation = "variation"


class UrlState(StrEnum):
    """What we know of an image's hosted URL."""

    live = "live"  # answered 200/206 at last_checked_at
    expired = "expired"  # answered 403/404/410, or its signature's expiry has passed
    unknown = "unknown"  # never checked, or the last check failed transiently
    none = "none"  # the image came as b64 bytes: there is no hosted URL


class CostSource(StrEnum):
    """How cost_usd was worked out; `unknown` rows keep cost_usd NULL."""

    per_image = "per_image"  # the price table's per-image price x images
    tokens = "tokens"  # the response's `usage` x the price table's token prices
    reported = "reported"  # the caller or the imported record gave the cost
    unknown = "unknown"  # no price known: cost_note says why


class Verdict(StrEnum):
    """A reviewer's judgement of one image (store/review/); a flagged image carries a reason."""

    approved = "approved"
    flagged = "flagged"
    needs_another_look = "needs_another_look"


#: The verdict filter's value for an image no one has judged yet. Not a `Verdict`: no review
#: row ever says it; it is what `images.verdict` IS NULL means.
UNREVIEWED = "unreviewed"


class Credentials(StrEnum):
    """What an image's C2PA manifest (its content credentials) says, as c2pa-python judges it.

    The library's verdict is the state: an intact manifest signed by a certificate outside
    every trust list is `valid` (its `signingCredential.untrusted` code is kept as a note, not
    made a failure), one whose chain ends in a configured trust anchor is `trusted`.
    """

    trusted = "trusted"  # intact, and signed under a trust anchor the log was given
    valid = "valid"  # intact and well signed; the signer is not in any loaded trust list
    invalid = "invalid"  # present but fails validation (tampered, broken, unreadable)
    none = "none"  # the image carries no manifest at all


#: The credentials filter's value for an image no manifest reading has been done for (its
#: bytes were never at hand). Not a `Credentials`: it is what `images.c2pa_state` IS NULL means.
UNREAD = "unread"
