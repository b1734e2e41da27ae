"""add the Analytics rollups and each call's URL-state summary; drop the wide indexes they replace

At a million calls the Analytics page walked the whole table, and the URL-state filter asked
`images` about every call. Now:

- `generations.images_live / _expired / _unknown / _none`: how many of the call's images are
  in each state, with one partial index (created_at, id) per state over the calls that have
  one, so "has an expired image" is an ordered index range like the provider filter's.
- `call_rollups`: calls, images, cost, unpriced calls and images per state, per UTC hour,
  provider, model, status, set of URL states (bits), HTTP status and latency bucket (~5%
  geometric: the histogram p50/p95 are read from). The writer and every URL-state change
  keep both in step (store/schema/rollups.py); this revision fills them from the rows there.
- The wide indexes 0003 and 0004 added for the page's aggregates (provider, model, hour or
  latency, with the summed columns) are dropped: nothing reads them any more, and every
  insert paid for them. The Logs page's provider + model filter gets its narrow
  (provider, model, created_at, id) index back.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

STATES = ("live", "expired", "unknown", "none")
BITS = {"live": 1, "expired": 2, "unknown": 4, "none": 8}
#: ln(1.05): the histogram's bucket width, as store/schema/rollups.py computes it.
LOG_RATIO = "0.04879016416943205"
HOUR = {
    "sqlite": "substr(created_at, 1, 13) || ':00:00.000000'",
    "postgresql": "timezone('UTC', date_trunc('hour', timezone('UTC', created_at)))",
}
#: The indexes the rollups replace: name -> columns, as 0003 and 0004 made them (for downgrade).
WIDE = {
    "ix_generations_provider_model_created_at_id_totals": [
        *("provider", "model", "created_at", "id"),
        *("status", "image_count", "cost_usd", "latency_ms"),
    ],
    "ix_generations_provider_model_latency_ms": [
        *("provider", "model", "latency_ms", "created_at", "status", "cost_usd"),
    ],
    "ix_generations_provider_latency_ms": [
        *("provider", "latency_ms", "model", "created_at", "status", "cost_usd"),
    ],
}
HOURLY = "ix_generations_provider_model_hour_totals"
HOURLY_TAIL = ["created_at", "status", "image_count", "cost_usd", "latency_ms"]
HOUR_INDEXED = {
    "sqlite": "substr(created_at, 1, 13)",
    "postgresql": "date_trunc('hour', created_at AT TIME ZONE 'UTC')",
}
NARROW = "ix_generations_provider_model_created_at_id"
KEYS = "hour, provider, model, status, url_states, http_status, latency_bucket"
SUMS = "calls, images, cost_usd, unpriced, images_live, images_expired, images_unknown, images_none"


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for state in STATES:
        op.add_column(
            "generations",
            sa.Column(f"images_{state}", sa.Integer(), server_default=sa.text("0"), nullable=False),
        )
    op.create_table(
        "call_rollups",
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("provider", sa.String(length=100), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("url_states", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("http_status", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("latency_bucket", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("images", sa.Integer(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("unpriced", sa.Integer(), nullable=False),
        *[sa.Column(f"images_{state}", sa.Integer(), nullable=False) for state in STATES],
        sa.PrimaryKeyConstraint(*KEYS.split(", ")),
    )
    counts = ", ".join(
        f"images_{state} = (SELECT count(*) FROM images WHERE images.generation_id = "
        f"generations.id AND images.url_state = '{state}')"
        for state in STATES
    )
    op.execute(f"UPDATE generations SET {counts} WHERE image_count > 0")
    url_states = " + ".join(
        f"CASE WHEN images_{state} > 0 THEN {BITS[state]} ELSE 0 END" for state in STATES
    )
    keys = (
        f"{HOUR[dialect]}, provider, model, status, {url_states}, coalesce(http_status, 0), "
        "CASE WHEN latency_ms IS NULL THEN -1 WHEN latency_ms < 1 THEN 0 "
        f"ELSE CAST(floor(ln(latency_ms) / {LOG_RATIO}) AS INTEGER) + 1 END"
    )
    op.execute(
        f"INSERT INTO call_rollups ({KEYS}, {SUMS}) SELECT {keys}, count(*), sum(image_count), "
        "coalesce(sum(cost_usd), 0), sum(CASE WHEN cost_usd IS NULL THEN 1 ELSE 0 END), "
        + ", ".join(f"sum(images_{state})" for state in STATES)
        + f" FROM generations GROUP BY {keys}"
    )
    for state in STATES:
        where = sa.text(f"images_{state} > 0")
        op.create_index(
            f"ix_generations_{state}_created_at_id",
            "generations",
            ["created_at", "id"],
            sqlite_where=where,
            postgresql_where=where,
        )

    op.create_index(NARROW, "generations", ["provider", "model", "created_at", "id"])
    op.drop_index(HOURLY, table_name="generations")
    for name in WIDE:
        op.drop_index(name, table_name="generations")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for name, columns in WIDE.items():
        op.create_index(name, "generations", columns)
    hour = sa.text(HOUR_INDEXED[dialect])
    op.create_index(HOURLY, "generations", ["provider", "model", hour, *HOURLY_TAIL])
    op.drop_index(NARROW, table_name="generations")
    for state in STATES:
        op.drop_index(f"ix_generations_{state}_created_at_id", table_name="generations")
    op.drop_table("call_rollups")
    for state in reversed(STATES):
        op.drop_column("generations", f"images_{state}")
