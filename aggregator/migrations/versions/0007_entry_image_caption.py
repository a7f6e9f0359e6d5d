"""Image captions: ``entries.image_caption``, the caption of an entry's picture (its feed's
media:description or media:title, else its page's og:image:alt, figcaption or alt), plain text;
the lead image's alt text where there is one. Existing entries keep NULL (their title serves).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("entries") as batch:
        batch.add_column(sa.Column("image_caption", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("entries") as batch:
        batch.drop_column("image_caption")
