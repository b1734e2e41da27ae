"""add the reviews trail and each image's current verdict

A reviewer judges an image: approved, flagged (with a reason) or needs another look, with a
note, their name and the time. Every verdict is a new `reviews` row, never an update, so the
trail shows who changed what, when, from what to what. Images are named by (generation_id,
position): an image's surrogate id does not survive export and import.

`images.verdict` holds the last review's verdict (NULL: not reviewed yet), written in the
same transaction as the review row, so the verdict filter and the Review page's walk through
the unreviewed images are reads of the (verdict, generation_id) index at a million images.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("generation_id", sa.String(length=32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("verdict", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("reviewer", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["generation_id"], ["generations.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_reviews_generation_id_position_created_at",
        "reviews",
        ["generation_id", "position", "created_at"],
        unique=False,
    )
    op.create_index("ix_reviews_created_at", "reviews", ["created_at"], unique=False)
    op.add_column("images", sa.Column("verdict", sa.String(length=20), nullable=True))
    op.create_index(
        "ix_images_verdict_generation_id", "images", ["verdict", "generation_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_images_verdict_generation_id", table_name="images")
    op.drop_column("images", "verdict")
    op.drop_index("ix_reviews_created_at", table_name="reviews")
    op.drop_index("ix_reviews_generation_id_position_created_at", table_name="reviews")
    op.drop_table("reviews")
