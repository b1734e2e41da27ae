"""What a prediction is: when a URL stops working, and how we know.

Kept apart from the parsers and the lifetime table so both can return it without importing
each other, and so `store.capture.writer` depends on one small type.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

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
