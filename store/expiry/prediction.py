"""What a prediction is: when a URL stops working, and how we know.

Kept apart from the parsers and the lifetime table so both can return it without importing
each other, and so `store.capture.writer` depends on one small type. What a passed expiry
means for a URL's state (expired, predicted) is decided here too, in one pure rule that the
sweep (store/expiry/lapse.py) writes in SQL and the pages read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from store.schema.enums import UrlState

#: `Prediction.source` for an expiry taken from the provider's known lifetime (an estimate);
#: every other source names a signature format, whose expiry the host enforces.
PROVIDER_LIFETIME = "provider-lifetime"


@dataclass(frozen=True)
class Prediction:
    """`expires_at` is aware UTC; `source` names how it was found (e.g. "azure-sas");
    `not_before`, when the signature has a start time, is the moment it becomes valid."""

    expires_at: datetime
    source: str
    not_before: datetime | None = None

    @property
    def is_signed(self) -> bool:
        """True when the URL's own signature carries the expiry: past it, no host can serve it."""
        return self.source != PROVIDER_LIFETIME


#: `images.last_error_code` of a URL marked expired because its expiry passed, with no request
#: made: these two codes are what makes an "expired" a prediction rather than a probe's answer.
#: A signed URL's signature is void past its expiry (no host serves it) ...
SIGNATURE_EXPIRED = "signed-expiry-passed"
#: ... while a provider's known lifetime (or an expiry imported without its source) is an
#: estimate, which `check --due` confirms with one probe.
ESTIMATE_PASSED = "estimated-expiry-passed"
PREDICTED_EXPIRY_CODES = frozenset({SIGNATURE_EXPIRED, ESTIMATE_PASSED})


def predicted_code(expires_source: str | None) -> str:
    """The code a URL whose expiry (found by `expires_source`) has passed is marked with."""
    signed = expires_source is not None and expires_source != PROVIDER_LIFETIME
    return SIGNATURE_EXPIRED if signed else ESTIMATE_PASSED


def is_predicted_expired(url_state: str | None, last_error_code: str | None) -> bool:
    """Whether a stored "expired" comes from the URL's expiry alone (no probe has said so)."""
    return url_state == UrlState.expired and last_error_code in PREDICTED_EXPIRY_CODES


def has_lapsed(
    url_state: str | None,
    expires_at: datetime | None,
    last_checked_at: datetime | None,
    now: datetime,
) -> bool:
    """Whether a live or unknown URL is past its predicted expiry with no probe since to say it
    still works: it must read expired (predicted). `store.expiry.lapse` sweeps exactly these
    rows in SQL; pages apply the same rule to rows read before the sweep reached them.

    A live URL a probe found working *after* its expiry (a provider lifetime is an estimate)
    stays live; an unknown one (never checked, or its last check failed) has nothing to say
    against its expiry. Times must be aware UTC.
    """
    if expires_at is None or expires_at > now:
        return False
    if url_state == UrlState.unknown:
        return True
    return url_state == UrlState.live and (last_checked_at is None or last_checked_at < expires_at)
