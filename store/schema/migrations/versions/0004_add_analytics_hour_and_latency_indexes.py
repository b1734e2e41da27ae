"""add the indexes the Analytics page reads its exact figures from

At a million calls the Analytics page's aggregates took seconds each: activity over time
grouped by an expression of created_at (a sort of every call), and latency p50/p95 sorted every
latency of a group. These indexes hold the calls already in the order those figures need:

- (provider, model, <hour of created_at>, created_at, status, image_count, cost_usd,
  latency_ms): one index-only pass, with no sort, groups the calls by provider, model and UTC
  hour; every total, per-provider and per-model table and time chart is a sum of those rows.
  The hour is an expression (text on SQLite, a timestamp on PostgreSQL), so the index is
  created per backend; the queries use the same expression text (HOUR_EXPRESSIONS).
- (provider, model, latency_ms, ...) and (provider, latency_ms, ...): each group's latencies in
  order, so a percentile is the k-th entry of an index range (LIMIT 2 OFFSET k), not a sort.
  created_at, status and cost_usd (and model) ride along so the page's date, status and cost
  filters are checked in the index too.

PostgreSQL keeps statistics of an expression index's values only after ANALYZE; without them
it expects a million hours and plans the grouping as a sort.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

#: The UTC hour of `created_at` per backend: 'YYYY-MM-DD HH' of SQLite's ISO text (every
#: row is written by SQLAlchemy in one fixed-width format), a timestamp on PostgreSQL.
HOUR_EXPRESSIONS = {
    "sqlite": "substr(created_at, 1, 13)",
    "postgresql": "date_trunc('hour', created_at AT TIME ZONE 'UTC')",
}
HOURLY = "ix_generations_provider_model_hour_totals"
HOURLY_TAIL = ["created_at", "status", "image_count", "cost_usd", "latency_ms"]
#: name -> columns
LATENCY_INDEXES = {
    "ix_generations_provider_model_latency_ms": [
        *("provider", "model", "latency_ms"),
        *("created_at", "status", "cost_usd"),
    ],
    "ix_generations_provider_latency_ms": [
        *("provider", "latency_ms", "model"),
        *("created_at", "status", "cost_usd"),
    ],
}


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    hour = sa.text(HOUR_EXPRESSIONS[dialect])
    op.create_index(HOURLY, "generations", ["provider", "model", hour, *HOURLY_TAIL])
    for name, columns in LATENCY_INDEXES.items():
        op.create_index(name, "generations", columns, unique=False)
    if dialect == "postgresql":
        op.execute("ANALYZE generations")


def downgrade() -> None:
    for name in LATENCY_INDEXES:
        op.drop_index(name, table_name="generations")
    op.drop_index(HOURLY, table_name="generations")
