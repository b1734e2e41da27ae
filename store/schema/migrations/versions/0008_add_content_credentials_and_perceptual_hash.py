"""add each image's content credentials (C2PA) and perceptual hash

An auditor asks who says an image was machine-made, and where else the log holds the same
picture. Each image keeps what its C2PA manifest says (validation state, issuer, claim
generator, signing time, actions, and why it failed) and a 64-bit perceptual hash cut into
four indexed 16-bit bands, so a look-alike lookup reads a few index entries, not a million
hashes (two hashes at most 3 bits apart share a band).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_BANDS = range(4)


def upgrade() -> None:
    json_type = sa.JSON(none_as_null=True).with_variant(
        postgresql.JSONB(none_as_null=True), "postgresql"
    )
    columns: tuple[sa.Column, ...] = (
        sa.Column("c2pa_state", sa.String(length=10), nullable=True),
        sa.Column("c2pa_issuer", sa.String(length=200), nullable=True),
        sa.Column("c2pa_generator", sa.String(length=200), nullable=True),
        sa.Column("c2pa_signed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("c2pa_actions_json", json_type, nullable=True),
        sa.Column("c2pa_error", sa.String(length=500), nullable=True),
        sa.Column("phash", sa.String(length=16), nullable=True),
        *(sa.Column(f"phash_band{band}", sa.Integer(), nullable=True) for band in _BANDS),
    )
    for column in columns:
        op.add_column("images", column)
    op.create_index("ix_images_c2pa_state_generation_id", "images", ["c2pa_state", "generation_id"])
    for band in _BANDS:
        op.create_index(f"ix_images_phash_band{band}", "images", [f"phash_band{band}", "phash"])


def downgrade() -> None:
    for band in _BANDS:
        op.drop_index(f"ix_images_phash_band{band}", table_name="images")
    op.drop_index("ix_images_c2pa_state_generation_id", table_name="images")
    for name in (
        *(f"phash_band{band}" for band in _BANDS),
        *("phash", "c2pa_error", "c2pa_actions_json", "c2pa_signed_at"),
        *("c2pa_generator", "c2pa_issuer", "c2pa_state"),
    ):
        op.drop_column("images", name)
