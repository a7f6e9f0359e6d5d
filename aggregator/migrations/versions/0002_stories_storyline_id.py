"""Stories: storyline_id, the first story of the storyline a story belongs to.

Consecutive events of one developing story are separate stories linked by this id (the
grouping sets it when it opens a story). Existing stories keep NULL: each stands alone, as the
feed showed it before.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("stories") as batch:
        batch.add_column(sa.Column("storyline_id", sa.String(64), nullable=True))
        batch.create_index("ix_stories_storyline_id", ["storyline_id"])


def downgrade() -> None:
    with op.batch_alter_table("stories") as batch:
        batch.drop_index("ix_stories_storyline_id")
        batch.drop_column("storyline_id")
