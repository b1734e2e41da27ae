"""Pricing from the shipped price table and a user's own file: per image, from tokens, reported,
and NULL with a reason whenever the table does not know."""

from __future__ import annotations

import logging
import tomllib

import pytest
from sqlalchemy import select

from store.capture.pricing import (
    NOTE_LENGTH,
    PRICES_ENV,
    SHIPPED_PRICES,
    Price,
    PriceTableError,
    load_price_table,
    price_call,
    price_table,
)
from store.capture.writer import insert_calls
from store.schema.models import CostSource, Generation
from store.schema.records import CallRecord, ImageRecord

URL = "https://images.example.com/a.png"


def call(model: str, *, provider: str = "openai", images: int = 1, **fields) -> CallRecord:
    return CallRecord(
        provider=provider, model=model, images=[ImageRecord(url=URL)] * images, **fields
    )


def gpt_image_usage(text_in: int, image_in: int, image_out: int) -> dict:
    return {
        "input_tokens": text_in + image_in,
        "output_tokens": image_out,
        "total_tokens": text_in + image_in + image_out,
        "input_tokens_details": {"text_tokens": text_in, "image_tokens": image_in},
    }


def test_every_shipped_entry_cites_a_source_and_a_date():
    raw = tomllib.loads(SHIPPED_PRICES.read_text())["models"]

    table = load_price_table(SHIPPED_PRICES)

    assert len(table.models) == len(raw) >= 20
    for entry in table.models.values():
        assert entry.source, entry.name
        assert entry.checked.startswith("2026-"), entry.name


@pytest.mark.parametrize(
    ("model", "params", "images", "cost"),
    [
        ("dall-e-3", {"size": "1792x1024", "quality": "hd"}, 2, 0.24),
        ("dall-e-3", {}, 1, 0.04),  # the API's defaults: standard, 1024x1024
        ("dall-e-2", {"size": "512x512", "quality": "standard"}, 3, 0.054),
        ("gpt-image-1", {"size": "1536x1024", "quality": "medium"}, 1, 0.063),
        ("gpt-image-1-mini", {"size": "1024x1024", "quality": "low"}, 4, 0.02),
    ],
)
def test_openai_image_is_priced_per_image_by_quality_and_size(model, params, images, cost):
    price = price_call(call(model, params=params, images=images))

    assert price.source is CostSource.per_image
    assert price.cost_usd == pytest.approx(cost)
    assert model in price.note


def test_gpt_image_with_usage_is_priced_from_its_tokens():
    record = call(
        "gpt-image-1",
        params={"size": "1024x1024", "quality": "high"},
        usage=gpt_image_usage(text_in=50, image_in=0, image_out=4160),
    )

    price = price_call(record)

    assert price.source is CostSource.tokens
    assert price.cost_usd == pytest.approx((50 * 5.00 + 4160 * 40.00) / 1e6)
    assert "50 text_input, 4160 image_output" in price.note


def test_edit_prices_input_image_tokens_apart_from_text():
    record = call("gpt-image-1-mini", operation="edit", usage=gpt_image_usage(100, 1000, 1056))

    price = price_call(record)

    assert price.cost_usd == pytest.approx((100 * 2.00 + 1000 * 2.50 + 1056 * 8.00) / 1e6)


def test_edit_whose_usage_does_not_split_text_and_images_falls_back_to_per_image():
    usage = {"input_tokens": 1100, "output_tokens": 1056, "total_tokens": 2156}
    record = call(
        "gpt-image-1",
        operation="edit",
        usage=usage,
        params={"size": "1024x1024", "quality": "medium"},
    )

    price = price_call(record)

    assert (price.source, price.cost_usd) == (CostSource.per_image, 0.042)


def test_auto_size_without_usage_stays_unknown_with_the_reason():
    price = price_call(call("gpt-image-1", params={"size": "auto", "quality": "high"}))

    assert price.cost_usd is None
    assert price.source is CostSource.unknown
    assert price.note == "gpt-image-1 has no per-image price for quality 'high', size 'auto'"


@pytest.mark.parametrize(
    "model", ["gpt-image-1-2025-04-15", "openai/gpt-image-1", "GPT-Image-1", " gpt-image-1 "]
)
def test_snapshot_vendor_prefix_and_case_find_the_base_model(model):
    price = price_call(call(model, params={"size": "1024x1024", "quality": "low"}))

    assert price.cost_usd == 0.011


def test_unknown_model_stays_null_with_the_model_named():
    price = price_call(call("mystery-diffusion-9", provider="together"))

    assert (price.cost_usd, price.source) == (None, CostSource.unknown)
    assert price.note == "model 'mystery-diffusion-9' is not in the price table"


def test_azure_deployment_name_is_unknown_and_says_why():
    price = price_call(call("prod-images-eastus", provider="azure-openai"))

    assert price.cost_usd is None
    assert "Azure deployment name" in price.note


def test_model_priced_for_another_host_is_not_priced_here():
    price = price_call(call("flux-kontext-pro", provider="fal"))

    assert price.cost_usd is None
    assert price.note == "flux-kontext-pro is priced for bfl, not for provider 'fal'"


