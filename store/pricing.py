"""INTERIM (being replaced by the pricing helper): cost as reported, else unknown."""

from dataclasses import dataclass

from store.models import CostSource
from store.records import CallRecord


@dataclass(frozen=True)
class Price:
    cost_usd: float | None
    source: CostSource
    note: str | None = None


def price_call(record: CallRecord) -> Price:
    if record.cost_usd is not None:
        return Price(record.cost_usd, CostSource.reported)
    return Price(None, CostSource.unknown, "no price table yet")
