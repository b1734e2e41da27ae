"""URL expiry: predict when a hosted image URL dies, probe whether it still works, describe it.

- `predict_expiry` (no network): the expiry a signed URL carries, else the provider's known
  lifetime from the call's time, else None. `store.capture.writer` calls it for every image.
- `store.expiry.probe`: the async prober (it classifies answers with `store.media.url_answers`);
  `check_images` probes the due rows and updates them.
- `expire_lapsed` (no network): marks the URLs past their predicted expiry expired
  (predicted); the dashboard, the CLI's reads and `check` run it first.
- `url_standing` / `describe_url_state`: what a page says of a URL ("expired (predicted) ·
  expiry passed 9 min ago", "expired · 404 at 10:32 UTC (checked)").

Names are imported on first use: predicting an expiry must not load httpx and Pillow.
"""

from typing import TYPE_CHECKING

from store.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from store.expiry.check import CheckOptions, CheckSummary, check_images, check_images_async
    from store.expiry.describe import UrlStanding, describe_url_state, url_standing
    from store.expiry.lapse import Lapsed, expire_lapsed
    from store.expiry.predict import predict_expiry
    from store.expiry.prediction import PROVIDER_LIFETIME, Prediction
    from store.expiry.signed_urls import signed_expiry

__all__ = [
    "PROVIDER_LIFETIME",
    "CheckOptions",
    "CheckSummary",
    "Lapsed",
    "Prediction",
    "UrlStanding",
    "check_images",
    "check_images_async",
    "describe_url_state",
    "expire_lapsed",
    "predict_expiry",
    "signed_expiry",
    "url_standing",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "store.expiry.check": [
            "CheckOptions",
            "CheckSummary",
            "check_images",
            "check_images_async",
        ],
        "store.expiry.describe": ["UrlStanding", "describe_url_state", "url_standing"],
        "store.expiry.lapse": ["Lapsed", "expire_lapsed"],
        "store.expiry.predict": ["predict_expiry"],
        "store.expiry.prediction": ["PROVIDER_LIFETIME", "Prediction"],
        "store.expiry.signed_urls": ["signed_expiry"],
    },
)
