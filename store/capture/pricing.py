"""What a call cost, from the price table in store/data/prices.toml (plus the user's own file).

The table is data, not code, so a team can read where each number comes from and add the
models and hosts it uses without a release. The rules (the table's header says them too): a
cost the record carries is kept; gpt-image calls with `usage` are priced from their tokens;
otherwise per image by quality and size; anything the table does not know stays NULL with the
reason in `cost_note`, because a guessed cost in an audit log is worse than none.
"""

from __future__ import annotations

import logging
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from store.capture.call_params import made
from store.schema.models import CostSource, Status
from store.schema.records import CallRecord

log = logging.getLogger(__name__)

PRICES_ENV = "IMAGELOG_PRICES"
SHIPPED_PRICES = Path(__file__).resolve().parent.parent / "data" / "prices.toml"
TOKEN_KINDS = frozenset({"text_input", "image_input", "image_output", "text_output"})
_SNAPSHOT = re.compile(r"-\d{4}-\d{2}-\d{2}$")
#: Providers known not to bill error responses, whatever the model (an Azure deployment name
#: hides the model, but not that a 4xx is free).
UNBILLED_ERRORS = frozenset({"openai", "azure-openai"})
#: Width of generations.cost_note.
NOTE_LENGTH = 500
#: Decimal places kept: a millionth of a dollar is below any provider's billing unit.
COST_DECIMALS = 6


class PriceTableError(ValueError):
    """A price file that does not follow the format in prices.toml's header."""


@dataclass(frozen=True)
class Price:
    cost_usd: float | None
    source: CostSource
    note: str | None = None


@dataclass(frozen=True)
class ModelPrice:
    """One `[models."..."]` entry."""

    name: str
    providers: frozenset[str] | None  # None: the price applies whichever the provider
    per_image: Mapping[str, float]  # "<quality> <size>" -> USD, "*" for any
    tokens: Mapping[str, float]  # kind -> USD per 1M tokens
    default_size: str | None
    default_quality: str | None
    source: str
    checked: str


@dataclass(frozen=True)
class PriceTable:
    models: Mapping[str, ModelPrice]
    aliases: Mapping[str, str]  # lower-case alias -> entry name

    def find(self, provider: str, model: str) -> ModelPrice | None:
        """The entry for `model` as served by `provider`: host-specific first, then general."""
        for name in _name_candidates(model):
            for key in (f"{provider.lower()}:{name}", name):
                entry = self.models.get(key) or self.models.get(self.aliases.get(key, ""))
                if entry is not None:
                    return entry
        return None


def _name_candidates(model: str) -> list[str]:
    """`model` as given, without a vendor prefix, and without a dated snapshot suffix."""
    name = model.strip().lower()
    candidates = [name]
    if "/" in name:
        candidates.append(name.rsplit("/", 1)[1])
    candidates += [_SNAPSHOT.sub("", c) for c in candidates if _SNAPSHOT.search(c)]
    return candidates


def load_price_table(*paths: Path) -> PriceTable:
    """Read price files in order; an entry in a later file replaces the same-named one."""
    entries: dict[str, ModelPrice] = {}
    aliases: dict[str, str] = {}
    for path in paths:
        for name, raw in _read_models(path).items():
            entry = _model_price(path, name, raw)
            entries[entry.name] = entry
            for alias in raw.get("aliases", []):
                if not isinstance(alias, str):
                    raise PriceTableError(f"{path}: models.{name}.aliases must be strings")
                aliases[alias.lower()] = entry.name
    return PriceTable(models=entries, aliases=aliases)


def _read_models(path: Path) -> dict[str, Any]:
    try:
        document = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PriceTableError(f"{path}: cannot read the price file: {exc}") from exc
    models = document.get("models", {})
    if not isinstance(models, dict) or not all(isinstance(v, dict) for v in models.values()):
        raise PriceTableError(f'{path}: expected [models."<name>"] tables')
    return models


def _model_price(path: Path, name: str, raw: Mapping[str, Any]) -> ModelPrice:
    where = f'{path}: models."{name}"'
    per_image = raw.get("per_image", {})
    tokens = raw.get("tokens", {})
    if not per_image and not tokens:
        raise PriceTableError(f"{where} has neither per_image nor tokens")
    for label, table in (("per_image", per_image), ("tokens", tokens)):
        if not isinstance(table, dict) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and v >= 0
            for v in table.values()
        ):
            raise PriceTableError(f"{where}.{label} must map names to non-negative numbers")
    if unknown := set(tokens) - TOKEN_KINDS:
        raise PriceTableError(f"{where}.tokens has unknown kinds {sorted(unknown)}")
    for key in per_image:
        if key != "*" and len(key.split()) != 2:
            raise PriceTableError(f'{where}.per_image key "{key}" is not "<quality> <size>"')
    providers = raw.get("providers")
    return ModelPrice(
        name=name.lower(),
        providers=frozenset(p.lower() for p in providers) if providers is not None else None,
        per_image={key.lower(): float(value) for key, value in per_image.items()},
        tokens={kind: float(value) for kind, value in tokens.items()},
        default_size=raw.get("default_size"),
        default_quality=raw.get("default_quality"),
        source=str(raw.get("source", "")),
        checked=str(raw.get("checked", "")),
    )


def price_table() -> PriceTable:
    """The shipped table, with `$IMAGELOG_PRICES` merged over it when set."""
    return _cached_table(os.environ.get(PRICES_ENV) or None)


