"""URL expiry: predict when a hosted image URL dies, probe whether it still works, describe it.

- `predict_expiry` (no network): the expiry a signed URL carries, else the provider's known
  lifetime from the call's time, else None. `store.capture.writer` calls it for every image.
- `store.expiry.probe`: the async prober (it classifies answers with `store.media.url_answers`);
  `check_images` probes the due rows and updates them.
- `describe_url_state`: the dashboard's "live · expires in 23 min" text.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

from store.expiry.check import CheckOptions, CheckSummary, check_images, check_images_async
from store.expiry.describe import describe_url_state
from store.expiry.lifetimes import lifetime_expiry
from store.expiry.prediction import PROVIDER_LIFETIME, Prediction
from store.expiry.signed_urls import signed_expiry
from store.schema.models import as_utc

__all__ = [
    "PROVIDER_LIFETIME",
    "CheckOptions",
    "CheckSummary",
    "Prediction",
    "check_images",
    "check_images_async",
    "describe_url_state",
    "predict_expiry",
    "signed_expiry",
]


def predict_expiry(url: str, provider: str, created_at: datetime) -> Prediction | None:
    """When `url` stops working: its signed expiry, else `created_at` + the provider's lifetime.

    None when neither is known: a NULL expiry is honest, a guessed one would mark live images
    expired (or hide dead ones) on the dashboard.
    """
    created_at = as_utc(created_at)  # the log's times are UTC; a naive one is taken as such
    if prediction := signed_expiry(url):
        return prediction
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    return lifetime_expiry(host, provider, created_at)
