"""add images.archive_error

Originals are kept in any fsspec location (`Recorder(archive=...)`, `IMAGELOG_ARCHIVE`), an
object store that can be down when an image is saved. The thumbnail is stored all the same;
this column keeps why its original is not archived yet, for the Detail page to show and for
`imagelog archive --missing` to retry.

Revision ID: 0008
Revises: 0005
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("images", sa.Column("archive_error", sa.String(length=500), nullable=True))


def downgrade() -> None:
    op.drop_column("images", "archive_error")
