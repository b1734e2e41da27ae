"""`predict_expiry`, with no network: what `store.capture.writer` asks of every image URL."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

from store.expiry.lifetimes import lifetime_expiry
from store.expiry.prediction import Prediction
from store.expiry.signed_urls import signed_expiry
from store.schema.models import as_utc


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
