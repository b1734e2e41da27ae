"""widen the (provider, model, created_at, id) index with the columns the Analytics page sums

Totals, per-model tables, percentiles and activity charts read status, image_count, cost_usd
and latency_ms of every matching call. Without them in an index each aggregate reads the
whole generations table, prompts and request/response JSON included (seconds at a million
calls); with them, an index-only scan of a few dozen bytes a call, already grouped by
provider and model. The Logs page keeps using the same index for its provider+model
filter: the added columns come after (created_at, id).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

NARROW = "ix_generations_provider_model_created_at_id"
WIDE = "ix_generations_provider_model_created_at_id_totals"
KEY = ["provider", "model", "created_at", "id"]
TOTALS = ["status", "image_count", "cost_usd", "latency_ms"]


def upgrade() -> None:
    op.create_index(WIDE, "generations", [*KEY, *TOTALS], unique=False)
    op.drop_index(NARROW, table_name="generations")


def downgrade() -> None:
    op.create_index(NARROW, "generations", KEY, unique=False)
    op.drop_index(WIDE, table_name="generations")
