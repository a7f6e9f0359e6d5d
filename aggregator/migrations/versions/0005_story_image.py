"""Lead images: ``stories.image_json``, the picture a story leads with (its address, the
outlet credited, its alt text), chosen by the rewrite stage from the story's articles.
Existing stories keep NULL (no image) until their next rewrite.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("stories") as batch:
        batch.add_column(sa.Column("image_json", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("stories") as batch:
        batch.drop_column("image_json")
