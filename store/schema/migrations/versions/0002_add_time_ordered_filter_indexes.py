"""add time-ordered indexes for the Logs page's filters

The Logs page lists the calls of a filter newest first, a page at a time from a
(created_at, id) cursor. An index on (filter column, created_at, id) serves that as one
range read in order: 0001's (provider, model, created_at) and friends lacked the id
tie-break (a sort within each timestamp, and a next page that could not seek), and a filter
on the provider alone or the user had no ordered index at all (a sort of every matching
call: half a million for "openai" at a million logs). These replace 0001's indexes they
extend. The URL-state filter asks, call by call, "has an image in this state": an index
on images (generation_id, url_state) answers that without reading the image row and its
thumbnail.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

#: name -> (table, columns, the 0001 index it replaces or None)
INDEXES = {
    "ix_generations_provider_created_at_id": (
        "generations",
        ["provider", "created_at", "id"],
        None,
    ),
    "ix_generations_provider_model_created_at_id": (
        "generations",
        ["provider", "model", "created_at", "id"],
        "ix_generations_provider_model_created_at",
    ),
    "ix_generations_model_created_at_id": (
        "generations",
        ["model", "created_at", "id"],
        "ix_generations_model_created_at",
    ),
    "ix_generations_status_created_at_id": (
        "generations",
        ["status", "created_at", "id"],
        "ix_generations_status_created_at",
    ),
    "ix_generations_user_id_created_at_id": (
        "generations",
        ["user_id", "created_at", "id"],
        "ix_generations_user_id",
    ),
    "ix_images_generation_id_url_state": ("images", ["generation_id", "url_state"], None),
}

#: The 0001 indexes, to put back on downgrade.
REPLACED = {
    "ix_generations_provider_model_created_at": ["provider", "model", "created_at"],
    "ix_generations_model_created_at": ["model", "created_at"],
    "ix_generations_status_created_at": ["status", "created_at"],
    "ix_generations_user_id": ["user_id"],
}


def upgrade() -> None:
    for name, (table, columns, replaces) in INDEXES.items():
        op.create_index(name, table, columns, unique=False)
        if replaces:
            op.drop_index(replaces, table_name=table)


def downgrade() -> None:
    for name, columns in REPLACED.items():
        op.create_index(name, "generations", columns, unique=False)
    for name, (table, _, _) in INDEXES.items():
        op.drop_index(name, table_name=table)
