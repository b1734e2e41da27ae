"""INTERIM (being replaced by the expiry helper)."""

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Prediction:
    expires_at: datetime
    source: str


def predict_expiry(url: str, provider: str, created_at: datetime) -> Prediction | None:
    return None