@pytest.mark.parametrize(
    ("provider", "model", "cost"),
    [
        ("replicate", "black-forest-labs/flux-schnell", 0.012),
        ("replicate", "black-forest-labs/flux-1.1-pro", 0.16),
        ("bfl", "flux-pro-1.1-ultra", 0.24),
        ("stability", "sd3.5-large", 0.26),
        ("stability", "ultra", 0.32),
        ("google", "imagen-4.0-fast-generate-001", 0.08),
        ("xai", "grok-imagine-image", 0.08),
        ("together", "black-forest-labs/FLUX.1-schnell", 0.0108),
    ],
)
def test_other_providers_are_priced_per_image(provider, model, cost):
    price = price_call(call(model, provider=provider, images=4))

    assert price.cost_usd == pytest.approx(cost)


def test_reported_cost_is_kept_as_reported():
    record = call("mystery-diffusion-9", cost_usd=0.5, cost_note="from the invoice")

    price = price_call(record)

    assert price == Price(0.5, CostSource.reported, "from the invoice")


def test_imported_record_keeps_how_its_cost_was_worked_out():
    record = call("dall-e-3", cost_usd=0.04, cost_source=CostSource.per_image)

    assert price_call(record).source is CostSource.per_image


@pytest.mark.parametrize(("provider", "model"), [("openai", "dall-e-3"), ("openai", "unheard-of")])
def test_error_response_costs_nothing(provider, model):
    record = CallRecord(provider=provider, model=model, status="error", error="content_policy")

    price = price_call(record)

    assert (price.cost_usd, price.note) == (0.0, "error response: no image was generated or billed")


def test_error_from_an_unknown_model_elsewhere_stays_unknown():
    record = CallRecord(provider="somehost", model="unheard-of", status="error", error="500")

    assert price_call(record).cost_usd is None


def test_successful_call_without_images_is_not_priced_at_zero():
    price = price_call(call("dall-e-3", images=0))

    assert price.cost_usd is None
    assert price.note == "the call succeeded but recorded no images"


def test_long_note_is_cut_to_the_column_width():
    price = price_call(call("dall-e-3", cost_usd=0.04, cost_note="x" * 600))

    assert len(price.note) == NOTE_LENGTH


def test_user_price_file_adds_models_and_replaces_shipped_entries(tmp_path, monkeypatch):
    user_file = tmp_path / "prices.toml"
    user_file.write_text(
        """
[models."dall-e-3"]
source = "our negotiated rate"
checked = "2026-11-01"
aliases = ["prod-images-eastus"]
per_image = { "*" = 0.03 }

[models."together:black-forest-labs/flux.1-schnell"]
source = "together invoice"
checked = "2026-11-01"
per_image = { "*" = 0.002 }
"""
    )
    monkeypatch.setenv(PRICES_ENV, str(user_file))

    deployment = price_call(call("prod-images-eastus", provider="azure-openai", images=2))
    together = price_call(call("black-forest-labs/FLUX.1-schnell", provider="together"))
    untouched = price_call(call("dall-e-2", params={"size": "256x256"}))

    assert (deployment.cost_usd, deployment.source) == (0.06, CostSource.per_image)
    assert "our negotiated rate" in deployment.note
    assert together.cost_usd == 0.002
    assert untouched.cost_usd == 0.016


def test_unreadable_user_price_file_is_logged_and_the_shipped_table_used(
    tmp_path, monkeypatch, caplog
):
    user_file = tmp_path / "broken.toml"
    user_file.write_text("[models.dall-e-3\nper_image = 1")
    monkeypatch.setenv(PRICES_ENV, str(user_file))

    with caplog.at_level(logging.ERROR):
        table = price_table()

    assert "dall-e-3" in table.models
    assert f"{PRICES_ENV} is ignored" in caplog.text
    assert "broken.toml" in caplog.text


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('source = "x"', "has neither per_image nor tokens"),
        ('per_image = { "*" = -1 }', "non-negative numbers"),
        ('per_image = { "1024x1024" = 0.1 }', 'is not "<quality> <size>"'),
        ("tokens = { audio_output = 1.0 }", "unknown kinds"),
    ],
)
def test_invalid_price_entry_is_refused_with_a_clear_message(tmp_path, entry, message):
    path = tmp_path / "prices.toml"
    path.write_text(f'[models."my-model"]\n{entry}\n')

    with pytest.raises(PriceTableError, match=message):
        load_price_table(path)


def test_written_generation_row_carries_cost_source_and_note(engine):
    records = [
        call("dall-e-3", params={"size": "1024x1792", "quality": "hd"}),
        call("mystery-diffusion-9", provider="together"),
    ]

    insert_calls(engine, records)

    with engine.connect() as connection:
        rows = connection.execute(
            select(
                Generation.model, Generation.cost_usd, Generation.cost_source, Generation.cost_note
            ).order_by(Generation.model)
        ).all()
    assert [(row.model, row.cost_usd, row.cost_source) for row in rows] == [
        ("dall-e-3", 0.12, "per_image"),
        ("mystery-diffusion-9", None, "unknown"),
    ]
    assert rows[1].cost_note == "model 'mystery-diffusion-9' is not in the price table"
