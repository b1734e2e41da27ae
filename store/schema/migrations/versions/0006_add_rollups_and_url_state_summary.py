"""add the Analytics rollups and each call's URL-state summary; drop the wide indexes they replace

At a million calls the Analytics page walked the whole table, and the URL-state filter asked
`images` about every call. Now:

- `generations.images_live / _expired / _unknown / _none`: how many of the call's images are
  in each state, with one partial index (created_at, id) per state over the calls that have
  one, so "has an expired image" is an ordered index range like the provider filter's.
- `call_rollups`: calls, images, cost, unpriced calls, timed calls and images per state, per
  UTC hour, provider, model, status, set of URL states (bits) and HTTP status.
- `latency_rollups`: calls per UTC day, provider, model, status, URL-state set and latency
  bucket (~5% geometric): the histogram p50/p95 are read from (per day: per hour it would
  hold nearly a row per call).
  The writer and every URL-state change keep them in step (store/schema/rollups.py); this
  revision fills them from the rows there.
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
TRUNCATED = {
    "sqlite": {
        "hour": "substr(created_at, 1, 13) || ':00:00.000000'",
        "day": "substr(created_at, 1, 10) || ' 00:00:00.000000'",
    },
    "postgresql": {
        unit: f"timezone('UTC', date_trunc('{unit}', timezone('UTC', created_at)))"
        for unit in ("hour", "day")
    },
}
SHARED = ["provider", "model", "status", "url_states"]


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
        *_shared_columns(),
        sa.Column("http_status", sa.Integer(), autoincrement=False, nullable=False),
        *[
            sa.Column(name, sa.Float() if name == "cost_usd" else sa.Integer(), nullable=False)
            for name in ("calls", "images", "cost_usd", "unpriced", "timed")
        ],
        *[sa.Column(f"images_{state}", sa.Integer(), nullable=False) for state in STATES],
        sa.PrimaryKeyConstraint("hour", *SHARED, "http_status"),
    )
    op.create_table(
        "latency_rollups",
        sa.Column("day", sa.DateTime(timezone=True), nullable=False),
        *_shared_columns(),
        sa.Column("latency_bucket", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", *SHARED, "latency_bucket"),
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
    shared = f"provider, model, status, {url_states}"
    hour, day = TRUNCATED[dialect]["hour"], TRUNCATED[dialect]["day"]
    state_sums = ", ".join(f"sum(images_{state})" for state in STATES)
    op.execute(
        "INSERT INTO call_rollups (hour, provider, model, status, url_states, http_status, "
        "calls, images, cost_usd, unpriced, timed, "
        + ", ".join(f"images_{state}" for state in STATES)
        + f") SELECT {hour}, {shared}, coalesce(http_status, 0), count(*), sum(image_count), "
        "coalesce(sum(cost_usd), 0), sum(CASE WHEN cost_usd IS NULL THEN 1 ELSE 0 END), "
        f"count(latency_ms), {state_sums} FROM generations "
        f"GROUP BY {hour}, {shared}, coalesce(http_status, 0)"
    )
    bucket = (
        "CASE WHEN latency_ms < 1 THEN 0 "
        f"ELSE CAST(floor(ln(latency_ms) / {LOG_RATIO}) AS INTEGER) + 1 END"
    )
    op.execute(
        "INSERT INTO latency_rollups (day, provider, model, status, url_states, "
        f"latency_bucket, calls) SELECT {day}, {shared}, {bucket}, count(*) FROM generations "
        f"WHERE latency_ms IS NOT NULL GROUP BY {day}, {shared}, {bucket}"
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


def _shared_columns() -> list[sa.Column]:
    return [
        sa.Column("provider", sa.String(length=100), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("url_states", sa.Integer(), autoincrement=False, nullable=False),
    ]


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for name, columns in WIDE.items():
        op.create_index(name, "generations", columns)
    hour = sa.text(HOUR_INDEXED[dialect])
    op.create_index(HOURLY, "generations", ["provider", "model", hour, *HOURLY_TAIL])
    op.drop_index(NARROW, table_name="generations")
    for state in STATES:
        op.drop_index(f"ix_generations_{state}_created_at_id", table_name="generations")
    op.drop_table("latency_rollups")
    op.drop_table("call_rollups")
    for state in reversed(STATES):
        op.drop_column("generations", f"images_{state}")
