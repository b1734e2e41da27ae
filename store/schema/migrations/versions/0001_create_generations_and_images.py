"""create generations and images, with full-text search over prompts

The whole first schema of DESIGN.md: one row per request, one per returned image, the
indexes the dashboard pages and `check --due` are served from, and prompt search
(an FTS5 table kept by triggers on SQLite, a GIN expression index on PostgreSQL).

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "generations",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("provider", sa.String(length=100), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("operation", sa.String(length=20), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("revised_prompt", sa.Text(), nullable=True),
        sa.Column("size", sa.String(length=40), nullable=True),
        sa.Column("quality", sa.String(length=40), nullable=True),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("params_json", JSON_TYPE, nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("cost_usd", sa.Float(), nullable=True),
        sa.Column("cost_source", sa.String(length=20), nullable=False),
        sa.Column("cost_note", sa.String(length=500), nullable=True),
        sa.Column("usage_json", JSON_TYPE, nullable=True),
        sa.Column("request_id", sa.String(length=200), nullable=True),
        sa.Column("trace_id", sa.String(length=200), nullable=True),
        sa.Column("user_id", sa.String(length=200), nullable=True),
        sa.Column("metadata_json", JSON_TYPE, nullable=True),
        sa.Column("request_json", JSON_TYPE, nullable=True),
        sa.Column("response_json", JSON_TYPE, nullable=True),
        sa.Column("image_count", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_generations_created_at_id", "generations", ["created_at", "id"], unique=False
    )
    op.create_index(
        "ix_generations_model_created_at", "generations", ["model", "created_at"], unique=False
    )
    op.create_index(
        "ix_generations_provider_model_created_at",
        "generations",
        ["provider", "model", "created_at"],
        unique=False,
    )
    op.create_index(op.f("ix_generations_request_id"), "generations", ["request_id"], unique=False)
    op.create_index(
        "ix_generations_status_created_at", "generations", ["status", "created_at"], unique=False
    )
    op.create_index(op.f("ix_generations_trace_id"), "generations", ["trace_id"], unique=False)
    op.create_index(op.f("ix_generations_user_id"), "generations", ["user_id"], unique=False)
    op.create_table(
        "images",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("generation_id", sa.String(length=32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("url_host", sa.String(length=255), nullable=True),
        sa.Column("revised_prompt", sa.Text(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_source", sa.String(length=40), nullable=True),
        sa.Column("url_state", sa.String(length=10), nullable=False),
        sa.Column("last_checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_http_status", sa.Integer(), nullable=True),
        sa.Column("last_error_code", sa.String(length=200), nullable=True),
        sa.Column("check_failures", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("format", sa.String(length=20), nullable=True),
        sa.Column("byte_size", sa.Integer(), nullable=True),
        sa.Column("thumbnail", sa.LargeBinary(), nullable=True),
        sa.Column("thumbnail_error", sa.String(length=500), nullable=True),
        sa.Column("archive_path", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["generation_id"],
            ["generations.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_images_url_state_expires_at", "images", ["url_state", "expires_at"], unique=False
    )
    op.create_index(
        "ix_images_url_state_last_checked_at",
        "images",
        ["url_state", "last_checked_at"],
        unique=False,
    )
    op.create_index(
        "ux_images_generation_position", "images", ["generation_id", "position"], unique=True
    )
    create_prompt_search()


def downgrade() -> None:
    drop_prompt_search()
    op.drop_index("ux_images_generation_position", table_name="images")
    op.drop_index("ix_images_url_state_last_checked_at", table_name="images")
    op.drop_index("ix_images_url_state_expires_at", table_name="images")
    op.drop_table("images")
    op.drop_index(op.f("ix_generations_user_id"), table_name="generations")
    op.drop_index(op.f("ix_generations_trace_id"), table_name="generations")
    op.drop_index("ix_generations_status_created_at", table_name="generations")
    op.drop_index(op.f("ix_generations_request_id"), table_name="generations")
    op.drop_index("ix_generations_provider_model_created_at", table_name="generations")
    op.drop_index("ix_generations_model_created_at", table_name="generations")
    op.drop_index("ix_generations_created_at_id", table_name="generations")
    op.drop_table("generations")


#: The expression PostgreSQL indexes and `store.queries` searches; they must match exactly.
PG_PROMPT_TSVECTOR = (
    "to_tsvector('english', coalesce(prompt, '') || ' ' || coalesce(revised_prompt, ''))"
)


def create_prompt_search() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE INDEX ix_generations_prompt_fts ON generations "
            f"USING gin ({PG_PROMPT_TSVECTOR})"
        )
        return
    # External-content FTS5: the text is stored once, in generations; triggers keep the index.
    op.execute(
        "CREATE VIRTUAL TABLE generations_fts USING fts5("
        "prompt, revised_prompt, content='generations', content_rowid='rowid')"
    )
    op.execute(
        "CREATE TRIGGER generations_fts_ai AFTER INSERT ON generations BEGIN "
        "INSERT INTO generations_fts(rowid, prompt, revised_prompt) "
        "VALUES (new.rowid, new.prompt, new.revised_prompt); END"
    )
    op.execute(
        "CREATE TRIGGER generations_fts_ad AFTER DELETE ON generations BEGIN "
        "INSERT INTO generations_fts(generations_fts, rowid, prompt, revised_prompt) "
        "VALUES ('delete', old.rowid, old.prompt, old.revised_prompt); END"
    )
    op.execute(
        "CREATE TRIGGER generations_fts_au "
        "AFTER UPDATE OF prompt, revised_prompt ON generations BEGIN "
        "INSERT INTO generations_fts(generations_fts, rowid, prompt, revised_prompt) "
        "VALUES ('delete', old.rowid, old.prompt, old.revised_prompt); "
        "INSERT INTO generations_fts(rowid, prompt, revised_prompt) "
        "VALUES (new.rowid, new.prompt, new.revised_prompt); END"
    )


def drop_prompt_search() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_generations_prompt_fts")
        return
    for trigger in ("generations_fts_ai", "generations_fts_ad", "generations_fts_au"):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    op.execute("DROP TABLE IF EXISTS generations_fts")