@lru_cache(maxsize=4)
def _cached_table(user_path: str | None) -> PriceTable:
    shipped = load_price_table(SHIPPED_PRICES)
    if user_path is None:
        return shipped
    try:
        return load_price_table(SHIPPED_PRICES, Path(user_path))
    except PriceTableError as exc:  # pricing must never stop a record from being written
        log.error("%s is ignored, pricing with the shipped table: %s", PRICES_ENV, exc)
        return shipped


def price_call(record: CallRecord, table: PriceTable | None = None) -> Price:
    """The cost of one call, how it was worked out, and (when unknown or notable) why."""
    price = _price_call(record, table or price_table())
    if price.note and len(price.note) > NOTE_LENGTH:  # the column's width
        return Price(price.cost_usd, price.source, price.note[: NOTE_LENGTH - 1] + "…")
    return price


def _price_call(record: CallRecord, table: PriceTable) -> Price:
    if record.cost_usd is not None:
        source = (
            record.cost_source if record.cost_source not in (None, CostSource.unknown) else None
        )
        return Price(record.cost_usd, source or CostSource.reported, record.cost_note)
    provider = record.provider.lower()
    entry = table.find(provider, record.model)
    priced_here = entry is not None and (entry.providers is None or provider in entry.providers)
    if record.status is Status.error and (priced_here or provider in UNBILLED_ERRORS):
        return Price(0.0, CostSource.per_image, "error response: no image was generated or billed")
    if entry is None:
        return Price(None, CostSource.unknown, _unknown_model_note(record))
    if not priced_here:
        listed = ", ".join(sorted(entry.providers or ()))
        return Price(
            None,
            CostSource.unknown,
            f"{entry.name} is priced for {listed}, not for provider {record.provider!r}",
        )
    if not (record.usage_json and entry.tokens):
        return _price_per_image(entry, record)
    tokens = _price_tokens(entry, record)
    if tokens.cost_usd is not None:
        return tokens
    per_image = _price_per_image(entry, record)
    if per_image.cost_usd is None:  # say why neither way worked
        return Price(None, CostSource.unknown, f"{tokens.note}; {per_image.note}")
    return per_image


def _unknown_model_note(record: CallRecord) -> str:
    if not record.model:
        return "no model recorded"
    note = f"model {record.model!r} is not in the price table"
    if record.provider.lower().startswith("azure"):
        note += " (an Azure deployment name does not say which model it runs)"
    return note


def _price_per_image(entry: ModelPrice, record: CallRecord) -> Price:
    images = len(record.images)
    if images == 0:
        return Price(None, CostSource.unknown, "the call succeeded but recorded no images")
    quality = _param(record, "quality") or entry.default_quality or "*"
    size = _param(record, "size") or entry.default_size or "*"
    for key in (f"{quality} {size}", f"{quality} *", f"* {size}", "*"):
        if key in entry.per_image:
            unit = entry.per_image[key]
            cost = round(unit * images, COST_DECIMALS)
            note = f"{entry.name} {key}: ${unit:g} x {images} image(s); {_cited(entry)}"
            return Price(cost, CostSource.per_image, note)
    given = f"quality {_shown(quality)}, size {_shown(size)}"
    return Price(None, CostSource.unknown, f"{entry.name} has no per-image price for {given}")


def _shown(value: str) -> str:
    return "(not given)" if value == "*" else repr(value)


def _param(record: CallRecord, name: str) -> str | None:
    value = made(record.params_json, name)
    return str(value).strip().lower() if value not in (None, "") else None


def _price_tokens(entry: ModelPrice, record: CallRecord) -> Price:
    """Price `usage` token by token; Price(None, ...) when usage cannot be split as needed."""
    counts = _token_counts(record)
    if counts is None:
        return Price(None, CostSource.unknown, "usage does not split text and image tokens")
    missing = [kind for kind, count in counts.items() if count and kind not in entry.tokens]
    if missing:
        return Price(None, CostSource.unknown, f"{entry.name} has no token price for {missing}")
    cost = sum(entry.tokens[kind] * count for kind, count in counts.items() if count) / 1e6
    spelled = ", ".join(f"{count} {kind}" for kind, count in counts.items() if count)
    note = f"{entry.name} tokens: {spelled}; {_cited(entry)}"
    cached = _int((record.usage_json or {}).get("input_tokens_details", {}).get("cached_tokens"))
    if cached:
        note += f"; {cached} cached input tokens priced as uncached"
    return Price(round(cost, COST_DECIMALS), CostSource.tokens, note)


def _token_counts(record: CallRecord) -> dict[str, int] | None:
    """OpenAI images `usage` as counts per token kind, or None when the split is unknown."""
    usage = record.usage_json or {}
    input_tokens, output_tokens = _int(usage.get("input_tokens")), _int(usage.get("output_tokens"))
    if input_tokens is None and output_tokens is None:
        return None
    input_details = usage.get("input_tokens_details") or {}
    if "text_tokens" in input_details or "image_tokens" in input_details:
        text_in = _int(input_details.get("text_tokens")) or 0
        image_in = _int(input_details.get("image_tokens")) or 0
    elif record.operation == "generate":  # a prompt only: every input token is text
        text_in, image_in = input_tokens or 0, 0
    else:  # edits and variations also send images; without the split, tokens can't be priced
        return None
    output_details = usage.get("output_tokens_details") or {}
    if "image_tokens" in output_details or "text_tokens" in output_details:
        image_out = _int(output_details.get("image_tokens")) or 0
        text_out = _int(output_details.get("text_tokens")) or 0
    else:
        image_out, text_out = output_tokens or 0, 0
    return {
        "text_input": text_in,
        "image_input": image_in,
        "image_output": image_out,
        "text_output": text_out,
    }


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _cited(entry: ModelPrice) -> str:
    return f"prices: {entry.source}, checked {entry.checked}"
