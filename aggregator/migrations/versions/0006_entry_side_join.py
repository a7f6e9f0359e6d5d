"""Side-completion joins: ``entries.side_join``, true for an entry the grouping joined to a
story below its join threshold because the story had no article of the entry's side, so the
story page and the JSON Feed can tell the reader that this article was joined on a weaker
match (issue 19). Existing entries were joined at the threshold: false.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("entries") as batch:
        batch.add_column(
            sa.Column("side_join", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("entries") as batch:
        batch.drop_column("side_join")
